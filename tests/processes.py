"""Helper servers for the tests, each started in a process group of its own, so that ending
one ends everything it started too (the PHP built-in server's workers, gunicorn's and nginx's
workers, the demo script's children); and a list of what is still running, ended when the
test session ends, so that a failing test leaves nothing behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Any

_RUNNING: set[subprocess.Popen[Any]] = set()


def spawn(command: list[str], **options: Any) -> subprocess.Popen[Any]:
    proc: subprocess.Popen[Any] = subprocess.Popen(command, start_new_session=True, **options)
    _RUNNING.add(proc)
    return proc


def end(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM to the whole group; SIGKILL to whatever of it is left after ``timeout``."""
    _RUNNING.discard(proc)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout)
    # The leader may be gone while workers linger; the group id stays theirs until they are.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=timeout)


class HelperServer:
    """A helper server run as one process group: ``stop`` ends it and all it started."""

    proc: subprocess.Popen[Any] | None = None

    def stop(self) -> None:
        if self.proc is not None:
            end(self.proc)
            self.proc = None


def end_all() -> None:
    for proc in list(_RUNNING):
        end(proc, timeout=5.0)
