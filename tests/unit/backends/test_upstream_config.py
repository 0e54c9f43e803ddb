"""The options of a kind = "openai" backend: every mistake names its key."""

from __future__ import annotations

from typing import Any

import pytest

from copilot_cli_proxy.backends.upstream_config import (
    BearerAuth,
    DeviceCodeAuth,
    NoAuth,
    parse_upstream_config,
)
from copilot_cli_proxy.config.backends_file import BackendsFileError, parse_backends


def config(**options: Any) -> Any:
    return parse_upstream_config(options)


def test_minimal_backend_has_no_auth_and_the_default_timeout() -> None:
    parsed = config(base_url="http://127.0.0.1:8000/v1/")
    assert parsed.base_url == "http://127.0.0.1:8000/v1"
    assert parsed.chat_url == "http://127.0.0.1:8000/v1/chat/completions"
    assert parsed.models_url == "http://127.0.0.1:8000/v1/models"
    assert parsed.auth == NoAuth()
    assert parsed.timeout_s == 600


def test_github_models_preset_fills_url_bearer_token_and_catalog() -> None:
    parsed = config(preset="github-models")
    assert parsed.base_url == "https://models.github.ai/inference"
    assert parsed.auth == BearerAuth(token_env="GITHUB_TOKEN")
    assert parsed.models_url == "https://models.github.ai/catalog/models"
    # An organisation's inference URL still lists the one catalog.
    org = config(preset="github-models", base_url="https://models.github.ai/orgs/acme/inference")
    assert org.models_url == "https://models.github.ai/catalog/models"


def test_github_models_device_code_needs_only_the_operators_client_id() -> None:
    parsed = config(preset="github-models", auth={"type": "device-code", "client_id": "Ov23li0"})
    assert parsed.auth == DeviceCodeAuth(
        client_id="Ov23li0",
        device_authorization_url="https://github.com/login/device/code",
        token_url="https://github.com/login/oauth/access_token",
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs key 'base_url'"),
        ({"base_url": "ftp://x"}, "key 'base_url' must be an http:// or https:// URL"),
        ({"base_url": "https://u:p@x.test/v1"}, "must not hold credentials"),
        ({"base_url": "https://x.test/v1?key=1"}, "no query or fragment"),
        ({"preset": "copilot"}, "key 'preset' must be one of github-models"),
        ({"base_url": "https://x.test", "timeout_s": 0.0}, "key 'timeout_s' must be more than 0"),
        ({"base_url": "https://x.test", "auth": "bearer"}, "key 'auth' must be a table"),
        ({"base_url": "https://x.test", "auth": {}}, "key 'auth': 'type' must be one of"),
        ({"base_url": "https://x.test", "auth": {"type": "oauth"}}, "'type' must be one of"),
        (
            {"base_url": "https://x.test", "auth": {"type": "bearer"}},
            "type 'bearer' needs 'token_env'",
        ),
        (
            {"base_url": "https://x.test", "auth": {"type": "bearer", "token_env": "A B"}},
            "'token_env' must be a variable name",
        ),
        (
            {"base_url": "https://x.test", "auth": {"type": "bearer", "token": "sk-1"}},
            "'token' does not apply to type 'bearer'",
        ),
        (
            {"base_url": "https://x.test", "auth": {"type": "none", "token_env": "T"}},
            "'token_env' does not apply to type 'none'",
        ),
        (
            {"base_url": "https://x.test", "auth": {"type": "bearer", "token_env": 5}},
            "'token_env' must be a string",
        ),
        (
            {"base_url": "https://x.test", "auth": {"type": "device-code"}},
            "type 'device-code' needs 'client_id'",
        ),
        (
            {"base_url": "https://x.test", "auth": {"type": "device-code", "client_id": "c"}},
            "needs 'device_authorization_url'",
        ),
        (
            {
                "base_url": "https://x.test",
                "auth": {
                    "type": "device-code",
                    "client_id": "c",
                    "device_authorization_url": "http://auth.example.com/device",
                    "token_url": "https://auth.example.com/token",
                },
            },
            "key 'auth.device_authorization_url' must be https://",
        ),
        ({"base_url": "https://x.test", "headers": {"Bad Name": "v"}}, "not a valid header name"),
        ({"base_url": "https://x.test", "headers": {"X-A": "a\r\nX-B: b"}}, "one-line string"),
        ({"base_url": "https://x.test", "headers": {"authorization": "Bearer x"}}, "token_env"),
        ({"base_url": "https://x.test", "models": ["a", "a"]}, "names a model twice"),
        ({"base_url": "https://x.test", "models": [" "]}, "must hold model ids"),
    ],
)
def test_each_mistake_names_its_key(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("?", r"\?")):
        parse_upstream_config(options)


@pytest.mark.parametrize(
    "name", ["Editor-Version", "editor-plugin-version", "Copilot-Integration-Id"]
)
def test_editor_impersonating_headers_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="impersonates a GitHub editor"):
        config(base_url="https://x.test", headers={name: "vscode/1.99.0"})


def test_a_borrowed_editor_client_id_is_refused() -> None:
    with pytest.raises(ValueError, match="belongs to another product's app"):
        config(
            preset="github-models",
            auth={"type": "device-code", "client_id": "Iv1.b507a08c87ecfe98"},
        )


def test_plain_http_token_endpoints_are_allowed_on_this_machine_only() -> None:
    parsed = config(
        base_url="http://127.0.0.1:9/v1",
        auth={
            "type": "device-code",
            "client_id": "c",
            "device_authorization_url": "http://127.0.0.1:9/device",
            "token_url": "http://localhost:9/token",
            "scope": " read ",
        },
    )
    assert isinstance(parsed.auth, DeviceCodeAuth) and parsed.auth.scope == "read"


def test_the_backends_file_reports_an_auth_mistake_with_file_backend_and_key() -> None:
    data = {
        "backend": [
            {"id": "up", "kind": "openai", "base_url": "https://x.test", "auth": {"type": "bearer"}}
        ]
    }
    with pytest.raises(BackendsFileError) as caught:
        parse_backends(data, "backends.toml")
    assert str(caught.value).startswith("backends.toml: [[backend]] #1 (id 'up'): key 'auth':")


def test_the_backends_file_takes_a_complete_openai_backend() -> None:
    data = {
        "backend": [
            {
                "id": "ghmodels",
                "kind": "openai",
                "preset": "github-models",
                "headers": {"X-Team": "docs"},
                "timeout_s": 30,
                "models": ["openai/gpt-4.1"],
                "max_concurrent": 64,
            }
        ]
    }
    spec = parse_backends(data, "f").backends[0]
    assert spec.max_concurrent == 64
    assert spec.options["timeout_s"] == 30.0
    assert parse_upstream_config(spec.options).headers == (("X-Team", "docs"),)


def test_an_unknown_key_for_the_openai_kind_is_an_error() -> None:
    data = {"backend": [{"id": "u", "kind": "openai", "base_url": "https://x.test", "runner": "x"}]}
    with pytest.raises(BackendsFileError, match="unknown key 'runner' for kind 'openai'"):
        parse_backends(data, "f")
