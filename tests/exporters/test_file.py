"""FileUsageExporter: exact JSON Lines, rotation, several processes on one file, failures never silent."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult

from otel_usage import environment_variables as ev
from otel_usage import stats
from otel_usage._schema import USAGE_LOG_EVENT
from otel_usage.exporters._replay import replay
from otel_usage.exporters.file import FileUsageExporter
from otel_usage.exporters.memory import InMemoryUsageExporter
from tests.exporters.conftest import make_log

pytestmark = pytest.mark.usefixtures("clean_stats")

SUCCESS = LogRecordExportResult.SUCCESS
FAILURE = LogRecordExportResult.FAILURE


class _Collect(LogRecordProcessor):
    def __init__(self) -> None:
        self.records: list[ReadableLogRecord] = []

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        lr = log_record
        self.records.append(ReadableLogRecord(lr.log_record, lr.resource, lr.instrumentation_scope, lr.limits))

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def records_of(bodies: Iterable[Any], event_name: str | None = USAGE_LOG_EVENT) -> list[ReadableLogRecord]:
    """Log records exactly as a real LoggerProvider hands them to processors."""
    provider = LoggerProvider(shutdown_on_exit=False)
    collect = _Collect()
    provider.add_log_record_processor(collect)
    logger = provider.get_logger("tests.file")
    for body in bodies:
        logger.emit(body=body, event_name=event_name)
    return collect.records


def compact(log: Any) -> str:
    return json.dumps(log, ensure_ascii=False, separators=(",", ":"))


def strict_loads(line: str) -> Any:
    """json.loads that also refuses NaN/Infinity (not JSON)."""

    def refuse(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(line, parse_constant=refuse)


def all_lines(path: Path) -> list[str]:
    """Every line of the file and its backups, oldest first."""
    backups = sorted(path.parent.glob(path.name + ".[0-9]*"), key=lambda p: -int(p.suffix[1:]))
    lines: list[str] = []
    for file in [*backups, path]:
        if file.exists():
            lines.extend(file.read_text(encoding="utf-8").splitlines())
    return lines


def test_lines_are_compact_utf8_json_one_per_log(tmp_path: Path) -> None:
    """Each usage log is one compact JSON line, UTF-8 with non-ASCII kept, in batch order."""
    path = tmp_path / "usage.jsonl"
    logs = [make_log(0), make_log(1), make_log(2, note="naïve ☃ 日本")]
    exporter = FileUsageExporter(path)
    assert exporter.export(records_of(logs)) is SUCCESS
    raw = path.read_bytes()
    assert raw == "".join(compact(log) + "\n" for log in logs).encode("utf-8")
    assert "été ☃".encode() in raw and "日本".encode() in raw
    assert [json.loads(line) for line in raw.decode("utf-8").splitlines()] == logs


def test_each_batch_is_on_disk_when_export_returns(tmp_path: Path) -> None:
    """Batches append in order and each is readable by another reader as soon as export returns."""
    path = tmp_path / "usage.jsonl"
    exporter = FileUsageExporter(path)
    for i in range(3):
        assert exporter.export(records_of([make_log(i)])) is SUCCESS
        assert [json.loads(line)["trace_id"] for line in all_lines(path)] == [
            make_log(j)["trace_id"] for j in range(i + 1)
        ]


@pytest.mark.parametrize(
    ("body", "event_name"),
    [
        pytest.param(make_log(0), None, id="no-event-name"),
        pytest.param(make_log(0), "other.event", id="other-event"),
        pytest.param("a plain string", USAGE_LOG_EVENT, id="body-not-a-dict"),
    ],
)
def test_other_log_records_are_ignored(tmp_path: Path, body: Any, event_name: str | None) -> None:
    """Records that are not usage logs write nothing and are not a failure."""
    path = tmp_path / "usage.jsonl"
    exporter = FileUsageExporter(path)
    assert exporter.export(records_of([body], event_name=event_name)) is SUCCESS
    assert path.read_bytes() == b""


def test_rotation_moves_whole_lines_to_backups(tmp_path: Path) -> None:
    """Rotation happens before a batch would pass max_bytes; every line survives, in order, in some file."""
    path = tmp_path / "usage.jsonl"
    line_size = len(compact(make_log(0)).encode()) + 1
    exporter = FileUsageExporter(path, max_bytes=3 * line_size + 10, backup_count=50)
    logs = [make_log(i) for i in range(20)]
    for i in range(0, 20, 2):
        assert exporter.export(records_of(logs[i : i + 2])) is SUCCESS
    assert [json.loads(line) for line in all_lines(path)] == logs
    files = [path, *path.parent.glob("usage.jsonl.[0-9]*")]
    assert len(files) == 10
    assert all(f.stat().st_size <= 3 * line_size + 10 for f in files)


@pytest.mark.parametrize("backup_count", [1, 3])
def test_rotation_keeps_backup_count_files(tmp_path: Path, backup_count: int) -> None:
    """Only backup_count rotated files are kept, and they hold the newest logs."""
    path = tmp_path / "usage.jsonl"
    line_size = len(compact(make_log(0)).encode()) + 1
    exporter = FileUsageExporter(path, max_bytes=line_size, backup_count=backup_count)
    logs = [make_log(i) for i in range(10)]
    for log in logs:
        exporter.export(records_of([log]))
    backups = sorted(p.name for p in tmp_path.glob("usage.jsonl.[0-9]*"))
    assert backups == [f"usage.jsonl.{i}" for i in range(1, backup_count + 1)]
    assert [json.loads(line) for line in all_lines(path)] == logs[-(backup_count + 1) :]


def test_a_file_moved_away_by_someone_else_is_reopened(tmp_path: Path) -> None:
    """After an outside rename (logrotate), the next batch goes to a new file at the path."""
    path = tmp_path / "usage.jsonl"
    exporter = FileUsageExporter(path)
    exporter.export(records_of([make_log(0)]))
    path.rename(tmp_path / "moved.jsonl")
    exporter.export(records_of([make_log(1)]))
    assert [json.loads(line) for line in all_lines(path)] == [make_log(1)]
    assert json.loads((tmp_path / "moved.jsonl").read_text(encoding="utf-8")) == make_log(0)


# --- several processes ------------------------------------------------------------------------------

PROCESSES = 4
LOGS_PER_PROCESS = 2000


def _write_from_process(path: str, worker: int, max_bytes: int, start: Any) -> None:
    """Child process: 2000 logs through its own exporter, in batches of varying size."""
    exporter = FileUsageExporter(path, max_bytes=max_bytes, backup_count=10_000)
    logs = [make_log(i, worker=worker, seq=i, pid=os.getpid()) for i in range(LOGS_PER_PROCESS)]
    records = records_of(logs)
    start.wait(30)
    i, size = 0, 1
    while i < len(records):
        result = exporter.export(records[i : i + size])
        if result is not SUCCESS:
            raise SystemExit(f"export failed at {i}")
        i += size
        size = size % 37 + 1
    exporter.shutdown()


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_four_processes_rotating_one_file_never_corrupt_or_lose_a_line(tmp_path: Path) -> None:
    """4 processes x 2000 logs, rotating concurrently: every line parses, every log appears exactly once."""
    path = tmp_path / "usage.jsonl"
    max_bytes = 64 * 1024
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_write_from_process, args=(str(path), w, max_bytes, start)) for w in range(PROCESSES)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(180)
        assert p.exitcode == 0
    files = [path, *tmp_path.glob("usage.jsonl.[0-9]*")]
    assert len(files) > 20, "rotation should have happened many times"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f.name for f in files), "no file beside the logs"
    seen: dict[tuple[int, int], int] = {}
    for file in files:
        data = file.read_bytes()
        assert data.endswith(b"\n")
        assert len(data) <= max_bytes
        for line in data.decode("utf-8").split("\n")[:-1]:
            log = strict_loads(line)
            key = (log["worker"], log["seq"])
            assert log == make_log(log["seq"], worker=log["worker"], seq=log["seq"], pid=log["pid"])
            seen[key] = seen.get(key, 0) + 1
    assert len(seen) == PROCESSES * LOGS_PER_PROCESS
    assert set(seen.values()) == {1}


# --- configuration ----------------------------------------------------------------------------------


def _file_in_the_way(tmp_path: Path) -> Path:
    (tmp_path / "plain").write_text("x")
    return tmp_path / "plain" / "sub" / "usage.jsonl"


def _a_directory(tmp_path: Path) -> Path:
    (tmp_path / "adir").mkdir()
    return tmp_path / "adir"


def _read_only_directory(tmp_path: Path) -> Path:
    if os.geteuid() == 0:  # root writes anywhere a mode allows nothing; sysfs refuses even root
        if not os.path.isdir("/sys/kernel"):
            pytest.skip("running as root without sysfs: no directory refuses to be written")
        return Path("/sys/usage.jsonl")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    return ro / "usage.jsonl"


@pytest.mark.parametrize(
    "make_path",
    [
        pytest.param(_file_in_the_way, id="directory-not-creatable"),
        pytest.param(_a_directory, id="path-is-a-directory"),
        pytest.param(_read_only_directory, id="no-permission"),
    ],
)
@pytest.mark.parametrize("from_env", [False, True], ids=["argument", "env"])
def test_unwritable_path_is_a_clear_error_at_construction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_path: Callable[[Path], Path], from_env: bool
) -> None:
    """A path that cannot be written raises ValueError naming it, whether given or from the environment."""
    path = make_path(tmp_path)
    if from_env:
        monkeypatch.setenv(ev.OTEL_USAGE_FILE_PATH, str(path))
    with pytest.raises(ValueError, match=r"usage\.jsonl|adir") as info:
        FileUsageExporter(None if from_env else path)
    assert (ev.OTEL_USAGE_FILE_PATH if from_env else "path=") in str(info.value)


def test_no_arguments_reads_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Built with no arguments (OTEL_LOGS_EXPORTER=usage_file) it writes usage.jsonl in the working directory,
    and the OTEL_USAGE_FILE_* variables configure it."""
    monkeypatch.chdir(tmp_path)
    FileUsageExporter().export(records_of([make_log(0)]))
    assert json.loads((tmp_path / "usage.jsonl").read_text(encoding="utf-8")) == make_log(0)

    monkeypatch.setenv(ev.OTEL_USAGE_FILE_PATH, str(tmp_path / "logs" / "app.jsonl"))
    monkeypatch.setenv(ev.OTEL_USAGE_FILE_MAX_BYTES, "10")
    monkeypatch.setenv(ev.OTEL_USAGE_FILE_BACKUP_COUNT, "1")
    exporter = FileUsageExporter()
    for i in range(3):
        exporter.export(records_of([make_log(i)]))
    exporter.shutdown()
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == ["app.jsonl", "app.jsonl.1"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_bytes": -1},
        {"max_bytes": "100"},
        {"backup_count": -1},
        {"backup_count": True},
        {"max_bytes": 1000, "backup_count": 0},
        {"fsync": "always"},
        {"fsync": True},
        {"formatter": "xml"},
        {"formatter": 42},
    ],
)
def test_bad_arguments_raise(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    """An invalid explicit argument is a ValueError at construction."""
    with pytest.raises(ValueError):
        FileUsageExporter(tmp_path / "usage.jsonl", **kwargs)


def test_bad_environment_value_warns_and_keeps_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bad OTEL_USAGE_FILE_* value logs a warning naming it and the default applies."""
    monkeypatch.setenv(ev.OTEL_USAGE_FILE_FSYNC, "sometimes")
    monkeypatch.setenv(ev.OTEL_USAGE_FILE_MAX_BYTES, "lots")
    exporter = FileUsageExporter(tmp_path / "usage.jsonl")
    assert ev.OTEL_USAGE_FILE_FSYNC in caplog.text and ev.OTEL_USAGE_FILE_MAX_BYTES in caplog.text
    for i in range(3):
        exporter.export(records_of([make_log(i)]))
    assert len(all_lines(tmp_path / "usage.jsonl")) == 3
    assert not list(tmp_path.glob("usage.jsonl.1"))


@pytest.mark.parametrize(
    ("argument", "env", "fsyncs"),
    [
        (None, None, 0),
        ("never", None, 0),
        ("batch", None, 3),
        ("BATCH", None, 3),
        (None, "batch", 3),
        ("never", "batch", 0),
    ],
)
def test_fsync_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argument: str | None, env: str | None, fsyncs: int
) -> None:
    """fsync=batch forces each batch to disk once; never (the default) does not; the argument wins."""
    if env is not None:
        monkeypatch.setenv(ev.OTEL_USAGE_FILE_FSYNC, env)
    exporter = FileUsageExporter(tmp_path / "usage.jsonl", fsync=argument)
    calls: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd))[1])
    for i in range(3):
        exporter.export(records_of([make_log(i), make_log(i + 10)]))
    assert len(calls) == fsyncs
    assert len(all_lines(tmp_path / "usage.jsonl")) == 6


class _Opaque:
    def __repr__(self) -> str:
        return "<Opaque>"


def _cyclic() -> dict[str, Any]:
    d: dict[str, Any] = {"name": "loop"}
    d["self"] = d
    return d


@pytest.mark.parametrize(
    ("bad_value", "expected"),
    [
        pytest.param(_Opaque(), "<Opaque>", id="object"),
        pytest.param(dt.datetime(2026, 1, 2, 3, 4, 5), "datetime.datetime(2026, 1, 2, 3, 4, 5)", id="datetime"),
        pytest.param(float("nan"), "nan", id="nan"),
        pytest.param(frozenset({2}), [2], id="set"),
        pytest.param(_cyclic(), {"name": "loop", "self": "<cycle>"}, id="cycle"),
    ],
)
def test_unencodable_body_still_gives_a_valid_line_and_is_counted(
    tmp_path: Path, bad_value: Any, expected: Any
) -> None:
    """A body JSON cannot encode is written as strict JSON (bad parts as strings), counted, and does not
    disturb the other logs of its batch."""
    path = tmp_path / "usage.jsonl"
    logs = [make_log(0), make_log(1, extra=bad_value), make_log(2)]
    assert FileUsageExporter(path).export(records_of(logs)) is SUCCESS
    written = [strict_loads(line) for line in all_lines(path)]
    assert written[0] == logs[0] and written[2] == logs[2]
    assert written[1] == {**make_log(1), "extra": expected}
    assert stats()["unserializable:file"] == 1


def test_formatter_seam(tmp_path: Path) -> None:
    """A custom formatter writes its own one-line format; one that fails on a log falls back to JSON, counted."""

    def short(log: dict[str, Any]) -> str:
        if log["user"] == "user1":
            raise KeyError("no format for user1")
        return f"{log['start']} {log['user']}\tmulti\nline"

    path = tmp_path / "usage.jsonl"
    logs = [make_log(0), make_log(1), make_log(2)]
    FileUsageExporter(path, formatter=short).export(records_of(logs))
    lines = all_lines(path)
    assert lines[0] == f"{logs[0]['start']} user0\tmulti\\nline"
    assert json.loads(lines[1]) == logs[1]
    assert lines[2] == f"{logs[2]['start']} user2\tmulti\\nline"
    assert stats()["unserializable:file"] == 1


def test_shutdown_twice_and_export_after_shutdown_fails_visibly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """shutdown is idempotent; a later export returns FAILURE and (outside a UsageBatchProcessor) is counted."""
    monkeypatch.setenv(ev.OTEL_USAGE_SPOOL_DIR, "none")
    exporter = FileUsageExporter(tmp_path / "usage.jsonl")
    exporter.shutdown()
    exporter.shutdown()
    assert exporter.export(records_of([make_log(0)])) is FAILURE
    assert stats()["dropped"]["export_failed:file"] == 1
    assert exporter.force_flush() is True


# --- under the SDK's own BatchLogRecordProcessor (OTEL_LOGS_EXPORTER=usage_file) ----------------------


def _stock_pipeline(exporter: FileUsageExporter) -> tuple[LoggerProvider, Any]:
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter, schedule_delay_millis=60_000))
    return provider, provider.get_logger("tests.file.stock")


def _break_path(path: Path) -> None:
    """Make the path unwritable after construction: it becomes a directory."""
    path.rename(path.with_name("before.jsonl"))
    path.mkdir()


def _emit(logger: Any, logs: Sequence[dict[str, Any]]) -> None:
    for log in logs:
        logger.emit(body=log, event_name=USAGE_LOG_EVENT)
    logger.emit(body="not a usage log")


def test_stock_batch_processor_writes_usage_logs(tmp_path: Path) -> None:
    """Behind the SDK's BatchLogRecordProcessor the exporter writes every usage log and nothing else."""
    path = tmp_path / "usage.jsonl"
    provider, logger = _stock_pipeline(FileUsageExporter(path))
    _emit(logger, [make_log(0), make_log(1)])
    provider.shutdown()
    assert [json.loads(line) for line in all_lines(path)] == [make_log(0), make_log(1)]


def test_stock_batch_processor_failed_write_is_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's processor ignores FAILURE, so without a spool the exporter counts the lost logs itself."""
    monkeypatch.setenv(ev.OTEL_USAGE_SPOOL_DIR, "none")
    path = tmp_path / "usage.jsonl"
    provider, logger = _stock_pipeline(FileUsageExporter(path))
    _break_path(path)
    _emit(logger, [make_log(0), make_log(1)])
    provider.shutdown()
    assert stats()["dropped"]["export_failed:file"] == 2


def test_stock_batch_processor_failed_write_is_spooled_for_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With OTEL_USAGE_SPOOL_DIR the failed batch is spooled instead, and replay() delivers it later."""
    monkeypatch.setenv(ev.OTEL_USAGE_SPOOL_DIR, str(tmp_path / "spool"))
    path = tmp_path / "usage.jsonl"
    provider, logger = _stock_pipeline(FileUsageExporter(path))
    _break_path(path)
    _emit(logger, [make_log(0), make_log(1)])
    provider.shutdown()
    assert stats()["spooled:file"] == 2
    assert stats()["dropped_total"] == 0
    target = InMemoryUsageExporter()
    assert replay(tmp_path / "spool", target) == 2
    assert target.get_logs() == [make_log(0), make_log(1)]
