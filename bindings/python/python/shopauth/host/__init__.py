"""``shopauth.host``: the reusable host loop around the sans-IO engine.

:class:`Host` runs one engine for a Python service: it applies inputs in
batches at the wall clock, persists every batch *by changes* in SQLite (one
transaction per batch, before anything of it is acted on), performs the
engine's HTTP requests (notifications included) with pooled urllib3
connections, runs the engine's timers, and restores from the rows at start.

``python -m shopauth.host serve --config CONFIG --db FILE --listen HOST:PORT``
runs a small HTTP service on it (:func:`serve`, :class:`App`).

:class:`PostgresHost` (extra ``shopauth[postgres]``) is the same API for a
fleet of processes sharing one PostgreSQL database (SPEC section 11); ``serve
--db postgresql://…`` uses it, and ``python -m shopauth.host fleet`` starts N
such processes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._db import SCHEMA, Database
from ._host import Host, now_ms, system_error
from ._serve import App, fleet, main, open_host, serve
from ._transport import MAX_RESPONSE, Transport, Urllib3Transport


if TYPE_CHECKING:
    from ._pg import PostgresHost


def __getattr__(name: str) -> object:
    # The PostgreSQL backend needs the optional extra shopauth[postgres]
    # (psycopg); it is imported only when asked for.
    if name == "PostgresHost":
        from ._pg import PostgresHost

        return PostgresHost
    raise AttributeError(name)

__all__ = ["App", "Database", "fleet", "main", "open_host", "serve", "Host", "PostgresHost", "MAX_RESPONSE", "SCHEMA", "Transport", "Urllib3Transport", "now_ms",
           "system_error"]
