"""The console command ``copilot-cli-proxy``: flags mirror the environment variables."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from dotenv import dotenv_values, find_dotenv

from copilot_cli_proxy import __version__
from copilot_cli_proxy.settings import FIELDS, Settings, SettingsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="copilot-cli-proxy",
        description="OpenAI-compatible API in front of the Copilot CLI and the Claude Code CLI.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "command", nargs="?", default="serve", choices=["serve"], help="what to do (default: serve)"
    )
    parser.add_argument("--env-file", default=None, help="read settings from this .env file")
    for spec in FIELDS:
        parser.add_argument(
            "--" + spec.name.replace("_", "-"),
            dest=spec.name,
            default=None,
            metavar=spec.env,
            help=f"{spec.help} (env {spec.env})",
        )
    return parser


def load_environment(args: argparse.Namespace) -> dict[str, str]:
    """Precedence: flags > process environment > .env file > defaults."""
    env: dict[str, str] = {}
    env_file = args.env_file or find_dotenv(usecwd=True)
    if env_file:
        env.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    env.update(os.environ)
    for spec in FIELDS:
        value = getattr(args, spec.name)
        if value is not None:
            env[spec.env] = value
    return env


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env = load_environment(args)
    try:
        settings = Settings.from_env(env)
    except SettingsError as exc:
        print(f"copilot-cli-proxy: configuration error: {exc}", file=sys.stderr)
        return 2
    # The CLIs inherit our environment: make .env values (e.g. GH_TOKEN) visible to them.
    for key, value in env.items():
        os.environ.setdefault(key, value)
    return serve(settings)


def serve(settings: Settings) -> int:
    import uvicorn

    from copilot_cli_proxy.app import create_app
    from copilot_cli_proxy.logs import setup_logging

    setup_logging(settings)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    return 0
