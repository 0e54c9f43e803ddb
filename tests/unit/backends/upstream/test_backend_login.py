"""`copilot-cli-proxy login <backend-id>` for an HTTP backend, as the command runs it."""

from __future__ import annotations

import io
from pathlib import Path

from copilot_cli_proxy.config.backends_file import BackendSpec
from copilot_cli_proxy.ops.backend_login import login_backend
from copilot_cli_proxy.settings import Settings
from tests.fakeupstream.server import FakeUpstream


def test_a_device_code_login_runs_to_a_stored_token(fake: FakeUpstream, tmp_path: Path) -> None:
    fake.device_interval = 0  # RFC 8628 floor of 1 s still applies: one real wait
    spec = BackendSpec(
        id="corp",
        kind="openai",
        options={
            "base_url": fake.url,
            "auth": {
                "type": "device-code",
                "client_id": "Ov23liOwnApp",
                "device_authorization_url": f"{fake.url}/login/device/code",
                "token_url": f"{fake.url}/login/oauth/access_token",
            },
        },
    )
    out = io.StringIO()
    assert login_backend(spec, Settings(state_dir=str(tmp_path)), out) == 0
    assert "WDJB-MJHT" in out.getvalue()
    assert (tmp_path / "logins" / "corp.json").is_file()
