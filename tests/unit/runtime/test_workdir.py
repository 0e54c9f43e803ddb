from __future__ import annotations

import os
import stat
from pathlib import Path

import anyio
import pytest

from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.runtime import workdir
from copilot_cli_proxy.runtime.workdir import (
    PREFIX,
    UnsafeTempBase,
    default_temp_base,
    ensure_base,
    request_workdir,
    sweep_stale,
)


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


def test_ensure_base_makes_a_private_dir(tmp_path: Path) -> None:
    base = tmp_path / "base"
    ensure_base(base)
    assert stat.S_IMODE(base.stat().st_mode) == 0o700


def test_base_of_another_user_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # e.g. /tmp/copilot-cli-proxy made first by another local user, who could then plant
    # files in every request's parent dir
    base = tmp_path / "base"
    base.mkdir()
    other = os.geteuid() + 1
    monkeypatch.setattr(workdir.os, "geteuid", lambda: other)
    with pytest.raises(UnsafeTempBase, match="belongs to another user"):
        ensure_base(base)


def test_symlinked_base_owned_by_another_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "real"
    real.mkdir()
    base = tmp_path / "base"
    base.symlink_to(real)
    me = os.geteuid()
    real_stat = os.stat

    def stat_as_if_the_target_were_theirs(path: object, **kwargs: object) -> os.stat_result:
        result = real_stat(path, **kwargs)  # type: ignore[arg-type]
        if kwargs.get("follow_symlinks", True) and Path(str(path)) == base:
            values = list(result)
            values[stat.ST_UID] = me + 1
            return os.stat_result(values)
        return result

    monkeypatch.setattr(os, "stat", stat_as_if_the_target_were_theirs)
    with pytest.raises(UnsafeTempBase):
        ensure_base(base)


def test_base_writable_by_others_is_closed(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    base.chmod(0o777)
    ensure_base(base)
    assert stat.S_IMODE(base.stat().st_mode) & 0o022 == 0


async def test_request_dir_that_cannot_be_made_is_a_clear_503(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.write_text("a file where the base dir should be")
    with pytest.raises(ProxyError) as caught:
        async with request_workdir(base):
            pass
    assert caught.value.code == "cli_start_failed" and caught.value.status == 503
    assert "TEMP_DIR_BASE" in caught.value.message


def test_default_base_is_the_users_own_cache_not_tmp() -> None:
    assert default_temp_base({"XDG_CACHE_HOME": "/srv/cache"}) == Path(
        "/srv/cache/copilot-cli-proxy/requests"
    )
    assert default_temp_base({}) == Path.home() / ".cache" / "copilot-cli-proxy" / "requests"
