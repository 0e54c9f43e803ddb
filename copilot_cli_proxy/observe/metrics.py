"""Prometheus metrics, in a registry of the app's own (several apps can live in one process)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

if TYPE_CHECKING:
    from copilot_cli_proxy.gateway.gateway import Gateway

PREFIX = "copilot_cli_proxy"
# A CLI run takes seconds to minutes; sub-10 ms buckets would all hold the gate's rejections.
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300, 600)


class SlotCollector(Collector):
    """Each backend's slots in use and its queue, read when scraped."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator[GaugeMetricFamily]:
        active = GaugeMetricFamily(
            f"{PREFIX}_backend_slots_active",
            "Requests holding a backend slot now",
            labels=["backend"],
        )
        queued = GaugeMetricFamily(
            f"{PREFIX}_backend_queue_depth",
            "Requests waiting for a backend slot now",
            labels=["backend"],
        )
        for node in self.gateway.nodes:
            active.add_metric([node.id], node.limiter.active)
            queued.add_metric([node.id], node.limiter.waiting)
        yield active
        yield queued


class Metrics:
    def __init__(self, gateway: Gateway) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            f"{PREFIX}_requests",
            "HTTP requests answered, by route template, method, status and model",
            ["route", "method", "status", "model"],
            registry=registry,
        )
        self.duration = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Time from request to the end of its response",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.first_byte = Histogram(
            f"{PREFIX}_time_to_first_byte_seconds",
            "Time from request to the response's first byte (for chat: the first text)",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.rate_limited = Counter(
            f"{PREFIX}_rate_limit_rejections",
            "Requests turned away with 429 by the rate limit or the failed-key throttle",
            registry=registry,
        )
        self.auth_failures = Counter(
            f"{PREFIX}_auth_failures",
            "Requests turned away with 401 (missing or wrong API key)",
            registry=registry,
        )
        # The cli_* series exist only on a server with a backend that runs a CLI.
        clis = [n for n in gateway.nodes if n.backend.runner is not None]
        self.cli_exits: Counter | None = None
        if clis:
            self.cli_exits = Counter(
                f"{PREFIX}_cli_exit_codes",
                "CLI runs that ended, by backend and exit code",
                ["backend", "code"],
                registry=registry,
            )
            active = Gauge(
                f"{PREFIX}_cli_processes_active",
                "CLI runs holding a slot now",
                registry=registry,
            )
            # Per backend, CLI or not: backend_slots_active{backend}.
            active.set_function(lambda: sum(n.limiter.active for n in clis))
        queued = Gauge(
            f"{PREFIX}_queue_depth",
            "Requests waiting for a backend slot now",
            registry=registry,
        )
        queued.set_function(lambda: sum(n.limiter.waiting for n in gateway.nodes))
        registry.register(SlotCollector(gateway))

    def render(self) -> bytes:
        return generate_latest(self.registry)


async def metrics_endpoint(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
