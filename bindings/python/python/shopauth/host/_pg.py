"""The PostgreSQL backend of ``shopauth.host``: several processes, one database (SPEC section 11).

Design: **one row lock per store**. Every batch (an input, a list of
inputs, or the due timers) is one PostgreSQL transaction:

1. ``route`` names the store of each input (a pure engine call);
2. ``SELECT … FOR UPDATE`` locks those stores' rows (sorted by ref, so two
   batches never deadlock on them); due timers are picked with
   ``FOR UPDATE SKIP LOCKED``, so processes share the due stores;
3. the engine ``load``\\ s the rows, handles the batch, drains its outputs,
   ``take_changes`` and ``unload``\\ s again — the process's engine holds no
   store between batches, so every batch starts from the latest committed
   state;
4. records, claims (unique indexes) and transitions are written, and the
   transaction commits; only then are the outputs acted on.

A commit that loses a race on a claim's unique index is rolled back and the
batch retried with the winner's claims loaded as foreign claims, so the
loser gets exactly the one-engine answer (900003 / ``auth_info_taken`` or
``seller_id_taken``). A store registered by two processes at once is
retried the same way on the stores' primary key. Any other database
failure answers the batch 900000 and acts on nothing of it.

What makes a killed or stopped process harmless:

* its uncommitted transaction never happened (PostgreSQL rolls it back when
  the connection dies; ``idle_in_transaction_session_timeout`` ends the
  session of a process that is stopped while holding a lock, so its locks
  are released and its late ``COMMIT`` fails — it never writes, and never
  sends what that transaction produced);
* what it committed is in the rows: an open request keeps its deadline in
  ``due_at`` and counts as an ``http_failure`` there when no answer came,
  so another process continues it (the engine's retry rules), and a
  notification not acknowledged is delivered again — at least once, in
  order per store (one in flight per store, SPEC section 3).

At most one request per store is in flight across the fleet, because a
store's record (which holds its open request) is only changed under its row
lock. Rate limits are held fleet-wide by dividing each platform's rate by
``fleet_size`` (each of k processes gates at N // k, at least 1).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

import psycopg
import psycopg.sql
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool

from .. import Engine, Error
from ._host import now_ms, system_error
from ._loop import Callback, HostLoop, Output
from ._transport import Transport

__all__ = ["PostgresHost", "pg_schema", "fleet_config", "fleet_rates"]

log = logging.getLogger("shopauth.host.pg")

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

#: Retries of a batch that lost a race (unique index, deadlock, lock timeout).
MAX_TRIES = 8
#: Due stores taken per timer batch.
DUE_BATCH = 32
#: The longest a process waits before it looks for due stores again (other
#: processes add timers it cannot see otherwise).
POLL_S = 0.2
#: Known default rates of rate-gated platforms (SPEC section 5.3).
_DEFAULT_RATES = {"vvtool": 10}


def pg_schema(schema: str) -> str:
    """The DDL of the fleet's tables inside ``schema`` (created if missing)."""
    s = psycopg.sql.Identifier(schema).as_string(None)
    return f"""
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.stores (
    ref       TEXT PRIMARY KEY,
    store_id  TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    platform  TEXT NOT NULL,
    due_at    TIMESTAMPTZ,
    record    TEXT NOT NULL,
    version   BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS stores_due_at ON {s}.stores (due_at) WHERE due_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS {s}.claims (
    store_id    TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('seller', 'credential')),
    platform    TEXT,
    seller_id   TEXT,
    fingerprint TEXT,
    CHECK ((kind = 'seller' AND platform IS NOT NULL AND seller_id IS NOT NULL AND fingerprint IS NULL)
        OR (kind = 'credential' AND fingerprint IS NOT NULL AND platform IS NULL AND seller_id IS NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS claims_seller ON {s}.claims (platform, seller_id) WHERE kind = 'seller';
CREATE UNIQUE INDEX IF NOT EXISTS claims_credential ON {s}.claims (fingerprint) WHERE kind = 'credential';
CREATE INDEX IF NOT EXISTS claims_store ON {s}.claims (store_id);
CREATE TABLE IF NOT EXISTS {s}.transitions (
    event_id    TEXT PRIMARY KEY,
    store_id    TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    body        TEXT NOT NULL,
    written_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS transitions_store ON {s}.transitions (store_id, seq);
"""


def fleet_rates(config: Dict[str, Any], fleet_size: int) -> Dict[str, int]:
    """Each rate-gated platform's share of its rate in a fleet of
    ``fleet_size`` processes: ``rate // fleet_size``, at least 1 per second."""
    k = max(1, int(fleet_size))
    rates: Dict[str, int] = {}
    for section in ("apps", "platforms"):
        for name, app in (config.get(section) or {}).items():
            rate = app.get("rate_limit_per_s")
            if rate is None:
                rate = _DEFAULT_RATES.get(str(app.get("checker")))
            if isinstance(rate, int) and rate > 0:
                rates[str(name)] = max(1, rate // k)
    return rates


def fleet_config(config: Dict[str, Any], fleet_size: int) -> Dict[str, Any]:
    """``config`` with every rate-gated platform's rate divided among
    ``fleet_size`` processes (:func:`fleet_rates`), so the fleet as a whole
    never exceeds the platform's rate."""
    if max(1, int(fleet_size)) == 1:
        return config
    rates = fleet_rates(config, fleet_size)
    out = dict(config)
    for section in ("apps", "platforms"):
        if section in config:
            out[section] = {name: dict(app, rate_limit_per_s=rates[name]) if name in rates else app
                            for name, app in config[section].items()}
    return out


class _Send:
    """One send granted by the :class:`_Pacer`: when it was granted, or,
    once its answer is back, when that was."""

    __slots__ = ("at", "done")

    def __init__(self, at: float) -> None:
        self.at = at
        self.done = False


class _Pacer:
    """Keeps this process's real sends to a rate-gated platform within its
    share: at most ``rate`` in any window of one second (plus a small slack
    for the loopback), counted where the platform counts them. The engine
    gates when it *emits* a request; commits, busy workers and a loaded
    machine delay some sends more than others, so a send is counted from
    its grant until its answer is back (the platform saw it at some moment
    in between) -- a delayed send can never bunch up with later ones inside
    the platform's one-second window."""

    SLACK_S = 0.02

    def __init__(self, rates: Dict[str, int]) -> None:
        self.rates = rates
        self._sent: Dict[str, List[_Send]] = {p: [] for p in rates}
        self._lock = threading.Lock()

    def wait(self, platform: Optional[str], stopping: threading.Event) -> Optional[_Send]:
        """Blocks until a send to ``platform`` fits its share; the grant,
        to hand to :meth:`done` when the answer is back (``None`` for a
        platform without a rate, or when stopping)."""
        if platform not in self.rates:
            return None
        assert platform is not None
        window = 1.0 + self.SLACK_S
        while True:
            with self._lock:
                now = time.monotonic()
                # In flight: the platform may see it at any moment (now).
                live = [s for s in self._sent[platform] if not s.done or s.at > now - window]
                self._sent[platform] = live
                if len(live) < self.rates[platform]:
                    send = _Send(now)
                    live.append(send)
                    return send
                answered = [s.at for s in live if s.done]
                pause = min(answered) + window - now if answered else 0.01
            if stopping.wait(max(pause, 0.001)):
                return None

    def done(self, send: Optional[_Send]) -> None:
        """The answer to ``send`` is back (or it was never sent)."""
        if send is not None:
            with self._lock:
                send.at = time.monotonic()
                send.done = True


_RETRY = (pg_errors.UniqueViolation, pg_errors.DeadlockDetected, pg_errors.SerializationFailure,
          pg_errors.LockNotAvailable)


class _Lost(Exception):
    """A batch lost a race on a unique index: retry with these foreign claims."""

    def __init__(self, wanted: List[Dict[str, Any]]) -> None:
        super().__init__("lost a race on a claim")
        self.wanted = wanted


class PostgresHost(HostLoop):
    """The :class:`~shopauth.host.Host` API over PostgreSQL, for a fleet of
    processes sharing one database (see the module documentation).

    ``dsn`` is a libpq connection string or URL; ``schema`` the PostgreSQL
    schema that holds the tables (created if missing); ``fleet_size`` the
    number of processes the platform rate limits are shared among.
    ``lock_timeout_s`` bounds the wait for a store another process holds,
    ``stale_session_s`` is the ``idle_in_transaction_session_timeout`` that
    frees the locks of a process stopped inside a transaction. The other
    arguments are those of :class:`~shopauth.host.Host`.
    """

    def __init__(self, config: Dict[str, Any], dsn: str, *,
                 schema: str = "shopauth",
                 fleet_size: int = 1,
                 on_transition: Optional[Callback] = None,
                 on_redirect: Optional[Callback] = None,
                 http: Optional[Transport] = None,
                 workers: int = 4,
                 lock_timeout_s: float = 5.0,
                 stale_session_s: float = 2.0,
                 clock: Callable[[], int] = now_ms) -> None:
        self.config = fleet_config(config, fleet_size)
        self._pacer = _Pacer(fleet_rates(config, fleet_size))
        self.dsn = dsn
        self.schema = schema
        self.clock = clock
        self._setup_loop(config, http, workers, on_transition, on_redirect)
        #: Kept for the ``Host`` API: a fleet process restores nothing.
        self.restore_ms = 0.0
        self._s = psycopg.sql.Identifier(schema).as_string(None)
        self._engine_lock = threading.Lock()
        self._dispatch = threading.RLock()
        self.engine = Engine(self.config)
        settings = "SET lock_timeout = %d; SET idle_in_transaction_session_timeout = %d" % (
            int(lock_timeout_s * 1000), int(stale_session_s * 1000))

        def configure(conn: psycopg.Connection[Any]) -> None:
            conn.execute(settings)
            conn.commit()

        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            dsn, min_size=1, max_size=self.workers + 8, configure=configure, open=False,
            kwargs={"autocommit": False})
        try:
            self.pool.open(wait=True, timeout=30)
            with self.pool.connection() as conn:
                # DDL only when a table is missing (CREATE INDEX IF NOT EXISTS
                # locks the table even when the index exists), one process at
                # a time (a transaction-scoped advisory lock).
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("shopauth schema " + schema,))
                row = conn.execute("SELECT to_regclass(%s), to_regclass(%s), to_regclass(%s)",
                                   tuple("%s.%s" % (self._s, t) for t in ("stores", "claims", "transitions"))
                                   ).fetchone()
                if row is None or any(r is None for r in row):
                    conn.execute(pg_schema(schema))
        except BaseException:
            self.engine.close()
            self.pool.close()
            raise

    # -- one batch ----------------------------------------------------------------

    def _route(self, inputs: Sequence[Dict[str, Any]]) -> List[str]:
        refs: Set[str] = set()
        with self._engine_lock:
            for i in inputs:
                r = self.engine.route(i).get("ref")
                if isinstance(r, str):
                    refs.add(r)
        return sorted(refs)

    def _apply(self, rows: List[Tuple[str, str, str]], foreign: List[Dict[str, Any]],
               inputs: Optional[Sequence[Dict[str, Any]]], now: int
               ) -> Tuple[List[Dict[str, Any]], List[Output], Dict[str, Any], Optional[int]]:
        """Load → handle → drain → take_changes → unload, under the engine
        lock; the engine holds no store before or after."""
        with self._engine_lock:
            engine = self.engine
            engine.load('{"stores":[%s],"foreign_claims":%s}' % (",".join(r[2] for r in rows), _dumps(foreign)))
            try:
                # What is due in the loaded stores fires first, as it would
                # have in one engine whose timer ran on time (a deadline may
                # have released a claim the input is about).
                engine.handle_timeout(now)
                replies: List[Dict[str, Any]] = [] if inputs is None else [engine.handle(i, now) for i in inputs]
                outputs = engine.poll_outputs()
                changes = engine.take_changes()
                next_due = engine.poll_timeout()
                # Loaded stores and the ones this batch registered.
                ids = {r[1] for r in rows} | {str(s["store_id"]) for s in changes.get("stores") or []}
                engine.unload({"store_ids": sorted(ids), "foreign_claims": foreign})
            except BaseException:
                # Whatever the engine holds now is not committed state.
                self.engine = Engine(self.config)
                engine.close()
                raise
        return replies, outputs, changes, next_due

    def _lock_rows(self, cur: psycopg.Cursor[Any], refs: List[str]) -> List[Tuple[str, str, str]]:
        if not refs:
            return []
        cur.execute(f"SELECT ref, store_id, record FROM {self._s}.stores WHERE ref = ANY(%s)"
                    f" ORDER BY ref FOR UPDATE", (refs,))
        return [(str(a), str(b), str(c)) for a, b, c in cur.fetchall()]

    def _due_rows(self, cur: psycopg.Cursor[Any], now: int) -> List[Tuple[str, str, str]]:
        cur.execute(f"SELECT ref, store_id, record FROM {self._s}.stores"
                    f" WHERE due_at <= to_timestamp(%s / 1000.0)"
                    f" ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED", (now, DUE_BATCH))
        return [(str(a), str(b), str(c)) for a, b, c in cur.fetchall()]

    def _foreign(self, cur: psycopg.Cursor[Any], wanted: List[Dict[str, Any]], mine: Set[str]
                 ) -> List[Dict[str, Any]]:
        """The committed claims that collide with ``wanted``, held by stores
        outside this batch: the winners' claims."""
        sellers = [(str(c["platform"]), str(c["seller_id"])) for c in wanted if c.get("kind") == "seller"]
        creds = [str(c["fingerprint"]) for c in wanted if c.get("kind") == "credential"]
        out: List[Dict[str, Any]] = []
        if sellers:
            cur.execute(
                f"SELECT c.store_id, c.platform, c.seller_id FROM {self._s}.claims c"
                f" JOIN unnest(%s::text[], %s::text[]) AS w(p, s) ON c.platform = w.p AND c.seller_id = w.s"
                f" WHERE c.kind = 'seller'", ([p for p, _ in sellers], [s for _, s in sellers]))
            out += [{"kind": "seller", "platform": p, "seller_id": s, "store_id": sid}
                    for sid, p, s in cur.fetchall() if sid not in mine]
        if creds:
            cur.execute(f"SELECT store_id, fingerprint FROM {self._s}.claims"
                        f" WHERE kind = 'credential' AND fingerprint = ANY(%s)", (creds,))
            out += [{"kind": "credential", "fingerprint": f, "store_id": sid}
                    for sid, f in cur.fetchall() if sid not in mine]
        return out

    def _write(self, cur: psycopg.Cursor[Any], loaded: Set[str], outputs: List[Output],
               changes: Dict[str, Any]) -> None:
        stores: List[Dict[str, Any]] = changes.get("stores") or []
        ids = [str(s["store_id"]) for s in stores]
        if ids:
            cur.execute(f"DELETE FROM {self._s}.claims WHERE store_id = ANY(%s)", (ids,))
        removed = [i for i, s in zip(ids, stores) if s.get("record") is None]
        if removed:
            cur.execute(f"DELETE FROM {self._s}.stores WHERE store_id = ANY(%s)", (removed,))
        claims: List[Tuple[str, str, Optional[str], Optional[str], Optional[str]]] = []
        for s in stores:
            rec = s.get("record")
            if rec is None:
                continue
            row = (str(s["client_id"]), str(s["platform"]), s.get("due_at"), _dumps(rec), str(s["ref"]))
            if s["ref"] in loaded:
                cur.execute(f"UPDATE {self._s}.stores SET client_id = %s, platform = %s, due_at = %s,"
                            f" record = %s, version = version + 1 WHERE ref = %s", row)
            else:  # a new store: a concurrent registration meets the primary key
                cur.execute(f"INSERT INTO {self._s}.stores (client_id, platform, due_at, record, ref, store_id)"
                            f" VALUES (%s, %s, %s, %s, %s, %s)", row + (str(s["store_id"]),))
            for c in s.get("claims") or []:
                if c.get("kind") == "seller":
                    claims.append((str(s["store_id"]), "seller", str(c["platform"]), str(c["seller_id"]), None))
                else:
                    claims.append((str(s["store_id"]), "credential", None, None, str(c["fingerprint"])))
        if claims:
            cur.executemany(f"INSERT INTO {self._s}.claims (store_id, kind, platform, seller_id, fingerprint)"
                            f" VALUES (%s, %s, %s, %s, %s)", claims)
        transitions = [(str(o["event_id"]), str(o["store_id"]), int(o["seq"]), _dumps(o))
                       for o in outputs if o.get("type") == "transition"]
        if transitions:
            cur.executemany(f"INSERT INTO {self._s}.transitions (event_id, store_id, seq, body)"
                            f" VALUES (%s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING", transitions)

    def _batch(self, inputs: Optional[Sequence[Dict[str, Any]]],
               before_dispatch: Optional[Callable[[List[Dict[str, Any]]], None]] = None
               ) -> Tuple[List[Dict[str, Any]], int, Optional[int]]:
        """One batch -> (replies, stores written, engine's next deadline)."""
        refs = self._route(inputs) if inputs is not None else []
        # Claims lost in a race so far: looked up again, inside each retry,
        # as the winners' foreign claims.
        contested: List[Dict[str, Any]] = []
        n = len(inputs or ())
        for _ in range(MAX_TRIES):
            try:
                with self.pool.connection() as conn:
                    try:
                        with conn.cursor() as cur:
                            now = self.clock()
                            rows = self._lock_rows(cur, refs) if inputs is not None else self._due_rows(cur, now)
                            if inputs is None and not rows:
                                conn.rollback()
                                return [], 0, None
                            foreign = self._foreign(cur, contested, {r[1] for r in rows}) if contested else []
                            replies, outputs, changes, next_due = self._apply(rows, foreign, inputs, now)
                            if self.before_commit is not None:
                                self.before_commit(outputs)
                            try:
                                self._write(cur, {r[0] for r in rows}, outputs, changes)
                            except pg_errors.UniqueViolation:
                                conn.rollback()
                                stores = changes.get("stores") or []
                                raise _Lost([c for s in stores for c in s.get("claims") or []])
                        conn.commit()
                    except BaseException:
                        if not conn.closed:
                            conn.rollback()
                        raise
            except _Lost as lost:
                log.info("batch lost a race on a claim; retried with the winner's claims as foreign claims")
                contested += [c for c in lost.wanted if c not in contested]
                continue
            except _RETRY as exc:
                log.info("batch retried after %s", type(exc).__name__)
                continue
            except (psycopg.Error, OSError) as exc:
                reason = "the batch could not be persisted (%s)" % type(exc).__name__
                log.error("%s: %s", reason, exc)
                return [system_error(reason) for _ in range(n)], 0, None
            except Error as exc:
                reason = "engine failure (%s)" % type(exc).__name__
                log.error("batch not applied: %s", reason)
                return [system_error(reason) for _ in range(n)], 0, None
            committed = self.clock()
            if self.after_commit is not None:
                self.after_commit(outputs)
            if before_dispatch is not None:
                before_dispatch(replies)
            platforms = {str(c["store_id"]): c.get("platform") for c in changes.get("stores") or []}
            with self._dispatch:
                self._act(outputs, committed, platforms)
            self._wake.set()
            return replies, len(changes.get("stores") or []), next_due
        reason = "the batch lost %d races in a row" % MAX_TRIES
        log.error("%s", reason)
        return [system_error(reason) for _ in range(n)], 0, None

    def _act(self, outputs: List[Output], committed: int, platforms: Dict[str, Any]) -> None:
        for out in outputs:
            if out.get("type") == "http_request":
                # Notifications go to the business party, never gated.
                platform = None if out.get("purpose") == "notify" else platforms.get(str(out.get("store_id")))
                self._requests.put((committed, platform, out))
            else:
                self._deliver(out)

    # -- the Host API ---------------------------------------------------------------

    def handle(self, input: Dict[str, Any], *,
               before_dispatch: Optional[Callable[[Dict[str, Any]], None]] = None) -> Dict[str, Any]:
        """Applies one input as one transaction; returns its reply (900000
        when the transaction could not be committed)."""
        hook = None if before_dispatch is None else (lambda rs: before_dispatch(rs[0]))
        return self._batch([input], hook)[0][0]

    def handle_many(self, inputs: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """Applies a list of inputs, in order, as ONE transaction."""
        if not inputs:
            return []
        return self._batch(list(inputs))[0]

    def handle_timeout(self) -> int:
        """Fires the due timers of up to ``DUE_BATCH`` stores no other process
        holds, as one transaction; returns how many stores changed."""
        return self._batch(None)[1]

    def poll_timeout(self) -> Optional[int]:
        """The earliest ``due_at`` of any store in the fleet (ms), or None."""
        try:
            with self.pool.connection() as conn:
                row = conn.execute(
                    f"SELECT (extract(epoch FROM min(due_at)) * 1000)::bigint FROM {self._s}.stores").fetchone()
                conn.rollback()
        except (psycopg.Error, OSError):
            return self.clock()
        return None if row is None or row[0] is None else int(row[0])

    # -- threads ----------------------------------------------------------------------

    def start(self) -> "PostgresHost":
        """Starts the workers and the timer (which also continues whatever
        a killed process committed and left due)."""
        self._start_threads()
        return self

    def close(self) -> None:
        self._stop_threads()
        with self._engine_lock:
            self.engine.close()
        self.pool.close()
        self._close_http()

    def _timer(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            now = self.clock()
            deadline = self.poll_timeout()
            if deadline is not None and deadline <= now:
                try:
                    _, written, next_due = self._batch(None)
                except Exception:
                    log.exception("timer batch failed")
                    self._stopping.wait(1.0)
                    continue
                if written:
                    continue
                # Due but nothing fired (a request waiting for its rate
                # slot): wait for the engine's own next deadline.
                wait = POLL_S if next_due is None else min(POLL_S, max(0, next_due - self.clock()) / 1000.0)
                self._stopping.wait(max(wait, 0.01))
                continue
            wait = POLL_S if deadline is None else min(POLL_S, (deadline - now) / 1000.0)
            self._wake.wait(max(wait, 0.001))

    def _worker(self) -> None:
        limit_ms = int(self.request_timeout_s * 1000)
        while True:
            item = self._requests.get()
            if item is None:
                return
            if self._stopping.is_set():
                continue
            committed, platform, req = item
            send = self._pacer.wait(platform, self._stopping)
            try:
                # A request whose deadline passed while this process was
                # stopped is not sent: the fleet has counted it as failed
                # and retried.
                if self.clock() - committed >= limit_ms - 500:
                    log.warning("request %s not sent: its deadline passed before it could leave",
                                req.get("request_id"))
                    continue
                self._perform(req)
            finally:
                self._pacer.done(send)

    # -- inspection (tests, operators) ---------------------------------------------------

    def records(self) -> Dict[str, Dict[str, Any]]:
        """Every store's committed record, by store id."""
        with self.pool.connection() as conn:
            rows = conn.execute(f"SELECT store_id, record FROM {self._s}.stores").fetchall()
            conn.rollback()
        return {str(a): json.loads(b) for a, b in rows}
