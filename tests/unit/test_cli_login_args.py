"""``copilot-cli-proxy login`` without its service names only what is missing."""

from __future__ import annotations

import pytest

from copilot_cli_proxy.cli import main


def test_bare_login_names_only_the_service_as_required(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Regression: it said "the following arguments are required: service, CLI_ARG",
    # though the CLI's arguments are optional.
    with pytest.raises(SystemExit) as caught:
        main(["login"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.rstrip().endswith(
        "error: the following arguments are required: {copilot,claude,BACKEND_ID}"
    ), err
    assert "CLI_ARG ..." in err  # the usage line still shows that it takes them
