"""The parsers of setting values: each turns one environment variable's text into a value
or raises ``ValueError`` saying what is wrong (``settings.py`` adds the variable's name).

Pure functions, kept apart from the ``Settings`` fields so each file reads in one sitting.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable


def parse_int(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"must be a whole number, got {raw!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise ValueError(f"must be {bound}, got {value}")
        return value

    return parse


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"must be true or false, got {raw!r}")


def parse_choice(choices: tuple[str, ...], *, upper: bool = False) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().upper() if upper else raw.strip().lower()
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {raw!r}")
        return value

    return parse


def parse_text(raw: str) -> str:
    return raw.strip()


def parse_list(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


# -- gatekeeping and observability ------------------------------------------------------------

RATE_LIMIT_SCHEMES = ("memory", "redis", "rediss", "redis+unix")


def parse_api_keys(raw: str) -> tuple[str, ...]:
    keys = parse_list(raw)
    for index, key in enumerate(keys, start=1):
        # A key travels in an HTTP header: anything else could never match.
        if not all("!" <= char <= "~" for char in key):
            raise ValueError(
                f"key #{index} must be printable ASCII without spaces or commas "
                "(it is sent in an HTTP header)"
            )
    return keys


def parse_storage_uri(raw: str) -> str:
    value = raw.strip() or "memory://"
    scheme, separator, _ = value.partition("://")
    if not separator or scheme.lower().removeprefix("async+") not in RATE_LIMIT_SCHEMES:
        # Only the scheme is echoed: the rest of the URI may hold a password.
        raise ValueError(
            "must be memory:// or redis://host:port[/db] (also rediss://, redis+unix://), "
            f"got scheme {scheme!r}"
        )
    return value


def parse_proxy_addresses(raw: str) -> tuple[str, ...]:
    addresses = parse_list(raw)
    for address in addresses:
        if address == "*":
            continue
        try:
            ipaddress.ip_network(address, strict=False)
        except ValueError:
            raise ValueError(
                f"must be IP addresses or networks (e.g. 127.0.0.1,10.0.0.0/8) or *, "
                f"got {address!r}"
            ) from None
    return addresses


def is_loopback_host(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False
