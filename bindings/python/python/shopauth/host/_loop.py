"""What every host backend shares: the worker threads that perform the
engine's requests and feed the answers back, the delivery of transitions and
redirects to the callbacks, and starting and stopping the threads.

What does not live here: batches and persistence (``_host`` for SQLite,
``_pg`` for PostgreSQL fleets), the timer loop (each backend knows when
something is due).
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Callable, Dict, List, Optional, TypeVar

from .. import Error
from ._transport import Transport, Urllib3Transport

__all__ = ["HostLoop", "Output", "Callback", "BatchHook"]

log = logging.getLogger("shopauth.host")

Output = Dict[str, Any]
Callback = Callable[[Output], None]
#: ``before_commit`` / ``after_commit`` hooks: called with the batch's
#: outputs (tests use them to crash or to fail at a precise point).
BatchHook = Callable[[List[Output]], None]

_Self = TypeVar("_Self", bound="HostLoop")


class HostLoop:
    """The threads and callbacks of a host; subclasses provide ``handle``,
    the timer loop ``_timer`` and ``_worker`` (which calls ``_perform``)."""

    def _setup_loop(self, config: Dict[str, Any], http: Optional[Transport], workers: int,
                    on_transition: Optional[Callback], on_redirect: Optional[Callback]) -> None:
        self.on_transition = on_transition
        self.on_redirect = on_redirect
        self.workers = max(1, int(workers))
        self.request_timeout_s = float((config.get("timing") or {}).get("request_timeout_s", 60))
        self._own_http = http is None
        self.http: Transport = http if http is not None else Urllib3Transport(
            self.request_timeout_s, pool_size=self.workers)
        #: Test hooks, see ``BatchHook``.
        self.before_commit: Optional[BatchHook] = None
        self.after_commit: Optional[BatchHook] = None
        self._requests: "queue.Queue[Any]" = queue.Queue()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: List[threading.Thread] = []
        self._started = False

    # -- provided by the backends ---------------------------------------------------

    def handle(self, input: Dict[str, Any], *,
               before_dispatch: Optional[Callable[[Dict[str, Any]], None]] = None) -> Dict[str, Any]:
        raise NotImplementedError

    def _timer(self) -> None:
        raise NotImplementedError

    def _worker(self) -> None:
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------

    def query(self, client_id: str, store_id: str) -> Dict[str, Any]:
        return self.handle({"type": "query", "client_id": client_id, "store_id": store_id})

    @property
    def pending_requests(self) -> int:
        """Requests committed and waiting for a worker."""
        return self._requests.qsize()

    def _deliver(self, out: Output) -> None:
        """A transition or redirect output to its callback (errors logged)."""
        kind = out.get("type")
        callback = self.on_transition if kind == "transition" else self.on_redirect if kind == "redirect" else None
        if callback is None:
            return
        try:
            callback(out)
        except Exception:
            log.exception("callback for a %s output failed", kind)

    def _perform(self, req: Output) -> None:
        """Sends one request and feeds its answer back as an input."""
        try:
            answer = self.http(req)
        except Exception as exc:
            answer = {"type": "http_failure", "request_id": req["request_id"],
                      "error": ("%s: %s" % (type(exc).__name__, exc))[:500]}
        if self._stopping.is_set():
            return
        try:
            reply = self.handle(answer)
        except Error:
            if not self._stopping.is_set():
                log.exception("feeding the answer to %s failed", req.get("request_id"))
            return
        if reply.get("code") != 200:
            log.info("answer to %s not taken: %s", req.get("request_id"), reply.get("message"))

    def _start_threads(self) -> bool:
        """Starts the workers and the timer; False when already started."""
        if self._started:
            return False
        self._started = True
        for i in range(self.workers):
            t = threading.Thread(target=self._worker, name="shopauth-http-%d" % i, daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._timer, name="shopauth-timer", daemon=True)
        t.start()
        self._threads.append(t)
        return True

    def _stop_threads(self) -> None:
        """Stops the threads; requests not yet sent stay committed."""
        self._stopping.set()
        self._wake.set()
        for _ in range(self.workers):
            self._requests.put(None)
        for t in self._threads:
            t.join(timeout=max(2.0, self.request_timeout_s + 1))
        self._threads.clear()

    def _close_http(self) -> None:
        close = getattr(self.http, "close", None)
        if self._own_http and callable(close):
            close()

    def start(self: _Self) -> _Self:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Self) -> _Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
