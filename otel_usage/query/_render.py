"""Usage logs for people: one line per log (``tail``, ``grep``), a call tree on a timeline (``show``), tables.

The timeline follows log-defer-viz: the log's duration is the width of the screen, each call record and each
timer is a bar placed at its start offset with its length, and log lines and events sit at their offsets.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.markup import escape
from rich.table import Table

from otel_usage.query._results import FIGURES, StatsRow, UsageStats

__all__ = ["call_tree", "log_line", "stats_csv", "stats_json", "stats_table", "timeline", "to_json"]

_LEVELS = {10: "ERROR", 20: "WARN", 30: "INFO", 40: "DEBUG"}


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def to_json(value: Any, indent: int | None = None) -> str:
    """JSON of a log or a result (datetimes as ISO-8601)."""
    return json.dumps(
        value, default=_default, ensure_ascii=False, indent=indent, separators=None if indent else (",", ":")
    )


def _ms(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool):
        return "-"
    return f"{seconds * 1000:.2f}"


def _start_text(log: Mapping[str, Any]) -> str:
    start = log.get("start")
    if isinstance(start, dt.datetime):
        return start.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"
    return str(start)


def log_line(log: Mapping[str, Any], color: bool = True) -> str:
    """One readable line: start, service, status, request (method path HTTP status) or root function, user,
    duration, trace id."""
    request = log.get("request") if isinstance(log.get("request"), Mapping) else None
    status = str(log.get("status"))
    parts = [_start_text(log), str(log.get("service") or "-")]
    if request is not None:
        what = (
            f"{request.get('method') or '-'} {request.get('path') or request.get('url') or '-'} {request.get('status')}"
        )
        user = log.get("user") or request.get("username")
    else:
        data = log.get("data") or []
        what = str(data[0].get("function")) if data and isinstance(data[0], Mapping) else "-"
        user = log.get("user")
    duration = _ms(log.get("duration"))
    text = f"{' '.join(parts)} {status:<5} {what} user={user or '-'} {duration} ms trace={log.get('trace_id')}"
    if not color:
        return text
    mark = "red" if status == "error" else "green"
    return escape(text).replace(f" {status:<5} ", f" [{mark}]{status:<5}[/] ", 1)


def call_tree(log: Mapping[str, Any]) -> list[tuple[int, str, float, float | None, bool]]:
    """The call records as (depth, function, start offset, duration, failed), in call order."""
    out = []
    for record in log.get("data") or ():
        if not isinstance(record, Mapping):
            continue
        raw_depth, raw_start, raw_duration = record.get("depth"), record.get("start"), record.get("duration")
        depth = raw_depth if isinstance(raw_depth, int) else 0
        start = float(raw_start) if isinstance(raw_start, (int, float)) else 0.0
        duration = float(raw_duration) if isinstance(raw_duration, (int, float)) else None
        out.append((depth, str(record.get("function")), start, duration, bool(record.get("exception"))))
    return out


def _bar(start: float, end: float, total: float, width: int, char: str) -> str:
    if total <= 0:
        return char * width
    left = min(width - 1, max(0, int(start / total * width)))
    right = min(width, max(left + 1, round(end / total * width)))
    return " " * left + char * (right - left) + " " * (width - right)


def _fit(indent: str, name: str, width: int) -> str:
    """``indent + name`` in ``width`` characters: a long name keeps its end (the function's own name)."""
    room = max(4, width - len(indent))
    return indent + (name if len(name) <= room else "…" + name[-(room - 1) :])


def timeline(log: Mapping[str, Any], width: int = 100, color: bool = True) -> list[str]:
    """The log as lines of text: header, info, then calls and timers as bars on one time axis, log lines
    and events at their offsets (log-defer-viz's view)."""
    from otel_usage._schema import RESERVED_KEYS

    def paint(text: str, style: str) -> str:
        return f"[{style}]{escape(text)}[/]" if color else text

    esc = escape if color else (lambda text: text)
    lines = [
        paint(f"trace {log.get('trace_id')}  span {log.get('span_id')}", "bold"),
        esc(
            f"service {log.get('service')}  start {_start_text(log)}  duration {_ms(log.get('duration'))} ms  "
            f"status {log.get('status')}"
        ),
    ]
    if log.get("parent_span_id"):
        lines.append(esc(f"parent span {log.get('parent_span_id')} (called from another service)"))
    info = {k: v for k, v in log.items() if k not in RESERVED_KEYS}
    if info:
        lines.append(paint("info", "bold"))
        for key, value in info.items():
            if isinstance(value, Mapping):
                for sub, item in value.items():
                    if item not in (None, {}, []):
                        lines.append(esc(f"  {key}.{sub}: {to_json(item)}"))
            else:
                lines.append(esc(f"  {key}: {to_json(value)}"))
    if log.get("error"):
        lines.append(paint(f"error: {to_json(log.get('error'))}", "red"))
    calls = call_tree(log)
    timers = [t for t in log.get("timers") or () if isinstance(t, Sequence) and len(t) >= 3]
    raw_total = log.get("duration")
    total = float(raw_total) if isinstance(raw_total, (int, float)) else 0.0
    total = max([total] + [s + (d or 0.0) for _, _, s, d, _ in calls] + [float(t[2] or 0) for t in timers])
    label_width = min(48, max([len(f) + 2 * d for d, f, *_ in calls] + [len(str(t[0])) + 6 for t in timers] + [10]))
    bar_width = max(10, width - label_width - 14)
    axis = f"{'0 ms':<{label_width}} |{'-' * bar_width}| {_ms(total)} ms"
    lines.append(paint("calls and timers", "bold"))
    lines.append(esc(axis))
    for depth, function, start, duration, failed in calls:
        label = _fit("  " * min(depth, 8), function, label_width)
        bar = _bar(start, start + (duration or 0.0), total, bar_width, "=")
        row = f"{label:<{label_width}} |{bar}| {_ms(duration)} ms"
        lines.append(paint(row + " (exception)", "red") if failed else esc(row))
    for timer in timers:
        name, t_start, t_end = str(timer[0]), float(timer[1] or 0), float(timer[2] or 0)
        label = _fit("", f"timer {name}", label_width)
        row = f"{label:<{label_width}} |{_bar(t_start, t_end, total, bar_width, '#')}| {_ms(t_end - t_start)} ms"
        lines.append(paint(row, "cyan"))
    entries: list[tuple[float, str]] = []
    for line in log.get("logs") or ():
        if isinstance(line, Sequence) and len(line) >= 3:
            level = _LEVELS.get(line[1], str(line[1])) if isinstance(line[1], int) else str(line[1])
            data = f" {to_json(line[3])}" if len(line) > 3 and line[3] is not None else ""
            entries.append((float(line[0] or 0), f"[{level}] {line[2]}{data}"))
    for event in log.get("events") or ():
        if isinstance(event, Mapping):
            data = f" {to_json(event.get('data'))}" if event.get("data") is not None else ""
            entries.append((float(event.get("time") or 0), f"event {event.get('name')}{data}"))
    if entries:
        lines.append(paint("log lines and events", "bold"))
        for offset, text in sorted(entries, key=lambda item: item[0]):
            lines.append(esc(f"  +{_ms(offset):>9} ms  {text}"))
    return lines


def _cell(name: str, row: StatsRow) -> str:
    value = getattr(row, name) if name != "error_rate" else row.error_rate
    if name.startswith("duration_"):
        return _ms(value)
    if name == "error_rate":
        return f"{value * 100:.1f}%"
    return str(value)


_HEADERS = {
    "duration_mean": "mean ms",
    "duration_p50": "p50 ms",
    "duration_p95": "p95 ms",
    "duration_p99": "p99 ms",
    "error_rate": "error %",
}


def stats_table(result: UsageStats, total: StatsRow | None, title: str) -> Table:
    """A rich table of the rows (and a total row)."""
    table = Table(title=title, title_justify="left")
    for column in result.columns:
        table.add_column(column)
    for name in FIGURES:
        table.add_column(_HEADERS.get(name, name), justify="right")
    for row in result.rows:
        groups = ("(none)" if row.group[c] is None else escape(str(row.group[c])) for c in result.columns)
        table.add_row(*groups, *(_cell(n, row) for n in FIGURES))
    if total is not None and result.columns:
        table.add_section()
        cells = ["total"] + [""] * (len(result.columns) - 1)
        table.add_row(*cells, *(_cell(n, total) for n in FIGURES), style="bold")
    return table


def stats_json(result: UsageStats, total: StatsRow | None, store: str) -> str:
    """The rows as one JSON document."""
    document = {
        "store": store,
        "by": list(result.by),
        "per": result.per,
        "tz": result.tz,
        "start": result.start,
        "end": result.end,
        "rows": result.to_dicts(),
        "total": total.to_dict() if total is not None else None,
        "skipped_lines": result.skipped,
    }
    return to_json(document, indent=2)


def stats_csv(result: UsageStats) -> str:
    """The rows as CSV with a header line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*result.columns, *FIGURES])
    for row in result.rows:
        data = row.to_dict()
        writer.writerow(
            [*(row.group[c] for c in result.columns), *("" if data[n] is None else data[n] for n in FIGURES)]
        )
    return out.getvalue()


def grep_text(log: Mapping[str, Any]) -> str:
    """The text ``grep`` searches: the log as compact JSON."""
    return to_json(log)


def lines_of(logs: Iterable[Mapping[str, Any]], color: bool) -> Iterable[str]:
    for log in logs:
        yield log_line(log, color)
