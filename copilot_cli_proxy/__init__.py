"""OpenAI-compatible API in front of the GitHub Copilot CLI and the Claude Code CLI."""

__version__ = "0.1.0"
