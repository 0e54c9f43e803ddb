"""The environment a CLI child process gets: an allowlist, never the server's whole one.

The server's environment holds secrets that a CLI has no use for (``API_KEY``, the
Redis URL with its password, another backend's token). A child gets the base list
below, the variables its own kind owns, and what its backend entry names in ``env``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

BASE_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "LANGUAGE",
        "TERM",
        "TMPDIR",
        "TZ",
        # Where the CLIs keep their caches and config (copilot unpacks ~235 MB on first run).
        "XDG_CACHE_HOME",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "XDG_STATE_HOME",
        "XDG_RUNTIME_DIR",
        # Outbound proxies and the CA bundles a corporate proxy needs.
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "all_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "NODE_EXTRA_CA_CERTS",
    }
)
BASE_PREFIXES = ("LC_",)


def child_environment(
    source: Mapping[str, str],
    *,
    prefixes: Iterable[str] = (),
    names: Iterable[str] = (),
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The allowed part of ``source``, then ``overrides`` on top."""
    own_prefixes = BASE_PREFIXES + tuple(prefixes)
    own_names = BASE_NAMES | frozenset(names)
    env = {
        key: value
        for key, value in source.items()
        if key in own_names or key.startswith(own_prefixes)
    }
    env.update(overrides or {})
    return env
