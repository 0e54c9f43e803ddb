"""X-Request-ID: honoured when sane, replaced when hostile."""

from __future__ import annotations

import re

import pytest

from copilot_cli_proxy.observe.requestid import (
    MAX_REQUEST_ID_LENGTH,
    is_sane_request_id,
    new_request_id,
    pick_request_id,
)

GENERATED = re.compile(r"[0-9a-f]{32}")


def test_new_ids_are_unique_hex() -> None:
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(GENERATED.fullmatch(i) for i in ids)


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        "7f1c2d9e-4b0a-4c2e-9a51-0f8e2b7c6d13",
        "req_01HZX3K9Q2",
        "client.trace-42",
        "A" * MAX_REQUEST_ID_LENGTH,
    ],
)
def test_sane_ids_are_kept(value: str) -> None:
    assert is_sane_request_id(value)
    assert pick_request_id([value]) == value
    assert pick_request_id([f"  {value} "]) == value


@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        ".",
        "..",
        "../../etc/passwd",
        "a/b",
        "a\\b",
        ".hidden",
        "-flag",
        "abc\r\nSet-Cookie: x=1",
        "abc\nX-Injected: 1",
        "abc\x00def",
        "abc def",
        'abc"def',
        "abc;def",
        "<script>alert(1)</script>",
        "ïd",
        "id\u2028",
        "A" * (MAX_REQUEST_ID_LENGTH + 1),
        "abc\n",
        "%2e%2e%2f",
    ],
)
def test_hostile_ids_are_replaced(value: str) -> None:
    assert not is_sane_request_id(value)
    assert GENERATED.fullmatch(pick_request_id([value]))


def test_absent_or_repeated_header_gets_a_new_id() -> None:
    assert GENERATED.fullmatch(pick_request_id([]))
    assert GENERATED.fullmatch(pick_request_id(["one", "two"]))


def test_an_id_that_is_a_secret_is_replaced() -> None:
    picked = pick_request_id(["alpha-key-0001"], lambda value: "alpha-key" in value)
    assert GENERATED.fullmatch(picked)
