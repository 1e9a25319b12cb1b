"""LDAP and Active Directory sign-in over real HTTP against a real slapd (StartTLS and ldaps,
a CA of the tests' own): good and bad passwords, injections, an empty password, referrals,
disabled accounts, groups, certificates, and a directory that is down or hangs."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
import requests

from gateway.settings import ConfigError
from tests.formclient import FormClient, forms
from tests.helpers import make_settings, site_table
from tests.ldap_world import LdapWorld

PASSWORDS = {
    "ada": "ada-pass-0123",
    "bob": "bob-pass-0123",
    "grace": "grace-pass-0123",
    "carl": "carl-pass-0123",
    "dora": "dora-pass-0123",
    "nomail": "nomail-pass-0123",
    "admin": "admin-pass-0123",
}


@pytest.fixture(autouse=True)
def _reset(ldap: LdapWorld) -> None:
    ldap.reset()


def sign_in(
    ldap: LdapWorld, site: str, username: str, password: str, ip: str = "192.0.2.10"
) -> requests.Response:
    browser = FormClient()
    headers = {"X-Forwarded-For": ip}  # the tests are the trusted proxy: one address per test
    page = browser.get(f"{ldap.gateway}/sso/{site}/login?return_url=/", headers=headers, timeout=15)
    assert page.status_code == 200 and 'name="password"' in page.text, page.text[:300]
    form = forms(page.text)[0]
    data = {**form["fields"], "email": username, "password": password}
    return browser.post(
        f"{ldap.gateway}/sso/{site}/login",
        data=data,
        headers=headers,
        allow_redirects=False,
        timeout=15,
    )


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.__dict__["reason"] for r in caplog.records if r.getMessage() == "sign_in_failed"]


def test_good_password_over_starttls(ldap: LdapWorld) -> None:
    done = sign_in(ldap, "intranet", "ada", PASSWORDS["ada"])
    assert done.status_code == 302 and "redeem-token" in done.headers["Location"], done.text[:300]
    (call,) = ldap.calls("session/get-token")
    assert call["params"]["email"] == "ada@example.com"
    assert call["params"]["full_name"] == "Ada Lovelace"


def test_good_password_over_ldaps_with_groups_from_a_group_search(ldap: LdapWorld) -> None:
    assert sign_in(ldap, "groups", "ada", PASSWORDS["ada"]).status_code == 302  # in "video"
    refused = sign_in(ldap, "groups", "grace", PASSWORDS["grace"])  # in no group
    assert refused.status_code == 403 and "not in a group" in refused.text


def test_groups_from_member_of(ldap: LdapWorld) -> None:
    assert sign_in(ldap, "members", "ada", PASSWORDS["ada"]).status_code == 302
    assert sign_in(ldap, "members", "bob", PASSWORDS["bob"]).status_code == 403  # staff only


def test_the_domain_policy_applies(ldap: LdapWorld) -> None:
    refused = sign_in(ldap, "intranet", "bob", PASSWORDS["bob"])  # bob@other.org
    assert refused.status_code == 403 and ldap.calls("session/get-token") == []


def test_e_mail_as_the_username(ldap: LdapWorld) -> None:
    assert sign_in(ldap, "intranet", "ada@example.com", PASSWORDS["ada"]).status_code == 302


@pytest.mark.parametrize(
    ("username", "password", "reason"),
    [
        ("ada", "wrong-password", "wrong_password"),
        ("nobody", "whatever-0123", "no_such_user"),
        ("twin@example.com", "twin-pass-0123", "ambiguous_user"),
        ("carl", PASSWORDS["carl"], "account_disabled"),
        ("nomail", PASSWORDS["nomail"], "no_email"),
        ("far", "whatever-0123", "no_such_user"),  # a referral, not chased
    ],
)
def test_refusals_are_audited_with_their_reason(
    ldap: LdapWorld, caplog: pytest.LogCaptureFixture, username: str, password: str, reason: str
) -> None:
    caplog.set_level(logging.INFO, logger="gateway.audit")
    refused = sign_in(ldap, "intranet", username, password)
    assert refused.status_code == 401 and "do not match" in refused.text
    assert refusals(caplog) == [reason]
    assert password not in caplog.text
    assert ldap.calls("session/get-token") == []


def test_an_enabled_ad_account_signs_in(ldap: LdapWorld) -> None:
    assert sign_in(ldap, "intranet", "dora", PASSWORDS["dora"]).status_code == 302


@pytest.mark.parametrize(
    "username",
    ["*", ")(uid=*", "\\00", "\x00", "admin)(|(uid=*", "*)(objectClass=*", "ad*", "admin)(uid=*)"],
)
def test_injections_find_nobody(
    ldap: LdapWorld, caplog: pytest.LogCaptureFixture, username: str
) -> None:
    """Attack: a filter fragment as the username, with a real password (admin's), hoping the
    search matches admin (or anyone) and the bind then succeeds."""
    caplog.set_level(logging.INFO, logger="gateway.audit")
    refused = sign_in(ldap, "intranet", username, PASSWORDS["admin"])
    assert refused.status_code == 401, username
    assert refusals(caplog) == ["no_such_user"], username  # escaped: the literal text, nobody
    assert ldap.calls("session/get-token") == []


def test_an_empty_password_is_refused_before_any_ldap_call(ldap: LdapWorld) -> None:
    """An unauthenticated bind succeeds on many servers: it must never be tried. With the
    directory frozen, the answer still comes at once (no connection was even attempted)."""
    ldap.slapd.pause()
    try:
        started = time.monotonic()
        refused = sign_in(ldap, "quick", "ada", "")
        assert refused.status_code == 400 and "Enter your username or e-mail" in refused.text
        assert time.monotonic() - started < 1.0  # the quick identity's timeout
    finally:
        ldap.slapd.resume()


def test_certificates_are_verified(ldap: LdapWorld) -> None:
    """The system's CAs do not know the tests' CA: no sign-in, whatever the password."""
    refused = sign_in(ldap, "untrusted", "ada", PASSWORDS["ada"])
    assert refused.status_code == 503 and "unavailable" in refused.text
    assert ldap.calls("session/get-token") == []


def test_a_hung_directory_is_503_within_the_timeout_and_then_recovers(ldap: LdapWorld) -> None:
    assert sign_in(ldap, "quick", "ada", PASSWORDS["ada"]).status_code == 302  # warm pool
    ldap.slapd.pause()
    try:
        started = time.monotonic()
        hung = sign_in(ldap, "quick", "ada", PASSWORDS["ada"])
        assert hung.status_code == 503 and "unavailable" in hung.text
        assert time.monotonic() - started < 3.5  # timeout = 1 s per operation
    finally:
        ldap.slapd.resume()
    assert sign_in(ldap, "quick", "ada", PASSWORDS["ada"], ip="192.0.2.11").status_code == 302


def test_a_directory_that_is_down_is_503_and_then_recovers(ldap: LdapWorld) -> None:
    ldap.slapd.stop()
    try:
        down = sign_in(ldap, "quick", "ada", PASSWORDS["ada"])
        assert down.status_code == 503 and "unavailable" in down.text
    finally:
        ldap.slapd.restart()
    assert sign_in(ldap, "quick", "ada", PASSWORDS["ada"], ip="192.0.2.12").status_code == 302


def test_service_connections_are_pooled(ldap: LdapWorld) -> None:
    """Five sign-ins: one service connection (reused) and one fresh bind each."""
    assert sign_in(ldap, "groups", "ada", PASSWORDS["ada"]).status_code == 302  # pool warm
    before = ldap.slapd.accepted()
    for i in range(5):
        assert (
            sign_in(ldap, "groups", "ada", PASSWORDS["ada"], ip=f"192.0.2.{20 + i}").status_code
            == 302
        )
    assert ldap.slapd.accepted() - before == 5  # only the user binds opened connections


@pytest.mark.parametrize("username", ["ada", "ada@corp.example.com"])
def test_active_directory_names(ldap: LdapWorld, username: str) -> None:
    """sAMAccountName or userPrincipalName, as AD users type them."""
    assert sign_in(ldap, "ad", username, PASSWORDS["ada"]).status_code == 302


def test_lockout_is_shared_with_the_static_form(ldap: LdapWorld) -> None:
    statuses = [sign_in(ldap, "intranet", "ada", f"guess-{i}").status_code for i in range(7)]
    assert statuses == [401] * 5 + [429] * 2
    assert sign_in(ldap, "intranet", "ada", PASSWORDS["ada"], ip="192.0.2.99").status_code == 302


def test_directory_sign_ins_that_succeed_never_count_against_the_limits(ldap: LdapWorld) -> None:
    """Field report: the limits counted every attempt, so one busy office address locked
    itself out. Twelve good sign-ins of one account from one address (over every limit a
    minute), then that pair still has its five failures before a 429."""
    statuses = [sign_in(ldap, "intranet", "ada", PASSWORDS["ada"]).status_code for _ in range(12)]
    assert statuses == [302] * 12
    wrong = [sign_in(ldap, "intranet", "ada", f"typo-{i}").status_code for i in range(6)]
    assert wrong == [401] * 5 + [429]


# ---------------------------------------------------------------- settings


BASE_TABLE: dict[str, Any] = {
    "type": "ldap",
    "url": "ldaps://dc1.example.com",
    "bind_dn": "cn=gateway,ou=services,dc=example,dc=com",
    "bind_password": "secret-0123",
    "base_dn": "ou=people,dc=example,dc=com",
}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"url": "ldap://dc1.example.com"}, "identity.directory.url: ldap:// needs start_tls"),
        (
            {"url": "ldaps://dc1.example.com", "start_tls": True},
            "identity.directory.url: is ldaps://",
        ),
        (
            {"url": "http://dc1.example.com"},
            "identity.directory.url: must be an ldap:// or ldaps://",
        ),
        ({"url": "ldaps://dc1.example.com/ou=x"}, "identity.directory.url: must be scheme, host"),
        ({"user_filter": "(uid=admin)"}, "identity.directory.user_filter: must contain {username}"),
        ({"ca_file": "/nonexistent.pem"}, "identity.directory.ca_file: is not a readable file"),
        ({"bind_password": ""}, "identity.directory.bind_password: must not be empty"),
        ({"timeout": 0}, "identity.directory.timeout: must be at least 0.5"),
        (
            {"group_base": "x"},
            "identity.directory.group_base: unknown key (did you mean `group_base_dn`?)",
        ),
    ],
)
def test_ldap_settings_problems(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_settings(
            {"x": site_table("https://v.example.com", identity="directory")},
            identity={"directory": {**BASE_TABLE, **change}},
        )
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_ldap_on_a_loopback_host_may_be_plain(ldap: LdapWorld) -> None:
    settings = make_settings(
        {"x": site_table("https://v.example.com", identity="directory")},
        identity={"directory": {**BASE_TABLE, "url": "ldap://127.0.0.1:389"}},
    )
    assert settings.identities["directory"].type == "ldap"
    assert "secret-0123" not in repr(settings)


def test_why_asks_the_directory_whether_the_address_has_an_account(ldap: LdapWorld) -> None:
    """The console's "why": the service account looks the address up (no password needed)."""
    from gateway.admin.diagnose import diagnose

    runtime = ldap.app.extensions["gateway.runtime"]
    provider = runtime.providers["dir"]
    assert provider.knows("ada@example.com") is True
    assert provider.knows("stranger@example.com") is False
    assert provider.knows("*") is False  # escaped: a wildcard names nobody
    site = runtime.settings.sites["intranet"]
    (verdict,) = diagnose(runtime, site, "stranger@example.com").verdicts
    assert not verdict.allowed and verdict.code == "no_account"
    assert "stranger@example.com has no account with this provider." in verdict.message
    (known,) = diagnose(runtime, site, "ada@example.com").verdicts
    assert known.allowed
    ldap.slapd.stop()
    try:
        assert runtime.providers["quick"].knows("ada@example.com") is None  # cannot say
        (unsure,) = diagnose(runtime, runtime.settings.sites["quick"], "ada@example.com").verdicts
        assert unsure.code != "no_account"
    finally:
        ldap.slapd.restart()
