"""SQLite persistence by changes (SPEC section 10)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Dict, List, Optional, Sequence, Tuple

__all__ = ["Database", "SCHEMA"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS stores (
    store_id  TEXT PRIMARY KEY,
    ref       TEXT UNIQUE NOT NULL,
    client_id TEXT NOT NULL,
    platform  TEXT NOT NULL,
    due_at    TEXT,
    record    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS stores_due_at ON stores(due_at) WHERE due_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS claims (
    store_id    TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('seller', 'credential')),
    platform    TEXT,
    seller_id   TEXT,
    fingerprint TEXT,
    UNIQUE (platform, seller_id),
    UNIQUE (fingerprint),
    CHECK ((kind = 'seller' AND platform IS NOT NULL AND seller_id IS NOT NULL AND fingerprint IS NULL)
        OR (kind = 'credential' AND fingerprint IS NOT NULL AND platform IS NULL AND seller_id IS NULL))
);
CREATE INDEX IF NOT EXISTS claims_store ON claims(store_id);
CREATE TABLE IF NOT EXISTS header (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version TEXT NOT NULL,
    body    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS transitions (
    event_id TEXT PRIMARY KEY,
    store_id TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    body     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transitions_store ON transitions(store_id, seq);
"""

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class Database:
    """One SQLite connection, used only under the host's lock.

    WAL journal, ``synchronous=FULL``: a committed batch survives the process
    being killed and a power loss.
    """

    def __init__(self, path: str, *, timeout_s: float = 5.0) -> None:
        self.path = path
        self.conn = sqlite3.connect(path, timeout=timeout_s, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        self.conn.close()

    # -- reading ------------------------------------------------------------

    def snapshot_text(self) -> Optional[str]:
        """The snapshot assembled from the rows (header + every record), or
        None for an empty database. Built as text: no record is parsed."""
        cur = self.conn.cursor()
        cur.execute("BEGIN")
        try:
            head = cur.execute("SELECT version, body FROM header WHERE id = 1").fetchone()
            if head is None:
                return None
            records = [str(r[0]) for r in cur.execute("SELECT record FROM stores")]
        finally:
            cur.execute("COMMIT")
        return '{"version":%s,"engine":%s,"stores":[%s]}' % (
            _dumps(str(head[0])), head[1], ",".join(records))

    # -- writing ------------------------------------------------------------

    def commit_batch(self, outputs: Sequence[Dict[str, Any]], changes: Dict[str, Any]) -> None:
        """Writes a batch's transitions and changes in one transaction."""
        transitions: List[Tuple[str, str, int, str]] = [
            (str(o["event_id"]), str(o["store_id"]), int(o["seq"]), _dumps(o))
            for o in outputs if o.get("type") == "transition"
        ]
        stores: List[Dict[str, Any]] = changes.get("stores") or []
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            if transitions:
                cur.executemany(
                    "INSERT OR IGNORE INTO transitions (event_id, store_id, seq, body) VALUES (?,?,?,?)",
                    transitions)
            if stores:
                ids = [(str(s["store_id"]),) for s in stores]
                # Every changed store's claims go first, then come back: a
                # claim released by one store and taken by another in the
                # same batch never meets itself in the unique indexes.
                cur.executemany("DELETE FROM claims WHERE store_id = ?", ids)
                removed = [(str(s["store_id"]),) for s in stores if s.get("record") is None]
                if removed:
                    cur.executemany("DELETE FROM stores WHERE store_id = ?", removed)
                live = [s for s in stores if s.get("record") is not None]
                if live:
                    cur.executemany(
                        "INSERT INTO stores (store_id, ref, client_id, platform, due_at, record)"
                        " VALUES (?,?,?,?,?,?) ON CONFLICT(store_id) DO UPDATE SET ref = excluded.ref,"
                        " client_id = excluded.client_id, platform = excluded.platform,"
                        " due_at = excluded.due_at, record = excluded.record",
                        [(str(s["store_id"]), str(s["ref"]), str(s["client_id"]), str(s["platform"]),
                          s.get("due_at"), _dumps(s["record"])) for s in live])
                    claims: List[Tuple[str, str, Optional[str], Optional[str], Optional[str]]] = []
                    for s in live:
                        for c in s.get("claims") or []:
                            if c.get("kind") == "seller":
                                claims.append((str(s["store_id"]), "seller", str(c["platform"]),
                                               str(c["seller_id"]), None))
                            else:
                                claims.append((str(s["store_id"]), "credential", None, None,
                                               str(c["fingerprint"])))
                    if claims:
                        cur.executemany(
                            "INSERT INTO claims (store_id, kind, platform, seller_id, fingerprint)"
                            " VALUES (?,?,?,?,?)", claims)
            cur.execute(
                "INSERT INTO header (id, version, body) VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE"
                " SET version = excluded.version, body = excluded.body",
                (str(changes.get("version", "2.0")), _dumps(changes["engine"])))
            cur.execute("COMMIT")
        except BaseException:
            try:
                cur.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise
