"""Member metrics: ZooKeeper ``mntr``-style counters, gauges and a latency
histogram, and an optional Prometheus endpoint.

Recording sits on the commit path, so it is plain attribute arithmetic:
every counter of ``MemberMetrics`` has exactly one writing thread (noted
next to it) and is read from any thread without a lock (a reader may see a
value one update old, never a torn one). ``LatencyHistogram.observe`` is a
``bisect`` into fixed bucket bounds plus four int/float updates.

Gauges are not recorded at all: ``Member.metrics()`` reads them from the
replica when asked (znode and session counts, watch tables, Raft state), so
an idle member pays nothing for them.

Prometheus (``Coordinator(metrics_address="127.0.0.1:9464")``, needs the
``coord[metrics]`` extra, i.e. ``prometheus_client``): a ``MetricsServer``
serves ``/metrics`` from its own ``CollectorRegistry`` (never the global
default one) whose collector calls ``metrics()`` at scrape time. Counters
are exposed as ``coord_<name>`` counters, the write latency as the
histogram ``coord_write_latency_seconds``, the rest as gauges, and the
string values as labels of ``coord_info``.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .errors import ConfigurationError
from .security import is_loopback_host

logger = logging.getLogger(__name__)

MetricValue = int | float | str

_MANTISSAS = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0)
#: Upper bounds (seconds) of the latency buckets: ten per decade (each at
#: most 1.33x the one below, so a quantile estimate is within about 15 %)
#: from 10 us to 80 s, then 100 s, then +Inf.
LATENCY_BOUNDS_S: tuple[float, ...] = (
    *(round(m * 10.0**exponent, 9) for exponent in range(-5, 2) for m in _MANTISSAS),
    100.0,
)
#: The subset of those bounds exposed as Prometheus ``le`` buckets.
EXPORT_BOUNDS_S: tuple[float, ...] = tuple(
    round(m * 10.0**exponent, 9) for exponent in range(-4, 2) for m in (1.0, 2.5, 5.0)
) + (100.0,)
assert set(EXPORT_BOUNDS_S) <= set(LATENCY_BOUNDS_S)


class LatencyHistogram:
    """Fixed-bucket histogram of durations in seconds, with exact count,
    sum, min and max and estimated quantiles. One writing thread."""

    __slots__ = ("_bounds", "_counts", "max", "min", "total")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BOUNDS_S) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds or bounds[0] <= 0:
            raise ValueError("bucket bounds must be positive, distinct and ascending")
        self._bounds = bounds
        self._counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0
        self.min = math.inf
        self.max = 0.0

    def observe(self, seconds: float) -> None:
        """Record one duration (the hot path: a bisect and four updates)."""
        self._counts[bisect.bisect_left(self._bounds, seconds)] += 1
        self.total += seconds
        if seconds > self.max:
            self.max = seconds
        if seconds < self.min:
            self.min = seconds

    @property
    def bounds(self) -> tuple[float, ...]:
        return self._bounds

    def counts(self) -> list[int]:
        """Per-bucket counts (not cumulative), ``len(bounds) + 1`` of them."""
        return list(self._counts)

    def cumulative(self, bounds: tuple[float, ...]) -> list[tuple[float, int]]:
        """``(le, observations <= le)`` for each of ``bounds`` (a subset of
        this histogram's bounds, ascending), then ``(inf, total)``."""
        counts = self.counts()
        out: list[tuple[float, int]] = []
        running = 0
        index = 0
        for bound in bounds:
            stop = self._bounds.index(bound, index) + 1
            running += sum(counts[index:stop])
            index = stop
            out.append((bound, running))
        out.append((math.inf, running + sum(counts[index:])))
        return out

    @staticmethod
    def quantile_of(q: float, bounds: tuple[float, ...], counts: list[int], low: float, high: float) -> float:
        """Estimate the ``q`` quantile from per-bucket ``counts``, linearly
        within the bucket it falls in (like Prometheus'
        ``histogram_quantile``), clamped to the observed ``[low, high]``."""
        total = sum(counts)
        if total == 0:
            return 0.0
        rank = q * total
        seen = 0
        for index, count in enumerate(counts):
            if count and seen + count >= rank:
                lower = bounds[index - 1] if index > 0 else 0.0
                upper = bounds[index] if index < len(bounds) else high
                estimate = lower + (upper - lower) * ((rank - seen) / count)
                return min(max(estimate, low), high)
            seen += count
        return high

    def summary(self, prefix: str) -> dict[str, MetricValue]:
        """``<prefix>_count``, and in milliseconds ``_avg_ms``, ``_min_ms``,
        ``_p50_ms``, ``_p90_ms``, ``_p99_ms``, ``_max_ms`` (0.0 when empty)."""
        counts = self.counts()
        count = sum(counts)
        low = self.min if count else 0.0
        high = self.max
        out: dict[str, MetricValue] = {f"{prefix}_count": count}
        out[f"{prefix}_avg_ms"] = _ms(self.total / count) if count else 0.0
        out[f"{prefix}_min_ms"] = _ms(low)
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            out[f"{prefix}_{name}_ms"] = _ms(self.quantile_of(q, self._bounds, counts, low, high))
        out[f"{prefix}_max_ms"] = _ms(high)
        return out


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)


class MemberMetrics:
    """The recorded (event) metrics of one member, cumulative since the
    member object was built. Each field names its only writing thread."""

    __slots__ = (
        "commits",
        "elections",
        "last_snapshot_bytes",
        "last_snapshot_seconds",
        "leader_changes",
        "proposals_failed",
        "requests_cancelled",
        "retransmissions",
        "session_expirations",
        "snapshot_installs",
        "snapshots",
        "write_latency",
    )

    def __init__(self) -> None:
        self.commits = 0  # raft thread: entries applied to this replica
        self.session_expirations = 0  # raft thread: expire_session entries that ended a session
        self.snapshots = 0  # raft thread: snapshots this member took
        self.last_snapshot_bytes = 0  # raft thread
        self.last_snapshot_seconds = 0.0  # raft thread
        self.snapshot_installs = 0  # raft thread: snapshots installed (from disk or the leader)
        self.elections = 0  # raft thread: times this member became a candidate
        self.leader_changes = 0  # housekeeping thread: the leader it knows changed to another member
        self.proposals_failed = 0  # raft thread: failure reports for this member's requests
        self.retransmissions = 0  # housekeeping thread: requests re-sent by go-back-N
        self.requests_cancelled = 0  # housekeeping thread: deadlines passed, cancel proposed
        self.write_latency = LatencyHistogram()  # raft thread: submit -> applied here, own requests

    def counters(self) -> dict[str, MetricValue]:
        """The counters under their ``metrics()`` names."""
        out: dict[str, MetricValue] = {
            "commits_total": self.commits,
            "proposals_failed_total": self.proposals_failed,
            "retransmissions_total": self.retransmissions,
            "requests_cancelled_total": self.requests_cancelled,
            "snapshot_count": self.snapshots,
            "last_snapshot_bytes": self.last_snapshot_bytes,
            "last_snapshot_seconds": round(self.last_snapshot_seconds, 6),
            "snapshot_installs_total": self.snapshot_installs,
            "elections_total": self.elections,
            "leader_changes_total": self.leader_changes,
            "session_expirations_total": self.session_expirations,
        }
        out.update(self.write_latency.summary("write_latency"))
        return out


#: How each ``metrics()`` key is exposed to Prometheus: "counter" keys are
#: monotonic; everything else numeric is a gauge; strings go to coord_info.
COUNTER_KEYS = frozenset(
    {
        "commits_total",
        "proposals_failed_total",
        "retransmissions_total",
        "requests_cancelled_total",
        "snapshot_count",
        "snapshot_installs_total",
        "elections_total",
        "leader_changes_total",
        "session_expirations_total",
        "refused_connections_total",
    }
)
#: Keys summarised by the Prometheus histogram instead of exposed one by one.
_HISTOGRAM_PREFIX = "write_latency_"

# ---------------------------------------------------------------------------- Prometheus


def parse_metrics_address(address: object, *, allow_remote: bool = False) -> tuple[str, int]:
    """``"host:port"`` of the metrics endpoint -> (host, port); port 0 picks a
    free one. A non-loopback host is refused unless ``allow_remote``: the
    endpoint has no authentication and tells anyone who can reach it the
    cluster's shape and load."""
    if not isinstance(address, str) or ":" not in address:
        raise ConfigurationError(f"metrics_address must be 'host:port', got {address!r}")
    host, _, port_text = address.rpartition(":")
    host = host.strip("[]")
    if not host:
        raise ConfigurationError(f"metrics_address {address!r} has no host")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigurationError(f"metrics_address {address!r} has a non-numeric port") from None
    if not 0 <= port < 65536:
        raise ConfigurationError(f"metrics_address {address!r} has port {port} outside 0-65535")
    if not is_loopback_host(host):
        if not allow_remote:
            raise ConfigurationError(
                f"metrics_address {address!r} is not a loopback address: the metrics endpoint is unauthenticated; "
                "pass metrics_allow_remote=True to expose it anyway (behind a firewall)"
            )
        logger.warning("the unauthenticated metrics endpoint listens on the non-loopback address %s", address)
    return host, port


def _import_prometheus() -> Any:
    try:
        import prometheus_client  # noqa: F401 - the extra's presence
        from prometheus_client import core, exposition, registry
    except ImportError:
        raise ConfigurationError(
            "metrics_address needs the optional prometheus_client package: pip install 'coord[metrics]'"
        ) from None
    return core, exposition, registry


class _Collector:
    """A prometheus_client collector over a ``metrics()`` callable."""

    def __init__(
        self, core: Any, read: Callable[[], Mapping[str, MetricValue]], read_histogram: Callable[[], Any]
    ) -> None:
        self._core = core  # prometheus_client.core, imported by MetricsServer
        self._read = read
        self._read_histogram = read_histogram

    def describe(self) -> list[Any]:
        return []  # no describe-time collect: a scrape reads the member, registration does not

    def collect(self) -> Iterator[Any]:
        core = self._core
        values = self._read()
        labels = {k: v for k, v in values.items() if isinstance(v, str)}
        info = core.InfoMetricFamily("coord", "coord member identity and role (string metrics as labels)")
        info.add_metric([], {k: labels[k] for k in sorted(labels)})
        yield info
        for key in sorted(values):
            value = values[key]
            if isinstance(value, str) or key.startswith(_HISTOGRAM_PREFIX):
                continue
            if key in COUNTER_KEYS:
                name = key[: -len("_total")] if key.endswith("_total") else key
                yield core.CounterMetricFamily(f"coord_{name}", f"coord {key}", value=value)
            else:
                yield core.GaugeMetricFamily(f"coord_{key}", f"coord {key}", value=value)
        histogram: LatencyHistogram = self._read_histogram()
        buckets = [
            ("+Inf" if math.isinf(bound) else repr(bound), count)
            for bound, count in histogram.cumulative(EXPORT_BOUNDS_S)
        ]
        yield core.HistogramMetricFamily(
            "coord_write_latency_seconds",
            "time from submitting a request to its being applied on this member",
            buckets=buckets,
            sum_value=histogram.total,
        )


class MetricsServer:
    """A Prometheus ``/metrics`` HTTP endpoint for one member (daemon thread)."""

    def __init__(
        self,
        host: str,
        port: int,
        read: Callable[[], Mapping[str, MetricValue]],
        read_histogram: Callable[[], LatencyHistogram],
    ) -> None:
        core, exposition, registry = _import_prometheus()
        self._registry = registry.CollectorRegistry(auto_describe=False)
        self._registry.register(_Collector(core, read, read_histogram))
        try:
            server, thread = exposition.start_http_server(port, addr=host, registry=self._registry)
        except OSError as exc:
            raise ConfigurationError(f"cannot serve metrics on {host}:{port}: {exc}") from exc
        self._server = server
        self._thread: threading.Thread = thread
        bound_port = server.server_address[1]
        self.address = f"[{host}]:{bound_port}" if ":" in host else f"{host}:{bound_port}"
        logger.info("metrics endpoint on http://%s/metrics", self.address)

    def stop(self) -> None:
        """Stop serving and release the port (waits for the server thread)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)
