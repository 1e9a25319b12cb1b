"""`make run` installs the runtime dependencies only: everything `gateway serve` and the demo
import must come from them, not from a dev extra that happens to be in the test venv."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent

# In a child process: refuse any top-level import whose distribution is outside the runtime
# dependency closure of the package, then import every module the service and demo run.
_CHILD = r"""
import importlib, importlib.abc, importlib.metadata as md, pkgutil, re, sys

before = set(sys.modules)

def closure(name, seen):
    key = re.sub(r"[-_.]+", "-", name).lower()
    if key in seen:
        return
    seen.add(key)
    try:
        requires = md.requires(name) or []
    except md.PackageNotFoundError:
        return
    for req in requires:
        if "extra ==" in req:
            continue
        marker = req.split(";", 1)[1] if ";" in req else ""
        if marker:
            from packaging.markers import Marker
            if not Marker(marker).evaluate():
                continue
        closure(re.split(r"[\s<>=!~\[;(]", req, maxsplit=1)[0], seen)

allowed = set()
closure("twentythree-gateway", allowed)
providers = md.packages_distributions()
for name in set(sys.modules) - before:  # what reading the metadata imported (packaging)
    if name.partition(".")[0] in providers:
        del sys.modules[name]

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        top = fullname.partition(".")[0]
        if top in sys.modules or top not in providers:
            return None  # already imported, or the standard library
        dists = {re.sub(r"[-_.]+", "-", d).lower() for d in providers[top]}
        if not dists & allowed:
            raise ImportError(f"{fullname} comes from {sorted(dists)}, not a runtime dependency")
        return None

sys.meta_path.insert(0, Refuse())
import gateway
for module in pkgutil.walk_packages(gateway.__path__, "gateway."):
    if ".migrations." in module.name:
        continue  # Alembic loads these itself
    importlib.import_module(module.name)
import gunicorn.workers.ggevent, gunicorn.app.base, gevent.monkey  # noqa: E401
print("ok", len(allowed))
"""


def test_the_service_and_demo_need_only_runtime_dependencies() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _CHILD], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok")


# ---------------------------------------------------------------- the lock files

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(?: ;.*)? \\$")


def _locked(lock: str) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) for each pin of a lock file."""
    pins: dict[str, tuple[str, int]] = {}
    current = ""
    for line in (ROOT / lock).read_text().splitlines():
        match = _PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            pins[current] = (match.group(2), 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def _declared(extra: str | None = None) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = project["dependencies"] + (project["optional-dependencies"][extra] if extra else [])
    return {canonicalize_name(Requirement(n).name) for n in names}


@pytest.mark.parametrize(
    ("lock", "extra"), [("requirements.lock", None), ("requirements-dev.lock", "dev")]
)
def test_the_lock_pins_every_declared_dependency_with_hashes(lock: str, extra: str | None) -> None:
    pins = _locked(lock)
    assert _declared(extra) <= set(pins), _declared(extra) - set(pins)
    assert {"setuptools", "wheel"} <= set(pins)  # what builds the package, locked too
    assert all(hashes >= 1 for _, hashes in pins.values()), pins


def test_the_runtime_and_dev_locks_agree() -> None:
    runtime, dev = _locked("requirements.lock"), _locked("requirements-dev.lock")
    assert {n: v for n, (v, _) in runtime.items()} == {n: dev[n][0] for n in runtime}


def test_this_venv_holds_exactly_the_dev_lock() -> None:
    checker = ROOT / "scripts" / "venv-matches-lock.py"
    result = subprocess.run(
        [sys.executable, str(checker), "requirements-dev.lock"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_the_image_installs_the_runtime_lock_with_hashes() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = re.findall(r"pip install ([^\n&]*)", dockerfile)
    assert installs and all("--no-deps" in line for line in installs), installs
    assert sum("--require-hashes" in i and "requirements.lock" in i for i in installs) == 2
    assert "--no-build-isolation" in dockerfile  # the locked setuptools builds the wheel
