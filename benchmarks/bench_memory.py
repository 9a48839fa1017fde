"""Memory under work that never finishes (default settings, a JSON Lines sink), each case in a fresh process.

    python benchmarks/bench_memory.py

endless   one root that never ends while 1 000 000 child probes run under it
orphans   200 000 roots, each leaving a child span that never ends

Printed: peak RSS (VmHWM) and RSS sampled along the way, and where every span or root went (recorded,
or counted by reason in ``stats()``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def vm(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) // 1024
    return 0


def run(case: str) -> dict[str, Any]:
    work = tempfile.mkdtemp(prefix="otel-usage-memory-")
    os.environ.setdefault("OTEL_USAGE_SPOOL_DIR", os.path.join(work, "spool"))
    from opentelemetry import trace

    import otel_usage
    from otel_usage import traced_usage
    from otel_usage.exporters.file import FileUsageExporter

    otel_usage.configure(exporters=[FileUsageExporter(os.path.join(work, "usage.jsonl"))])
    rss: list[int] = [vm("VmRSS")]

    @traced_usage(name="mem.child")
    def child(i: int) -> int:
        return i

    if case == "endless":
        total = 1_000_000

        @traced_usage(name="mem.endless")
        def endless() -> None:
            for i in range(total):
                child(i)
                if i % 100_000 == 0:
                    rss.append(vm("VmRSS"))
            rss.append(vm("VmRSS"))

        endless()
    else:
        total = 200_000
        tracer = trace.get_tracer("mem")

        @traced_usage(name="mem.root")
        def root(i: int) -> int:
            tracer.start_span("never.ends")  # never ended, reference dropped
            return i

        for i in range(total):
            root(i)
            if i % 20_000 == 0:
                rss.append(vm("VmRSS"))
        rss.append(vm("VmRSS"))
    otel_usage.force_flush(120_000)
    stats = otel_usage.stats()
    otel_usage.shutdown(30_000)
    return {
        "case": case,
        "total": total,
        "peak_rss_mb": vm("VmHWM"),
        "rss_mb": rss,
        "logs_emitted": stats.get("logs_emitted", 0),
        "logs_with_unfinished_children": stats.get("logs_with_unfinished_children", 0),
        "dropped": stats["dropped"],
        "spans_buffered_after": stats.get("spans_buffered", 0),
    }


def main() -> int:
    if len(sys.argv) > 1:
        print(json.dumps(run(sys.argv[1])))
        return 0
    for case in ("endless", "orphans"):
        out = subprocess.run([sys.executable, __file__, case], capture_output=True, text=True, check=True).stdout
        print(json.dumps(json.loads(out.strip().splitlines()[-1])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
