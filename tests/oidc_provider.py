"""Runs tests/oidc/provider.mjs (panva/oidc-provider on Node) as a real OpenID provider."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import requests
from joserfc.jwk import RSAKey

from tests.processes import HelperServer, spawn

HERE = Path(__file__).resolve().parent / "oidc"
CLIENT_ID = "gateway"
CLIENT_SECRET = "gateway-client-secret-0123456789"


class OidcProviderProcess(HelperServer):
    def __init__(
        self,
        port: int,
        redirect_uris: list[str],
        logout_uris: list[str],
        id_token_claims: bool = False,
        backchannel_uri: str = "",
        auth_method: str = "client_secret_basic",
        userinfo: bool = True,
    ) -> None:
        self.port = port
        self.issuer = f"http://127.0.0.1:{port}"
        self._env = {
            **os.environ,
            "OIDC_PORT": str(port),
            "OIDC_REDIRECT_URIS": ",".join(redirect_uris),
            "OIDC_POST_LOGOUT_URIS": ",".join(logout_uris),
            "OIDC_CLIENT_ID": CLIENT_ID,
            "OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "OIDC_ID_TOKEN_CLAIMS": "1" if id_token_claims else "0",
            "OIDC_BACKCHANNEL_URI": backchannel_uri,
            "OIDC_AUTH_METHOD": auth_method,
            "OIDC_NO_USERINFO": "0" if userinfo else "1",
        }
        self.proc: subprocess.Popen[str] | None = None
        self.signing_key: RSAKey | None = None

    def start(self) -> None:
        """Start with a fresh signing key (so a restart is a key rotation), kept here so that
        tests can sign tokens as the provider itself would."""
        self.signing_key = RSAKey.generate_key(2048, {"kid": str(uuid.uuid4()), "use": "sig"})
        self._env["OIDC_JWK"] = json.dumps(
            {**self.signing_key.as_dict(private=True), "alg": "RS256"}
        )
        node = shutil.which("node")
        if node is None or not (HERE / "node_modules" / "oidc-provider").is_dir():
            raise RuntimeError("the test OIDC provider is not installed: run `make test-deps`")
        self.proc = spawn(
            [node, str(HERE / "provider.mjs")],
            env=self._env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("the test OIDC provider did not start")

    def restart(self) -> None:
        """A restart is a key rotation: a new signing key each start."""
        self.stop()
        self.start()
