"""Prometheus metrics of one bridge: the spike's names, plus the MCP pool's size and load.

Each app owns a :class:`BridgeMetrics` with its own registry rather than the process-global one,
so that several apps in one process (tests, embedding) never collide on registration and
``/metrics`` shows exactly one bridge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from ttrpg_mcp.bridge.mcp_pool.restarts import BreakerStatus

__all__ = ["CONTENT_TYPE_LATEST", "BridgeMetrics"]

# Tool calls range from a sub-millisecond dice roll to a long search; sessions from seconds to hours.
_MCP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_SESSION_BUCKETS = (1, 10, 60, 300, 900, 1800, 3600, 7200, 14400, 43200)


class BridgeMetrics:
    """The counters, gauges and histograms ``GET /metrics`` exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.ws_connections_active = Gauge(
            "ws_connections_active", "Open WebSocket connections", registry=self.registry
        )
        self.ws_messages_total = Counter(
            "ws_messages_total", "Messages received from clients, by type", ["type"], registry=self.registry
        )
        self.ws_errors_total = Counter(
            "ws_errors_total",
            "Error replies and refused connections, by error code",
            ["error_type"],
            registry=self.registry,
        )
        self.mcp_request_duration_seconds = Histogram(
            "mcp_request_duration_seconds",
            "Time of one request through the MCP pool, by MCP method",
            ["method"],
            buckets=_MCP_BUCKETS,
            registry=self.registry,
        )
        self.session_duration_seconds = Histogram(
            "session_duration_seconds",
            "Lifetime of authenticated WebSocket sessions",
            buckets=_SESSION_BUCKETS,
            registry=self.registry,
        )
        self.mcp_pool_children = Gauge(
            "mcp_pool_children", "Live MCP child processes", registry=self.registry
        )
        self.mcp_pool_busy_children = Gauge(
            "mcp_pool_busy_children", "MCP children with a request in flight", registry=self.registry
        )
        self.mcp_pool_ready = Gauge(
            "mcp_pool_ready", "1 when the MCP pool can serve requests", registry=self.registry
        )
        # Frames for WebSocket clients, by path: plain integers, counted once per frame on the
        # fan-out's hot path (a prometheus Counter's lock costs more than the direct write).
        self.ws_frames_direct = 0
        self.ws_frames_queued = 0
        self.registry.register(_OutgoingFrames(self))

    def watch_breaker(self, status: Callable[[], BreakerStatus]) -> None:
        """The MCP pool's crash-loop breaker, read at scrape time."""
        open_ = Gauge(
            "mcp_breaker_open", "1 while the MCP crash-loop breaker is open", registry=self.registry
        )
        crashes = Gauge(
            "mcp_recent_crashes", "MCP child crashes within the crash-loop window", registry=self.registry
        )
        next_restart = Gauge(
            "mcp_next_restart_seconds",
            "Seconds until the next MCP child may be spawned",
            registry=self.registry,
        )
        open_.set_function(lambda: float(status().open))
        crashes.set_function(lambda: float(status().recent_crashes))
        next_restart.set_function(lambda: status().next_restart_in)

    def watch_pool(
        self, size: Callable[[], float], busy: Callable[[], float], ready: Callable[[], float]
    ) -> None:
        """Read the pool's gauges at scrape time, so they are never stale."""
        self.mcp_pool_children.set_function(size)
        self.mcp_pool_busy_children.set_function(busy)
        self.mcp_pool_ready.set_function(ready)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _OutgoingFrames(Collector):
    """``ws_outgoing_frames_total{path}``: written at once (``direct``) or put in the outbox (``queued``)."""

    def __init__(self, metrics: BridgeMetrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "ws_outgoing_frames",
            "Frames for WebSocket clients: written to the socket at once or queued in the outbox",
            labels=["path"],
        )
        family.add_metric(["direct"], self._metrics.ws_frames_direct)
        family.add_metric(["queued"], self._metrics.ws_frames_queued)
        yield family
