"""itsdangerous serializers, built one way: the first ``secret_key`` signs, all of them verify.

itsdangerous signs with the *last* key of a list, so the list is reversed here, once. Every
purpose has its own salt, so a value signed for one purpose is worthless for any other.
"""

from __future__ import annotations

from collections.abc import Sequence

from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer


def serializer(secret_keys: Sequence[str], salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(list(reversed(secret_keys)), salt=salt)


def timed_serializer(secret_keys: Sequence[str], salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(list(reversed(secret_keys)), salt=salt)
