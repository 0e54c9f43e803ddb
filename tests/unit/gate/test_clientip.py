from __future__ import annotations

import pytest
from starlette.types import Scope

from copilot_cli_proxy.gate.clientip import client_ip


def scope(*forwarded: str, peer: tuple[str, int] | None = ("192.0.2.10", 5000)) -> Scope:
    headers = [(b"x-forwarded-for", value.encode("latin-1")) for value in forwarded]
    return {"type": "http", "headers": headers, "client": peer}


def test_peer_address_by_default_whatever_the_header_says() -> None:
    assert client_ip(scope("198.51.100.1"), trust_proxy_headers=False) == "192.0.2.10"


def test_no_peer_is_unknown() -> None:
    assert client_ip(scope(peer=None), trust_proxy_headers=False) == "unknown"


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
    assert client_ip(scope(*forwarded), trust_proxy_headers=True) == expected
