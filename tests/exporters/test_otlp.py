"""Usage logs through the stock OTLP exporters to a real in-process receiver decoding the official protobufs."""

from __future__ import annotations

import gzip
import http.server
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as PbLogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from otel_usage import _counters
from otel_usage._schema import USAGE_LOG_EVENT
from otel_usage.exporters.otlp import UsageOnlyExporter, otlp_usage_exporter
from tests.exporters.conftest import make_log, make_record

LOCALHOST = "127.0.0.1"


def from_any(value: AnyValue) -> Any:
    """An OTLP AnyValue back to Python."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [from_any(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: from_any(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind)


def records_of(request: logs_service_pb2.ExportLogsServiceRequest) -> list[PbLogRecord]:
    """Every log record of an export request."""
    return [rec for rl in request.resource_logs for sl in rl.scope_logs for rec in sl.log_records]


class Receiver:
    """What an in-process OTLP receiver got; it can fail the first requests with a status code."""

    def __init__(self) -> None:
        self.requests: list[logs_service_pb2.ExportLogsServiceRequest] = []
        self.arrivals: list[float] = []
        self.fail_first: list[tuple[int, dict[str, str]]] = []
        self.lock = threading.Lock()
        self.endpoint = ""

    @property
    def records(self) -> list[PbLogRecord]:
        with self.lock:
            return [rec for request in self.requests for rec in records_of(request)]


class _Handler(http.server.BaseHTTPRequestHandler):
    receiver: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        receiver = self.receiver
        with receiver.lock:
            receiver.arrivals.append(time.monotonic())
            failure = receiver.fail_first.pop(0) if receiver.fail_first else None
        if self.path != "/v1/logs":
            self.send_error(404)
            return
        if failure is not None:
            status, headers = failure
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        request = logs_service_pb2.ExportLogsServiceRequest()
        request.ParseFromString(body)
        with receiver.lock:
            receiver.requests.append(request)
        response = logs_service_pb2.ExportLogsServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(response)))
        self.end_headers()
        self.wfile.write(response)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests to the local receiver never go through a proxy from the environment."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", LOCALHOST)
    monkeypatch.setenv("no_proxy", LOCALHOST)


@pytest.fixture
def http_receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """An OTLP/HTTP receiver on 127.0.0.1 and a free port; the exporter finds it through OTEL_EXPORTER_OTLP_*."""
    receiver = Receiver()
    handler = type("Handler", (_Handler,), {"receiver": receiver})
    server = http.server.ThreadingHTTPServer((LOCALHOST, 0), handler)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    receiver.endpoint = f"http://{LOCALHOST}:{port}"
    for name in ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "10")
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def emit_usage_logs(exporter: Any, logs: list[dict[str, Any]], others: int = 0) -> None:
    """Emit usage logs (correlated with their trace) and ``others`` plain logs through a real LoggerProvider."""
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("otel_usage")
    for log in logs:
        span_context = SpanContext(
            int(log["trace_id"], 16), int(log["span_id"], 16), is_remote=False, trace_flags=TraceFlags(1)
        )
        context = trace.set_span_in_context(NonRecordingSpan(span_context))
        logger.emit(event_name=USAGE_LOG_EVENT, body=log, context=context)
    for i in range(others):
        logger.emit(body=f"plain log {i}", event_name="something.else")
    provider.shutdown()


def rich_log(i: int) -> dict[str, Any]:
    """A usage log with every JSON-native kind of value, nested."""
    log = make_log(i, flags={"beta": True, "ratio": 0.25, "none": None, "empty": {}, "nested": [[1, [2.5]], []]})
    log["data"][0]["params"]["big"] = 2**62
    log["data"][0]["params"]["negative"] = -3
    return log


def assert_received(records: list[PbLogRecord], logs: list[dict[str, Any]]) -> None:
    assert len(records) == len(logs)
    for record, log in zip(records, logs, strict=True):
        assert from_any(record.body) == log
        assert record.event_name == USAGE_LOG_EVENT
        assert record.trace_id.hex() == log["trace_id"]
        assert record.span_id.hex() == log["span_id"]


def test_http_round_trip_body_equals_the_usage_log(http_receiver: Receiver) -> None:
    """Over OTLP/HTTP the received body equals the usage log, with event_name, trace_id and span_id set."""
    logs = [rich_log(1), rich_log(2)]
    emit_usage_logs(otlp_usage_exporter(), logs)
    assert_received(http_receiver.records, logs)


def test_wrapper_filters_out_other_records(http_receiver: Receiver) -> None:
    """With the usage-only wrapper, other log records are not sent; a batch of only them sends nothing."""
    emit_usage_logs(otlp_usage_exporter(), [rich_log(1)], others=3)
    assert_received(http_receiver.records, [rich_log(1)])
    exporter = otlp_usage_exporter()
    assert exporter.export([make_record("plain", event_name="x")]) == LogRecordExportResult.SUCCESS
    assert len(http_receiver.requests) == 1


def test_bare_stock_exporter_sends_everything(http_receiver: Receiver) -> None:
    """usage_only=False gives the stock exporter itself, which sends every record."""
    exporter = otlp_usage_exporter(usage_only=False)
    assert not isinstance(exporter, UsageOnlyExporter)
    emit_usage_logs(exporter, [rich_log(1)], others=2)
    assert len(http_receiver.records) == 3


def test_retry_after_503_still_delivers(http_receiver: Receiver) -> None:
    """A 503 with Retry-After is retried by the stock exporter after that delay; the log arrives once."""
    http_receiver.fail_first = [(503, {"Retry-After": "0"})]
    emit_usage_logs(otlp_usage_exporter(), [rich_log(1)])
    assert_received(http_receiver.records, [rich_log(1)])
    first, second = http_receiver.arrivals
    assert second - first < 0.7  # Retry-After 0 honoured (the default backoff would wait about a second)


def test_signal_endpoint_and_gzip_from_environment(http_receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only OTEL_EXPORTER_OTLP_* configure it: a logs-specific endpoint and gzip compression."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9/unused")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", f"{http_receiver.endpoint}/v1/logs")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_COMPRESSION", "gzip")
    emit_usage_logs(otlp_usage_exporter(), [rich_log(3)])
    assert_received(http_receiver.records, [rich_log(3)])


def test_huge_integer_does_not_sink_the_batch(http_receiver: Receiver, clean_stats: None) -> None:
    """An integer OTLP cannot encode is sent as a string, so the rest of the batch is not lost."""
    bad = rich_log(2)
    bad["data"][1]["params"]["huge"] = 2**70
    exporter = otlp_usage_exporter()
    batch = [make_record(rich_log(1)), make_record(bad)]
    assert exporter.export(batch) == LogRecordExportResult.SUCCESS
    bodies = [from_any(record.body) for record in http_receiver.records]
    assert bodies[0] == rich_log(1)
    assert bodies[1]["data"][1]["params"]["huge"] == str(2**70)
    assert bad["data"][1]["params"]["huge"] == 2**70  # the caller's log is not modified
    assert _counters.stats()["otlp_values_converted"] == 1


def test_protocol_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Protocol from the argument, then the logs variable, then the generic one; a bad env value falls back."""
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "carrier-pigeon")
    exporter = otlp_usage_exporter()
    assert isinstance(exporter, UsageOnlyExporter) and isinstance(exporter.exporter, OTLPLogExporter)
    exporter.shutdown()
    with pytest.raises(ValueError, match="unsupported OTLP protocol"):
        otlp_usage_exporter("http/json")


def test_grpc_without_the_extra_gives_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Choosing gRPC without the extra installed is a clear error with the pip hint."""
    import builtins

    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("opentelemetry.exporter.otlp.proto.grpc"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with pytest.raises(ImportError, match=r"pip install 'otel-usage\[grpc\]'"):
        otlp_usage_exporter()


def test_wrapped_exporter_that_raises_reports_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """The wrapper never lets an exception out of export (outside the test suite's re-raise mode)."""
    from otel_usage import _errors

    class Exploding:
        def export(self, batch: Any) -> Any:
            raise RuntimeError("boom")

    monkeypatch.setattr(_errors, "RAISE", False)
    exporter = UsageOnlyExporter(Exploding())  # type: ignore[arg-type]
    assert exporter.export([make_record(make_log(1))]) == LogRecordExportResult.FAILURE


# --- gRPC (the grpc extra) -----------------------------------------------------------------------------------


@pytest.fixture
def grpc_receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """An OTLP/gRPC logs service on 127.0.0.1 and a free port."""
    grpc = pytest.importorskip("grpc", reason="gRPC transport not installed: pip install 'otel-usage[grpc]'")
    pytest.importorskip(
        "opentelemetry.exporter.otlp.proto.grpc",
        reason="OTLP gRPC exporter not installed: pip install 'otel-usage[grpc]'",
    )
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc

    receiver = Receiver()

    class Service(logs_service_pb2_grpc.LogsServiceServicer):  # type: ignore[misc]
        def Export(self, request: Any, context: Any) -> Any:
            with receiver.lock:
                receiver.requests.append(request)
            return logs_service_pb2.ExportLogsServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Service(), server)
    port = server.add_insecure_port(f"{LOCALHOST}:0")
    server.start()
    receiver.endpoint = f"http://{LOCALHOST}:{port}"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_INSECURE", "true")
    try:
        yield receiver
    finally:
        server.stop(None)


def test_grpc_round_trip_body_equals_the_usage_log(grpc_receiver: Receiver) -> None:
    """Over OTLP/gRPC too the received body equals the usage log and carries the trace correlation."""
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

    exporter = otlp_usage_exporter()
    assert isinstance(exporter, UsageOnlyExporter) and isinstance(exporter.exporter, OTLPLogExporter)
    logs = [rich_log(1), rich_log(2)]
    emit_usage_logs(exporter, logs, others=2)
    assert_received(grpc_receiver.records, logs)
