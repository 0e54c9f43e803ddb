"""Deadlines uvicorn does not have: for a request's headers, and for a body nobody reads.

uvicorn's ``timeout_keep_alive`` covers only the idle time between requests, and any
byte received resets it: a client that opens a connection and sends nothing, or sends
its headers a byte at a time, holds the connection (a file descriptor) for as long as
it likes. ASGI middleware cannot help, since the app is called only once the headers
are complete. So this is uvicorn's h11 protocol with two timers of its own:

- headers: from the connection's start, or from the first byte of a later request,
  to the end of that request's headers (HEADER_TIMEOUT);
- unread body: a response finished while the client is still sending a body nobody
  will read (uvicorn reads and discards it) gets BODY_TIMEOUT for the rest.

A body the app does read is bounded by the body gate (gate/sizes.py), which answers 408.
These timers only close the connection: there is no request to answer yet, or the
answer has been sent. The protocol is asyncio's (uvicorn's), so are its timers.
"""

from __future__ import annotations

import asyncio

import h11
from loguru import logger
from uvicorn.protocols.http.h11_impl import H11Protocol


class DeadlineH11Protocol(H11Protocol):
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0

    _timer: asyncio.TimerHandle | None = None
    _waiting_for: str = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm("headers")

    def data_received(self, data: bytes) -> None:
        if self._timer is None and self.conn.their_state is h11.IDLE:
            self._arm("headers")
        super().data_received(data)
        self._settle()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            self._arm("unread body")
        else:
            self._settle()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _settle(self) -> None:
        """Stop a timer whose wait is over; start one for a request begun but not whole."""
        state = self.conn.their_state
        if self._waiting_for == "headers" and state is not h11.IDLE:
            self._disarm()
        elif self._waiting_for == "unread body" and state is not h11.SEND_BODY:
            self._disarm()
        if self._timer is None and state is h11.IDLE and self.conn.trailing_data[0]:
            self._arm("headers")  # part of the next request came with the last one

    def _arm(self, waiting_for: str) -> None:
        self._disarm()
        limit = self.header_timeout_s if waiting_for == "headers" else self.body_timeout_s
        self._waiting_for = waiting_for
        self._timer = self.loop.call_later(limit, self._expired, waiting_for, limit)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._waiting_for = ""

    def _expired(self, waiting_for: str, limit: float) -> None:
        self._timer = None
        self._waiting_for = ""
        if not self.transport.is_closing():
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
            logger.debug("closing {}: its {} took longer than {:g} s", client, waiting_for, limit)
            self.transport.close()


def deadline_protocol(header_timeout_s: float, body_timeout_s: float) -> type[H11Protocol]:
    """The protocol class for ``uvicorn.Config(http=...)``, with these limits."""
    return type(
        "DeadlineH11Protocol",
        (DeadlineH11Protocol,),
        {"header_timeout_s": header_timeout_s, "body_timeout_s": body_timeout_s},
    )
