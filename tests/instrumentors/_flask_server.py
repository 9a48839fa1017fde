"""A real Werkzeug HTTP server on 127.0.0.1 (free port, in a thread) for the Flask tests."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from werkzeug.serving import make_server


@contextlib.contextmanager
def serve(app: Any, threaded: bool = True) -> Iterator[str]:
    """Serve ``app`` on a free local port (one thread per request, or all on one thread); yields the base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=threaded)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
