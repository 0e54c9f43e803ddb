"""One JSON file per request: ``LOG_DIR/requests/YYYY-MM-DD/<request-id>.json``.

Files are written from a worker thread (never on the event loop) and day folders
older than LOG_RETENTION_DAYS are removed as days change.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from copilot_cli_proxy.core.backend import RunRecord
from copilot_cli_proxy.core.types import Usage
from copilot_cli_proxy.observe.redact import Redactor


def usage_fields(usage: Usage | None) -> dict[str, int | None] | None:
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "cached_prompt_tokens": usage.cached_prompt_tokens,
        "reasoning_tokens": usage.reasoning_tokens,
    }


def run_fields(run: RunRecord | None, backend: str) -> dict[str, Any]:
    """Which backend answered and how; the ``cli_*`` fields only for a backend with a CLI."""
    fields: dict[str, Any] = {
        "backend": (run.backend_id if run is not None else "") or backend,
        "node": run.node if run is not None and run.node else None,
        "attempts": run.attempts if run is not None else None,
    }
    cli = run.cli if run is not None else None
    if cli is not None:
        fields["runner"] = cli.runner or None
        fields["cli_argv"] = list(cli.argv) or None
        fields["temp_dir"] = cli.workdir
        fields["cli_exit_code"] = cli.exit_code
        if cli.exit_code not in (None, 0) and cli.stderr_tail:
            fields["cli_stderr_tail"] = cli.stderr_tail
    return fields


def iso_utc(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


@dataclass
class RequestLogWriter:
    root: Path  # LOG_DIR/requests
    retention_days: int
    redactor: Redactor = field(default_factory=Redactor)
    _swept_on: date | None = None

    def write(self, record: dict[str, Any]) -> Path:
        """Write one record (blocking: call from a worker thread); return its path."""
        day = str(record["timestamp"])[:10]
        folder = self.root / day
        folder.mkdir(parents=True, exist_ok=True)
        today = datetime.now(UTC).date()
        if self._swept_on != today:
            self._swept_on = today
            self.remove_expired(today)
        text = json.dumps(self.redactor.value(record), ensure_ascii=False, indent=2) + "\n"
        name = str(record["request_id"])
        # Written aside, then linked into place: a reader (a log shipper, a test) never
        # sees half a file, and an existing record is never overwritten.
        staging = folder / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
        staging.write_text(text, encoding="utf-8", errors="backslashreplace")
        try:
            path = folder / f"{name}.json"
            try:
                _link(staging, path)
            except FileExistsError:
                # A client reused its X-Request-ID: both requests keep their own record.
                path = folder / f"{name}.{uuid.uuid4().hex[:8]}.json"
                _link(staging, path)
        finally:
            staging.unlink(missing_ok=True)
        return path

    def remove_expired(self, today: date) -> int:
        """Remove day folders older than the retention; return how many went."""
        if not self.root.is_dir():
            return 0
        oldest_kept = today - timedelta(days=self.retention_days)
        removed = 0
        for child in self.root.iterdir():
            try:
                day = date.fromisoformat(child.name)
            except ValueError:
                continue  # not ours
            if day < oldest_kept and child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
                removed += 1
        return removed


def _link(source: Path, target: Path) -> None:
    """Put ``source`` at ``target`` unless ``target`` exists (FileExistsError)."""
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError:
        # A filesystem without hard links: a rename is atomic too, but would replace.
        if target.exists():
            raise FileExistsError(target) from None
        source.rename(target)
