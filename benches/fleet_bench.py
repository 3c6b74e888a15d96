#!/usr/bin/env python3
"""Fleet throughput and latency (SPEC section 11): 1, 2 and 4
``python -m shopauth.host serve`` processes on one PostgreSQL.

For each fleet size the bench registers ``--stores`` KEY stores, then
``--clients`` client threads send inputs through the processes round-robin
over HTTP on loopback for ``--seconds``: KEY ``authorize`` (each with its own
credential) and ``revoke`` in turn, so every input changes a store and is
one PostgreSQL transaction (row lock, claims with unique indexes, the
transition log). Reported: inputs per second, the ratio to one process, and
the p50 / p99 of an ``authorize`` round trip as the client sees it.

    target/pyenv/bin/python benches/fleet_bench.py [--sizes 1,2,4] [--seconds 10]

PostgreSQL: ``SHOPAUTH_PG_DSN``, else a throw-away cluster started with
``scripts/pg.sh`` (fsync off) and stopped at the end. Everything runs on this
machine: the database, the processes and the load generator share its cores.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
PG_SH = ROOT / "scripts" / "pg.sh"
CLIENT, TOKEN = "bench-client", "bench-token"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, body: Dict[str, Any]) -> Dict[str, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer " + TOKEN})
    with OPENER.open(req, timeout=30) as resp:
        out: Dict[str, Any] = json.loads(resp.read())
        return out


def run_size(dsn: str, n: int, stores: int, clients: int, seconds: float, tmp: Path) -> Dict[str, Any]:
    schema = "bench_" + uuid.uuid4().hex[:8]
    config = {"engine": {"secret": hashlib.sha256(b"fleet bench").hexdigest(),
                         "platforms": {"mykey": {"kind": "key", "credential": "token"}}},
              "clients": {CLIENT: TOKEN}, "fleet": {"size": n, "schema": schema}}
    path = tmp / ("bench-%d.json" % n)
    path.write_text(json.dumps(config))
    ports = [free_port() for _ in range(n)]
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    procs = [subprocess.Popen([sys.executable, "-m", "shopauth.host", "serve", "--config", str(path), "--db", dsn,
                               "--listen", "127.0.0.1:%d" % p], env=env, stdout=subprocess.DEVNULL,
                              stderr=open(tmp / ("bench-%d-%d.log" % (n, i)), "wb")) for i, p in enumerate(ports)]
    urls = ["http://127.0.0.1:%d" % p for p in ports]
    try:
        for u in urls:
            deadline = time.monotonic() + 30
            while True:
                try:
                    OPENER.open(u + "/healthz", timeout=2).read()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        for k in range(0, stores, 500):
            post(urls[0] + "/api/v1/batch", {"inputs": [
                {"type": "register_store", "client_id": CLIENT, "store_id": "b-%06d" % i, "platform": "mykey"}
                for i in range(k, min(stores, k + 500))]})
        stop = threading.Event()
        counts = [0] * clients
        errors = [0] * clients
        lat: List[List[float]] = [[] for _ in range(clients)]

        def client(c: int) -> None:
            i = c
            while not stop.is_set():
                store = "b-%06d" % (i % stores)
                url = urls[i % n] + "/api/v1/store/"
                t0 = time.perf_counter()
                r = post(url + "authorize", {"client_id": CLIENT, "store_id": store, "auth_type": "KEY",
                                             "auth_info": {"token": "tok-%06d" % (i % stores)}})
                lat[c].append(time.perf_counter() - t0)
                r2 = post(url + "revoke", {"client_id": CLIENT, "store_id": store})
                counts[c] += 2
                errors[c] += (r["code"] != 200) + (r2["code"] != 200)
                i += clients

        threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        elapsed = time.perf_counter() - t0
        all_lat = sorted(x for ls in lat for x in ls)

        def pick(q: float) -> float:
            return all_lat[min(len(all_lat) - 1, int(q * len(all_lat)))] * 1000 if all_lat else 0.0
        return {"processes": n, "inputs": sum(counts), "inputs_per_s": sum(counts) / elapsed,
                "errors": sum(errors), "authorize_p50_ms": pick(0.5), "authorize_p99_ms": pick(0.99)}
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def main(argv: Optional[List[str]] = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,2,4")
    ap.add_argument("--stores", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="shopauth-fleet-bench-"))
    tmp.chmod(0o755)
    dsn = os.environ.get("SHOPAUTH_PG_DSN")
    cluster: Optional[Path] = None
    if not dsn:
        cluster = tmp / "pg"
        dsn = subprocess.run([str(PG_SH), "start", str(cluster)], check=True, capture_output=True,
                             text=True).stdout.strip()
    rows: List[Dict[str, Any]] = []
    try:
        for n in [int(x) for x in args.sizes.split(",")]:
            rows.append(run_size(dsn, n, args.stores, args.clients, args.seconds, tmp))
            r = rows[-1]
            print("%d process(es): %7.0f inputs/s  (x%.2f of 1)  authorize p50 %.1f ms  p99 %.1f ms  errors %d" % (
                n, r["inputs_per_s"], r["inputs_per_s"] / rows[0]["inputs_per_s"], r["authorize_p50_ms"],
                r["authorize_p99_ms"], r["errors"]), flush=True)
    finally:
        if cluster is not None:
            subprocess.run([str(PG_SH), "stop", str(cluster)], check=False)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
