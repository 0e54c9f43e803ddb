"""Which address a request came from, for rate limits, the auth throttle and logs.

X-Forwarded-For is read here and nowhere else: uvicorn's own reading of it is off
(ops/serve.py), or a loopback peer could pick its address even with
TRUST_PROXY_HEADERS=false, and the two readings could disagree.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class ProxyTrust:
    """The reverse proxies whose X-Forwarded-For is believed (TRUST_PROXY_HEADERS=true)."""

    networks: tuple[Network, ...] = ()
    any_peer: bool = False

    @classmethod
    def of(cls, addresses: Iterable[str]) -> ProxyTrust:
        """``127.0.0.1``, ``10.0.0.0/8``, ``::1`` or ``*`` (any peer), as FORWARDED_ALLOW_IPS."""
        listed = [a.strip() for a in addresses if a.strip()]
        networks = tuple(ipaddress.ip_network(a, strict=False) for a in listed if a != "*")
        return cls(networks, "*" in listed)

    def trusts(self, peer: str) -> bool:
        if self.any_peer:
            return True
        address = _valid_ip(peer)
        if address is None:
            return False
        ip = ipaddress.ip_address(address)
        return any(ip.version == net.version and ip in net for net in self.networks)


def client_ip(scope: Scope, trust: ProxyTrust | None = None) -> str:
    """The peer's address, or, when the peer is a trusted proxy, the one it reports.

    The last X-Forwarded-For entry is the one the proxy in front of us appended;
    entries to its left were written by the client and can be anything.
    """
    peer_info = scope.get("client")
    peer = str(peer_info[0]) if peer_info else "unknown"
    if trust is not None and trust.trusts(peer):
        forwarded = ",".join(Headers(scope=scope).getlist("x-forwarded-for"))
        for candidate in reversed(forwarded.split(",")):
            address = _valid_ip(candidate)
            if address is not None:
                return address
            if candidate.strip():
                break  # the proxy wrote garbage: do not look further left
    return peer


def _valid_ip(raw: str) -> str | None:
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        return None
