"""Checks that a virtual environment holds exactly what a lock file pins.

`make` runs it after every install: a venv left over from an older lock, or a package that
someone added by hand, fails the run instead of hiding a version nobody reviewed.

    python scripts/venv-matches-lock.py requirements-dev.lock [--also requirements.lock]

Every pinned package whose environment marker applies must be installed at its pinned version,
and every installed distribution must be pinned (the project itself and pip excepted).
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import re
import sys
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")
_UNPINNED_OK = {"pip", "twentythree-gateway"}


def read_pins(lock: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match is None:
            continue
        name, version, marker = match.groups()
        if marker and not Marker(marker).evaluate():
            continue
        pins[canonicalize_name(name)] = version
    return pins


def installed() -> dict[str, str]:
    return {
        canonicalize_name(dist.metadata["Name"]): dist.version for dist in metadata.distributions()
    }


def problems(pins: dict[str, str], allowed_extra: set[str]) -> list[str]:
    have = installed()
    found = [
        f"{name}: locked {version}, installed {have.get(name, 'nothing')}"
        for name, version in sorted(pins.items())
        if have.get(name) != version
    ]
    found += [
        f"{name} {version} is installed but not in the lock"
        for name, version in sorted(have.items())
        if name not in pins and name not in allowed_extra and name not in _UNPINNED_OK
    ]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", type=Path)
    parser.add_argument(
        "--also", type=Path, action="append", default=[], help="a lock whose packages may be here"
    )
    args = parser.parse_args()
    allowed = {name for extra in args.also for name in read_pins(extra)}
    found = problems(read_pins(args.lock), allowed)
    for line in found:
        print(f"venv does not match {args.lock}: {line}", file=sys.stderr)
    if found:
        print("run `make clean` and install again", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
