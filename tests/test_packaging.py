"""`make run` installs the runtime dependencies only: everything `gateway serve` and the demo
import must come from them, not from a dev extra that happens to be in the test venv."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
import granian
print("ok", len(allowed))
"""


def test_the_service_and_demo_need_only_runtime_dependencies() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _CHILD], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("ok")
