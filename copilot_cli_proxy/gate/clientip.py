"""Which address a request came from, for rate limits and logs."""

from __future__ import annotations

import ipaddress

from starlette.datastructures import Headers
from starlette.types import Scope


def client_ip(scope: Scope, *, trust_proxy_headers: bool) -> str:
    """The peer's address, or with ``trust_proxy_headers`` the one our proxy reports.

    The last X-Forwarded-For entry is the one the proxy in front of us appended;
    entries to its left were written by the client and can be anything.
    """
    if trust_proxy_headers:
        forwarded = ",".join(Headers(scope=scope).getlist("x-forwarded-for"))
        for candidate in reversed(forwarded.split(",")):
            address = _valid_ip(candidate)
            if address is not None:
                return address
            if candidate.strip():
                break  # the proxy wrote garbage: do not look further left
    peer = scope.get("client")
    return str(peer[0]) if peer else "unknown"


def _valid_ip(raw: str) -> str | None:
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        return None
