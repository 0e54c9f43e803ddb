"""The per-request JSON file: where it goes, collisions, retention, redaction."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from copilot_cli_proxy.backends.base import Usage
from copilot_cli_proxy.observe.redact import REDACTED, Redactor
from copilot_cli_proxy.observe.requestlog import RequestLogWriter, iso_utc, usage_fields


def record(request_id: str = "req-1", **extra: Any) -> dict[str, Any]:
    return {"request_id": request_id, "timestamp": "2031-04-05T06:07:08.009Z", **extra}


def test_one_file_per_request_in_its_day_folder(tmp_path: Path) -> None:
    writer = RequestLogWriter(tmp_path / "requests", retention_days=14)
    path = writer.write(record(status=200, text="안녕 🎉"))
    assert path == tmp_path / "requests" / "2031-04-05" / "req-1.json"
    assert json.loads(path.read_text(encoding="utf-8"))["text"] == "안녕 🎉"


def test_a_reused_id_keeps_both_records(tmp_path: Path) -> None:
    writer = RequestLogWriter(tmp_path, retention_days=14)
    first = writer.write(record(n=1))
    second = writer.write(record(n=2))
    assert first != second
    assert second.name.startswith("req-1.") and second.suffix == ".json"
    assert json.loads(first.read_text())["n"] == 1
    assert json.loads(second.read_text())["n"] == 2


def test_unencodable_text_does_not_lose_the_record(tmp_path: Path) -> None:
    writer = RequestLogWriter(tmp_path, retention_days=14)
    path = writer.write(record(body="lone \udc80 surrogate"))
    assert "surrogate" in path.read_text(encoding="utf-8")


def test_secrets_are_redacted_in_the_file(tmp_path: Path) -> None:
    writer = RequestLogWriter(tmp_path, 14, Redactor(["alpha-key-0001"]))
    path = writer.write(record(path="/v1/alpha-key-0001", body='{"k": "alpha-key-0001"}'))
    text = path.read_text()
    assert "alpha-key-0001" not in text
    assert text.count(REDACTED) == 2


def test_old_day_folders_are_removed_others_kept(tmp_path: Path) -> None:
    for name in ("2031-03-20", "2031-03-21", "2031-03-22", "2031-04-05", "notes", "2031-13-01"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.json").write_text("{}")
    (tmp_path / "2031-01-01.json").write_text("{}")  # a file, not a day folder
    writer = RequestLogWriter(tmp_path, retention_days=14)
    assert writer.remove_expired(date(2031, 4, 5)) == 2
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["2031-01-01.json", "2031-03-22", "2031-04-05", "2031-13-01", "notes"]


def test_writing_sweeps_once_per_day(tmp_path: Path) -> None:
    (tmp_path / "2000-01-01").mkdir()
    writer = RequestLogWriter(tmp_path, retention_days=1)
    today = datetime.now(UTC).date().isoformat()
    writer.write({"request_id": "a", "timestamp": f"{today}T00:00:00.000Z"})
    assert not (tmp_path / "2000-01-01").exists()
    (tmp_path / "2000-01-02").mkdir()
    writer.write({"request_id": "b", "timestamp": f"{today}T00:00:01.000Z"})
    assert (tmp_path / "2000-01-02").exists()  # swept again tomorrow, not on every write


def test_missing_root_sweeps_nothing(tmp_path: Path) -> None:
    assert RequestLogWriter(tmp_path / "absent", 14).remove_expired(date.today()) == 0


def test_helpers() -> None:
    assert iso_utc(0) == "1970-01-01T00:00:00.000Z"
    assert usage_fields(None) is None
    assert usage_fields(Usage(prompt_tokens=3, completion_tokens=2)) == {
        "prompt_tokens": 3,
        "completion_tokens": 2,
        "total_tokens": 5,
        "cached_prompt_tokens": None,
        "reasoning_tokens": None,
    }


def test_no_staging_file_is_left_behind(tmp_path: Path) -> None:
    writer = RequestLogWriter(tmp_path, retention_days=14)
    writer.write(record())
    writer.write(record())
    assert sorted(p.suffix for p in (tmp_path / "2031-04-05").iterdir()) == [".json", ".json"]


def test_a_filesystem_without_hard_links_still_gets_every_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(source: object, target: object) -> None:
        raise PermissionError("hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    writer = RequestLogWriter(tmp_path, retention_days=14)
    first = writer.write(record(n=1))
    second = writer.write(record(n=2))
    assert first.name == "req-1.json" and second != first
    assert json.loads(first.read_text())["n"] == 1 and json.loads(second.read_text())["n"] == 2
    assert len(list((tmp_path / "2031-04-05").iterdir())) == 2
