"""The visitor's IP: the TCP peer, or what trusted proxies say in X-Forwarded-For."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from werkzeug.wrappers import Request

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_trusted(address: str, trusted: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_ip(peer: str, forwarded_for: str | None, trusted: Sequence[IPNetwork]) -> str:
    """Walk X-Forwarded-For from the right while hops are trusted proxies; the first untrusted
    hop is the client. From an untrusted peer the header is ignored (anyone can write it)."""
    if not forwarded_for or not is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",")][-20:]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a malformed chain proves nothing
        if not is_trusted(hop, trusted):
            return hop
    return hops[0]


def visitor_ip(request: Request, trusted: Sequence[IPNetwork]) -> str:
    """The client address of a request, given the proxies that are trusted to say it."""
    return client_ip(request.remote_addr or "", request.headers.get("X-Forwarded-For"), trusted)


def client_bucket(address: str) -> str:
    """Who a limit counts: an IPv4 address, or the /64 an IPv6 address is in (one customer's
    network hands out a whole /64, so counting single IPv6 addresses counts nothing)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)
