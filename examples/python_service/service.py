#!/usr/bin/env python3
"""Example host: a store-authorization HTTP service around the shopauth engine.

Standard library only (besides the ``shopauth`` package): ``http.server``
for the API, ``urllib.request`` for the engine's outgoing requests,
``sqlite3`` for persistence, ``threading`` for the timer and the workers.

Endpoints (seed 000):

* ``POST /api/v1/store/authorize`` -- the store-authorization request, JSON
  body ``{client_id, store_id, seller_id?, auth_type, auth_info?, redirect_url?}``
  and ``Authorization: <token>`` (or ``Bearer <token>``); the reply is the
  engine's envelope ``{code, message, data}`` as is.
* ``POST /api/v1/store/register`` -- ``{client_id, store_id, platform,
  notify_url?, notify_secret?}`` (``register_store``).
* ``GET /api/v1/store/query?client_id=...&store_id=...`` (``query``).
* ``GET /cb/<platform>?<query>`` -- where the platform sends the seller's
  browser back (``oauth_redirect``). Answers ``302`` to the business party's
  ``redirect_url`` once the token exchange has ended, or a small HTML page.
* ``GET /healthz``.

Every engine call and the draining of its outputs happen under one lock, in
one "batch": the transitions it produced and the engine snapshot are written
to SQLite in one transaction *before* any of its HTTP requests is sent, so a
crash (even ``kill -9``) at any moment loses nothing -- on restart the
snapshot is restored and the engine sends again whatever requests were open.

    python3 service.py --config service.json --port 8800 --db shopauth.db

The configuration file::

    {
      "engine": { ... the shopauth engine configuration ... },
      "clients": {"<client_id>": "<API token of that business party>"},
      "callback_wait_s": 10,
      "http_workers": 4
    }
"""

from __future__ import annotations

import argparse
import hmac
import html
import json
import logging
import os
import queue
import signal
import socket
import sqlite3
import sys
import threading
import time
import urllib.error
import urllib.request
from http.client import HTTPException
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

import shopauth

log = logging.getLogger("service")

MAX_BODY = 1 << 20          # API request bodies
MAX_RESPONSE = 4 << 20      # bodies read from platforms
AUTHORIZE_FIELDS = ("client_id", "store_id", "seller_id", "auth_type", "auth_info", "redirect_url")
REGISTER_FIELDS = ("client_id", "store_id", "platform", "notify_url", "notify_secret")


def now_ms() -> int:
    return int(time.time() * 1000)


SCHEMA = """
CREATE TABLE IF NOT EXISTS transitions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT NOT NULL UNIQUE,
    seq         INTEGER NOT NULL,
    client_id   TEXT NOT NULL,
    store_id    TEXT NOT NULL,
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    at          TEXT NOT NULL,
    reason      TEXT,
    cost        INTEGER,
    json        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS redirects (
    client_id   TEXT NOT NULL,
    store_id    TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    location    TEXT NOT NULL,
    PRIMARY KEY (client_id, store_id, attempt)
);
CREATE TABLE IF NOT EXISTS snapshot (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    saved_at_ms INTEGER NOT NULL,
    json        TEXT NOT NULL
);
"""


class Store:
    """SQLite persistence. Used only under the host's engine lock."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed batch survives a power loss too (NORMAL would
        # already survive the process being killed).
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(SCHEMA)

    def load_snapshot(self) -> Optional[str]:
        row = self.db.execute("SELECT json FROM snapshot WHERE id = 1").fetchone()
        return None if row is None else str(row[0])

    def save_batch(self, outputs: List[Dict[str, Any]], snapshot: str) -> None:
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            for out in outputs:
                kind = out.get("type")
                if kind == "transition":
                    cost = out.get("cost")
                    cur.execute(
                        "INSERT OR IGNORE INTO transitions (event_id, seq, client_id, store_id, from_state,"
                        " to_state, attempt, at, reason, cost, json) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (out["event_id"], out["seq"], out["client_id"], out["store_id"], out["from"],
                         out["to"], out["attempt"], out["at"], out.get("reason"),
                         cost if isinstance(cost, int) else None, json.dumps(out, separators=(",", ":"))),
                    )
                elif kind == "redirect":
                    cur.execute(
                        "INSERT OR REPLACE INTO redirects (client_id, store_id, attempt, location) VALUES (?,?,?,?)",
                        (out["client_id"], out["store_id"], out["attempt"], out["location"]),
                    )
            cur.execute(
                "INSERT INTO snapshot (id, saved_at_ms, json) VALUES (1, ?, ?)"
                " ON CONFLICT(id) DO UPDATE SET saved_at_ms = excluded.saved_at_ms, json = excluded.json",
                (now_ms(), snapshot),
            )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.db.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The engine wants to see a platform's 3xx as it is."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Host:
    """The engine, its persistence, its transport and its timer."""

    def __init__(self, config: Dict[str, Any], db_path: str) -> None:
        self.engine_config: Dict[str, Any] = config["engine"]
        self.clients: Dict[str, str] = dict(config.get("clients", {}))
        self.callback_wait_s = float(config.get("callback_wait_s", 10))
        self.workers = int(config.get("http_workers", 4))
        self.request_timeout_s = float(self.engine_config.get("timing", {}).get("request_timeout_s", 60))
        self.lock = threading.Lock()
        self.engine = shopauth.Engine(self.engine_config)
        self.store = Store(db_path)
        self.requests: "queue.Queue[Optional[Dict[str, Any]]]" = queue.Queue()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        # attempt results for the callback endpoint: (client, store, attempt) -> info
        self.results: Dict[Tuple[str, str, int], Dict[str, Any]] = {}
        self.results_cond = threading.Condition(self.lock)
        self.opener = urllib.request.build_opener(_NoRedirect())
        self.threads: List[threading.Thread] = []

        saved = self.store.load_snapshot()
        if saved is not None:
            # Refuses (SnapshotError) a snapshot of another configuration:
            # better to stop than to start empty and lose the stores.
            self.engine.restore(saved)
            log.info("restored the engine from the saved snapshot")

    # -- the one way into the engine ------------------------------------

    def call(self, fn: Callable[[shopauth.Engine], Any]) -> Any:
        """Runs one engine call and its batch: drain, persist, dispatch."""
        with self.lock:
            try:
                result = fn(self.engine)
                outputs = self.engine.poll_outputs()
                snap_json = getattr(self.engine, "snapshot_json", None)
                snapshot = snap_json() if snap_json else json.dumps(self.engine.snapshot())
                self.store.save_batch(outputs, snapshot)
            except (shopauth.PanicError, shopauth.PoisonedError, sqlite3.Error, OSError):
                if self.stopping.is_set():
                    raise
                # Fail-stop: the engine moved on but its batch is not durable
                # (or the engine is poisoned). Carrying on would lose those
                # outputs; a restart resumes from the last saved snapshot.
                log.critical("cannot continue safely; exiting", exc_info=True)
                logging.shutdown()
                os._exit(70)
            # Only now that the batch is durable do its effects leave the process.
            for out in outputs:
                kind = out.get("type")
                if kind == "http_request":
                    self.requests.put(out)
                elif kind == "transition":
                    log.info("transition %s/%s %s -> %s attempt %s%s", out["client_id"], out["store_id"],
                             out["from"], out["to"], out["attempt"],
                             " (%s)" % out["reason"] if out.get("reason") else "")
                    if out["to"] not in ("requested", "pending"):
                        key = (out["client_id"], out["store_id"], int(out["attempt"]))
                        if key in self.results:
                            self.results[key]["final"] = out["to"]
                            self.results[key]["reason"] = out.get("reason")
                elif kind == "redirect":
                    key = (out["client_id"], out["store_id"], int(out["attempt"]))
                    if key in self.results:
                        self.results[key]["location"] = out["location"]
            if outputs:
                self.results_cond.notify_all()
        self.wake.set()
        return result

    def handle(self, message: Dict[str, Any]) -> Dict[str, Any]:
        reply: Dict[str, Any] = self.call(lambda e: e.handle(message, now_ms()))
        return reply

    # -- threads ----------------------------------------------------------

    def start(self) -> None:
        for i in range(self.workers):
            t = threading.Thread(target=self._worker, name="http-%d" % i, daemon=True)
            t.start()
            self.threads.append(t)
        t = threading.Thread(target=self._timer, name="timer", daemon=True)
        t.start()
        self.threads.append(t)
        # After a restore, this first call sends again the requests that were
        # open when the snapshot was taken (new request ids, re-signed now).
        self.call(lambda e: e.handle_timeout(now_ms()))

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        for _ in range(self.workers):
            self.requests.put(None)
        for t in self.threads:
            t.join(timeout=2)
        with self.lock:
            self.engine.close()
            self.store.close()

    def _timer(self) -> None:
        while not self.stopping.is_set():
            self.wake.clear()
            with self.lock:
                deadline = self.engine.poll_timeout()
            now = now_ms()
            if deadline is not None and deadline <= now:
                try:
                    self.call(lambda e: e.handle_timeout(now_ms()))
                except Exception:
                    log.exception("handle_timeout failed")
                    self.stopping.wait(1)
                continue
            wait = 5.0 if deadline is None else min(5.0, (deadline - now) / 1000.0)
            self.wake.wait(max(wait, 0.001))

    def _worker(self) -> None:
        while True:
            req = self.requests.get()
            if req is None:
                return
            try:
                answer = self._perform(req)
                reply = self.handle(answer)
                if reply.get("code") != 200:
                    # unknown_request: it timed out in the engine meanwhile, or
                    # belongs to an engine from before a restore.
                    log.info("answer to %s not taken: %s", req["request_id"], reply.get("message"))
            except Exception:
                if not self.stopping.is_set():
                    log.exception("worker failed on %s", req.get("request_id"))

    def _perform(self, req: Dict[str, Any]) -> Dict[str, Any]:
        body = req.get("body")
        http_req = urllib.request.Request(
            req["url"], data=None if body is None else body.encode("utf-8"), method=req["method"])
        for name, value in req.get("headers") or []:
            http_req.add_header(name, value)
        rid = req["request_id"]
        log.info("%s %s %s %s sending", rid, req["purpose"], req["method"], urlsplit(req["url"]).path)
        started = time.monotonic()
        try:
            with self.opener.open(http_req, timeout=self.request_timeout_s) as resp:
                status, headers, raw = resp.status, resp.getheaders(), resp.read(MAX_RESPONSE)
        except urllib.error.HTTPError as err:  # a non-2xx answer is still an answer
            status, headers = err.code, list(err.headers.items()) if err.headers else []
            try:
                raw = err.read(MAX_RESPONSE)
            except (OSError, HTTPException):
                raw = b""
        except (urllib.error.URLError, OSError, HTTPException, ValueError) as err:
            reason = getattr(err, "reason", err)
            if isinstance(reason, socket.timeout) or isinstance(err, socket.timeout):
                text = "timeout"
            else:
                text = "%s: %s" % (type(reason).__name__, reason)
            log.info("%s %s %s -> failure (%s)", rid, req["purpose"], req["method"], text)
            return {"type": "http_failure", "request_id": rid, "error": text[:500]}
        log.info("%s %s %s %s -> %d in %.0f ms", rid, req["purpose"], req["method"],
                 urlsplit(req["url"]).path, status, (time.monotonic() - started) * 1000)
        return {"type": "http_response", "request_id": rid, "status": status,
                "headers": [[k, v] for k, v in headers], "body": raw.decode("utf-8", "replace")}

    # -- the seller's browser ---------------------------------------------------

    def oauth_redirect(self, platform: str, query: str) -> Tuple[Dict[str, Any], Optional[Dict[str, Any]]]:
        """Feeds the redirect and waits (bounded) for the attempt to end."""
        key: Optional[Tuple[str, str, int]] = None

        def feed(engine: shopauth.Engine) -> Dict[str, Any]:
            nonlocal key
            reply: Dict[str, Any] = engine.handle(
                {"type": "oauth_redirect", "platform": platform, "query": query}, now_ms())
            data = reply.get("data")
            if reply.get("code") == 200 and isinstance(data, dict):
                # Registered before this batch's outputs are looked at (a denial
                # ends the attempt at once) and before any later batch.
                key = (str(data["client_id"]), str(data["store_id"]), int(data["attempt"]))
                self.results[key] = {}
            return reply

        reply: Dict[str, Any] = self.call(feed)
        if key is None:
            return reply, None
        deadline = time.monotonic() + self.callback_wait_s
        with self.lock:
            info = self.results[key]
            # A redirect output comes in the same batch as the final transition.
            while "final" not in info and not self.stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.results_cond.wait(left)
            self.results.pop(key, None)
        return reply, dict(info)


def _bearer(header: Optional[str]) -> str:
    if not header:
        return ""
    header = header.strip()
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return header


class Api(BaseHTTPRequestHandler):
    server_version = "shopauth-example/1"
    host: Host  # set on the class by serve()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: bytes, ctype: str, extra: Optional[List[Tuple[str, str]]] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in extra or []:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _envelope(self, reply: Dict[str, Any], status: int = 200) -> None:
        self._send(status, json.dumps(reply, ensure_ascii=False).encode("utf-8"), "application/json; charset=utf-8")

    def _page(self, status: int, title: str, text: str) -> None:
        body = "<!doctype html><meta charset=utf-8><title>%s</title><h1>%s</h1><p>%s</p>" % (
            html.escape(title), html.escape(title), html.escape(text))
        self._send(status, body.encode("utf-8"), "text/html; charset=utf-8")

    def _authenticated(self, client_id: Any) -> bool:
        """Seed 000's Authorization header: the business party's token. The
        engine trusts client_id; checking who sends it is the host's job."""
        token = _bearer(self.headers.get("Authorization"))
        expected = self.host.clients.get(client_id) if isinstance(client_id, str) else None
        ok = bool(token) and expected is not None and hmac.compare_digest(
            token.encode("utf-8"), expected.encode("utf-8"))
        if not ok:
            self._envelope({"code": 401, "message": "unauthorized: bad or missing Authorization", "data": None}, 401)
        return ok

    def _json_body(self) -> Optional[Dict[str, Any]]:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self._envelope({"code": 900002, "message": "illegal param: body too large", "data": None,
                            "kind": "illegal_param"}, 413)
            return None
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._envelope({"code": 900002, "message": "illegal param: body must be a JSON object",
                            "data": None, "kind": "illegal_param"})
            return None
        return body

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        if path not in ("/api/v1/store/authorize", "/api/v1/store/register"):
            self._send(404, b'{"code":404,"message":"not found","data":null}', "application/json")
            return
        body = self._json_body()
        if body is None or not self._authenticated(body.get("client_id")):
            return
        if path == "/api/v1/store/authorize":
            message = {"type": "authorize", **{k: body[k] for k in AUTHORIZE_FIELDS if k in body}}
        else:
            message = {"type": "register_store", **{k: body[k] for k in REGISTER_FIELDS if k in body}}
        self._envelope(self.host.handle(message))

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self._send(200, b'{"ok":true}', "application/json")
        elif url.path == "/api/v1/store/query":
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            if self._authenticated(params.get("client_id")):
                self._envelope(self.host.handle(
                    {"type": "query", "client_id": params.get("client_id", ""), "store_id": params.get("store_id", "")}))
        elif url.path.startswith("/cb/") and url.path.count("/") == 2:
            self._callback(url.path[len("/cb/"):], url.query)
        else:
            self._send(404, b'{"code":404,"message":"not found","data":null}', "application/json")

    def _callback(self, platform: str, query: str) -> None:
        reply, info = self.host.oauth_redirect(platform, query)
        if info is None:
            # Never echo the query (it carries the code and the nonce).
            self._page(400, "Authorization not accepted", str(reply.get("message", "")))
        elif info.get("location"):
            self._send(302, b"", "text/plain", [("Location", info["location"])])
        elif info.get("final") == "authorized":
            self._page(200, "Store authorized", "You can close this window.")
        elif info.get("final"):
            self._page(200, "Authorization failed", "Reason: %s. Please try again." % info.get("reason"))
        else:
            self._page(202, "Authorization in progress",
                       "The platform is still confirming the authorization. You can close this window.")


def serve(config_path: str, host_addr: str, port: int, db_path: str) -> None:
    with open(config_path, "r", encoding="utf-8") as f:
        config = json.load(f)
    host = Host(config, db_path)
    Api.host = host
    server = ThreadingHTTPServer((host_addr, port), Api)
    server.daemon_threads = True
    host.start()

    def shutdown(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    log.info("listening on http://%s:%d (db %s)", host_addr, server.server_address[1], db_path)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        host.stop()
        log.info("stopped")


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description="shopauth example HTTP service")
    ap.add_argument("--config", required=True, help="JSON file: {engine, clients, callback_wait_s, http_workers}")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--db", required=True, help="SQLite database file (created if missing)")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s service %(threadName)s %(message)s")
    serve(args.config, args.host, args.port, args.db)


if __name__ == "__main__":
    main()
