"""``python -m shopauth.host serve``: a thin stdlib HTTP service on Host.

Endpoints (seed 000; JSON bodies; ``Authorization: [Bearer ]<token>`` of the
body's ``client_id``, tokens from the configuration's ``clients``):

* ``POST /api/v1/store/register`` -- ``register_store``
* ``POST /api/v1/store/authorize`` -- ``authorize`` (reply ``{auth_url}`` / ``{}``)
* ``POST /api/v1/store/query`` or ``GET /api/v1/store/query?client_id=&store_id=``
* ``POST /api/v1/store/credentials``, ``/revoke``, ``/remove``, ``/token_rejected``
* ``POST /api/v1/batch`` -- ``{"inputs": [...]}`` of the inputs above, all of
  the authenticated client, applied by ``Host.handle_many`` as one batch
  (one transaction); reply ``data: {"replies": [...]}``
* ``GET /cb/<platform>?<query>`` -- the seller's browser back from the
  platform (``oauth_redirect`` with the raw query): ``302`` to the business
  party's ``redirect_url`` once the attempt has ended with a ``redirect``
  output (waiting up to ``callback_wait_s``), else a small page.
* ``GET /healthz``
"""

from __future__ import annotations

import argparse
import hmac
import html
import json
import logging
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, Union
from urllib.parse import parse_qsl, urlsplit

from ._host import Host

if TYPE_CHECKING:
    from ._pg import PostgresHost

__all__ = ["App", "fleet", "main", "open_host", "serve"]

log = logging.getLogger("shopauth.host.serve")

MAX_BODY = 64 << 20  # batches of tens of thousands of inputs
FIELDS: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "register": ("register_store", ("client_id", "store_id", "platform", "notify_url", "notify_secret")),
    "authorize": ("authorize", ("client_id", "store_id", "seller_id", "auth_type", "auth_info", "redirect_url")),
    "query": ("query", ("client_id", "store_id")),
    "credentials": ("credentials", ("client_id", "store_id")),
    "revoke": ("revoke", ("client_id", "store_id")),
    "remove": ("remove_store", ("client_id", "store_id")),
    "token_rejected": ("token_rejected", ("client_id", "store_id")),
}
BATCH_TYPES = {t for t, _ in FIELDS.values()}
_FINAL = ("authorized", "failed", "expired", "revoked", "removed")

Key = Tuple[str, str, int]


def _key(out: Dict[str, Any]) -> Key:
    return (str(out["client_id"]), str(out["store_id"]), int(out["attempt"]))


def open_host(config: Dict[str, Any], db: str, *,
              on_transition: Optional[Callable[[Dict[str, Any]], None]] = None,
              on_redirect: Optional[Callable[[Dict[str, Any]], None]] = None) -> "Union[Host, PostgresHost]":
    """The host for ``db``: a ``postgresql://`` (or ``postgres://``) URL opens
    the fleet backend (SPEC section 11; ``config["fleet"]``: ``{"size": k,
    "schema": name}``), anything else is a SQLite file."""
    workers = int(config.get("http_workers", 4))
    if db.startswith(("postgresql://", "postgres://")):
        from ._pg import PostgresHost  # psycopg is the optional extra shopauth[postgres]

        fleet = config.get("fleet") or {}
        return PostgresHost(config["engine"], db, fleet_size=int(fleet.get("size", 1)),
                            schema=str(fleet.get("schema", "shopauth")), workers=workers,
                            on_transition=on_transition, on_redirect=on_redirect)
    return Host(config["engine"], db, workers=workers, on_transition=on_transition, on_redirect=on_redirect)


class App:
    """The service's state: the host, client tokens, callback waiters."""

    def __init__(self, config: Dict[str, Any], db_path: str) -> None:
        self.clients: Dict[str, str] = {str(k): str(v) for k, v in (config.get("clients") or {}).items()}
        self.callback_wait_s = float(config.get("callback_wait_s", 10))
        self._cond = threading.Condition()
        self._watch: Dict[Key, Dict[str, Any]] = {}
        self.host = open_host(config, db_path, on_transition=self._transition, on_redirect=self._redirect)
        crash = os.environ.get("SHOPAUTH_HOST_TEST_CRASH")
        if crash:
            self._install_crash(crash)

    # Test hook: SHOPAUTH_HOST_TEST_CRASH=<before_commit|after_commit>:<purpose>[:stop]
    # SIGKILLs the process at that point of the first batch that carries an
    # http_request of that purpose ("*": any purpose); with ":stop" it
    # SIGSTOPs itself there instead, once (the test sends SIGCONT).
    def _install_crash(self, spec: str) -> None:
        point, _, rest = spec.partition(":")
        purpose, _, action = rest.partition(":")
        fired: List[bool] = []

        def hook(outputs: List[Dict[str, Any]]) -> None:
            if fired:
                return
            if any(o.get("type") == "http_request" and purpose in ("*", o.get("purpose")) for o in outputs):
                fired.append(True)
                log.warning("SHOPAUTH_HOST_TEST_CRASH: %s myself %s (%s)",
                            "stopping" if action == "stop" else "killing", point, purpose)
                if action == "stop":
                    for h in logging.getLogger().handlers:
                        h.flush()
                    os.kill(os.getpid(), signal.SIGSTOP)
                else:
                    logging.shutdown()
                    os.kill(os.getpid(), signal.SIGKILL)

        if point == "before_commit":
            self.host.before_commit = hook
        elif point == "after_commit":
            self.host.after_commit = hook
        else:
            raise SystemExit("SHOPAUTH_HOST_TEST_CRASH: unknown point %r" % point)

    def _transition(self, out: Dict[str, Any]) -> None:
        log.info("transition %s/%s %s -> %s attempt %s%s", out["client_id"], out["store_id"], out["from"],
                 out["to"], out["attempt"], " (%s)" % out["reason"] if out.get("reason") else "")
        if out["to"] in _FINAL:
            with self._cond:
                info = self._watch.get(_key(out))
                if info is not None:
                    info["final"], info["reason"] = out["to"], out.get("reason")
                    self._cond.notify_all()

    def _redirect(self, out: Dict[str, Any]) -> None:
        with self._cond:
            info = self._watch.get(_key(out))
            if info is not None:
                info["location"] = out["location"]
                self._cond.notify_all()

    def oauth_redirect(self, platform: str, query: str) -> Tuple[Dict[str, Any], Optional[Dict[str, Any]]]:
        key: List[Key] = []

        def watch(reply: Dict[str, Any]) -> None:
            # After the commit, before this batch's outputs are delivered.
            data = reply.get("data")
            if reply.get("code") == 200 and isinstance(data, dict):
                k = (str(data["client_id"]), str(data["store_id"]), int(data["attempt"]))
                with self._cond:
                    self._watch[k] = {}
                key.append(k)

        reply = self.host.handle({"type": "oauth_redirect", "platform": platform, "query": query},
                                 before_dispatch=watch)
        if not key:
            return reply, None
        deadline = time.monotonic() + self.callback_wait_s
        with self._cond:
            info = self._watch[key[0]]
            while "location" not in info and "final" not in info:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            # A redirect comes in the batch of the final transition.
            self._watch.pop(key[0], None)
        return reply, dict(info)

    def authenticated(self, client_id: Any, header: Optional[str]) -> bool:
        token = (header or "").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        expected = self.clients.get(client_id) if isinstance(client_id, str) else None
        return bool(token) and expected is not None and hmac.compare_digest(
            token.encode("utf-8"), expected.encode("utf-8"))


class Api(BaseHTTPRequestHandler):
    server_version = "shopauth-host/1"
    protocol_version = "HTTP/1.1"
    app: App  # set on a subclass by serve()

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

    def _not_found(self) -> None:
        self._send(404, b'{"code":404,"message":"not found","data":null}', "application/json")

    def _auth(self, client_id: Any) -> bool:
        if self.app.authenticated(client_id, self.headers.get("Authorization")):
            return True
        self._envelope({"code": 401, "message": "unauthorized: bad or missing Authorization", "data": None}, 401)
        return False

    def _illegal(self, what: str, status: int = 200) -> None:
        self._envelope({"code": 900002, "message": "illegal param: " + what, "data": None,
                        "kind": "illegal_param"}, status)

    def _json_body(self) -> Optional[Dict[str, Any]]:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            self._illegal("body too large", 413)
            return None
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._illegal("body must be a JSON object")
            return None
        return body

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        name = path[len("/api/v1/store/"):] if path.startswith("/api/v1/store/") else None
        if path != "/api/v1/batch" and name not in FIELDS:
            self.close_connection = True
            self._not_found()
            return
        body = self._json_body()
        if body is None:
            return
        if name is not None:
            if not self._auth(body.get("client_id")):
                return
            kind, fields = FIELDS[name]
            self._envelope(self.app.host.handle({"type": kind, **{k: body[k] for k in fields if k in body}}))
            return
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            self._illegal("inputs must be a list of objects")
            return
        clients = {i.get("client_id") for i in inputs}
        if len(clients) > 1:
            self._illegal("every input of a batch must have the same client_id")
            return
        if inputs and not self._auth(next(iter(clients))):
            return
        if any(i.get("type") not in BATCH_TYPES for i in inputs):
            self._illegal("inputs[].type must be one of " + ", ".join(sorted(BATCH_TYPES)))
            return
        replies = self.app.host.handle_many(inputs)
        if replies and all(r.get("kind") == "system_error" for r in replies):
            self._envelope(replies[0])
            return
        self._envelope({"code": 200, "message": "SUCCESS", "data": {"replies": replies}})

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self._envelope({"ok": True, "restore_ms": round(self.app.host.restore_ms, 1)})
        elif url.path == "/api/v1/store/query":
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            if self._auth(params.get("client_id")):
                self._envelope(self.app.host.query(params.get("client_id", ""), params.get("store_id", "")))
        elif url.path.startswith("/cb/") and url.path.count("/") == 2:
            self._callback(url.path[len("/cb/"):], url.query)
        else:
            self._not_found()

    def _callback(self, platform: str, query: str) -> None:
        reply, info = self.app.oauth_redirect(platform, query)
        if info is None:
            # Never echo the query (it carries the code and the nonce).
            self._page(400 if reply.get("code") != 900000 else 503, "Authorization not accepted",
                       str(reply.get("message", "")))
        elif info.get("location"):
            self._send(302, b"", "text/plain", [("Location", str(info["location"]))])
        elif info.get("final") == "authorized":
            self._page(200, "Store authorized", "You can close this window.")
        elif info.get("final"):
            self._page(200, "Authorization failed", "Reason: %s. Please try again." % info.get("reason"))
        else:
            self._page(202, "Authorization in progress",
                       "The platform is still confirming the authorization. You can close this window.")


class _Server(ThreadingHTTPServer):
    # The default listen backlog (5) drops connections under a burst of
    # clients; a dropped SYN costs the client a 1 s retransmission.
    request_queue_size = 1024
    daemon_threads = True


def serve(config_path: str, listen: str, db_path: str, fleet_size: Optional[int] = None) -> None:
    with open(config_path, "r", encoding="utf-8") as f:
        config = json.load(f)
    if fleet_size is not None:
        config["fleet"] = {**(config.get("fleet") or {}), "size": fleet_size}
    addr, _, port = listen.rpartition(":")
    t0 = time.perf_counter()
    app = App(config, db_path)
    handler = type("BoundApi", (Api,), {"app": app})
    server = _Server((addr or "127.0.0.1", int(port)), handler)
    server.daemon_threads = True
    app.host.start()
    # Never the URL itself in a log: it may carry a password.
    where = "postgresql" if db_path.startswith(("postgresql://", "postgres://")) else db_path
    log.info("restored %s in %.0f ms (rows + restore), ready in %.0f ms", where, app.host.restore_ms,
             (time.perf_counter() - t0) * 1000)

    def shutdown(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    log.info("listening on http://%s:%d (db %s)", addr, server.server_address[1], where)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        app.host.close()
        log.info("stopped")


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m shopauth.host", description="shopauth host")
    sub = ap.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("serve", help="run the HTTP service")
    sp.add_argument("--config", required=True,
                    help="JSON file: {engine, clients: {client_id: token}, callback_wait_s?, http_workers?}")
    sp.add_argument("--db", required=True,
                    help="SQLite database file (created if missing), or a postgresql:// URL for a fleet")
    sp.add_argument("--listen", default="127.0.0.1:8800", help="HOST:PORT (default 127.0.0.1:8800)")
    sp.add_argument("--fleet-size", type=int, default=None,
                    help="processes sharing the PostgreSQL database (rate limits are divided among them)")
    sp.add_argument("-v", "--verbose", action="store_true")
    fp = sub.add_parser("fleet", help="run N serve processes on one PostgreSQL database (a demo fleet)")
    fp.add_argument("--config", required=True, help="as for serve")
    fp.add_argument("--db", required=True, help="a postgresql:// URL")
    fp.add_argument("--processes", type=int, default=2)
    fp.add_argument("--listen", default="127.0.0.1:8800", help="HOST:PORT of the first; the others on the next ports")
    fp.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(threadName)s %(message)s")
    if args.command == "fleet":
        fleet(args.config, args.db, args.processes, args.listen, args.verbose)
    else:
        serve(args.config, args.listen, args.db, args.fleet_size)


def fleet(config_path: str, db: str, processes: int, listen: str, verbose: bool) -> None:
    """Starts ``processes`` ``serve`` processes on consecutive ports, all on
    ``db``; stops them all on SIGTERM/SIGINT, or when one exits."""
    import subprocess

    if not db.startswith(("postgresql://", "postgres://")):
        raise SystemExit("fleet: --db must be a postgresql:// URL")
    addr, _, port = listen.rpartition(":")
    procs = []
    for i in range(max(1, processes)):
        argv = [sys.executable, "-m", "shopauth.host", "serve", "--config", config_path, "--db", db,
                "--listen", "%s:%d" % (addr or "127.0.0.1", int(port) + i), "--fleet-size", str(processes)]
        procs.append(subprocess.Popen(argv + (["-v"] if verbose else [])))
        log.info("fleet: process %d (pid %d) on %s:%d", i, procs[-1].pid, addr or "127.0.0.1", int(port) + i)
    stopping = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not stopping.wait(0.5):
            if any(p.poll() is not None for p in procs):
                log.error("fleet: a process exited; stopping the others")
                break
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


