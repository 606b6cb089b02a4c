"""The pure parts of metrics and logging: the latency histogram, the
metrics endpoint's address rules, structured and rate-limited log lines,
pysyncobj's log routing, and the tree's incrementally kept data size."""

from __future__ import annotations

import logging
import math
import random
import sys
from collections.abc import Iterator

import pytest

import coord.replication  # noqa: F401 - installs the pysyncobj log routing
from coord import logs, metrics, ops
from coord.errors import ConfigurationError
from coord.tree import Tree


def test_histogram_count_sum_min_max_are_exact_and_quantiles_close() -> None:
    histogram = metrics.LatencyHistogram()
    rng = random.Random(7)
    samples = [rng.lognormvariate(math.log(0.002), 0.8) for _ in range(5000)]
    for sample in samples:
        histogram.observe(sample)
    summary = histogram.summary("w")
    ordered = sorted(samples)
    assert summary["w_count"] == len(samples)
    assert summary["w_min_ms"] == pytest.approx(ordered[0] * 1000, abs=0.001)
    assert summary["w_max_ms"] == pytest.approx(ordered[-1] * 1000, abs=0.001)
    assert summary["w_avg_ms"] == pytest.approx(sum(samples) / len(samples) * 1000, abs=0.001)
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        exact = ordered[int(q * len(ordered)) - 1] * 1000
        assert summary[f"w_{name}_ms"] == pytest.approx(exact, rel=0.15), name


def test_empty_histogram_reports_zeros() -> None:
    summary = metrics.LatencyHistogram().summary("w")
    assert summary == {
        "w_count": 0,
        "w_avg_ms": 0.0,
        "w_min_ms": 0.0,
        "w_p50_ms": 0.0,
        "w_p90_ms": 0.0,
        "w_p99_ms": 0.0,
        "w_max_ms": 0.0,
    }


def test_histogram_cumulative_export_buckets_add_up() -> None:
    histogram = metrics.LatencyHistogram()
    values = [0.00001, 0.0001, 0.0003, 0.001, 0.0011, 0.3, 7.0, 500.0]
    for value in values:
        histogram.observe(value)
    buckets = histogram.cumulative(metrics.EXPORT_BOUNDS_S)
    assert [count for _, count in buckets] == [sum(1 for v in values if v <= le) for le, _ in buckets]
    assert buckets[-1] == (math.inf, len(values))


def test_metrics_address_rules() -> None:
    assert metrics.parse_metrics_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert metrics.parse_metrics_address("[::1]:9464") == ("::1", 9464)
    assert metrics.parse_metrics_address("localhost:9464") == ("localhost", 9464)
    with pytest.raises(ConfigurationError, match="not a loopback address"):
        metrics.parse_metrics_address("0.0.0.0:9464")
    assert metrics.parse_metrics_address("0.0.0.0:9464", allow_remote=True) == ("0.0.0.0", 9464)
    for bad in ("9464", "host:port", ":9464", "127.0.0.1:70000", None):
        with pytest.raises(ConfigurationError, match="metrics_address"):
            metrics.parse_metrics_address(bad)


def test_a_remote_metrics_address_is_refused_before_anything_starts() -> None:
    import coord

    with pytest.raises(ConfigurationError, match="not a loopback address"):
        coord.Coordinator("127.0.0.1:1", metrics_address="10.1.2.3:9464")


def test_missing_prometheus_client_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # makes the import fail
    with pytest.raises(ConfigurationError, match=r"coord\[metrics\]"):
        metrics.MetricsServer("127.0.0.1", 0, dict, metrics.LatencyHistogram)


def test_structured_line_has_fields_in_text_and_on_the_record(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("coord.test_logs")
    with caplog.at_level(logging.INFO, logger="coord"):
        logs.log_event(logger, logging.INFO, "leader_change", "leader changed", member="a:1", term=3, name="x y")
    (record,) = caplog.records
    assert record.getMessage() == "leader changed event=leader_change member=a:1 term=3 name='x y'"
    assert record.event == "leader_change"  # type: ignore[attr-defined]
    assert record.term == 3  # type: ignore[attr-defined]
    assert record.coord_name == "x y"  # type: ignore[attr-defined] - "name" is a LogRecord attribute
    assert record.name == "coord.test_logs"


def test_rate_limited_log_lets_a_burst_through_then_counts(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [100.0]
    monkeypatch.setattr(logs.time, "monotonic", lambda: now[0])
    limited = logs.RateLimitedLog(logging.getLogger("coord.test_logs"), interval_s=10.0, burst=2)
    with caplog.at_level(logging.INFO, logger="coord"):
        for _ in range(5):
            limited.event(logging.INFO, "k", "e", "line")
        limited.event(logging.INFO, "other", "e", "other key")  # keys are limited separately
        now[0] += 10.0
        limited.event(logging.INFO, "k", "e", "after the window")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "line event=e ",
        "line event=e ",
        "other key event=e ",
        "after the window event=e suppressed=3",
    ]


def test_rate_limited_log_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="burst"):
        logs.RateLimitedLog(logging.getLogger("coord"), burst=0)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def root_records() -> Iterator[_Collect]:
    """Records as the root logger's handlers see them (pytest's own capture
    also hooks non-propagating loggers, so caplog would see both names)."""
    handler = _Collect()
    root, coord_logger = logging.getLogger(), logging.getLogger("coord")
    old_level = coord_logger.level
    root.addHandler(handler)
    coord_logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        coord_logger.setLevel(old_level)


def test_pysyncobj_lines_come_out_under_the_coord_logger(root_records: _Collect) -> None:
    import pysyncobj.syncobj

    pysyncobj.syncobj.logger.warning("probe %d", 42)
    probes = [r for r in root_records.records if r.getMessage() == "probe 42"]
    assert [r.name for r in probes] == ["coord.pysyncobj.syncobj"]


def test_pysyncobj_lines_follow_the_coord_level(root_records: _Collect) -> None:
    import pysyncobj.syncobj

    logging.getLogger("coord.pysyncobj").setLevel(logging.ERROR)
    try:
        pysyncobj.syncobj.logger.warning("quiet probe")
        pysyncobj.syncobj.logger.error("loud probe")
    finally:
        logging.getLogger("coord.pysyncobj").setLevel(logging.NOTSET)
    assert [r.getMessage() for r in root_records.records if "probe" in r.getMessage()] == ["loud probe"]


def _entry(zxid_time: int, op: tuple[object, ...]) -> tuple[object, ...]:
    return ops.make_entry(0, 0, 0, zxid_time, op)


def _brute_force_size(tree: Tree) -> int:
    return sum(len(path) + len(tree.get(path)[0]) for path in tree.walk("/"))  # type: ignore[index]


def test_tree_keeps_its_approximate_data_size_through_changes_rollbacks_and_restore() -> None:
    tree = Tree()
    assert tree.approximate_data_size() == 1  # the root's path
    tree.apply(_entry(1, ops.create_op("/a", b"12345")))
    tree.apply(_entry(2, ops.create_op("/a/b", b"")))
    assert tree.approximate_data_size() == 1 + (2 + 5) + (4 + 0)
    tree.apply(_entry(3, ops.set_op("/a", b"1", -1)))
    assert tree.approximate_data_size() == 1 + (2 + 1) + 4
    failed = ops.multi_op(
        [ops.create_op("/c", b"xyz"), ops.set_op("/a", b"long value", -1), ops.delete_op("/none", -1)]
    )
    tree.apply(_entry(4, failed))  # rolled back as a whole
    assert tree.approximate_data_size() == 1 + 3 + 4
    tree.apply(_entry(5, ops.delete_op("/a/b", -1)))
    assert tree.approximate_data_size() == 1 + 3 == _brute_force_size(tree)
    restored = Tree.restore(tree.snapshot())
    assert restored.approximate_data_size() == tree.approximate_data_size()
    restored.check_invariants()
