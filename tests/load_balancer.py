"""nginx as a round-robin load balancer in front of gateway instances, for the tests.

One nginx worker, so "round robin" is exact: consecutive requests alternate between the
instances, and a visitor flow of several hops crosses instances on every hop."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.processes import end, spawn

NGINX_CONF = """
{user}
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_buffer_size 128k;  # the gateway takes at most 64 KiB: bodies stay in memory
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    upstream gateways {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://gateways;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_next_upstream off;  # a failed hop must show, not be retried elsewhere
            proxy_read_timeout 30s;
        }}
    }}
}}
"""


class NginxBalancer:
    def __init__(self, port: int, upstream_ports: list[int]) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise RuntimeError("nginx is not installed: run `make test-deps`")
        self.root = Path(tempfile.mkdtemp(prefix="gateway-nginx-"))
        self.url = f"http://127.0.0.1:{port}"
        servers = "\n".join(f"        server 127.0.0.1:{p};" for p in upstream_ports)
        conf = self.root / "nginx.conf"
        # As root, nginx's workers would switch to "nobody", who may not enter this folder.
        user = "user root;" if os.geteuid() == 0 else ""
        conf.write_text(NGINX_CONF.format(user=user, root=self.root, port=port, servers=servers))
        self.process = spawn(
            [binary, "-p", str(self.root), "-c", str(conf), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.root / "error.log").read_text(errors="replace")
                raise RuntimeError(f"nginx did not start: {log[-2000:]}")
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=2).read()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not come up")

    def stop(self) -> None:
        end(self.process)
        if not os.environ.get("KEEP_NGINX_LOGS"):
            shutil.rmtree(self.root, ignore_errors=True)
