"""The contract of an abandoned request, over every backend kind and runner: a client
that leaves mid-stream and a request over REQUEST_TIMEOUT both end the backend's work
(the CLI process, its request dir, the upstream request) and the server goes on
answering."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.e2e.harness import wait_until
from tests.e2e.targets import TARGETS, ServerPool, Target, start_target


def test_a_client_that_leaves_mid_stream_ends_the_backends_work(target: Target) -> None:
    target.settle()
    before = set(target.server.cli_pids())
    logged = target.server.log().count("status=499")  # the server is shared: count anew
    streams_ended = len(target.upstream.stream_ends) if target.upstream else 0
    with target.streaming_slowly() as messages:
        body = {"model": target.model, "messages": messages, "stream": True}
        with (
            target.server.http() as http,
            http.stream("POST", "/v1/chat/completions", json=body) as response,
        ):
            assert response.status_code == 200
            # next(), not a for/break: closing the generator closes the connection,
            # which the server rightly takes as the client leaving.
            raw = response.iter_raw()
            next(raw)  # the first bytes arrived: the backend is answering
            during = set(target.server.cli_pids())
            assert target.health()["processes"]["active"] == 1
            raw.close()  # now the client leaves, mid-answer
        target.settle()
    assert wait_until(lambda: target.server.log().count("status=499") > logged, 10)
    after = set(target.server.cli_pids())
    if target.upstream is not None:
        assert target.upstream.wait_for(lambda f: len(f.stream_ends) > streams_ended, 10)
        assert target.upstream.stream_ends[streams_ended] == "cancelled"
    elif target.name == "copilot-persistent":
        # One long-lived process serves every session: it stays, the session goes.
        assert after == before and len(after) == 2
    else:
        # The process that answered (a one-shot run, or a warm process taken from
        # the pool) ended: it is not still streaming to nobody.
        assert (before | during) - after, f"no process ended: {before=} {during=} {after=}"
    answer = target.server.client().chat.completions.create(
        model=target.model, messages=target.answering("still here")
    )
    assert answer.choices[0].message.content == "still here"
    target.settle()


# -- REQUEST_TIMEOUT: a server of its own per target, with a short limit -------------------


@pytest.fixture(scope="module", params=TARGETS)
def hurried(
    request: pytest.FixtureRequest,
    fake_servers: ServerPool,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Target]:
    """Not from the shared pool: only this test needs it, so it stops once done."""
    name = str(request.param)
    upstream = fake_servers.upstream() if name == "openai" else None
    where = tmp_path_factory.mktemp(f"{name}-hurried")
    started = start_target(name, where, upstream, REQUEST_TIMEOUT="1500")
    try:
        yield started
    finally:
        stray = started.server.stop()
        assert not stray and not started.server.request_dirs()


def test_a_request_over_the_timeout_is_a_504_and_leaves_nothing_behind(
    hurried: Target,
) -> None:
    logged = hurried.server.log().count("status=504")
    with pytest.raises(openai.APIStatusError) as caught:
        hurried.server.client().chat.completions.create(
            model=hurried.model, messages=hurried.stalling()
        )
    assert caught.value.status_code == 504
    error = caught.value.body
    assert isinstance(error, dict) and error["code"] == "timeout"
    assert "REQUEST_TIMEOUT" in error["message"]
    assert wait_until(lambda: hurried.server.log().count("status=504") > logged, 10)
    # No sample answer afterwards: under REQUEST_TIMEOUT=1.5 s a busy machine could time
    # it out too. Idle is the proof: the persistent runners' long-lived processes are
    # back (copilot's one server, claude's warm ones), and nothing else is left.
    hurried.settle()
