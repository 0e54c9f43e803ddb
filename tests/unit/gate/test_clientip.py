from __future__ import annotations

import pytest
from starlette.types import Scope

from copilot_cli_proxy.gate.clientip import ProxyTrust, client_ip

ANY_PROXY = ProxyTrust.of(["*"])


def scope(*forwarded: str, peer: tuple[str, int] | None = ("192.0.2.10", 5000)) -> Scope:
    headers = [(b"x-forwarded-for", value.encode("latin-1")) for value in forwarded]
    return {"type": "http", "headers": headers, "client": peer}


def test_peer_address_by_default_whatever_the_header_says() -> None:
    assert client_ip(scope("198.51.100.1")) == "192.0.2.10"
    assert client_ip(scope("198.51.100.1"), None) == "192.0.2.10"


def test_no_peer_is_unknown() -> None:
    assert client_ip(scope(peer=None)) == "unknown"
    assert client_ip(scope("198.51.100.1", peer=None), ProxyTrust.of(["127.0.0.1"])) == "unknown"


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        (["198.51.100.1"], "198.51.100.1"),
        (["10.0.0.1, 198.51.100.1"], "198.51.100.1"),  # the proxy appended the last one
        (["10.0.0.1", "198.51.100.1"], "198.51.100.1"),  # two header lines
        (["198.51.100.1, "], "198.51.100.1"),
        (["2001:db8::1"], "2001:db8::1"),
        (["2001:DB8:0::1"], "2001:db8::1"),  # normalised: one bucket per address
        (["198.51.100.1, not-an-ip"], "192.0.2.10"),  # garbage from the proxy: use the peer
        (["<script>"], "192.0.2.10"),
        ([""], "192.0.2.10"),
        ([], "192.0.2.10"),
        (["198.51.100.1\x00"], "192.0.2.10"),
    ],
)
def test_trusted_proxy_header(forwarded: list[str], expected: str) -> None:
    assert client_ip(scope(*forwarded), ANY_PROXY) == expected


@pytest.mark.parametrize(
    ("allowed", "peer", "believed"),
    [
        (["127.0.0.1", "::1"], "127.0.0.1", True),
        (["127.0.0.1", "::1"], "::1", True),
        (["127.0.0.1", "::1"], "192.0.2.10", False),
        (["10.0.0.0/8"], "10.20.30.40", True),
        (["10.0.0.0/8"], "11.0.0.1", False),
        (["2001:db8::/32"], "2001:db8::7", True),
        (["2001:db8::/32"], "10.0.0.1", False),
        (["*"], "192.0.2.10", True),
        ([], "127.0.0.1", False),
        (["127.0.0.1"], "unix:/run/proxy.sock", False),
    ],
)
def test_only_the_proxies_in_forwarded_allow_ips_are_believed(
    allowed: list[str], peer: str, believed: bool
) -> None:
    found = client_ip(scope("198.51.100.1", peer=(peer, 5000)), ProxyTrust.of(allowed))
    assert found == ("198.51.100.1" if believed else peer)
