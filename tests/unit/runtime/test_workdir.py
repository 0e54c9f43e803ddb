from __future__ import annotations

import stat
from pathlib import Path

import anyio
import pytest

from copilot_cli_proxy.runtime.workdir import PREFIX, ensure_base, request_workdir, sweep_stale


def fill(path: Path) -> None:
    (path / "AGENTS.md").write_text("system text 😀", encoding="utf-8")
    nested = path / "deep" / "er"
    nested.mkdir(parents=True)
    (nested / "usage.json").write_text("{}")
    (path / "read-only").write_text("x")
    (path / "read-only").chmod(stat.S_IRUSR)


async def test_dir_is_made_under_the_base_and_removed_on_success(tmp_path: Path) -> None:
    base = tmp_path / "base"
    async with request_workdir(base) as path:
        assert path.is_dir()
        assert path.parent == base
        assert path.name.startswith(PREFIX)
        fill(path)
    assert not path.exists()
    assert base.is_dir()


async def test_each_request_gets_its_own_dir(tmp_path: Path) -> None:
    async with request_workdir(tmp_path) as first, request_workdir(tmp_path) as second:
        assert first != second
    assert list(tmp_path.iterdir()) == []


async def test_dir_is_removed_on_exception(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="CLI failed"):
        async with request_workdir(tmp_path) as path:
            fill(path)
            raise RuntimeError("CLI failed")
    assert not path.exists()


async def test_dir_is_removed_on_cancellation(tmp_path: Path) -> None:
    with anyio.move_on_after(0.05) as scope:
        async with request_workdir(tmp_path) as path:
            fill(path)
            await anyio.sleep(30)
    assert scope.cancelled_caught
    assert not path.exists()


async def test_dir_is_removed_when_an_outer_scope_is_cancelled(tmp_path: Path) -> None:
    paths: list[Path] = []

    async def request() -> None:
        async with request_workdir(tmp_path) as path:
            paths.append(path)
            fill(path)
            await anyio.sleep(30)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(request)
        with anyio.fail_after(5):
            while len(paths) < 3:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert len(paths) == 3
    assert not any(p.exists() for p in paths)


async def test_dir_already_removed_by_the_body_is_fine(tmp_path: Path) -> None:
    async with request_workdir(tmp_path) as path:
        path.rmdir()
    assert not path.exists()


def test_ensure_base_creates_missing_parents(tmp_path: Path) -> None:
    base = tmp_path / "a" / "b"
    ensure_base(base)
    ensure_base(base)
    assert base.is_dir()


def test_sweep_stale_removes_only_request_dirs(tmp_path: Path) -> None:
    for name in ("req-abc", "req-def", "req-"):
        (tmp_path / name).mkdir()
        fill(tmp_path / name)
    (tmp_path / "keep-me").mkdir()
    (tmp_path / "req-file").write_text("a file, not a request dir")
    (tmp_path / "notes-req-x").mkdir()

    assert sweep_stale(tmp_path) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep-me", "notes-req-x", "req-file"]
    assert sweep_stale(tmp_path) == 0


def test_sweep_stale_on_a_missing_base(tmp_path: Path) -> None:
    assert sweep_stale(tmp_path / "nothing-here") == 0


def test_sweep_stale_on_a_file_instead_of_a_dir(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.write_text("not a dir")
    assert sweep_stale(base) == 0
