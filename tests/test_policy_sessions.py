"""Policy decisions and the visitor session cookie."""

from __future__ import annotations

import pytest

from gateway.identity.base import Identity
from gateway.policy import decide, email_domain
from gateway.sessions import SessionCodec
from gateway.settings import SiteSettings
from tests.helpers import site_settings


def _site(**kw: object) -> SiteSettings:
    kw.setdefault("identity", ["p"])
    return site_settings("s", "https://v.example.com", **kw)


def _visitor(email: str, **kw: object) -> Identity:
    return Identity(email, provider="p", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("email", "domain"),
    [
        ("a@example.com", "example.com"),
        ("A.B+tag@Example.COM", "example.com"),
        ("a@sub.example.com", "sub.example.com"),
        ("a@b@example.com", None),
        ("@example.com", None),
        ("a@", None),
        ("a@example", None),
        ("a@exa mple.com", None),
        ("a@example.com.", None),
        ("a@.example.com", None),
        ("a@example..com", None),
        ("a@exämple.com", None),
        ("a\uff20example.com", None),
        ('"a@b"@example.com', None),
        ("a@-example.com", None),
        (".a@example.com", None),
        ("a..b@example.com", None),
        ("a@example.com\n", None),
        ("", None),
    ],
)
def test_email_domain(email: str, domain: str | None) -> None:
    assert email_domain(email) == domain


def test_domain_policy_is_exact() -> None:
    site = _site(allow_email_domains=("example.com",))
    assert decide(site, _visitor("x@EXAMPLE.com")).allowed
    for email in (
        "x@evil-example.com",
        "x@example.com.evil.com",
        "x@sub.example.com",
        "x@example.co",
    ):
        assert decide(site, _visitor(email)).code == "domain_not_allowed", email


def test_groups_verification_and_entitlements() -> None:
    site = _site(allow_groups=("video",))
    assert decide(site, _visitor("x@a.com", groups=("video", "x"))).allowed
    assert decide(site, _visitor("x@a.com", groups=("staff",))).code == "group_not_allowed"
    assert decide(_site(), _visitor("x@a.com", email_verified=False)).code == "email_unverified"
    paid = _site(require_entitlement="gold")
    assert decide(paid, _visitor("x@a.com")).code == "entitlement_required"
    assert decide(paid, _visitor("x@a.com", entitlements=("gold",))).allowed


def test_session_round_trip_and_expiry() -> None:
    codec = SessionCodec(["new-key-0123456789", "old-key-0123456789"], idle=100, max_age=1000)
    session = codec.new(Identity("a@example.com", "A", ("g",), "corp"), now=10_000)
    cookie = codec.dump(session)
    assert codec.load(cookie, now=10_050) == session
    assert codec.load(cookie, now=10_101) is None  # idle too long
    touched = codec.touched(session, now=10_090)
    assert touched is not None and codec.load(codec.dump(touched), now=10_150) == touched
    assert codec.load(codec.dump(touched), now=11_001) is None  # absolute lifetime
    assert codec.touched(session, now=10_030) is None  # no re-issue within a minute


def test_session_tampering_and_key_rotation() -> None:
    old = SessionCodec(["old-key-0123456789"], idle=100, max_age=1000)
    rotated = SessionCodec(["new-key-0123456789", "old-key-0123456789"], idle=100, max_age=1000)
    retired = SessionCodec(["new-key-0123456789"], idle=100, max_age=1000)
    cookie = old.dump(old.new(Identity("a@example.com"), now=10_000))
    assert rotated.load(cookie, now=10_001) is not None  # old cookies still verify
    assert retired.load(cookie, now=10_001) is None
    new_cookie = rotated.dump(rotated.new(Identity("a@example.com"), now=10_000))
    assert retired.load(new_cookie, now=10_001) is not None  # the first key signs
    assert rotated.load(cookie[:-2] + "xx", now=10_001) is None
    assert rotated.load("", now=10_001) is None and rotated.load("x" * 5000) is None


def test_a_longer_lifetime_after_a_reload_does_not_lengthen_a_cookie() -> None:
    """Each cookie carries the expiry it was issued with: raising session_max_age (a live
    reload) neither extends it nor outlives the revocation mark written at its logout."""
    from gateway.sessions import Sessions
    from gateway.store import MemoryStore

    before = SessionCodec(["key-0123456789abcdef"], idle=3600, max_age=600)
    after = SessionCodec(["key-0123456789abcdef"], idle=3600, max_age=86400)
    session = before.new(Identity("a@example.com"), now=10_000)
    cookie = before.dump(session)
    assert after.load(cookie, now=10_500) == session
    assert after.load(cookie, now=10_700) is None  # its own 600 s, not the new day
    short_idle = SessionCodec(["key-0123456789abcdef"], idle=300, max_age=86400)
    long_idle = SessionCodec(["key-0123456789abcdef"], idle=3600, max_age=86400)
    quiet = short_idle.dump(short_idle.new(Identity("a@example.com"), now=10_000))
    assert long_idle.load(quiet, now=10_400) is None  # idle out before the reload: stays out
    store = MemoryStore()
    live = Sessions(before, store).new(Identity("a@example.com"))
    Sessions(before, store).revoke(live)  # the mark lasts as long as the cookie can
    assert Sessions(after, store).load(before.dump(live)) is None


def test_typed_addresses_open_what_was_bought_only() -> None:
    """A checkout's address (typed by the payer) enters the paywalled site but is nobody's
    account: no uploads by it."""
    from gateway.policy import may_upload

    site = _site(uploads={"allow_emails": ["editor@news.example"]})
    editor = _visitor("editor@news.example")
    assert may_upload(site, editor).allowed
    typed = _visitor("editor@news.example", email_proven=False)
    assert decide(site, typed).allowed  # the site itself: what they paid for
    assert may_upload(site, typed).code == "upload_not_allowed"
    again = Identity.from_json(typed.to_json())
    assert again.email_proven is False and Identity.from_json(editor.to_json()).email_proven
    # ...and holds only the grant its checkout made, asked about on every decision (a
    # cancellation closes its door at once), never the address's other grants.
    from gateway.policy import standing_in

    class Book:
        def __init__(self) -> None:
            self.grants = {("stripe:pay", "sub_1"): ("gold", "active")}
            self.owners = {
                ("editor@news.example", "platinum"): "active",
                ("editor@news.example", "gold"): "active",
            }

        def standing(self, email: str, product: str) -> str:
            return self.owners.get((email, product), "none")

        def grant_standing(self, source: str, ref: str, product: str) -> str:
            bought, status = self.grants.get((source, ref), ("", "none"))
            return status if bought == product else "none"

    book = Book()
    lookup = standing_in(book)
    gold, premium = _site(require_entitlement="gold"), _site(require_entitlement="platinum")
    bought = _visitor("editor@news.example", email_proven=False, grant=("stripe:pay", "sub_1"))
    assert Identity.from_json(bought.to_json()) == bought
    assert decide(gold, bought, lookup).allowed
    assert decide(premium, bought, lookup).code == "entitlement_required"
    assert decide(premium, editor, lookup).allowed  # the owner, signed in for real
    assert decide(gold, typed, lookup).code == "entitlement_required"  # no grant of its own
    book.grants[("stripe:pay", "sub_1")] = ("gold", "lapsed")
    assert decide(gold, bought, lookup).code == "subscription_lapsed"
    assert decide(gold, editor, lookup).allowed  # the owner's own grant is untouched
