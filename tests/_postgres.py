"""A throwaway PostgreSQL server for tests and benchmarks: ``initdb`` + ``pg_ctl`` on a temp dir.

Uses the server binaries of Debian's ``postgresql`` package (``/usr/lib/postgresql/<version>/bin``) or the
first ``initdb`` on PATH. The server listens on 127.0.0.1 and a free port, with its unix socket inside the
temp dir, and is tuned to start fast (``fsync=off``, small ``shared_buffers``): never use it for data you
want to keep. ``initdb`` refuses to run as root, so under root (CI, containers) the server processes run as
the ``postgres`` system user (created by the package) through ``runuser``, with the temp dir owned by it.

Usage::

    server = PostgresServer.create()         # None when no binaries can be found
    server.start()
    url = server.create_database("test")     # "postgresql+psycopg://postgres@127.0.0.1:PORT/test"
    server.stop(); server.start()            # same data dir, same port (an outage)
    server.cleanup()
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

__all__ = ["NO_POSTGRES", "PostgresServer", "find_bindir", "free_port", "running_server"]

NO_POSTGRES = (
    "!!! PostgreSQL tests NOT RUN: no initdb/pg_ctl found in /usr/lib/postgresql/*/bin or on PATH. "
    "Install Debian's 'postgresql' package (apt-get install postgresql) to run them. !!!"
)

SUPERUSER = "postgres"
_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "16MB",
    "max_connections": "50",
    "log_min_messages": "warning",
    "logging_collector": "off",
}


def find_bindir() -> str | None:
    """The directory holding ``initdb`` and ``pg_ctl``: Debian's newest first, then PATH; None if absent."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda path: [int(part) if part.isdigit() else 0 for part in path.split("/")[-2].split(".")],
        reverse=True,
    )
    for directory in candidates:
        if os.access(os.path.join(directory, "initdb"), os.X_OK) and os.access(
            os.path.join(directory, "pg_ctl"), os.X_OK
        ):
            return directory
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl", path=os.path.dirname(initdb)):
        return os.path.dirname(initdb)
    return None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_as() -> str | None:
    """The system user to run the server as when we are root (initdb refuses root), else None."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL")


class PostgresServer:
    """One PostgreSQL cluster in a temp dir, on 127.0.0.1 and a fixed free port."""

    def __init__(self, bindir: str, port: int | None = None) -> None:
        self.bindir = bindir
        self.port = port or free_port()
        self.user = _run_as()
        self.base = tempfile.mkdtemp(prefix="otel_usage_pg_")
        self.data_dir = os.path.join(self.base, "data")
        self.socket_dir = os.path.join(self.base, "sock")
        self.log_file = os.path.join(self.base, "server.log")
        os.mkdir(self.socket_dir)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            for path in (self.base, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self.running = False
        self._initialized = False
        atexit.register(self.cleanup)

    @classmethod
    def create(cls) -> PostgresServer | None:
        """A server object (not started yet), or None when the PostgreSQL binaries cannot be found."""
        bindir = find_bindir()
        return None if bindir is None else cls(bindir)

    def _command(self, *args: str) -> list[str]:
        command = [os.path.join(self.bindir, args[0]), *args[1:]]
        if self.user is not None:
            return ["runuser", "-u", self.user, "--", *command]
        return command

    def _run(self, *args: str, timeout: float = 120) -> None:
        proc = subprocess.run(
            self._command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            cwd=self.base,
            check=False,
        )
        if proc.returncode != 0:
            log = ""
            with contextlib.suppress(OSError), open(self.log_file, encoding="utf-8", errors="replace") as f:
                log = f.read()[-4000:]
            raise RuntimeError(f"{' '.join(args[:2])} failed ({proc.returncode}):\n{proc.stdout}\n{log}")

    def init(self) -> None:
        """Create the cluster (``initdb``), trust authentication, settings for speed."""
        self._run(
            "initdb",
            "-D",
            self.data_dir,
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        settings = dict(_SETTINGS, port=str(self.port), unix_socket_directories=f"'{self.socket_dir}'")
        conf = os.path.join(self.data_dir, "postgresql.conf")
        with open(conf, "a", encoding="utf-8") as f:
            f.write("\n# otel_usage test server\n")
            f.writelines(f"{key} = {value}\n" for key, value in settings.items())
        self._initialized = True

    def start(self) -> None:
        """Start the server (initializing the cluster the first time) and wait until it accepts connections."""
        if not self._initialized:
            self.init()
        self._run("pg_ctl", "-D", self.data_dir, "-l", self.log_file, "-w", "-t", "60", "start")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast`` disconnects clients; ``immediate`` is a crash); data and port are kept."""
        if self.running:
            self._run("pg_ctl", "-D", self.data_dir, "-m", mode, "-w", "-t", "60", "stop")
            self.running = False

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL (psycopg 3) for ``database`` on this server."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create ``name`` (dropping any previous one) and return its URL."""
        import psycopg

        if not name.replace("_", "").isalnum():
            raise ValueError(f"bad database name {name!r}")
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres")
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with conn:
            conn.autocommit = True
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def cleanup(self) -> None:
        """Stop the server if it runs and delete the temp dir. Safe to call twice."""
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def running_server() -> Iterator[PostgresServer]:
    """A throwaway server, started, removed afterwards (the test is skipped loudly without PostgreSQL)."""
    import pytest

    if find_bindir() is None:
        pytest.skip(NO_POSTGRES)
    server = PostgresServer.create()
    assert server is not None
    try:
        server.start()
        yield server
    finally:
        server.cleanup()
