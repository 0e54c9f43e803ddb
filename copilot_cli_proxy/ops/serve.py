"""``copilot-cli-proxy serve``: uvicorn, with a stop that lets request cleanup finish.

On SIGTERM (``supervisorctl stop``, ``kill``) uvicorn waits ``GRACEFUL_S`` for requests,
cancels the rest, runs the lifespan shutdown, and then re-raises the signal, which ends
the process at once. A cancelled request is still running its shielded cleanup at that
moment (killing its CLI's process group, removing its temp dir), so without a wait the
CLI outlives the server and the temp dir stays behind (seen under supervisord).
"""

from __future__ import annotations

import socket

import anyio
import uvicorn

from copilot_cli_proxy.settings import Settings

GRACEFUL_S = 5.0
# Cleanup of one request: TERM, KILL after KILL_GRACE_S (2 s), reap, rmtree.
CLEANUP_WAIT_S = 10.0
STARTUP_FAILURE = 3  # uvicorn's exit code when it could not start (e.g. the port is taken)


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose shutdown returns only when the request tasks are gone."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        with anyio.move_on_after(CLEANUP_WAIT_S):
            # Polled: uvicorn's task set has no event. A second Ctrl-C (force_exit): stop now.
            while self.server_state.tasks and not self.force_exit:  # noqa: ASYNC110
                await anyio.sleep(0.05)


def serve(settings: Settings) -> int:
    from copilot_cli_proxy.app import create_app
    from copilot_cli_proxy.logs import setup_logging

    setup_logging(settings)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(GRACEFUL_S),
    )
    server = DrainingServer(config)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    return 0 if server.started else STARTUP_FAILURE
