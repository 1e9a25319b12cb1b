"""The real servers (``gateway serve``, gunicorn with gunicorn.conf.py) under
hostile clients: slowloris headers and bodies, oversized chunked bodies. Each runs as a
process on a free port in front of the emulated site."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gateway.web.bodylimit import BODY_TIMEOUT
from tests.helpers import Devsite, ServedGateway

SLOW_CLIENTS = 64

CONFIG = """
[gateway]
public_url = "http://127.0.0.1:8000"
secret_key = "served-gateway-secret-0123456789"

[sites.demo]
url = "{devsite}"
consumer_key = "demo-super-consumer"
consumer_secret = "demo-super-consumer-secret"
access_token = "demo-super-access"
access_token_secret = "demo-super-access-secret"

[api_keys.cms]
key_sha256 = "fa633b4deb8c806eec488d013b6909b0772f2eb8049556bb9acb508dc4e28193"
sites = ["demo"]
"""


@pytest.fixture(params=["gunicorn", "gunicorn-conf"])
def served(
    request: pytest.FixtureRequest, devsite: Devsite, tmp_path: Path
) -> Iterator[ServedGateway]:
    gateway = ServedGateway(CONFIG.format(devsite=devsite.url), tmp_path, server=request.param)
    yield gateway
    gateway.stop()


class Trickler:
    """Clients that send a request one byte a second and never finish it."""

    def __init__(self, port: int, count: int, kind: str) -> None:
        self.stop = threading.Event()
        self.sockets: list[socket.socket] = []
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
        if kind == "body":
            head = (
                b"POST /api/v1/sites/demo/tokens HTTP/1.1\r\nHost: x\r\n"
                b"Authorization: Bearer demo-api-key-not-secret\r\n"
                b"Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n{"
            )
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(head)
            self.sockets.append(sock)
        self.thread = threading.Thread(target=self._drip, daemon=True)
        self.thread.start()

    def _drip(self) -> None:
        while not self.stop.wait(1.0):
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.sendall(b"a")

    def close(self) -> None:
        self.stop.set()
        for sock in self.sockets:
            sock.close()


@pytest.mark.parametrize("kind", ["headers", "body"])
def test_slow_clients_do_not_take_the_gateway_down(served: ServedGateway, kind: str) -> None:
    """Attack: 64 clients trickle their headers (or their bodies) a byte a second."""
    started = time.monotonic()
    slow = Trickler(served.port, SLOW_CLIENTS, kind)
    try:
        time.sleep(1.5)  # let every slow client be accepted and start waiting
        for _ in range(40):
            with urllib.request.urlopen(served.url + "/healthz", timeout=2) as resp:
                assert resp.status == 200
        mint = urllib.request.Request(
            served.url + "/api/v1/sites/demo/tokens",
            data=b'{"photo_ids": [1001]}',
            headers={
                "Authorization": "Bearer demo-api-key-not-secret",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(mint, timeout=5) as resp:
            assert json.load(resp)["tokens"][0]["photo_id"] == 1001
        if kind == "body":  # and each trickler is cut off once its body is overdue
            time.sleep(max(0.0, started + BODY_TIMEOUT + 1 - time.monotonic()))
            answers = [sock.recv(200) for sock in slow.sockets[:4]]
            assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers
    finally:
        slow.close()


def test_a_chunked_body_over_the_limit_is_413(served: ServedGateway) -> None:
    """Attack: no Content-Length, so only a server that counts while reading can refuse."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/sites/demo/tokens HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer demo-api-key-not-secret\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"a" * 8192
        try:
            for _ in range(12):  # 96 KiB > 64 KiB
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server may stop reading once it has refused
        answer = sock.recv(65536).decode("latin-1")
    assert answer.startswith("HTTP/1.1 413"), answer[:200]


def test_double_slashes_are_not_redirected_by_the_real_server(served: ServedGateway) -> None:
    request = urllib.request.Request(
        served.url + "/sso//demo/login", headers={"Host": "evil.example"}
    )
    try:
        urllib.request.urlopen(request, timeout=5)
        raise AssertionError("expected a 404")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404 and "Location" not in exc.headers


def test_every_log_line_is_json(served: ServedGateway) -> None:
    urllib.request.urlopen(served.url + "/healthz", timeout=5).read()
    time.sleep(0.5)
    lines = [line for line in served.output().splitlines() if line.strip()]
    assert lines
    for line in lines:
        entry = json.loads(line)
        assert "level" in entry and "msg" in entry
    assert any(json.loads(x).get("path") == "/healthz" for x in lines)  # the access line


OVERSIZED_CLIENTS = 20


def _post_oversized(port: int) -> str:
    """A client that sends its whole 2 MB body before reading, as most HTTP clients do."""
    body = b'{"photo_ids": [' + b"1," * (1024 * 1024) + b"1]}"
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(
            b"POST /api/v1/sites/demo/tokens HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer demo-api-key-not-secret\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        try:
            sock.sendall(body)
        except OSError as exc:
            return f"send failed: {exc!r}"
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except OSError as exc:
            return f"read failed: {exc!r}"
    return answer.decode("latin-1")


@pytest.mark.parametrize("server", ["gunicorn", "gunicorn-conf"])
def test_oversized_bodies_read_their_413(devsite: Devsite, tmp_path: Path, server: str) -> None:
    """Field report: of 20 POSTs of 2 MB, 7 saw the connection reset before the answer (the
    server closed with the body unread). The rest of a refused body is now read and dropped,
    so every client reads its 413."""
    served = ServedGateway(CONFIG.format(devsite=devsite.url), tmp_path, server=server)
    try:
        _all_read_413(served)
    finally:
        served.stop()


def _all_read_413(served: ServedGateway) -> None:
    with ThreadPoolExecutor(max_workers=OVERSIZED_CLIENTS) as pool:
        answers = list(pool.map(_post_oversized, [served.port] * OVERSIZED_CLIENTS))
    refused = [a[:80] for a in answers if not a.startswith("HTTP/1.1 413")]
    assert not refused, refused
    with urllib.request.urlopen(served.url + "/healthz", timeout=5) as resp:
        assert resp.status == 200
