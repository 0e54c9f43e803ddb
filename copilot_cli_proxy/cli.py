"""The console command ``copilot-cli-proxy``: serve (the default), login, doctor.

Every command reads its settings the same way (flags > environment > .env; the flags
mirror the environment variables), so ``login`` and ``doctor`` see exactly the CLI
paths, HOME and tokens the server will use.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from dotenv import dotenv_values, find_dotenv

from copilot_cli_proxy import __version__
from copilot_cli_proxy.settings import FIELDS, SERVICES, Settings, SettingsError

LOGIN_EPILOG = """\
Arguments after -- go to the CLI's own login, e.g.
  copilot-cli-proxy login copilot -- --device-code
  copilot-cli-proxy login copilot -- --with-token < token.txt
  copilot-cli-proxy login claude -- --console
With BACKENDS_FILE, name a backend of the file: copilot-cli-proxy login work-claude
"""


def _settings_flags() -> argparse.ArgumentParser:
    """The flags every command takes. SUPPRESS: a flag given before the command is not
    overwritten by the command's own (absent) copy of it."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("settings (each also an environment variable or .env line)")
    group.add_argument(
        "--env-file", default=argparse.SUPPRESS, help="read settings from this .env file"
    )
    for spec in FIELDS:
        group.add_argument(
            "--" + spec.name.replace("_", "-"),
            dest=spec.name,
            default=argparse.SUPPRESS,
            metavar=spec.env,
            help=f"{spec.help} (env {spec.env})",
        )
    return parent


def build_parser() -> argparse.ArgumentParser:
    flags = _settings_flags()
    parser = argparse.ArgumentParser(
        prog="copilot-cli-proxy",
        description="OpenAI-compatible API in front of the Copilot CLI and the Claude Code CLI.",
        epilog="Without a command: serve.",
        usage="%(prog)s [settings flags] [{serve,login,doctor}] [...]",
        parents=[flags],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{serve,login,doctor}")
    commands.add_parser(
        "serve",
        prog="copilot-cli-proxy serve",
        parents=[flags],
        help="run the API server (the default)",
        usage="%(prog)s [settings flags]",
    )
    login = commands.add_parser(
        "login",
        prog="copilot-cli-proxy login",
        parents=[flags],
        help="log a CLI in, in the environment the server gives it",
        description="Run the CLI's own login (copilot login / claude auth login) with\n"
        "the HOME, config dir and CLI path the server uses.",
        epilog=LOGIN_EPILOG,
        usage="%(prog)s [settings flags] {copilot,claude,BACKEND_ID} [-- CLI_ARG ...]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Not "service": that name is also the SERVICE setting's flag, which a backend id
    # would then set.
    login.add_argument(
        "target",
        metavar="{copilot,claude,BACKEND_ID}",
        help="which CLI to log in, or which backend of BACKENDS_FILE",
    )
    # default=[]: without it argparse (before 3.13) counts a "*" positional as required,
    # and a bare `login` said "required: service, CLI_ARG".
    login.add_argument(
        "cli_args", nargs="*", default=[], metavar="CLI_ARG", help="after --: for the CLI"
    )
    doctor = commands.add_parser(
        "doctor",
        prog="copilot-cli-proxy doctor",
        parents=[flags],
        help="check CLIs, logins, models, dirs and port; exit 1 if something needed fails",
        usage="%(prog)s [--json] [settings flags]",
    )
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    return parser


def env_file_of(args: argparse.Namespace) -> str:
    explicit: str | None = getattr(args, "env_file", None)
    return explicit if explicit else find_dotenv(usecwd=True)


def load_environment(args: argparse.Namespace, env_file: str) -> dict[str, str]:
    """Precedence: flags > process environment > .env file > defaults."""
    env: dict[str, str] = {}
    if env_file:
        env.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    env.update(os.environ)
    for spec in FIELDS:
        value = getattr(args, spec.name, None)
        if value is not None:
            env[spec.env] = value
    return env


def export_for_cli(env: Mapping[str, str]) -> None:
    """The CLIs inherit our environment: make .env values (e.g. GH_TOKEN) visible to them."""
    for key, value in env.items():
        os.environ.setdefault(key, value)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command or "serve"
    env_file = env_file_of(args)
    if env_file and not Path(env_file).is_file():
        print(f"copilot-cli-proxy: --env-file {env_file} does not exist", file=sys.stderr)
        return 2
    env = load_environment(args, env_file)
    export_for_cli(env)
    if command == "doctor":
        from copilot_cli_proxy.ops.doctor import doctor_command

        return doctor_command(env, env_file, as_json=args.json)
    if command == "login":
        return login(args.target, args.cli_args, env)
    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:
        print(f"copilot-cli-proxy: configuration error: {exc}", file=sys.stderr)
        return 2
    from copilot_cli_proxy.ops.serve import serve

    return serve(settings)


def login(target: str, cli_args: Sequence[str], env: Mapping[str, str]) -> int:
    """``login <backend-id>``: with BACKENDS_FILE, a backend of the file; without one,
    the CLI named (copilot or claude), as SERVICE, COPILOT_CLI_PATH, … describe it."""
    from copilot_cli_proxy.ops.backend_login import login_file_backend
    from copilot_cli_proxy.ops.config_check import read_settings
    from copilot_cli_proxy.ops.login import login_environment, run_login

    # A bad PORT must not stop a login: report it, and use what is valid.
    report = read_settings(env)
    for problem in report.problems:
        print(f"copilot-cli-proxy: configuration problem (ignored): {problem}", file=sys.stderr)
    settings = report.settings
    if settings.backends_file:
        return login_file_backend(target, settings, cli_args)
    if target not in SERVICES:
        print(
            f"copilot-cli-proxy: login {target!r}: expected {', '.join(SERVICES)} or a backend "
            "id of BACKENDS_FILE (not set)",
            file=sys.stderr,
        )
        return 2
    return run_login(target, settings, cli_args, env=login_environment(service=target))
