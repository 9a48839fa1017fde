"""Every ``python`` code block of README.md runs as written: each in a fresh interpreter, in an empty
temporary working directory, with no ``OTEL_*`` variable set."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.M | re.S)


def blocks() -> list[tuple[int, str]]:
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in _BLOCK.finditer(text)]


def test_the_readme_has_python_blocks() -> None:
    assert len(blocks()) >= 5


@pytest.mark.parametrize(("line", "code"), blocks(), ids=[f"README.md:{line}" for line, _ in blocks()])
def test_block_runs_as_written(line: int, code: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTEST", "COV_"))}
    env.pop("PYTHONPATH", None)
    (tmp_path / "snippet.py").write_text(code, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "snippet.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, f"README.md:{line} failed:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
