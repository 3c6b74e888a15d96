#!/usr/bin/env python3
"""Loopback simulator of the platforms the example service talks to.

Standard library only. One HTTP server plays three parts:

* **Taobao Taiwan (IOP, seed 003)**

  - ``GET /oauth/authorize?...&redirect_uri=...&client_id=...&state=...``:
    the seller's login and consent page. It approves at once, issues a
    one-time code (valid 30 minutes) and answers ``302`` to
    ``redirect_uri?code=...&state=...``. Extra parameters the seller's
    "browser" may add: ``seller`` (comma-separated seller ids the account
    holds, default ``--iop-sellers``) and ``deny=1`` (``error=access_denied``).
  - ``POST /rest/auth/token/create`` and ``/rest/auth/token/refresh``: check
    ``app_key``, ``sign_method`` and the IOP signature exactly (every
    parameter but ``sign`` sorted by name, the API path followed by each
    name and value, HMAC-SHA256 keyed by the app secret, upper-case hex),
    and answer seed 003's token JSON with ``user_info`` sellers, or an IOP
    error body (``{"code": "InvalidSignature", "type": "ISV", ...}``).

* **vv-tool (seed 002)**: ``POST /tool/erps/shop-authorize`` with
  ``Authorization: Bearer <token>`` and the form fields ``shop_id`` and
  ``vvtype``. ``unAuthorize`` until the shop is marked authorized (by
  ``POST /admin/vvtool/authorize {"shop_id": ...}`` or by the seller opening
  ``GET /vv/authorize?shop=...&approve=1``), then ``subAuthorize`` with
  ``withholding_money``.

* **Notification sink (seed 000)**: ``POST /notify`` records every body with
  whether its ``X-Shopauth-Signature`` (lower-case hex HMAC-SHA256 of the
  body keyed by ``--notify-secret``) verifies; ``GET /notifications`` lists
  them. A body that does not verify is answered 401.

Test controls (``/admin/...``, JSON bodies):

* ``GET /admin/stats``: requests seen, held and dropped per kind
  (``authorize``, ``token_create``, ``token_refresh``, ``status_check``,
  ``notify``); ``max_in_1s``: the most requests of each kind that arrived in
  any one-second window; ``refresh``: refresh tokens are single-use (a spent
  one is refused with ``IllegalRefreshToken`` and counted in ``reused``), and
  ``max_concurrent`` is the most refreshes of one token chain (one
  authorization) in flight at once (``--refresh-delay-ms`` makes each take
  that long, so overlaps show; ``--reusable-refresh`` keeps spent tokens
  valid (a platform whose refresh tokens are not single-use), still
  counting their re-use).
* ``POST /admin/hold {"kind": ..., "on": true|false, "process_if_gone": false}``:
  while a hold is on, requests of that kind wait in the simulator. When it is
  released, a request whose client has gone away (the host was killed) is
  dropped unprocessed -- as if it never reached the platform -- unless
  ``process_if_gone`` is set, in which case it is processed and only the
  answer is lost (a notification delivered whose acknowledgement never
  arrived).
* ``POST /admin/fail {"kind": ..., "count": n, "status": 503}``: answer the
  next ``n`` requests of that kind with that HTTP status.
* ``POST /admin/vvtool/authorize {"shop_id": ..., "authorized": true}``.

Only loopback: the server binds 127.0.0.1 unless told otherwise.

    python3 simulator.py --port 8801 --iop-app-key 123456 --iop-app-secret s \\
        --vv-token vvtok --notify-secret ns
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import html
import json
import secrets
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, urlencode, urlsplit

KINDS = ("authorize", "token_create", "token_refresh", "status_check", "notify")
CODE_TTL_S = 1800
MAX_BODY = 1 << 20


def iop_sign(secret: str, api_path: str, params: Dict[str, str]) -> str:
    """The IOP signature: API path, then name+value of every parameter but
    ``sign`` sorted by name (byte order); HMAC-SHA256; upper-case hex."""
    text = api_path + "".join(
        name + params[name]
        for name in sorted(params, key=lambda n: n.encode("utf-8"))
        if name != "sign"
    )
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest().upper()


def notify_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def client_gone(sock: socket.socket) -> bool:
    """True when the peer has closed the connection (a killed host's socket
    is closed by its kernel: readable, and reading gives EOF or a reset)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def max_in_window(times: List[float], width: float) -> int:
    """The most of ``times`` (ascending) inside any window ``[t, t + width)``."""
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


class State:
    """Everything the simulator remembers; one lock."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.lock = threading.Condition()
        self.app_key: str = args.iop_app_key
        self.app_secret: str = args.iop_app_secret
        self.default_sellers: List[str] = [s for s in args.iop_sellers.split(",") if s]
        self.expires_in: int = args.iop_expires_in
        self.refresh_expires_in: int = args.iop_refresh_expires_in
        self.vv_token: str = args.vv_token
        self.withholding_money: int = args.withholding_money
        self.notify_secret: str = args.notify_secret
        self.codes: Dict[str, Dict[str, Any]] = {}
        self.refresh_tokens: Dict[str, List[str]] = {}
        self.authorized_shops: Dict[str, bool] = {}
        self.notifications: List[Dict[str, Any]] = []
        self.holds: Dict[str, Dict[str, Any]] = {}
        self.fails: Dict[str, Tuple[int, int]] = {}
        self.stats: Dict[str, Dict[str, int]] = {
            k: {"seen": 0, "held": 0, "dropped": 0, "answered": 0} for k in KINDS
        }
        self.log: List[Dict[str, Any]] = []
        # Arrival times per kind (monotonic seconds), for the fleet's rate
        # limit: the most requests of a kind in any one-second window.
        self.arrivals: Dict[str, List[float]] = {k: [] for k in KINDS}
        # Single-use refresh tokens: each token chain (one per authorization)
        # counts its refreshes in flight at once and the re-use of a spent token.
        self.refresh_delay_s: float = args.refresh_delay_ms / 1000.0
        self.reusable_refresh: bool = args.reusable_refresh
        self.chain_of: Dict[str, int] = {}
        self.spent: Dict[str, int] = {}
        self.in_flight: Dict[int, int] = {}
        self.refresh: Dict[str, int] = {"max_concurrent": 0, "reused": 0, "chains": 0, "refreshed": 0}

    def count(self, kind: str, what: str) -> None:
        with self.lock:
            self.stats[kind][what] += 1
            self.lock.notify_all()


class Handler(BaseHTTPRequestHandler):
    server_version = "shopauth-simulator/1"
    state: State  # set on the class by main()

    # -- plumbing ---------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        sys.stderr.write("sim: %s %s\n" % (self.address_string(), format % args))

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, ctype: str = "application/json",
              headers: Optional[List[Tuple[str, str]]] = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers or []:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value).encode("utf-8"))

    def _gate(self, kind: str) -> bool:
        """Counts the request, applies holds and injected failures.
        Returns False when the request must not be answered (dropped) or has
        been answered already (injected failure)."""
        st = self.state
        st.count(kind, "seen")
        with st.lock:
            st.arrivals[kind].append(time.monotonic())
            hold = st.holds.get(kind)
            held = hold is not None and hold["on"]
            # What to do with a request whose client is gone is decided when
            # the hold was put on.
            process_if_gone = held and bool(hold and hold["process_if_gone"])
            if held:
                st.stats[kind]["held"] += 1
                st.lock.notify_all()
                deadline = time.monotonic() + 60
                while st.holds[kind]["on"] and time.monotonic() < deadline:
                    st.lock.wait(0.05)
                st.stats[kind]["held"] -= 1
        if held and not process_if_gone and client_gone(self.connection):
            st.count(kind, "dropped")
            self.close_connection = True
            return False
        with st.lock:
            fail = st.fails.get(kind)
            if fail and fail[0] > 0:
                st.fails[kind] = (fail[0] - 1, fail[1])
                status = fail[1]
            else:
                status = 0
        if status:
            self._safe(lambda: self._json(status, {"error": "injected failure"}))
            return False
        return True

    def _safe(self, answer: Any) -> None:
        try:
            answer()
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    # -- routing ----------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        if url.path == "/oauth/authorize":
            self._iop_authorize(params)
        elif url.path == "/vv/authorize":
            self._vv_page(params)
        elif url.path == "/notifications":
            with self.state.lock:
                body = json.dumps({"notifications": self.state.notifications}).encode("utf-8")
            self._send(200, body)
        elif url.path == "/admin/stats":
            with self.state.lock:
                body = json.dumps({"stats": self.state.stats, "authorized_shops": sorted(
                    k for k, v in self.state.authorized_shops.items() if v),
                    "max_in_1s": {k: max_in_window(v, 1.0) for k, v in self.state.arrivals.items()},
                    "refresh": self.state.refresh}).encode("utf-8")
            self._send(200, body)
        elif url.path == "/done":
            self._send(200, b"<!doctype html><title>done</title><p>done</p>", "text/html; charset=utf-8")
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        try:
            body = self._body()
        except ValueError:
            self._json(413, {"error": "body too large"})
            return
        if url.path in ("/rest/auth/token/create", "/rest/auth/token/refresh"):
            kind = "token_create" if url.path.endswith("create") else "token_refresh"
            if self._gate(kind):
                self._safe(lambda: self._iop_token(url.path[len("/rest"):], url.query, body))
                self.state.count(kind, "answered")
        elif url.path == "/tool/erps/shop-authorize":
            if self._gate("status_check"):
                self._safe(lambda: self._vvtool(body))
                self.state.count("status_check", "answered")
        elif url.path == "/notify":
            if self._gate("notify"):
                self._notify(body)
        elif url.path.startswith("/admin/"):
            self._admin(url.path, body)
        else:
            self._json(404, {"error": "not found"})

    # -- IOP ----------------------------------------------------------------

    def _iop_authorize(self, params: Dict[str, str]) -> None:
        st = self.state
        st.count("authorize", "seen")
        redirect_uri = params.get("redirect_uri", "")
        if params.get("client_id") != st.app_key or not redirect_uri.startswith(("http://", "https://")):
            self._send(400, b"<!doctype html><p>unknown app or bad redirect_uri</p>", "text/html; charset=utf-8")
            return
        back: Dict[str, str] = {}
        if params.get("deny") == "1":
            back["error"] = "access_denied"
            back["error_description"] = "the seller refused"
        else:
            code = "0_" + secrets.token_urlsafe(18)
            sellers = [s for s in params.get("seller", "").split(",") if s] or st.default_sellers
            with st.lock:
                st.codes[code] = {"sellers": sellers, "expires": time.time() + CODE_TTL_S, "used": False}
            back["code"] = code
        if "state" in params:
            back["state"] = params["state"]
        sep = "&" if "?" in redirect_uri else "?"
        self._send(302, b"", "text/plain", [("Location", redirect_uri + sep + urlencode(back))])

    def _iop_error(self, code: str, message: str, kind: str = "ISV") -> None:
        self._json(200, {"code": code, "type": kind, "message": message,
                         "request_id": secrets.token_hex(8)})

    def _iop_token(self, api_path: str, query: str, body: bytes) -> None:
        st = self.state
        params = dict(parse_qsl(query, keep_blank_values=True))
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        for required in ("app_key", "timestamp", "sign_method", "sign"):
            if required not in params:
                self._iop_error("MissingParameter" if required != "sign" else "IncompleteSignature",
                                f"missing {required}")
                return
        if params["app_key"] != st.app_key:
            self._iop_error("InvalidAppKey", "unknown app_key")
            return
        if params["sign_method"] != "sha256":
            self._iop_error("InvalidSignMethod", "sign_method must be sha256")
            return
        expected = iop_sign(st.app_secret, api_path, params)
        if not hmac.compare_digest(expected, params["sign"]):
            self._iop_error("IncompleteSignature", "The request signature does not conform to platform standards")
            return
        if api_path != "/auth/token/create":
            rt = params.get("refresh_token", "")
            with st.lock:
                chain = st.chain_of.get(rt, st.spent.get(rt, -1))
                if rt in st.spent:
                    st.refresh["reused"] += 1
                st.in_flight[chain] = st.in_flight.get(chain, 0) + 1
                st.refresh["max_concurrent"] = max(st.refresh["max_concurrent"], st.in_flight[chain])
            try:
                if st.refresh_delay_s:
                    time.sleep(st.refresh_delay_s)
                self._iop_grant(api_path, params)
            finally:
                with st.lock:
                    st.in_flight[chain] -= 1
            return
        self._iop_grant(api_path, params)

    def _iop_grant(self, api_path: str, params: Dict[str, str]) -> None:
        st = self.state
        with st.lock:
            if api_path == "/auth/token/create":
                if params.get("grantType", "authorization_code") != "authorization_code":
                    self._iop_error("InvalidParameter", "grantType")
                    return
                entry = st.codes.get(params.get("code", ""))
                if entry is None or entry["used"] or entry["expires"] < time.time():
                    self._iop_error("InvalidCode", "Invalid authorization code")
                    return
                entry["used"] = True
                sellers = entry["sellers"]
                chain = st.refresh["chains"]
                st.refresh["chains"] += 1
            else:
                rt = params.get("refresh_token", "")
                if rt not in st.refresh_tokens:
                    self._iop_error("IllegalRefreshToken", "illegal refresh token")
                    return
                if st.reusable_refresh:  # a spent token stays valid (counted in "reused")
                    sellers, chain = st.refresh_tokens[rt], st.chain_of[rt]
                else:
                    sellers, chain = st.refresh_tokens.pop(rt), st.chain_of.pop(rt)
                st.spent[rt] = chain
                st.refresh["refreshed"] += 1
            access = "50000" + secrets.token_hex(24)
            refresh = "50001" + secrets.token_hex(24)
            st.refresh_tokens[refresh] = sellers
            st.chain_of[refresh] = chain
        self._json(200, {
            "code": "0",
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": st.expires_in,
            "refresh_expires_in": st.refresh_expires_in,
            "account_platform": "seller_center",
            "account": "seller@example.test",
            "user_info": [{"seller_id": s, "user_id": 10100 + i} for i, s in enumerate(sellers)],
            "request_id": secrets.token_hex(8),
        })

    # -- vv-tool ------------------------------------------------------------

    def _vvtool(self, body: bytes) -> None:
        st = self.state
        envelope = {"msec": 3, "time": int(time.time())}
        auth = self.headers.get("Authorization", "")
        if not hmac.compare_digest(auth.encode("utf-8"), ("Bearer " + st.vv_token).encode("utf-8")):
            self._json(200, {"code": 401, "msg": "Invalid identity certificate", **envelope})
            return
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        shop = form.get("shop_id", "")
        if not shop or form.get("vvtype", "1") not in ("1", "2"):
            self._json(200, {"code": 100, "msg": "Request parameter error", **envelope})
            return
        with st.lock:
            authorized = st.authorized_shops.get(shop, False)
        status = "subAuthorize" if authorized else "unAuthorize"
        self._json(200, {"code": 0, "msg": "success", **envelope,
                         "data": {"status": status,
                                  "withholding_money": st.withholding_money if authorized else 0}})

    def _vv_page(self, params: Dict[str, str]) -> None:
        shop = params.get("shop", "")
        if params.get("approve") == "1" and shop:
            with self.state.lock:
                self.state.authorized_shops[shop] = True
            text = "<p>shop %s authorized</p>" % html.escape(shop)
        else:
            text = '<p>scan to authorize shop %s, or <a href="?shop=%s&amp;approve=1">approve</a></p>' % (
                html.escape(shop), html.escape(shop))
        self._send(200, ("<!doctype html><title>vv-tool</title>" + text).encode("utf-8"), "text/html; charset=utf-8")

    # -- notification sink -------------------------------------------------

    def _notify(self, body: bytes) -> None:
        st = self.state
        given = self.headers.get("X-Shopauth-Signature", "")
        verified = hmac.compare_digest(given.encode("utf-8"), notify_signature(st.notify_secret, body).encode("utf-8"))
        try:
            parsed: Any = json.loads(body)
        except ValueError:
            parsed = None
        with st.lock:
            st.notifications.append({"body": body.decode("utf-8", "replace"), "json": parsed,
                                     "signature": given, "verified": verified,
                                     "received_at_ms": int(time.time() * 1000)})
            st.stats["notify"]["answered"] += 1
            st.lock.notify_all()
        if verified:
            self._safe(lambda: self._json(200, {"ok": True}))
        else:
            self._safe(lambda: self._json(401, {"ok": False, "error": "bad signature"}))

    # -- admin ----------------------------------------------------------------

    def _admin(self, path: str, body: bytes) -> None:
        st = self.state
        try:
            req: Dict[str, Any] = json.loads(body or b"{}")
        except ValueError:
            self._json(400, {"error": "JSON body expected"})
            return
        with st.lock:
            if path == "/admin/hold" and req.get("kind") in KINDS:
                st.holds[req["kind"]] = {"on": bool(req.get("on", True)),
                                         "process_if_gone": bool(req.get("process_if_gone", False))}
            elif path == "/admin/fail" and req.get("kind") in KINDS:
                st.fails[req["kind"]] = (int(req.get("count", 1)), int(req.get("status", 503)))
            elif path == "/admin/vvtool/authorize" and req.get("shop_id"):
                st.authorized_shops[str(req["shop_id"])] = bool(req.get("authorized", True))
            else:
                self._json(400, {"error": "unknown admin request"})
                return
            st.lock.notify_all()
        self._json(200, {"ok": True})


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--iop-app-key", required=True)
    ap.add_argument("--iop-app-secret", required=True)
    ap.add_argument("--iop-sellers", default="1001,2001", help="sellers of an approving account (comma-separated)")
    ap.add_argument("--iop-expires-in", type=int, default=259200)
    ap.add_argument("--iop-refresh-expires-in", type=int, default=2592000)
    ap.add_argument("--vv-token", required=True)
    ap.add_argument("--withholding-money", type=int, default=2)
    ap.add_argument("--refresh-delay-ms", type=int, default=0,
                    help="time a token refresh takes (makes overlapping refreshes observable)")
    ap.add_argument("--reusable-refresh", action="store_true",
                    help="a spent refresh token stays valid (IOP-like) instead of single-use")
    ap.add_argument("--notify-secret", required=True)
    args = ap.parse_args(argv)
    Handler.state = State(args)
    ThreadingHTTPServer.request_queue_size = 1024  # bursts of requests from a fleet: no dropped SYNs
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    sys.stderr.write("sim: listening on http://%s:%d\n" % (args.host, server.server_address[1]))
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
