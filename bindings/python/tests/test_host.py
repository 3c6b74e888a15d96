"""shopauth.host.Host: batches persisted before they are acted on, restart
from the rows, claims mirrored into unique indexes, failed commits.

Real HTTP to a loopback server started here, a real SQLite file in tmp_path.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest

from conftest import SECRET
from shopauth.host import Host, Urllib3Transport

NOTIFY_SECRET = "host-test-notify-secret"


class Sink:
    """A loopback HTTP server: records every request; answers with the
    status ``statuses`` gives next (default 200)."""

    def __init__(self) -> None:
        self.received: List[Tuple[str, str, Dict[str, str], bytes]] = []
        self.statuses: List[int] = []
        self.lock = threading.Lock()
        sink = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with sink.lock:
                    sink.received.append((self.command, self.path, dict(self.headers.items()), body))
                    status = sink.statuses.pop(0) if sink.statuses else 200
                out = b'{"ok":true}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = _any
            do_POST = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def paths(self, prefix: str) -> List[Tuple[str, str, Dict[str, str], bytes]]:
        with self.lock:
            return [r for r in self.received if r[1].startswith(prefix)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink()
    try:
        yield s
    finally:
        s.close()


def config(sink: Sink) -> Dict[str, Any]:
    return {
        "secret": SECRET,
        "platforms": {
            "mykey": {"kind": "key", "credential": "token"},
            "vkey": {"kind": "key", "credential": "token",
                     "verify": {"method": "GET", "url": sink.url + "/verify?t={token}", "valid_statuses": [200]}},
        },
        "timing": {"request_timeout_s": 5},
    }


def wait_for(what: str, check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def rows(db: Path, sql: str, *args: Any) -> List[Tuple[Any, ...]]:
    """Reads what is committed, on a connection of its own."""
    conn = sqlite3.connect(str(db))
    try:
        return [tuple(r) for r in conn.execute(sql, args).fetchall()]
    finally:
        conn.close()


def register(store: str, platform: str = "mykey", notify: Optional[str] = None) -> Dict[str, Any]:
    msg: Dict[str, Any] = {"type": "register_store", "client_id": "c1", "store_id": store, "platform": platform}
    if notify:
        msg.update(notify_url=notify, notify_secret=NOTIFY_SECRET)
    return msg


def authorize(store: str, token: str, seller: Optional[str] = None) -> Dict[str, Any]:
    msg: Dict[str, Any] = {"type": "authorize", "client_id": "c1", "store_id": store, "auth_type": "KEY",
                           "auth_info": {"token": token}}
    if seller:
        msg["seller_id"] = seller
    return msg


def state_in_db(db: Path, store: str) -> Optional[str]:
    found = rows(db, "SELECT record FROM stores WHERE store_id = ?", store)
    if not found:
        return None
    state: str = json.loads(found[0][0])["state"]
    return state


def test_outputs_are_acted_on_only_after_their_commit(tmp_path: Path, sink: Sink) -> None:
    db = tmp_path / "host.db"
    real = Urllib3Transport(5)
    sent: List[Dict[str, Any]] = []
    seen_transitions: List[Dict[str, Any]] = []

    def checked_http(req: Dict[str, Any]) -> Dict[str, Any]:
        # The batch that produced this request is committed: the store row
        # says authorized and the transition row is there.
        assert req["purpose"] == "notify"
        body = json.loads(req["body"])
        assert state_in_db(db, body["store_id"]) == "authorized"
        assert rows(db, "SELECT seq FROM transitions WHERE event_id = ?", body["event_id"]) == [(body["seq"],)]
        sent.append(req)
        return real(req)

    def on_transition(out: Dict[str, Any]) -> None:
        assert rows(db, "SELECT body FROM transitions WHERE event_id = ?", out["event_id"]), out
        seen_transitions.append(out)

    with Host(config(sink), str(db), http=checked_http, on_transition=on_transition) as host:
        assert host.handle(register("s1", notify=sink.url + "/notify"))["code"] == 200
        assert host.handle(authorize("s1", "tok-1"))["code"] == 200
        notes = wait_for("the notification", lambda: sink.paths("/notify"))
        _, _, headers, body = notes[0]
        sig = hmac.new(NOTIFY_SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Shopauth-Signature"] == sig
        assert json.loads(body)["auth_status"] == "SUCCESS"
        assert [(t["from"], t["to"]) for t in seen_transitions] == [("unauthorized", "authorized")]
        # The answer was fed back: nothing left to deliver.
        wait_for("the notify answer taken", lambda: host.poll_timeout() is None)
    assert len(sent) == 1
    real.close()


def test_restart_restores_from_rows_and_resends_open_requests(tmp_path: Path, sink: Sink) -> None:
    db = tmp_path / "host.db"
    # A host that commits a verification request and dies before sending it
    # (never started: no worker ever takes it).
    dead = Host(config(sink), str(db))
    replies = dead.handle_many([register("k%d" % i) for i in range(50)] +
                               [authorize("k%d" % i, "tok-%d" % i) for i in range(50)] +
                               [register("v1", "vkey"), authorize("v1", "vtok")])
    assert all(r["code"] == 200 for r in replies), replies
    assert state_in_db(db, "v1") == "pending"
    dead.close()
    assert sink.paths("/verify") == []
    assert rows(db, "SELECT count(*) FROM stores") == [(51,)]

    with Host(config(sink), str(db)) as host:
        for i in range(50):
            assert host.query("c1", "k%d" % i)["data"]["state"] == "authorized"
        wait_for("v1 authorized", lambda: host.query("c1", "v1")["data"]["state"] == "authorized")
        assert len(sink.paths("/verify?t=vtok")) == 1
        # The binding rules came back with the rows.
        assert host.handle(register("k-new"))["code"] == 200
        assert host.handle(authorize("k-new", "tok-7"))["kind"] == "auth_info_taken"
    assert state_in_db(db, "v1") == "authorized"


def test_timer_fires_retries(tmp_path: Path, sink: Sink) -> None:
    sink.statuses = [503]  # the first verification: retried by the timer
    with Host(config(sink), str(db := tmp_path / "host.db")) as host:
        host.handle_many([register("v1", "vkey"), authorize("v1", "vtok")])
        wait_for("v1 authorized", lambda: host.query("c1", "v1")["data"]["state"] == "authorized")
    assert len(sink.paths("/verify")) == 2
    assert state_in_db(db, "v1") == "authorized"


def claims_rows(db: Path) -> List[Tuple[Any, ...]]:
    return rows(db, "SELECT store_id, kind, platform, seller_id, fingerprint FROM claims ORDER BY store_id, kind")


def test_claims_rows_mirror_the_engine_and_its_unique_indexes(tmp_path: Path, sink: Sink) -> None:
    db = tmp_path / "host.db"
    with Host(config(sink), str(db)) as host:
        host.handle_many([register("a"), register("b"), authorize("a", "tok-a", "sel-a"),
                          authorize("b", "tok-b", "sel-b")])
        for store in ("a", "b"):
            view = host.query("c1", store)["data"]
            mirrored = [r for r in claims_rows(db) if r[0] == store]
            expected = sorted(
                (store, c["kind"], c.get("platform"), c.get("seller_id"), c.get("fingerprint"))
                for c in view["claims"])
            assert sorted(mirrored) == expected and len(expected) == 2
        # The indexes refuse what the engine refuses.
        conn = sqlite3.connect(str(db))
        try:
            fp = [r[4] for r in claims_rows(db) if r[0] == "a" and r[1] == "credential"][0]
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute("INSERT INTO claims (store_id, kind, fingerprint) VALUES ('z', 'credential', ?)", (fp,))
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute("INSERT INTO claims (store_id, kind, platform, seller_id)"
                             " VALUES ('z', 'seller', 'mykey', 'sel-a')")
        finally:
            conn.close()
        # One batch where "b" lets go of its credentials and seller and "a"
        # (sorted before it) takes them: the rewrite never trips the indexes.
        replies = host.handle_many([
            {"type": "revoke", "client_id": "c1", "store_id": "a"},
            {"type": "remove_store", "client_id": "c1", "store_id": "b"},
            authorize("a", "tok-b", "sel-b"),
        ])
        assert [r["code"] for r in replies] == [200, 200, 200], replies
        assert rows(db, "SELECT store_id FROM stores") == [("a",)]
        assert {(r[0], r[1], r[3]) for r in claims_rows(db)} == {("a", "credential", None), ("a", "seller", "sel-b")}


def test_failed_commit_answers_900000_acts_on_nothing_and_recovers(tmp_path: Path, sink: Sink) -> None:
    db = tmp_path / "host.db"
    calls: List[Dict[str, Any]] = []

    def http(req: Dict[str, Any]) -> Dict[str, Any]:
        calls.append(req)
        return {"type": "http_response", "request_id": req["request_id"], "status": 200, "body": "{}"}

    transitions: List[Dict[str, Any]] = []
    with Host(config(sink), str(db), http=http, on_transition=transitions.append, db_timeout_s=0.2) as host:
        assert host.handle(register("s0", notify=sink.url + "/n"))["code"] == 200
        # 1. disk full, injected at the commit
        def disk_full(outputs: List[Dict[str, Any]]) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        host.before_commit = disk_full
        reply = host.handle(authorize("s0", "tok-0"))
        assert reply == {"code": 900000, "message": reply["message"], "data": None, "kind": "system_error"}
        assert reply["message"].startswith("system error: ")
        host.before_commit = None
        # Nothing acted on, nothing kept: the engine is the committed one.
        time.sleep(0.2)
        assert calls == [] and transitions == []
        assert host.query("c1", "s0")["data"]["state"] == "unauthorized"
        assert state_in_db(db, "s0") == "unauthorized"

        # 2. the file locked by another writer: a real SQLITE_BUSY
        other = sqlite3.connect(str(db), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            replies = host.handle_many([register("s1"), authorize("s0", "tok-0")])
            assert [r["code"] for r in replies] == [900000, 900000]
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert host.query("c1", "s1")["kind"] == "store_not_exist"
        assert calls == []

        # 3. recovered: the same inputs now go through, and are acted on
        assert host.handle(authorize("s0", "tok-0"))["code"] == 200
        wait_for("the notification sent", lambda: len(calls) == 1)
        assert json.loads(calls[0]["body"])["auth_status"] == "SUCCESS"
        assert state_in_db(db, "s0") == "authorized"
        assert [(t["from"], t["to"]) for t in transitions] == [("unauthorized", "authorized")]


def test_transport_failures_never_quote_the_query() -> None:
    """A failed request's text reaches the engine (and a host's logs): the
    URL's query, which may carry an app secret, is cut out of it."""
    transport = Urllib3Transport(5)
    try:
        url = "http://127.0.0.1:99999/api/v2/token/get?app_key=k&app_secret=SECRET-IN-QUERY"
        answer = transport({"request_id": "r1", "method": "GET", "url": url, "headers": []})
    finally:
        transport.close()
    assert answer["type"] == "http_failure"
    assert answer["request_id"] == "r1"
    assert "SECRET-IN-QUERY" not in answer["error"]
    assert "(query removed)" in answer["error"]
