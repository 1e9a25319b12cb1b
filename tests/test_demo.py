"""`make run`'s script, as a new operator runs it: on other ports, with a port taken, and
through the console it advertises."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import free_port
from tests.processes import end, spawn

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "run-demo.sh"


def _start(**ports: int) -> subprocess.Popen[str]:
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}}
    env.pop("GATEWAY_CONFIG", None)
    return spawn(
        [str(SCRIPT)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip


def _stop(proc: subprocess.Popen[str]) -> None:
    end(proc, timeout=20)


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[str, str, str]]:
    gateway_port, site_port = free_port(), free_port()
    proc = _start(GATEWAY_PORT=gateway_port, DEVSITE_PORT=site_port)
    banner: list[str] = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        banner.append(line)
        if "Press Ctrl-C" in line:
            break
    text = "".join(banner)
    try:
        yield f"http://127.0.0.1:{gateway_port}", f"http://127.0.0.1:{site_port}", text
    finally:
        _stop(proc)


def test_the_demo_runs_on_the_ports_it_is_given(demo: tuple[str, str, str]) -> None:
    gateway, site, banner = demo
    assert "demo is running" in banner, banner
    assert f"{site}/" in banner and f"{gateway}/admin" in banner
    # The banner came after both answered, and they agree on each other's addresses.
    assert requests.get(f"{gateway}/readyz", timeout=10).status_code == 200
    visitor = requests.Session()
    page = visitor.get(f"{site}/video/1001", timeout=15)
    assert page.url.startswith(f"{gateway}/sso/demo/login"), page.url
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf
    fields = {"csrf": csrf.group(1), "provider": "team", "email": "demo@example.com",
              "password": "demo-password", "next": ""}  # fmt: skip
    fields["return_url"] = re.search(r'name="return_url" value="([^"]*)"', page.text).group(1)  # type: ignore[union-attr]
    landed = visitor.post(f"{gateway}/sso/demo/login", data=fields, timeout=15)
    assert landed.url == f"{site}/video/1001", landed.url


def test_the_console_is_there_for_the_demo_account(demo: tuple[str, str, str]) -> None:
    gateway, _, _ = demo
    operator = requests.Session()
    form = operator.get(f"{gateway}/admin", timeout=15)
    assert "operator console" in form.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf
    overview = operator.post(
        f"{gateway}/sso/_admin/login",
        data={"csrf": csrf.group(1), "provider": "team", "email": "demo@example.com",
              "password": "demo-password", "return_url": "/admin", "next": ""},
        timeout=15,
    )  # fmt: skip
    assert overview.url == f"{gateway}/admin" and overview.text.count('<svg class="plot"') >= 6


def test_a_port_in_use_stops_the_demo_with_a_clear_message() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = _start(GATEWAY_PORT=port, DEVSITE_PORT=free_port())
        try:
            out, _ = proc.communicate(timeout=30)
        finally:
            _stop(proc)
    assert proc.returncode != 0
    assert f"port {port} is in use" in out and "GATEWAY_PORT" in out
    assert "demo is running" not in out


def _until_running(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while "Press Ctrl-C to stop." not in proc.stdout.readline():
        assert time.monotonic() < deadline and proc.poll() is None


def test_ctrl_c_stops_the_demo_cleanly_and_it_starts_again_at_once() -> None:
    """Ctrl-C (SIGINT to the whole foreground group) is the documented way to stop the demo:
    it ends every process and says so, rather than reporting a failure. Started again at
    once on the same ports (closed connections still in TIME-WAIT), it runs."""
    ports = {"GATEWAY_PORT": free_port(), "DEVSITE_PORT": free_port()}
    proc = _start(**ports)
    try:
        _until_running(proc)
        for _ in range(3):  # connections the server closes at shutdown: TIME-WAIT on its port
            requests.get(f"http://127.0.0.1:{ports['GATEWAY_PORT']}/healthz", timeout=10)
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        _stop(proc)
    assert proc.returncode == 0, out[-2000:]  # make reports no error either
    assert "demo stopped" in out and "error:" not in out
    again = _start(**ports)
    try:
        _until_running(again)
    finally:
        _stop(again)
