"""A real OpenLDAP slapd (Debian's) in a throwaway folder with its own config, its own CA and
certificate, users and groups: ldap:// (StartTLS) and ldaps:// on free loopback ports.

Besides the standard schemas it loads a small Active-Directory-like one (sAMAccountName,
userPrincipalName, userAccountControl, memberOf as a plain attribute), so AD's attributes can
be tried against a directory the tests control."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.helpers import free_port
from tests.processes import HelperServer, spawn

BASE = "dc=example,dc=com"
SERVICE_DN = f"cn=gateway,ou=services,{BASE}"
SERVICE_PASSWORD = "service-account-password-0123"

AD_SCHEMA = """
attributetype ( 1.3.6.1.4.1.55555.1.1 NAME 'sAMAccountName' EQUALITY caseIgnoreMatch
  SUBSTR caseIgnoreSubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.2 NAME 'userPrincipalName' EQUALITY caseIgnoreMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.3 NAME 'userAccountControl' EQUALITY integerMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.55555.1.4 NAME 'memberOf' EQUALITY distinguishedNameMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.12 )
objectclass ( 1.3.6.1.4.1.55555.2.1 NAME 'adLikeUser' AUXILIARY
  MAY ( sAMAccountName $ userPrincipalName $ userAccountControl $ memberOf ) )
"""


@dataclass
class User:
    uid: str
    password: str
    mail: str = ""
    name: str = ""
    groups: tuple[str, ...] = ()
    account_control: int | None = None  # AD's userAccountControl (2 = disabled)


USERS = [
    User("ada", "ada-pass-0123", "ada@example.com", "Ada Lovelace", ("video", "staff")),
    User("bob", "bob-pass-0123", "bob@other.org", "Bob Other", ("staff",)),
    User("grace", "grace-pass-0123", "grace@example.com", "Grace Hopper", ()),
    User("carl", "carl-pass-0123", "carl@example.com", "Carl Disabled", ("video",), 514),
    User("dora", "dora-pass-0123", "dora@example.com", "Dora Enabled", ("video",), 512),
    User("nomail", "nomail-pass-0123", "", "No Mail", ()),
    User("twin1", "twin-pass-0123", "twin@example.com", "Twin One", ()),
    User("twin2", "twin-pass-0123", "twin@example.com", "Twin Two", ()),
    User("admin", "admin-pass-0123", "admin@example.com", "Admin", ("video", "staff")),
]
GROUPS = ("video", "staff")


def ssha(password: str) -> str:
    salt = secrets.token_bytes(8)
    digest = hashlib.sha1(password.encode() + salt).digest()  # noqa: S324 - slapd's {SSHA}
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


@dataclass
class TestCa:
    """A CA of the tests' own and a server certificate it signed for 127.0.0.1."""

    folder: Path
    ca_file: Path = field(init=False)
    cert_file: Path = field(init=False)
    key_file: Path = field(init=False)

    def __post_init__(self) -> None:
        now = dt.datetime.now(dt.UTC)
        ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway tests CA")])
        ca = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        self.ca_file = self.folder / "ca.crt"
        self.cert_file = self.folder / "server.crt"
        self.key_file = self.folder / "server.key"
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )


class Slapd(HelperServer):
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port, self.tls_port = free_port(), free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.tls_url = f"ldaps://127.0.0.1:{self.tls_port}"
        self.ca = TestCa(folder)
        self.proc: subprocess.Popen[bytes] | None = None

    def _config(self) -> Path:
        f = self.folder
        (f / "ad.schema").write_text(AD_SCHEMA)
        (f / "data").mkdir(exist_ok=True)
        config = f / "slapd.conf"
        config.write_text(f"""
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include {f}/ad.schema
pidfile {f}/slapd.pid
argsfile {f}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile {self.ca.ca_file}
TLSCertificateFile {self.ca.cert_file}
TLSCertificateKeyFile {self.ca.key_file}
database mdb
maxsize 10485760
suffix "{BASE}"
rootdn "cn=admin,{BASE}"
rootpw {ssha(secrets.token_urlsafe(16))}
directory {f}/data
access to attrs=userPassword
  by anonymous auth
  by * none
access to *
  by dn.exact="{SERVICE_DN}" read
  by self read
  by * none
""")
        return config

    def _ldif(self) -> str:
        blocks = [
            f"dn: {BASE}\nobjectClass: top\nobjectClass: dcObject\nobjectClass: organization\n"
            "o: Example\ndc: example",
        ]
        for ou in ("people", "groups", "services"):
            blocks.append(f"dn: ou={ou},{BASE}\nobjectClass: organizationalUnit\nou: {ou}")
        blocks.append(
            f"dn: {SERVICE_DN}\nobjectClass: organizationalRole\n"
            "objectClass: simpleSecurityObject\ncn: gateway\n"
            f"userPassword: {ssha(SERVICE_PASSWORD)}"
        )
        for user in USERS:
            lines = [
                f"dn: uid={user.uid},ou=people,{BASE}",
                "objectClass: inetOrgPerson",
                "objectClass: adLikeUser",
                f"uid: {user.uid}",
                f"cn: {user.name}",
                f"sn: {user.uid}",
                f"displayName: {user.name}",
                f"userPassword: {ssha(user.password)}",
                f"sAMAccountName: {user.uid}",
                f"userPrincipalName: {user.uid}@corp.example.com",
            ]
            if user.mail:
                lines.append(f"mail: {user.mail}")
            lines += [f"memberOf: cn={g},ou=groups,{BASE}" for g in user.groups]
            if user.account_control is not None:
                lines.append(f"userAccountControl: {user.account_control}")
            blocks.append("\n".join(lines))
        for group in GROUPS:
            members = [u for u in USERS if group in u.groups]
            blocks.append(
                "\n".join(
                    [
                        f"dn: cn={group},ou=groups,{BASE}",
                        "objectClass: groupOfNames",
                        f"cn: {group}",
                    ]
                    + [f"member: uid={u.uid},ou=people,{BASE}" for u in members]
                )
            )
        # A referral: searching for "far" finds only a pointer to another server.
        blocks.append(
            f"dn: uid=far,ou=people,{BASE}\nobjectClass: referral\nobjectClass: extensibleObject\n"
            f"uid: far\nref: ldap://127.0.0.1:9/uid=far,ou=people,{BASE}"
        )
        return "\n\n".join(blocks) + "\n"

    def start(self) -> None:
        slapd, slapadd = shutil.which("slapd") or "/usr/sbin/slapd", "/usr/sbin/slapadd"
        if not Path(slapd).exists():
            raise RuntimeError("slapd is not installed: run `make test-deps`")
        config = self._config()
        ldif = self.folder / "data.ldif"
        ldif.write_text(self._ldif())
        subprocess.run(
            [slapadd, "-f", str(config), "-l", str(ldif)], check=True, capture_output=True
        )
        log = (self.folder / "slapd.log").open("w")  # -d 256: one "stats" line per operation
        self.proc = spawn(
            [slapd, "-f", str(config), "-h", f"{self.url}/ {self.tls_url}/", "-d", "256"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self._wait_listening()

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(
            f"slapd did not start: {(self.folder / 'slapd.log').read_text()[-1000:]}"
        )

    def accepted(self) -> int:
        """How many connections slapd has accepted so far (its stats log says so)."""
        return (self.folder / "slapd.log").read_text().count(" ACCEPT from ")

    def pause(self) -> None:
        """As if the directory hung: it accepts nothing and answers nothing."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def restart(self) -> None:
        self.stop()
        log = (self.folder / "slapd.log").open("a")
        config = self.folder / "slapd.conf"
        self.proc = spawn(
            [
                "/usr/sbin/slapd",
                "-f",
                str(config),
                "-h",
                f"{self.url}/ {self.tls_url}/",
                "-d",
                "256",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self._wait_listening()
