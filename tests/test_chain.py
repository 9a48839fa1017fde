"""Usage processors: transform, drop, failures skipped, ready-made allow/block lists; exporter failures."""

from __future__ import annotations

import pytest
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult, SimpleLogRecordProcessor

import otel_usage
from otel_usage import DropUsageLog, allow_functions, block_functions, traced_usage
from otel_usage.testing import capture_usage


@traced_usage
def health():
    return "up"


@traced_usage
def cart_add(n):
    return health() if n else n


def test_processor_can_return_a_changed_log():
    """A processor's returned dict replaces the log."""

    def enrich(log):
        return {**log, "region": "eu"}

    with capture_usage(processors=[enrich]) as usage:
        cart_add(1)
    assert usage.logs[0]["region"] == "eu"


def test_processor_returning_none_keeps_in_place_changes():
    """A processor that returns None keeps what it changed in place (python_tracker's extend_log)."""

    def extend_log(log):
        log["app_version"] = "2.0"

    with capture_usage(processors=[extend_log]) as usage:
        cart_add(1)
    assert usage.logs[0]["app_version"] == "2.0"


def test_processors_run_in_order():
    """Processors see each other's output in order."""

    def first(log):
        log["order"] = ["first"]

    def second(log):
        log["order"].append("second")
        return log

    with capture_usage(processors=[first, second]) as usage:
        cart_add(0)
    assert usage.logs[0]["order"] == ["first", "second"]


def test_drop_usage_log():
    """Raising DropUsageLog drops the log and counts it."""
    otel_usage._counters.reset()

    def drop_health(log):
        if log["data"][0]["function"].endswith("health"):
            raise DropUsageLog

    with capture_usage(processors=[drop_health]) as usage:
        health()
        cart_add(0)
    assert [log["data"][0]["function"].rsplit(".", 1)[1] for log in usage.logs] == ["cart_add"]
    assert otel_usage.stats()["dropped_by_processor"] == 1


def test_failing_processor_is_skipped_and_its_partial_changes_discarded():
    """A processor that raises is skipped: the log goes on as it was before it, never lost."""
    otel_usage._counters.reset()

    def broken(log):
        log["half"] = True
        raise RuntimeError("bug in user code")

    def wrong_type(log):
        return ["not", "a", "dict"]

    def after(log):
        log["after"] = True

    with capture_usage(processors=[broken, wrong_type, after]) as usage:
        assert cart_add(1) == "up"
    (log,) = usage.logs
    assert "half" not in log and log["after"] is True
    assert otel_usage.stats()["processor_errors"] == 2


def test_allow_functions_keeps_matching_records_and_drops_empty_logs():
    """allow_functions keeps only matching records; a log left empty is dropped."""
    with capture_usage(processors=[allow_functions("*.cart_*")]) as usage:
        cart_add(1)
        health()
    (log,) = usage.logs
    assert [r["function"].rsplit(".", 1)[1] for r in log["data"]] == ["cart_add"]


def test_block_functions_removes_matching_records():
    """block_functions removes matching records; a log left empty is dropped."""
    with capture_usage(processors=[block_functions("*.health")]) as usage:
        cart_add(1)
        health()
    (log,) = usage.logs
    assert [r["function"].rsplit(".", 1)[1] for r in log["data"]] == ["cart_add"]


def test_pattern_lists_need_a_pattern():
    """An empty pattern list is a configuration error."""
    with pytest.raises(ValueError):
        allow_functions()


class RaisingExporter(LogRecordExporter):
    def export(self, batch):
        raise OSError("disk on fire")

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=30000):
        return True


class FailingExporter(LogRecordExporter):
    def export(self, batch):
        return LogRecordExportResult.FAILURE

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=30000):
        return True


@pytest.mark.parametrize("exporter", [RaisingExporter(), FailingExporter()])
def test_failing_exporter_leaves_the_application_result_intact(exporter):
    """A raising or failing exporter never changes the application's result nor other exporters' logs."""
    with capture_usage() as usage:
        usage.pipeline.add_exporter(exporter, SimpleLogRecordProcessor(exporter))
        assert cart_add(1) == "up"
        assert cart_add(0) == 0
    assert len(usage.logs) == 2


def test_probe_called_by_a_usage_processor_makes_no_log():
    """A processor that calls a probed function does not feed usage logs back into the pipeline."""

    def lookup(log):
        log["region"] = cart_add(0) or "eu"

    with capture_usage(processors=[lookup]) as usage:
        cart_add(0)
        usage.flush()
        usage.flush()
    logs = usage.logs
    assert len(logs) == 1
    assert logs[0]["region"] == "eu"
