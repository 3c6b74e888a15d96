"""The host loop around one engine: batches, persistence, timer, workers."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from .. import Engine, Error
from ._db import Database
from ._loop import BatchHook, Callback, HostLoop, Output
from ._transport import Transport

__all__ = ["Host", "system_error", "now_ms", "BatchHook", "Callback", "Output"]

log = logging.getLogger("shopauth.host")


def now_ms() -> int:
    """The wall clock in Unix epoch milliseconds."""
    return time.time_ns() // 1_000_000


def system_error(message: str) -> Dict[str, Any]:
    """The 900000 envelope (SPEC section 3)."""
    return {"code": 900000, "message": "system error: " + message, "data": None, "kind": "system_error"}


class Host(HostLoop):
    """A thread-safe host around one engine, persisted by changes in SQLite.

    Every call into the engine is one *batch*: the call (``handle``,
    ``handle_many`` or the timer's ``handle_timeout``), the draining of its
    outputs and ``take_changes``; the transitions and the changes are then
    written in one SQLite transaction, and only after that commit are the
    batch's requests sent and its redirects and transitions delivered to the
    callbacks. A commit that fails (disk full, database locked) answers the
    batch's inputs 900000, acts on nothing of it, and the engine is rebuilt
    from the rows (the last committed state) before the next input.

    ``config`` is the engine configuration. ``http`` replaces the default
    urllib3 transport (a callable: ``http_request`` output -> the
    ``http_response`` / ``http_failure`` input). ``on_transition`` and
    ``on_redirect`` receive those outputs, in order, after their commit,
    from the thread that ran the batch (keep them quick; they may call the
    host again). ``workers`` threads perform the requests; ``db_timeout_s``
    is how long a commit waits for a locked database before it fails.
    """

    def __init__(self, config: Dict[str, Any], db_path: str, *,
                 on_transition: Optional[Callback] = None,
                 on_redirect: Optional[Callback] = None,
                 http: Optional[Transport] = None,
                 workers: int = 4,
                 db_timeout_s: float = 5.0,
                 clock: Callable[[], int] = now_ms) -> None:
        self.config = config
        self.db_path = db_path
        self.clock = clock
        self._setup_loop(config, http, workers, on_transition, on_redirect)
        self._lock = threading.Lock()
        # Taken before the batch lock is released, so outputs leave in
        # commit order; re-entrant so a callback may call the host.
        self._dispatch = threading.RLock()
        self._broken: Optional[str] = None
        self.db = Database(db_path, timeout_s=db_timeout_s)
        self.engine = Engine(config)
        self.restore_ms = 0.0
        try:
            self._rebuild()
        except BaseException:
            self.engine.close()
            self.db.close()
            raise

    # -- the engine from the rows ---------------------------------------------

    def _rebuild(self) -> None:
        """(Re)makes the engine from the committed rows. Under the lock."""
        t0 = time.perf_counter()
        text = self.db.snapshot_text()
        engine = Engine(self.config)
        try:
            if text is not None:
                engine.restore(text)
        except BaseException:
            engine.close()
            raise
        old, self.engine = self.engine, engine
        if old is not engine:
            old.close()
        self._broken = None
        self.restore_ms = (time.perf_counter() - t0) * 1000
        # The restored engine re-sends open requests at its next call.
        self._wake.set()

    # -- batches ----------------------------------------------------------------

    def _batch(self, inputs: Optional[Sequence[Dict[str, Any]]],
               before_dispatch: Optional[Callable[[List[Dict[str, Any]]], None]] = None
               ) -> List[Dict[str, Any]]:
        """One batch: inputs (None: a timeout) -> replies, persisted, acted on."""
        self._lock.acquire()
        try:
            if self._broken is not None:
                try:
                    self._rebuild()
                except (Error, sqlite3.Error, OSError) as exc:
                    self._broken = "cannot rebuild the engine from the database (%s)" % type(exc).__name__
                    log.error("%s", self._broken)
                    return [system_error(self._broken) for _ in inputs or ()]
            engine = self.engine
            now = self.clock()
            try:
                if inputs is None:
                    engine.handle_timeout(now)
                    replies: List[Dict[str, Any]] = []
                else:
                    replies = [engine.handle(i, now) for i in inputs]
                outputs = engine.poll_outputs()
                changes = engine.take_changes()
            except Error as exc:  # a panic or a poisoned engine
                self._broken = "engine failure (%s)" % type(exc).__name__
                log.error("batch not applied: %s", self._broken)
                return [system_error(self._broken) for _ in inputs or ()]
            try:
                if self.before_commit is not None:
                    self.before_commit(outputs)
                self.db.commit_batch(outputs, changes)
            except (sqlite3.Error, OSError) as exc:
                # Nothing of this batch is acted on; the engine moved on, so
                # it is rebuilt from the last committed rows.
                reason = "the batch could not be persisted (%s)" % type(exc).__name__
                log.error("%s: %s", reason, exc)
                self._broken = reason
                try:
                    self._rebuild()
                except (Error, sqlite3.Error, OSError):
                    pass  # retried before the next input
                return [system_error(reason) for _ in inputs or ()]
            if self.after_commit is not None:
                self.after_commit(outputs)
            if before_dispatch is not None:
                before_dispatch(replies)
            self._dispatch.acquire()
        finally:
            self._lock.release()
        try:
            self._act(outputs)
        finally:
            self._dispatch.release()
        self._wake.set()
        return replies

    def _act(self, outputs: List[Output]) -> None:
        for out in outputs:
            if out.get("type") == "http_request":
                self._requests.put(out)
            else:
                self._deliver(out)

    def handle(self, input: Dict[str, Any], *,
               before_dispatch: Optional[Callable[[Dict[str, Any]], None]] = None) -> Dict[str, Any]:
        """Applies one input at the wall clock as one batch; returns its reply
        (900000 when the batch could not be persisted). ``before_dispatch``
        is called with the reply after the commit, before any output of the
        batch is acted on."""
        hook = None if before_dispatch is None else (lambda rs: before_dispatch(rs[0]))
        return self._batch([input], hook)[0]

    def handle_many(self, inputs: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """Applies a list of inputs, in order, at one wall-clock instant, as
        ONE batch (one SQLite transaction). Either every reply stands and is
        durable, or every reply is 900000 and none of them happened."""
        if not inputs:
            return []
        return self._batch(list(inputs))

    def handle_timeout(self) -> None:
        """Fires what is due now, as one batch (the timer thread does this)."""
        self._batch(None)

    def poll_timeout(self) -> Optional[int]:
        with self._lock:
            if self._broken is not None:
                return self.clock()
            return self.engine.poll_timeout()

    # -- threads ----------------------------------------------------------------

    def start(self) -> "Host":
        """Starts the timer and the workers, then runs a first timeout batch
        (after a restore it re-sends the requests that were open)."""
        if self._start_threads():
            self.handle_timeout()
        return self

    def close(self) -> None:
        """Stops the threads (requests not yet sent stay committed: they are
        re-sent after the next start) and closes the engine and database."""
        self._stop_threads()
        with self._lock:
            self.engine.close()
            self.db.close()
        self._close_http()

    def _timer(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                deadline = self.poll_timeout()
            except Error:
                deadline = self.clock()
            now = self.clock()
            if deadline is not None and deadline <= now:
                try:
                    self._batch(None)
                except Exception:
                    log.exception("handle_timeout batch failed")
                    self._stopping.wait(1.0)
                    continue
                with self._lock:
                    broken = self._broken is not None
                if broken:  # wait a little before trying the database again
                    self._stopping.wait(1.0)
                continue
            wait = 60.0 if deadline is None else min(60.0, (deadline - now) / 1000.0)
            self._wake.wait(max(wait, 0.001))

    def _worker(self) -> None:
        while True:
            req = self._requests.get()
            if req is None:
                return
            if not self._stopping.is_set():
                self._perform(req)
