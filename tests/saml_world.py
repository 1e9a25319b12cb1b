"""The SAML world: a real SimpleSAMLphp IdP (Debian's package, run by PHP's built-in server
with a config of the tests' own), the tests' forging IdP, the emulated 23 site and a gateway
with a SAML identity for each."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.devsite import DevsiteOptions, create_devsite
from tests.cluster import Gateway, start_gateway
from tests.helpers import (
    Devsite,
    free_port,
    make_settings,
    site_table,
)
from tests.processes import HelperServer, spawn
from tests.saml_forge import ForgedIdp, KeyPair

SSP_ROOT = Path("/usr/share/simplesamlphp/www")
USERS = {
    # login: (password, attributes)
    "alice": (
        "alice-pass",
        {
            "email": ["alice@example.com"],
            "displayName": ["Alice Example"],
            "groups": ["staff", "video"],
        },
    ),
    "bob": ("bob-pass", {"email": ["bob@other.org"], "displayName": ["Bob Other"], "groups": []}),
}


def _php_array(value: Any, indent: str = "  ") -> str:
    if isinstance(value, dict):
        inner = ",\n".join(
            f"{indent}  {_php_array(k)} => {_php_array(v, indent + '  ')}" for k, v in value.items()
        )
        return "[\n" + inner + f"\n{indent}]"
    if isinstance(value, list):
        return "[" + ", ".join(_php_array(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


class SimpleSamlPhp(HelperServer):
    """SimpleSAMLphp as an IdP on a loopback port, configured for the SPs given."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.metadata_url = f"{self.url}/saml2/idp/metadata.php"
        self.keys = KeyPair.generate("simplesamlphp-test-idp")
        self.proc: subprocess.Popen[bytes] | None = None

    def configure(self, sps: dict[str, dict[str, Any]]) -> None:
        root = self.folder
        for sub in ("cert", "log", "data", "tmp", "metadata"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "cert" / "idp.key").write_bytes(self.keys.key_pem)
        (root / "cert" / "idp.crt").write_bytes(self.keys.cert_pem)
        config = {
            "baseurlpath": f"{self.url}/",
            "certdir": f"{root}/cert/",
            "loggingdir": f"{root}/log/",
            "datadir": f"{root}/data/",
            "tempdir": f"{root}/tmp",
            "technicalcontact_name": "Tests",
            "technicalcontact_email": "tests@example.com",
            "timezone": "UTC",
            "secretsalt": "gateway-tests-salt-0123456789",
            "auth.adminpassword": "not-used-in-tests",
            "admin.protectindexpage": False,
            "admin.protectmetadata": False,
            "enable.saml20-idp": True,
            "module.enable": {"exampleauth": True, "core": True, "saml": True},
            "logging.handler": "file",
            "logging.logfile": "simplesamlphp.log",
            "store.type": "phpsession",
            "session.cookie.secure": False,
            "trusted.url.domains": ["127\\.0\\.0\\.1:[0-9]+"],
            "trusted.url.regex": True,
            "session.phpsession.savepath": f"{root}/tmp",
            "metadata.sources": [{"type": "flatfile", "directory": f"{root}/metadata"}],
        }
        users: dict[str, Any] = {"0": "exampleauth:UserPass"}  # PHP reads '0' as the index 0
        for login, (password, attrs) in USERS.items():
            users[f"{login}:{password}"] = attrs
        (root / "config.php").write_text("<?php\n$config = " + _php_array(config) + ";\n")
        sources = _php_array({"users": users})
        (root / "authsources.php").write_text("<?php\n$config = " + sources + ";\n")
        hosted = {
            "host": "__DEFAULT__",
            "privatekey": "idp.key",
            "certificate": "idp.crt",
            "auth": "users",
            "sign.logout": True,
        }
        (root / "metadata" / "saml20-idp-hosted.php").write_text(
            "<?php\n$metadata['__DYNAMIC:1__'] = " + _php_array(hosted) + ";\n"
        )
        remote = "".join(f"$metadata[{_php_array(k)}] = {_php_array(v)};\n" for k, v in sps.items())
        (root / "metadata" / "saml20-sp-remote.php").write_text("<?php\n" + remote)

    def start(self) -> None:
        php = shutil.which("php")
        if php is None or not SSP_ROOT.is_dir():
            raise RuntimeError("SimpleSAMLphp is not installed: run `make test-deps`")
        env = {
            **os.environ,
            "SIMPLESAMLPHP_CONFIG_DIR": str(self.folder),
            "PHP_CLI_SERVER_WORKERS": "4",
        }
        log = (self.folder / "php.log").open("w")
        self.proc = spawn(
            [php, "-S", f"127.0.0.1:{self.port}", "-t", str(SSP_ROOT)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.metadata_url, timeout=2).read()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("SimpleSAMLphp did not start")


@dataclass
class SamlWorld:
    gateway: str
    devsite: Devsite
    idp: SimpleSamlPhp
    forged: ForgedIdp
    served: Gateway

    @property
    def app(self) -> Any:
        return self.served.app

    def sp(self, identity: str) -> dict[str, str]:
        base = f"{self.gateway}/sso/saml/{identity}"
        return {"entity_id": f"{base}/metadata", "acs": f"{base}/acs", "slo": f"{base}/slo"}

    def reset(self) -> None:
        self.devsite.reset()
        self.served.forget_state()

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [c for c in self.devsite.calls() if c.get("method") == method]


def _service_providers(gateway: str, sp_keys: KeyPair) -> dict[str, Any]:
    """The gateway's two SPs as the IdP knows them."""
    corp, enc = f"{gateway}/sso/saml/corp", f"{gateway}/sso/saml/corp_enc"
    return {
        f"{corp}/metadata": {
            "AssertionConsumerService": f"{corp}/acs",
            "SingleLogoutService": f"{corp}/slo",
        },
        # This SP signs its AuthnRequests (the IdP checks them) and gets its assertions
        # encrypted to its certificate.
        f"{enc}/metadata": {
            "AssertionConsumerService": f"{enc}/acs",
            "SingleLogoutService": f"{enc}/slo",
            "certData": sp_keys.cert_b64,
            "validate.authnrequest": True,
            "assertion.encryption": True,
        },
    }


def _identities(metadata_url: str, folder: Path, forged_metadata: str) -> dict[str, Any]:
    """The real IdP (plain, and signed and encrypted), and a forger's IdP three ways."""
    forge = {"type": "saml", "idp_metadata_file": forged_metadata}
    return {
        "corp": {"type": "saml", "idp_metadata_url": metadata_url},
        "corp_enc": {
            "type": "saml",
            "idp_metadata_url": metadata_url,
            "sp_key_file": str(folder / "sp.key"),
            "sp_cert_file": str(folder / "sp.crt"),
        },
        "forge": forge,
        "unsolicited": forge | {"allow_idp_initiated": True},
        "forge_oid": forge
        | {
            "email_attribute": "urn:oid:0.9.2342.19200300.100.1.3",
            "name_attribute": "urn:oid:2.16.840.1.113730.3.1.241",
        },
    }


def running_saml_world(
    folder: Path, topology: str = "one-instance", redis_url: str = ""
) -> Iterator[SamlWorld]:
    gw_port = free_port()
    gateway = f"http://127.0.0.1:{gw_port}"
    idp = SimpleSamlPhp(folder / "simplesamlphp", free_port())
    sp_keys = KeyPair.generate("gateway-sp")
    (folder / "sp.key").write_bytes(sp_keys.key_pem)
    (folder / "sp.crt").write_bytes(sp_keys.cert_pem)
    idp.configure(_service_providers(gateway, sp_keys))
    idp.start()
    forged = ForgedIdp("https://idp.forged.test/metadata", "http://127.0.0.1:9/forged-sso")
    forged_metadata = folder / "forged-idp.xml"
    forged_metadata.write_text(forged.metadata(slo_url="http://127.0.0.1:9/forged-slo"))
    devsite = Devsite(create_devsite(DevsiteOptions(remote_login_url=f"{gateway}/sso/corp/login")))
    build = lambda store: make_settings(  # noqa: E731
        {
            "corp": site_table(devsite.url, identity="corp", allow_email_domains=["example.com"]),
            "forged": site_table(
                devsite.url, identity="forge", allow_email_domains=["corp.example"]
            ),
            "portal": site_table(devsite.url, identity="unsolicited"),
            "oid": site_table(devsite.url, identity="forge_oid"),
            "enc": site_table(devsite.url, identity="corp_enc"),
        },
        gateway={"public_url": gateway},
        identity=_identities(idp.metadata_url, folder, str(forged_metadata)),
        store=store,
    )
    served = start_gateway(topology, build, gw_port, redis_url)
    yield SamlWorld(served.url, devsite, idp, forged, served)
    served.stop()
    devsite.stop()
    idp.stop()
