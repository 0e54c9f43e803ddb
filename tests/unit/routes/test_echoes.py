"""A client's huge strings are cut wherever the server echoes them: error bodies, the
request log, the server log (an 8 MB model name once meant 8 MB of log per request)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from tests.unit.scripted import chat_body, client, request_logs, scripted_app

HUGE = "z" * 1_000_000


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="TRACE")
    try:
        yield lines
    finally:
        logger.remove(sink)


def assert_nothing_huge(tmp_path: Path, texts: list[str]) -> None:
    for path in request_logs(tmp_path):
        assert path.stat().st_size < 5000, path
    for text in texts:
        assert "z" * 300 not in text


async def test_a_huge_model_name_is_refused_not_echoed(
    tmp_path: Path, log_lines: list[str]
) -> None:
    async with client(scripted_app(tmp_path)) as http:
        response = await http.post("/v1/chat/completions", json=chat_body(model=HUGE))
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "model"
    assert len(response.content) < 1000
    assert_nothing_huge(tmp_path, log_lines)


async def test_a_huge_model_id_in_the_path_is_cut_in_the_404_and_the_logs(
    tmp_path: Path, log_lines: list[str]
) -> None:
    async with client(scripted_app(tmp_path)) as http:
        response = await http.get("/v1/models/" + "z" * 20_000)
        missing = await http.get("/" + "z" * 20_000)
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    for answer in (response, missing):
        assert len(answer.content) < 2000
        assert "characters, cut]" in answer.json()["error"]["message"]
    records = [json.loads(p.read_text()) for p in request_logs(tmp_path)]
    assert all(len(r["path"]) < 300 and "characters, cut]" in r["path"] for r in records)
    assert_nothing_huge(tmp_path, log_lines)


async def test_a_huge_unknown_field_name_is_cut_in_the_header(tmp_path: Path) -> None:
    async with client(scripted_app(tmp_path)) as http:
        response = await http.post("/v1/chat/completions", json={**chat_body(), HUGE: 1})
    assert response.status_code == 200
    assert len(response.headers["x-ignored-params"]) < 100
