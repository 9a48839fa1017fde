"""Run the notes app on its own: ``python examples/notes_app`` (usage logs to ./usage.jsonl).

python examples/notes_app [--port 5000] [--db notes.db]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import otel_usage
from notes_app import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--db", default="notes.db")
    args = parser.parse_args()
    otel_usage.configure(service_name="notes")
    create_app(args.db).run(host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
