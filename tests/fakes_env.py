"""The variables the fake CLIs read: a CLI child gets an allowlist of the environment,
so tests name these (``CLI_ENV`` / ``Settings.cli_env``) for the fakes to see them."""

FAKE_CLI_ENV = (
    "FAKE_CLI_PID_DIR",
    "FAKE_CLI_LOG",
    "FAKE_CLI_FAST_OUTPUT",
    "FAKE_CLI_LOGGED_OUT",
    "FAKE_CLI_BOOT_DELAY",
)
