"""scripts/setup.sh installs the runtime dependencies for serve.sh and daemon.sh, and the
dev extras (plus the JavaScript test clients) only with --dev, each once per change.

The script runs for real in a temp checkout; pip and npm are stand-ins that record how
they were called (installing for real takes minutes and is what CI's run does anyway).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.harness import ROOT

RECORDER = """#!/bin/sh
echo "$(pwd) $*" >> "{log}"
{extra}
"""


@dataclass
class Checkout:
    root: Path
    bin: Path

    def setup(self, *flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "scripts/setup.sh", *flags],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PATH": f"{self.bin}:/usr/bin:/bin", "PYTHON": sys.executable},
        )

    def calls(self, name: str) -> list[str]:
        """What the stand-in was asked since the last look (and forget it)."""
        log = self.bin.parent / f"{name}.log"
        if not log.exists():
            return []
        lines = log.read_text().splitlines()
        log.unlink()
        return [line.replace(str(self.root), ".") for line in lines]


def executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def checkout(tmp_path: Path) -> Checkout:
    root = tmp_path / "checkout"
    for name in (
        "scripts/setup.sh",
        "pyproject.toml",
        "package-lock.json",
        "tests/clients/package-lock.json",
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, root / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # A venv that exists already: its python is the pip stand-in.
    (root / ".venv" / "bin").mkdir(parents=True)
    executable(
        root / ".venv" / "bin" / "python",
        RECORDER.format(log=tmp_path / "pip.log", extra=""),
    )
    executable(
        bin_dir / "npm",
        RECORDER.format(log=tmp_path / "npm.log", extra="mkdir -p node_modules"),
    )
    # The CLIs are on PATH, so only --with-clis installs them.
    for cli in ("copilot", "claude"):
        executable(bin_dir / cli, "#!/bin/sh\n")
    return Checkout(root, bin_dir)


PIP_UPGRADE = ". -m pip install --quiet --upgrade pip"


def test_plain_setup_installs_the_runtime_dependencies_only_once(checkout: Checkout) -> None:
    done = checkout.setup()
    assert done.returncode == 0, done.stderr
    assert checkout.calls("pip") == [PIP_UPGRADE, ". -m pip install --quiet -e ."]
    assert checkout.calls("npm") == []  # the CLIs are on PATH; no test clients
    assert checkout.setup().returncode == 0
    assert checkout.calls("pip") == []


def test_dev_setup_adds_the_dev_extras_and_the_javascript_clients(checkout: Checkout) -> None:
    assert checkout.setup().returncode == 0
    checkout.calls("pip")
    done = checkout.setup("--dev")
    assert done.returncode == 0, done.stderr
    # A runtime install does not satisfy --dev.
    assert checkout.calls("pip") == [PIP_UPGRADE, ". -m pip install --quiet -e .[dev]"]
    assert checkout.calls("npm") == ["./tests/clients ci --no-audit --no-fund --loglevel=error"]
    # A dev install holds the runtime one: serve.sh (plain setup) installs nothing more.
    for flags in ((), ("--dev",)):
        assert checkout.setup(*flags).returncode == 0
        assert checkout.calls("pip") == [] and checkout.calls("npm") == []


def test_with_clis_installs_the_pinned_clis(checkout: Checkout) -> None:
    assert checkout.setup("--with-clis").returncode == 0
    assert checkout.calls("npm") == [". ci --no-audit --no-fund --loglevel=error"]
    assert checkout.setup("--with-clis").returncode == 0
    assert checkout.calls("npm") == []


def test_a_changed_pyproject_installs_again(checkout: Checkout) -> None:
    assert checkout.setup("--dev").returncode == 0
    checkout.calls("pip")
    with (checkout.root / "pyproject.toml").open("a") as pyproject:
        pyproject.write("\n# changed\n")
    assert checkout.setup().returncode == 0
    assert checkout.calls("pip") == [PIP_UPGRADE, ". -m pip install --quiet -e ."]


def test_an_unknown_flag_is_refused(checkout: Checkout) -> None:
    done = checkout.setup("--devel")
    assert done.returncode == 2
    assert "usage: scripts/setup.sh [--dev] [--with-clis]" in done.stderr
    assert checkout.calls("pip") == []
