"""Every example in config/examples/ passes `gateway check-config` as shipped (its env:
secrets set to placeholders), so an operator can start from any of them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "config" / "examples").glob("*.toml"))


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_passes_check_config(example: Path) -> None:
    names = set(re.findall(r'"env:([A-Za-z_][A-Za-z0-9_]*)"', example.read_text()))
    env = {name: f"placeholder-{name.lower()}-0123456789" for name in names}
    gateway = Path(sys.executable).parent / "gateway"
    result = subprocess.run(
        [str(gateway), "check-config", str(example)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "ok (" in result.stdout
