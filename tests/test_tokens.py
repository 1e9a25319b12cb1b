"""Time-limited tokens: the documented vector, properties, expiry rounding."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from gateway.twentythree.tokens import (
    PhotoSigner,
    expiry,
    parse_token,
    time_limited_token,
    verify_token,
)

VECTOR = "5ea04282ea3c4a9beca6234606006b56e0cb923d-1292438117"


def test_documented_vector() -> None:
    assert time_limited_token("123abc", 97531, 1292438117) == VECTOR


def test_key_and_message_are_not_swapped() -> None:
    swapped = hmac.new(b"expire1292438117photo_id97531", b"123abc", hashlib.sha1).hexdigest()
    assert swapped == "f33173d2d9886235949a5a44a295932c1a28facb"
    assert not time_limited_token("123abc", 97531, 1292438117).startswith(swapped)


def test_vector_is_expired_but_verifies_before_its_expiry() -> None:
    assert not verify_token("123abc", 97531, VECTOR)
    assert verify_token("123abc", 97531, VECTOR, now=1292438117)
    assert not verify_token("123abc", 97531, VECTOR, now=1292438118)


tokens = st.text(alphabet="0123456789abcdef", min_size=8, max_size=40)
ids = st.integers(min_value=1, max_value=10**12)
expires = st.integers(min_value=10**9, max_value=4 * 10**9)


@given(tokens, ids, expires)
def test_round_trip(photo_token: str, photo_id: int, expire: int) -> None:
    token = time_limited_token(photo_token, photo_id, expire)
    digest, _, tail = token.partition("-")
    assert len(digest) == 40 and digest == digest.lower() and tail == str(expire)
    assert parse_token(token) == (digest, expire)
    assert verify_token(photo_token, photo_id, token, now=expire - 1)


@given(tokens, ids, expires, st.integers(min_value=0, max_value=39))
def test_tampering_is_refused(photo_token: str, photo_id: int, expire: int, pos: int) -> None:
    token = time_limited_token(photo_token, photo_id, expire)
    flipped = "0" if token[pos] != "0" else "1"
    assert not verify_token(
        photo_token, photo_id, token[:pos] + flipped + token[pos + 1 :], now=expire - 1
    )
    assert not verify_token(photo_token, photo_id + 1, token, now=expire - 1)
    assert not verify_token(photo_token + "0", photo_id, token, now=expire - 1)
    # A later expiry cannot be pasted onto an earlier signature.
    assert not verify_token(photo_token, photo_id, f"{token[:40]}-{expire + 3600}", now=expire)


@given(st.text(max_size=60))
def test_parse_rejects_junk(text: str) -> None:
    parsed = parse_token(text)
    if parsed is not None:
        assert text == f"{parsed[0]}-{parsed[1]}"


def test_expiry_without_and_with_buckets() -> None:
    assert expiry(1000.2, 60) == 1061
    assert expiry(1000, 60, bucket=300) == 1200
    assert expiry(1140, 60, bucket=300) == 1200  # exactly on a boundary stays there
    assert expiry(1141, 60, bucket=300) == 1500


@given(st.floats(min_value=1e9, max_value=4e9), st.integers(1, 10**6), st.integers(0, 86400))
def test_expiry_never_shortens_and_stays_within_one_bucket(
    now: float, ttl: int, bucket: int
) -> None:
    expire = expiry(now, ttl, bucket)
    assert expire >= now + ttl
    assert expire - (now + ttl) < max(bucket, 1)
    if bucket:
        assert expire % bucket == 0


def test_photo_signer_matches_the_vector_and_the_one_shot_function() -> None:
    signer = PhotoSigner("123abc", 97531)
    assert signer.token(1292438117) == VECTOR
    assert signer.token(1292438117) == VECTOR  # the keyed state is reused, never consumed


@given(tokens, ids, expires)
def test_photo_signer_equals_one_shot(photo_token: str, photo_id: int, expire: int) -> None:
    assert PhotoSigner(photo_token, photo_id).token(expire) == time_limited_token(
        photo_token, photo_id, expire
    )
