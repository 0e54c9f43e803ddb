"""``copilot-cli-proxy serve``: uvicorn, with a stop that answers and cleans up.

On SIGTERM (``supervisorctl stop``, ``kill``) requests get ``GRACEFUL_S`` to finish.
Then the chat answers still running are stopped by the app itself (``InFlight``): each
answers ``503 cancelled`` (or a final SSE error event) and cleans up (kills its CLI's
process group, removes its temp dir). uvicorn's own stop, which cancels the request
tasks outright, comes only ``CLEANUP_WAIT_S`` later, for anything still left.

uvicorn then runs the lifespan shutdown and re-raises the signal, which ends the
process at once: so the shutdown also waits for the request tasks to be gone, or a
CLI could outlive the server and a temp dir stay behind (seen under supervisord).
"""

from __future__ import annotations

import logging
import math
import socket

import anyio
import uvicorn
from loguru import logger
from starlette.types import ASGIApp

from copilot_cli_proxy.ops.slowclients import deadline_protocol
from copilot_cli_proxy.routes.common import InFlight
from copilot_cli_proxy.settings import Settings

# LOG_LEVEL as a stdlib level for uvicorn's loggers (5 is uvicorn's TRACE; SUCCESS is loguru's).
UVICORN_LEVELS = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "SUCCESS": 25, "WARNING": 30}
GRACEFUL_S = 5.0
# Cleanup of one request: TERM, KILL after KILL_GRACE_S (2 s), reap, rmtree.
CLEANUP_WAIT_S = 10.0
STARTUP_FAILURE = 3  # uvicorn's exit code when it could not start (e.g. the port is taken)


class DrainingServer(uvicorn.Server):
    """A uvicorn server that stops the app's answers itself and then waits for them."""

    def __init__(self, config: uvicorn.Config, in_flight: InFlight | None = None) -> None:
        super().__init__(config)
        self.in_flight = in_flight if in_flight is not None else InFlight()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._stop_answers_after, GRACEFUL_S)
            await super().shutdown(sockets)
            tg.cancel_scope.cancel()
        with anyio.move_on_after(CLEANUP_WAIT_S):
            # Polled: uvicorn's task set has no event. A second Ctrl-C (force_exit): stop now.
            while self.server_state.tasks and not self.force_exit:  # noqa: ASYNC110
                await anyio.sleep(0.05)

    async def _stop_answers_after(self, delay_s: float) -> None:
        await anyio.sleep(delay_s)
        stopped = self.in_flight.stop_all()
        if stopped:
            logger.warning("stopping {} answer(s) still running after {:g} s", stopped, delay_s)


def server_config(settings: Settings, app: ASGIApp) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        # Our logging setup lets every record through to loguru (root level 0); uvicorn
        # reads that as TRACE and logs every ASGI message of every request (one record
        # per streamed chunk): its loggers get LOG_LEVEL instead.
        log_level=UVICORN_LEVELS.get(settings.log_level, logging.ERROR),
        access_log=False,
        # uvicorn's own stop (cancelling request tasks) is the last resort: see above.
        timeout_graceful_shutdown=int(GRACEFUL_S + CLEANUP_WAIT_S),
        # Off: the app reads X-Forwarded-For itself, from FORWARDED_ALLOW_IPS peers only,
        # and only with TRUST_PROXY_HEADERS (gate/clientip.py). uvicorn's default would
        # believe it from any loopback peer, whatever the settings say.
        proxy_headers=False,
        timeout_keep_alive=math.ceil(settings.keep_alive_timeout / 1000),
        http=deadline_protocol(settings.header_timeout_s, settings.body_timeout_s),
    )


def serve(settings: Settings) -> int:
    from copilot_cli_proxy.app import create_app
    from copilot_cli_proxy.logs import setup_logging

    setup_logging(settings)
    app = create_app(settings)
    server = DrainingServer(server_config(settings, app), app.state.services.in_flight)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    return 0 if server.started else STARTUP_FAILURE
