"""Token minting speed of gateway.twentythree.tokens against raw HMAC-SHA1, in one run.

Prints ratios (ours / raw), never absolute pass/fail: the machine's speed cancels out.
The baseline is what any implementation must do at least: ``hmac.new(key, msg, sha1).hexdigest()``
on pre-built bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from gateway.twentythree.tokens import PhotoSigner, time_limited_token

N = 200_000
ROUNDS = 5
PHOTO_TOKEN = secrets.token_hex(16)
PHOTO_ID = 97531
EXPIRE = int(time.time()) + 3600


def _rate(fn: object, *args: object) -> float:
    """Best of ROUNDS, tokens per second."""
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(N):
            fn(*args)  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    return N / best


def main() -> None:
    key = PHOTO_TOKEN.encode()
    msg = f"expire{EXPIRE}photo_id{PHOTO_ID}".encode()
    sha1 = hashlib.sha1

    def raw() -> str:
        return hmac.new(key, msg, sha1).hexdigest()

    signer = PhotoSigner(PHOTO_TOKEN, PHOTO_ID)
    raw_rate = _rate(raw)
    one_shot = _rate(time_limited_token, PHOTO_TOKEN, PHOTO_ID, EXPIRE)
    cached = _rate(signer.token, EXPIRE)
    print(f"raw hmac-sha1:                 {raw_rate:12,.0f} tokens/s")
    print(
        f"time_limited_token (one-shot): {one_shot:12,.0f} tokens/s  "
        f"ratio {one_shot / raw_rate:.2f}"
    )
    print(
        f"PhotoSigner.token (mint path): {cached:12,.0f} tokens/s  "
        f"ratio {cached / raw_rate:.2f}  (goal >= 0.8)"
    )


if __name__ == "__main__":
    main()
