"""Every ``OTEL_USAGE_*`` environment variable, one constant each.

Variables are read when the pipeline is built (:func:`otel_usage.configure`, the configurator under
``opentelemetry-instrument``, an exporter built with no arguments), never at import. An explicit
argument wins over the variable; a bad value logs a warning naming the variable and the default used
instead, except where falling back would lose data, which is an error.
"""

# --- Core: levels, limits, context -------------------------------------------------------------

OTEL_USAGE_LEVEL = "OTEL_USAGE_LEVEL"
"""
.. envvar:: OTEL_USAGE_LEVEL

Threshold: probes below it are not recorded, nor anything they call. One of DEBUG, INFO, DEFAULT,
NONE (any case). Default: ``DEFAULT``.
"""

OTEL_USAGE_EXPORTERS = "OTEL_USAGE_EXPORTERS"
"""
.. envvar:: OTEL_USAGE_EXPORTERS

Comma-separated usage exporters built by :func:`otel_usage.configure` and, under
``opentelemetry-instrument``, by the ``otel_usage`` configurator: ``file``, ``sql``, ``otlp``, ``console``,
or ``none``. An unknown name is an error raised by :func:`otel_usage.configure`; under
``opentelemetry-instrument`` a sink that cannot start (unknown name, unwritable path) is one warning naming
it and the reason, and the other sinks run. Default: ``file``.
"""

OTEL_USAGE_EXIT_TIMEOUT_MILLIS = "OTEL_USAGE_EXIT_TIMEOUT_MILLIS"
"""
.. envvar:: OTEL_USAGE_EXIT_TIMEOUT_MILLIS

At interpreter exit, the most time spent delivering what is still queued, shared by all the sinks (they
are flushed in parallel); what is left is spooled or counted lost, and one line says how many and why.
Default: ``5000``.
"""

OTEL_USAGE_DEBUG = "OTEL_USAGE_DEBUG"
"""
.. envvar:: OTEL_USAGE_DEBUG

``true``: configuration and start-up errors are logged with their traceback (by default one line each).
Default: ``false``.
"""

OTEL_USAGE_RAISE_INTERNAL_ERRORS = "OTEL_USAGE_RAISE_INTERNAL_ERRORS"
"""
.. envvar:: OTEL_USAGE_RAISE_INTERNAL_ERRORS

``true``: an internal error of otel_usage is raised in the application instead of
logged and swallowed; for otel_usage's own tests and debugging, never in production. Read when an
internal error happens. Default: ``false``.
"""

OTEL_USAGE_MAX_PENDING_LOGS = "OTEL_USAGE_MAX_PENDING_LOGS"
"""
.. envvar:: OTEL_USAGE_MAX_PENDING_LOGS

Most units of work (local roots) in progress at once: open, or ended and waiting for their children; a
new unit of work beyond it is not recorded and counted as ``pending_logs_full``. Finished units of work
waiting for assembly are bounded by :envvar:`OTEL_USAGE_MAX_QUEUED_SPANS` instead. Default: ``4096``.
"""

OTEL_USAGE_MAX_QUEUED_SPANS = "OTEL_USAGE_MAX_QUEUED_SPANS"
"""
.. envvar:: OTEL_USAGE_MAX_QUEUED_SPANS

Most spans of finished units of work waiting for the assembler (about 0.6 KB each). From a quarter of
it on, a thread that finishes a unit of work waits until the assembler has brought the backlog down to
an eighth, at most 50 ms per unit of work (it waits for the pipeline's CPU work, never for I/O), so a
burst is slowed to what the pipeline sustains instead of losing logs; at the limit a new unit of work is
not recorded and counted as ``assembly_backlog``. Default: ``65536``.
"""

OTEL_USAGE_MAX_RECORDS_PER_LOG = "OTEL_USAGE_MAX_RECORDS_PER_LOG"
"""
.. envvar:: OTEL_USAGE_MAX_RECORDS_PER_LOG

Most call records in one usage log; further spans of the same unit of work are left out, counted as
``records_per_log`` and reported in the log's ``truncated`` key. Default: ``1000``.
"""

OTEL_USAGE_MAX_LOG_AGE_MILLIS = "OTEL_USAGE_MAX_LOG_AGE_MILLIS"
"""
.. envvar:: OTEL_USAGE_MAX_LOG_AGE_MILLIS

A unit of work still open after this long is emitted as it stands, with ``status`` ``"unfinished"``
and counted as ``log_age``; its later spans count as ``late_span``. Default: ``600000`` (10 minutes).
"""

OTEL_USAGE_GRACE_MILLIS = "OTEL_USAGE_GRACE_MILLIS"
"""
.. envvar:: OTEL_USAGE_GRACE_MILLIS

How long a finished unit of work waits for children that outlive it (asyncio tasks, pool workers)
before its log is assembled without them. Default: ``2000``.
"""

OTEL_USAGE_SCHEDULE_DELAY_MILLIS = "OTEL_USAGE_SCHEDULE_DELAY_MILLIS"
"""
.. envvar:: OTEL_USAGE_SCHEDULE_DELAY_MILLIS

Longest time between a unit of work finishing and the worker assembling its log. Default: ``200``.
"""

OTEL_USAGE_BAGGAGE_ALLOW = "OTEL_USAGE_BAGGAGE_ALLOW"
"""
.. envvar:: OTEL_USAGE_BAGGAGE_ALLOW

Comma-separated baggage keys that, arriving from another process, become info. Inbound baggage is
untrusted: nothing else from it is kept. Reserved keys of the usage log (``data``, ``trace_id``,
``status``, ``schema``, ...) are refused (left out, with a warning). Default: empty.
"""

OTEL_USAGE_REDACT = "OTEL_USAGE_REDACT"
"""
.. envvar:: OTEL_USAGE_REDACT

Comma-separated extra name fragments whose parameters, data and info values are replaced by
``"[REDACTED]"`` (matched case-insensitively, ignoring ``-`` and ``_``). Added to the built-in list
(password, passwd, secret, token, authorization, cookie, api_key, session, credit card, ...).
Default: empty.
"""

OTEL_USAGE_REDACT_DEFAULTS = "OTEL_USAGE_REDACT_DEFAULTS"
"""
.. envvar:: OTEL_USAGE_REDACT_DEFAULTS

``false`` turns the built-in redaction list off (only :envvar:`OTEL_USAGE_REDACT` applies).
Default: ``true``.
"""

OTEL_USAGE_PARAM_MAX_DEPTH = "OTEL_USAGE_PARAM_MAX_DEPTH"
"""
.. envvar:: OTEL_USAGE_PARAM_MAX_DEPTH

Deepest nesting of containers kept when a value is serialized. Default: ``6``.
"""

OTEL_USAGE_PARAM_MAX_LENGTH = "OTEL_USAGE_PARAM_MAX_LENGTH"
"""
.. envvar:: OTEL_USAGE_PARAM_MAX_LENGTH

Longest string (characters) kept when a value is serialized; longer ones are cut and marked.
Default: ``1024``.
"""

OTEL_USAGE_PARAM_MAX_ITEMS = "OTEL_USAGE_PARAM_MAX_ITEMS"
"""
.. envvar:: OTEL_USAGE_PARAM_MAX_ITEMS

Most items kept of one list, dict or set when a value is serialized. Default: ``100``.
"""

OTEL_USAGE_PARAM_MAX_SIZE = "OTEL_USAGE_PARAM_MAX_SIZE"
"""
.. envvar:: OTEL_USAGE_PARAM_MAX_SIZE

Rough budget (characters of JSON) for one serialized value; past it the rest is cut and marked.
Default: ``8192``.
"""

OTEL_USAGE_RECORD_UNSAMPLED = "OTEL_USAGE_RECORD_UNSAMPLED"
"""
.. envvar:: OTEL_USAGE_RECORD_UNSAMPLED

``true``: spans that trace sampling drops are still recorded (RECORD_ONLY) so usage logs stay complete;
``false`` lets trace sampling thin usage logs too. Default: ``true``.
"""

# --- Exporters -----------------------------------------------------------------------------------

# --- Exporters: delivery (queues, retries, spool) ------------------------------------------------

OTEL_USAGE_EXPORT_MAX_QUEUE_SIZE = "OTEL_USAGE_EXPORT_MAX_QUEUE_SIZE"
"""
.. envvar:: OTEL_USAGE_EXPORT_MAX_QUEUE_SIZE

Most usage logs waiting in memory for one exporter (see also
:envvar:`OTEL_USAGE_EXPORT_MAX_QUEUE_BYTES`). Beyond it a new log goes to the spool
(:envvar:`OTEL_USAGE_SPOOL_DIR`), written by the pipeline's own threads, never the application's; only
when the spool is off, full or cannot be written is it dropped, counted as ``queue_full:<exporter>``,
``spool_full:<exporter>`` or ``spool_failed:<exporter>``. Default: ``65536``.
"""

OTEL_USAGE_EXPORT_MAX_QUEUE_BYTES = "OTEL_USAGE_EXPORT_MAX_QUEUE_BYTES"
"""
.. envvar:: OTEL_USAGE_EXPORT_MAX_QUEUE_BYTES

Most bytes of usage logs waiting in memory for one exporter, estimated without serializing (1.4 KB per
log plus 0.55 KB per call record); beyond it logs go to the spool as for
:envvar:`OTEL_USAGE_EXPORT_MAX_QUEUE_SIZE` (on their way there, they wait in a list of
the same bounds; the assembler writes them a batch at a time). Default: ``16777216`` (16 MiB).
"""

OTEL_USAGE_EXPORT_BATCH_SIZE = "OTEL_USAGE_EXPORT_BATCH_SIZE"
"""
.. envvar:: OTEL_USAGE_EXPORT_BATCH_SIZE

Most usage logs handed to an exporter in one call (at most the queue size). Default: ``512``.
"""

OTEL_USAGE_EXPORT_DELAY_MILLIS = "OTEL_USAGE_EXPORT_DELAY_MILLIS"
"""
.. envvar:: OTEL_USAGE_EXPORT_DELAY_MILLIS

Longest time a usage log waits in the queue before its batch is exported (a full batch goes at once).
Default: ``1000``.
"""

OTEL_USAGE_EXPORT_MAX_RETRY_MILLIS = "OTEL_USAGE_EXPORT_MAX_RETRY_MILLIS"
"""
.. envvar:: OTEL_USAGE_EXPORT_MAX_RETRY_MILLIS

How long a failed batch is retried (capped exponential backoff with jitter, or the delay the sink asks
for) before it is spilled to the spool, or, without a spool, dropped and counted as
``export_failed:<exporter>``. ``0`` means a single attempt. Default: ``30000``.
"""

OTEL_USAGE_SPOOL_DIR = "OTEL_USAGE_SPOOL_DIR"
"""
.. envvar:: OTEL_USAGE_SPOOL_DIR

Directory of the local spool: usage logs an exporter could not deliver (or could not queue in memory)
are kept there as JSON Lines, in one subdirectory per sink named after the exporter and its URL, path or
endpoint (``sql-3f2a9c01b7de/sql.jsonl``), the same in every process and run, and re-sent automatically
once the sink works again (by this run or the next), or explicitly with ``otel_usage.replay()`` or
``otel-usage replay DIR``. Created if missing; a directory that cannot be written is an error at start-up.
``none`` turns the spool off (such logs are then dropped and counted). Default: the per-user data
directory, ``~/.local/share/otel-usage/spool`` on Linux (``platformdirs.user_data_dir("otel-usage")``);
when that cannot be created, a warning and no spool.
"""

OTEL_USAGE_SPOOL_MAX_BYTES = "OTEL_USAGE_SPOOL_MAX_BYTES"
"""
.. envvar:: OTEL_USAGE_SPOOL_MAX_BYTES

Most bytes of not-yet-delivered usage logs kept in one exporter's spool file; logs beyond it are dropped
and counted as ``spool_full:<exporter>``. Default: ``268435456`` (256 MiB).
"""

OTEL_USAGE_DURABILITY = "OTEL_USAGE_DURABILITY"
"""
.. envvar:: OTEL_USAGE_DURABILITY

``memory``: usage logs wait for their exporter in memory and reach the spool only when they cannot be
delivered or queued; a normal exit, ``shutdown()`` and exceptions lose nothing, a killed process (kill -9,
the OOM killer) loses what was in memory. ``disk``: the OpenTelemetry Collector's persistent queue model:
every usage log is written to the spool within 50 ms of the end of its unit of work (which is assembled
within 50 ms) and exported from there, so a killed process loses at most its last 100 ms, the rest being
delivered by the next run or ``otel-usage replay``; it costs a write and a read per log. Needs the spool.
Default: ``memory``.
"""

# --- Exporters: file -------------------------------------------------------------------------------

OTEL_USAGE_FILE_PATH = "OTEL_USAGE_FILE_PATH"
"""
.. envvar:: OTEL_USAGE_FILE_PATH

JSON Lines file the file exporter appends usage logs to (its directory is created if missing; a path
that cannot be written is an error at start-up). Default: ``usage.jsonl`` in the working directory.
"""

OTEL_USAGE_FILE_MAX_BYTES = "OTEL_USAGE_FILE_MAX_BYTES"
"""
.. envvar:: OTEL_USAGE_FILE_MAX_BYTES

Size at which the file is rotated (``usage.jsonl`` -> ``usage.jsonl.1`` -> ``usage.jsonl.2`` ...)
before a batch would make it larger; ``0`` never rotates. Default: ``0``.
"""

OTEL_USAGE_FILE_BACKUP_COUNT = "OTEL_USAGE_FILE_BACKUP_COUNT"
"""
.. envvar:: OTEL_USAGE_FILE_BACKUP_COUNT

Rotated files kept; the oldest beyond it is deleted at rotation. Must be at least 1 when
:envvar:`OTEL_USAGE_FILE_MAX_BYTES` is set. Default: ``5``.
"""

OTEL_USAGE_FILE_FSYNC = "OTEL_USAGE_FILE_FSYNC"
"""
.. envvar:: OTEL_USAGE_FILE_FSYNC

``never``: each batch is written to the operating system at once (it survives a crash of the process,
not of the machine); ``batch``: each batch is also fsync'ed to the disk. Default: ``never``.
"""

# --- Exporters: SQL --------------------------------------------------------------------------------

OTEL_USAGE_SQL_URL = "OTEL_USAGE_SQL_URL"
"""
.. envvar:: OTEL_USAGE_SQL_URL

SQLAlchemy URL of the database the SQL exporter writes to. ``postgresql://`` means the psycopg 3 driver
(``pip install 'otel-usage[postgres]'``). Default: ``sqlite:///usage.db`` (in the working directory).
"""

OTEL_USAGE_SQL_TABLE_PREFIX = "OTEL_USAGE_SQL_TABLE_PREFIX"
"""
.. envvar:: OTEL_USAGE_SQL_TABLE_PREFIX

Prefix of the SQL exporter's table names (``<prefix>logs``, ``<prefix>calls``, ``<prefix>schema``); an
identifier (letters, digits, ``_``). An invalid value is an error. Default: ``usage_``.
"""

OTEL_USAGE_SQL_COLUMNS = "OTEL_USAGE_SQL_COLUMNS"
"""
.. envvar:: OTEL_USAGE_SQL_COLUMNS

Info keys stored in real (text, indexed) columns of the logs table besides the JSON info, comma-separated
``key=column`` or ``key`` (column named like the key); a key may be a dotted path into nested info
(``request.path=path``). Example: ``user=user_name,tenant``. An invalid column name is an error.
Default: empty.
"""

OTEL_USAGE_SQL_BUSY_TIMEOUT_MILLIS = "OTEL_USAGE_SQL_BUSY_TIMEOUT_MILLIS"
"""
.. envvar:: OTEL_USAGE_SQL_BUSY_TIMEOUT_MILLIS

SQLite only: how long a writer waits for another process's lock on the database file before the
batch fails (and is retried). Default: ``10000``.
"""

# --- Zero-code mode ---------------------------------------------------------------------------------

OTEL_USAGE_PROBES = "OTEL_USAGE_PROBES"
"""
.. envvar:: OTEL_USAGE_PROBES

Functions to record without changing their code, installed by the ``otel_usage_probes`` instrumentor
(under ``opentelemetry-instrument``, or ``ProbeInstrumentor().instrument()``). Targets separated by
``,`` ``;`` or newlines, each ``module:qualname[=LEVEL][[params]]``: ``shop.cart:add_item``,
``shop.cart:Cart.*`` (every method of a class), ``shop.orders:*`` (every function of a module),
``shop.cart:add_item=INFO[item_id,qty]`` (level, only these parameters), ``shop.pay:charge[-card_number]``
(all but these), ``[return]`` (also the return value). A bad target is a warning naming it. Default: empty.
"""

OTEL_USAGE_PROBES_FILE = "OTEL_USAGE_PROBES_FILE"
"""
.. envvar:: OTEL_USAGE_PROBES_FILE

TOML file of further probe targets, for long lists: ``probes = ["shop.cart:Cart.*", ...]`` and/or
``[[probe]]`` tables with ``target``, ``level``, ``include``, ``exclude``, ``record_return``; also read
from a ``[tool.otel_usage]`` table (so ``pyproject.toml`` works). Added to :envvar:`OTEL_USAGE_PROBES`.
A missing or invalid file is a warning. Default: unset.
"""

# --- Flask ------------------------------------------------------------------------------------------

OTEL_USAGE_FLASK_MODE = "OTEL_USAGE_FLASK_MODE"
"""
.. envvar:: OTEL_USAGE_FLASK_MODE

Which Flask requests are tracked: ``exclude`` tracks every request (static files aside) except excluded
views and blueprints, requests that match no route (404) included; ``include`` tracks only included
views and blueprints. Also an ``app.config`` key. Default: ``exclude``.
"""

OTEL_USAGE_FLASK_TRUSTED_PROXIES = "OTEL_USAGE_FLASK_TRUSTED_PROXIES"
"""
.. envvar:: OTEL_USAGE_FLASK_TRUSTED_PROXIES

How many reverse proxies in front of the Flask app append to ``X-Forwarded-For``: the request's
``client_ip`` is the entry that many hops from the right. ``0`` ignores the header (a client can write
anything in it) and uses the peer address. Also an ``app.config`` key. Default: ``0``.
"""

OTEL_USAGE_FLASK_VISITOR_COOKIE = "OTEL_USAGE_FLASK_VISITOR_COOKIE"
"""
.. envvar:: OTEL_USAGE_FLASK_VISITOR_COOKIE

``true``: unique-visitor tracking. A random visitor id is kept in a cookie signed with the app's
``secret_key`` (HttpOnly, SameSite=Lax, Secure over HTTPS) and recorded as ``request.visitor``. Also an
``app.config`` key. Default: ``false``.
"""

OTEL_USAGE_FLASK_TRACK_STATIC = "OTEL_USAGE_FLASK_TRACK_STATIC"
"""
.. envvar:: OTEL_USAGE_FLASK_TRACK_STATIC

``true``: requests for static files (the ``static`` endpoints of the app and its blueprints) are tracked
too. Also an ``app.config`` key. Default: ``false``.
"""

OTEL_USAGE_FLASK_GEOIP_DATABASE = "OTEL_USAGE_FLASK_GEOIP_DATABASE"
"""
.. envvar:: OTEL_USAGE_FLASK_GEOIP_DATABASE

Path of a local MaxMind database (GeoIP2 or GeoLite2: City, Country or ASN) used to record
``request.geo`` from the client address; never a network call. Needs ``pip install 'otel-usage[geo]'``.
A file that is missing or unreadable is logged as an error at start-up and the app is tracked without
``geo``. Also an ``app.config`` key. Default: unset (no ``geo``).
"""

# --- Transactions: events, log lines, timers ---------------------------------------------------------

OTEL_USAGE_FILE_FORMAT = "OTEL_USAGE_FILE_FORMAT"
"""
.. envvar:: OTEL_USAGE_FILE_FORMAT

Line format of the file exporter: ``json`` (the usage log itself) or ``logdefer`` (LogDefer's JSON
message: ``start``, ``end``, ``logs``, ``timers``, ``data``). Default: ``json``.
"""

OTEL_USAGE_LOG_VERBOSITY = "OTEL_USAGE_LOG_VERBOSITY"
"""
.. envvar:: OTEL_USAGE_LOG_VERBOSITY

Log lines (``otel_usage.log.*``) are recorded when their level is at most this number (LogDefer's
numbers: error 10, warn 20, info 30, debug 40). Default: ``30``.
"""

OTEL_USAGE_LOG_BRIDGE = "OTEL_USAGE_LOG_BRIDGE"
"""
.. envvar:: OTEL_USAGE_LOG_BRIDGE

``true`` records stdlib ``logging`` records emitted inside a unit of work as log lines of its usage
log (subject to :envvar:`OTEL_USAGE_LOG_VERBOSITY`). Default: ``false``.
"""
