"""The ``gateway`` command line, run as a user would run it."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from gateway.passwords import verify_password
from tests.helpers import DEMO_SUPER, TEST_SECRET, Devsite, gateway_cli
from tests.processes import end, spawn

ROOT = Path(__file__).resolve().parent.parent
GATEWAY = shutil.which("gateway", path=str(Path(sys.executable).parent)) or "gateway"


def run(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return gateway_cli(*args, env=env, stdin=stdin)


def test_token_prints_the_documented_vector_exactly() -> None:
    result = run(
        "token", "--photo-id", "97531", "--photo-token", "123abc", "--expire", "1292438117"
    )
    assert result.returncode == 0
    assert result.stdout == "5ea04282ea3c4a9beca6234606006b56e0cb923d-1292438117\n"


def test_token_with_ttl() -> None:
    before = int(time.time())
    result = run("token", "--photo-id", "1", "--photo-token", "abc", "--ttl", "60")
    expire = int(result.stdout.strip().rsplit("-", 1)[1])
    assert before + 60 <= expire <= int(time.time()) + 61


@pytest.mark.parametrize(
    "args",
    [
        ["--photo-id", "x", "--photo-token", "t", "--ttl", "5"],
        ["--photo-id", "1", "--photo-token", "t"],
        ["--photo-id", "1", "--photo-token", "t", "--ttl", "5", "--expire", "9"],
        ["--photo-id", "-1", "--photo-token", "t", "--ttl", "5"],
    ],
)
def test_token_usage_errors(args: list[str]) -> None:
    result = run("token", *args)
    assert result.returncode == 2 and "usage:" in result.stderr


def test_hash_password() -> None:
    result = run("hash-password", stdin="correct horse battery\n")
    assert result.returncode == 0
    encoded = result.stdout.strip()
    assert encoded.startswith("scrypt$") and "correct" not in encoded
    assert verify_password("correct horse battery", encoded)
    assert not verify_password("wrong horse battery", encoded)
    assert run("hash-password", stdin="short\n").returncode == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, timeout: float = 20) -> requests.Response:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return requests.get(url, timeout=5)
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture()
def process() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        end(proc)


def test_devsite_command(process: list[subprocess.Popen[str]]) -> None:
    port = _free_port()
    process.append(
        spawn(
            [GATEWAY, "devsite", "--port", str(port)],
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    )
    assert _wait(f"http://127.0.0.1:{port}/_devsite/calls").status_code == 200
    home = requests.get(f"http://127.0.0.1:{port}/", allow_redirects=False, timeout=5)
    assert home.status_code == 302
    assert home.headers["Location"].startswith("http://127.0.0.1:8000/sso/demo/login?return_url=")
    requests.get(f"http://127.0.0.1:{port}/nothing-here", timeout=5)
    proc = process[-1]
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=10)
    lines = [line for line in output.splitlines() if line.strip()]
    assert "\x1b" not in output  # no terminal colours, even for a 404
    entries = [json.loads(line) for line in lines]  # every line is JSON
    assert entries[0]["msg"] == "emulated 23 site listening"
    requested = {(e.get("path"), e.get("status")) for e in entries}
    assert ("/", 302) in requested and ("/nothing-here", 404) in requested


def test_version_and_help_on_every_option() -> None:
    from gateway import __version__
    from gateway.cli import build_parser

    version = subprocess.run([GATEWAY, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == f"gateway {__version__}"
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [
        f"{name} {action.dest}"
        for name, sub in commands.choices.items()
        for action in sub._actions
        if not isinstance(action, argparse._HelpAction) and not action.help
    ]
    assert missing == []
    assert all(choice.help for choice in commands._choices_actions)


def demo_config(tmp_path: Path, devsite: Devsite, secret_key: str, consumer_secret: str) -> Path:
    """A configuration file for the emulated site's demo, with these two secrets."""
    config = tmp_path / "gateway.toml"
    key, _, token, token_secret = DEMO_SUPER
    config.write_text(f"""
[gateway]
public_url = "http://127.0.0.1:8000"
secret_key = "{secret_key}"

[sites.demo]
url = "{devsite.url}"
consumer_key = "{key}"
consumer_secret = "{consumer_secret}"
access_token = "{token}"
access_token_secret = "{token_secret}"
""")
    return config


def test_serve_with_gunicorn(
    tmp_path: Path, devsite: Devsite, process: list[subprocess.Popen[str]]
) -> None:
    # the two secrets from the environment, as an operator would keep them
    config = demo_config(tmp_path, devsite, "env:TEST_GATEWAY_SECRET", "env:TEST_DEMO_CS")
    port = _free_port()
    env = {
        **os.environ,
        "GATEWAY_CONFIG": str(config),
        "TEST_GATEWAY_SECRET": TEST_SECRET,
        "TEST_DEMO_CS": DEMO_SUPER[1],
    }
    proc = spawn(
        [GATEWAY, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    process.append(proc)
    assert _wait(f"http://127.0.0.1:{port}/healthz").status_code == 200
    ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=20)
    access = [line for line in output.splitlines() if '"gateway.access"' in line]
    assert any('"path":"/readyz"' in line and '"status":200' in line for line in access)
    assert DEMO_SUPER[1] not in output and TEST_SECRET not in output
    # gevent patched the standard library before anything imported ssl (else outbound TLS to
    # 23 and the IdPs would not be cooperative in the workers)
    assert "MonkeyPatchWarning" not in output


def test_serve_refuses_a_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[gateway]\npublic_url = "https://x.example.com"\n')
    result = run("serve", "--config", str(config))
    assert result.returncode == 2
    assert "gateway.secret_key: is required" in result.stderr


def test_link_prints_working_urls(tmp_path: Path, devsite: Devsite) -> None:
    config = demo_config(tmp_path, devsite, TEST_SECRET, DEMO_SUPER[1])
    result = run(
        "link", "--site", "demo", "--photo-id", "1001", "--ttl", "120", "--config", str(config)
    )
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert set(lines) >= {"expire", "token", "embed", "video", "thumbnail", "api"}
    for name in ("embed", "video", "thumbnail", "api"):
        assert requests.get(lines[name].strip(), timeout=5).status_code == 200
    assert (
        '"audit":"tokens_minted"' in result.stderr and lines["token"].strip() not in result.stderr
    )
    missing = run("link", "--site", "demo", "--photo-id", "424242", "--config", str(config))
    assert missing.returncode == 1 and "no_such_photo" in missing.stderr
    unknown = run("link", "--site", "nope", "--photo-id", "1", "--config", str(config))
    assert unknown.returncode == 2 and "sites: demo" in unknown.stderr


def test_devsite_with_a_catalogue_of_ones_own(
    tmp_path: Path, process: list[subprocess.Popen[str]]
) -> None:
    videos = [
        {"photo_id": 42, "title": "Long", "video_length": 7200, "albums": [5], "tags": ["Board"]},
        {"photo_id": 43, "video_length": 30, "published": False, "protected": True},
    ]
    catalogue = tmp_path / "videos.json"
    catalogue.write_text(json.dumps(videos))
    port = _free_port()
    command = [GATEWAY, "devsite", "--port", str(port), "--catalogue", str(catalogue)]
    process.append(spawn([*command, "--extra-photos", "3"], text=True))
    listed = _wait(f"http://127.0.0.1:{port}/_devsite/photos").json()
    assert [v["photo_id"] for v in listed] == [42, 43, 2001, 2002, 2003]
    assert listed[0] | {"title": "Long"} == {
        "photo_id": 42, "title": "Long", "video_length": 7200, "albums": [5], "tags": ["Board"],
        "published": True, "protected": False,
    }  # fmt: skip
    assert listed[1]["published"] is False and listed[1]["protected"] is True

    catalogue.write_text(json.dumps([{"photo_id": 1, "lenght": 3}]))
    bad = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert bad.returncode == 2 and "--catalogue" in bad.stderr and "photo_id" in bad.stderr
