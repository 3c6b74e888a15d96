#!/usr/bin/env python3
"""Durable cost per input through shopauth.host.Host, and restart time.

    target/pyenv/bin/python benches/python_host_bench.py            # 1k and 100k stores
    SHOPAUTH_BENCH_1M=1 target/pyenv/bin/python benches/python_host_bench.py   # and 1M

"Durable cost per input": one ``Host.handle`` of a state-changing input
(``revoke`` then ``authorize`` again, alternating, on stores spread over the
population) = engine handle + poll_outputs + take_changes + the SQLite
transaction (WAL, synchronous=FULL: one fsync per batch), nothing batched.
"Restart": a new Host on the file = read the header and every stores.record
row, assemble the snapshot text, restore.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from typing import Any, Dict, List

from shopauth.host import Host

SECRET = "5ec7e7" + "0123456789abcdef" * 3 + "9a8b7c6d5e"
CONFIG: Dict[str, Any] = {"secret": SECRET, "platforms": {"mykey": {"kind": "key", "credential": "token"}}}
INPUTS = int(os.environ.get("SHOPAUTH_BENCH_INPUTS", "400"))
CHUNK = 10_000


def populate(host: Host, n: int) -> float:
    t0 = time.perf_counter()
    for lo in range(0, n, CHUNK):
        inputs: List[Dict[str, Any]] = []
        for i in range(lo, min(n, lo + CHUNK)):
            sid = "s%07d" % i
            inputs.append({"type": "register_store", "client_id": "c1", "store_id": sid, "platform": "mykey"})
            inputs.append({"type": "authorize", "client_id": "c1", "store_id": sid, "auth_type": "KEY",
                           "auth_info": {"token": "tok-%d" % i}})
        replies = host.handle_many(inputs)
        assert all(r["code"] == 200 for r in replies)
    return time.perf_counter() - t0


def durable_inputs(host: Host, n: int) -> List[float]:
    times: List[float] = []
    step = max(1, n // INPUTS)
    for k in range(INPUTS):
        i = (k * step) % n
        sid = "s%07d" % i
        t0 = time.perf_counter()
        r1 = host.handle({"type": "revoke", "client_id": "c1", "store_id": sid})
        t1 = time.perf_counter()
        r2 = host.handle({"type": "authorize", "client_id": "c1", "store_id": sid, "auth_type": "KEY",
                          "auth_info": {"token": "tok2-%d-%d" % (i, k)}})
        t2 = time.perf_counter()
        assert r1["code"] == 200 and r2["code"] == 200, (r1, r2)
        times += [t1 - t0, t2 - t1]
    return times


def main() -> None:
    sizes = [1_000, 100_000] + ([1_000_000] if os.environ.get("SHOPAUTH_BENCH_1M") == "1" else [])
    rows = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="shopauth-bench-") as tmp:
            db = os.path.join(tmp, "host.db")
            host = Host(CONFIG, db, http=lambda req: {"type": "http_failure", "request_id": req["request_id"],
                                                      "error": "bench"})
            load_s = populate(host, n)
            times = durable_inputs(host, n)
            host.close()
            size_mb = os.path.getsize(db) / 1e6
            t0 = time.perf_counter()
            again = Host(CONFIG, db)
            restart_s = time.perf_counter() - t0
            assert again.query("c1", "s%07d" % (n - 1))["data"]["state"] == "authorized"
            again.close()
            times.sort()
            rows.append((n, load_s, statistics.median(times) * 1e6, times[int(len(times) * 0.99)] * 1e6,
                         statistics.mean(times) * 1e6, restart_s, again.restore_ms, size_mb))
            print("done %d" % n, file=sys.stderr)
    print("| stores | populate (handle_many, 10k stores/batch) | durable input median | p99 | mean "
          "| restart (new Host: rows + restore) | of which rows+restore | db size |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, load_s, med, p99, mean, restart_s, restore_ms, size_mb in rows:
        print("| %s | %.2f s | %.0f µs | %.0f µs | %.0f µs | %.2f s | %.0f ms | %.1f MB |"
              % (f"{n:,}", load_s, med, p99, mean, restart_s, restore_ms, size_mb))


if __name__ == "__main__":
    main()
