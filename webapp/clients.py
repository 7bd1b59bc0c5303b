"""Who a request comes from: the address that rate limits count against.

gunicorn serves clients directly by default, so the peer address (REMOTE_ADDR) is the client and every
X-Forwarded-* header is the client's own words, ignored. Behind N reverse proxies that each append the address
they received from to X-Forwarded-For, set TRUSTED_PROXY_COUNT=N: the client is then the N-th address from the
right, the one the outermost trusted proxy saw; anything further left was written by the client and is ignored.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The client's IP address as far as the trusted proxies vouch for it."""
    peer = request.META.get("REMOTE_ADDR", "")
    trusted = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if trusted <= 0 or not forwarded:
        return peer
    hops = [hop.strip() for hop in forwarded.split(",")]
    candidate = hops[-min(trusted, len(hops))]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:  # a proxy wrote something that is not an address: count it against the peer
        return peer
