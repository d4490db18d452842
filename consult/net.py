"""The client's address: one rule for pages, the API, the limits and the login lockout.

Behind TRUSTED_PROXIES proxies (a load balancer, nginx), each proxy appends the address it was
reached from to X-Forwarded-For, so the client is the entry the outermost trusted proxy wrote: the
TRUSTED_PROXIES-th from the right. Anything further left was written by the client and is never
read: rotating it must not make a new actor. With TRUSTED_PROXIES = 0 (the default, nothing in
front) the header is ignored and the address is the socket's (REMOTE_ADDR).

It is DRF's rule with NUM_PROXIES = TRUSTED_PROXIES (settings set both), with one difference: an
entry that is not an IP address (a header too short, written by the client) gives REMOTE_ADDR, so
what is stored as an address (accounts' PhoneCode.client_address, axes' ip_address) is one.

The proxy count is trusted, not the proxies' addresses: with TRUSTED_PROXIES > 0 the app's port
must be reachable only through the proxies (README, "Behind a proxy").
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _ip(value: str) -> str:
    value = value.strip()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return ""


def client_address(request: HttpRequest) -> str:
    """The address of whoever sent `request`, by the trusted-proxy rule above ("" if unknown)."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    hops: int = settings.TRUSTED_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if hops <= 0 or not forwarded:
        return _ip(remote)
    entries = forwarded.split(",")
    return _ip(entries[-min(hops, len(entries))]) or _ip(remote)
