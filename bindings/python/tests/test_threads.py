"""One engine shared by several threads."""

from __future__ import annotations

import threading
from typing import Any, Dict, List

import shopauth
from conftest import KEY_CONFIG, OAUTH_CONFIG, T0, assert_envelope

THREADS = 8
CALLS = 200


def _worker(
    engine: shopauth.Engine,
    n: int,
    replies: List[Dict[str, Any]],
    drained: List[Dict[str, Any]],
    errors: List[BaseException],
) -> None:
    try:
        store = f"store-{n}"
        for i in range(CALLS):
            now = T0 + i * 10 + n
            step = i % 8
            msg: Any
            if step == 0:
                msg = {"type": "register_store", "client_id": "c1", "store_id": store, "platform": "mykey"}
            elif step == 1:
                msg = {
                    "type": "authorize",
                    "client_id": "c1",
                    "store_id": store,
                    "auth_type": "KEY",
                    "auth_info": {"token": f"tok-{n}-{i}"},
                }
            elif step == 2:
                msg = {"type": "query", "client_id": "c1", "store_id": store}
            elif step == 3:
                msg = {"type": "credentials", "client_id": "c1", "store_id": store}
            elif step == 4:
                msg = {"type": "revoke", "client_id": "c1", "store_id": store}
            elif step == 5:
                msg = [n, i]  # not an object: 900002
            elif step == 6:
                msg = {"type": "authorize", "client_id": "c1", "store_id": store, "auth_type": "URL"}
            else:
                msg = {"type": "remove_store", "client_id": "c1", "store_id": store}
            replies.append(engine.handle(msg, now))
            if i % 50 == 0:
                drained.extend(engine.poll_outputs())
                engine.poll_timeout()
                engine.handle_timeout(now)
    except BaseException as exc:  # pragma: no cover - reported below
        errors.append(exc)


def test_threads_share_one_engine() -> None:
    with shopauth.Engine(KEY_CONFIG) as engine:
        replies: List[Dict[str, Any]] = []
        errors: List[BaseException] = []
        drained: List[Dict[str, Any]] = []
        threads = [
            threading.Thread(target=_worker, args=(engine, n, replies, drained, errors)) for n in range(THREADS)
        ]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            drained.extend(engine.poll_outputs())
            engine.snapshot()
        for t in threads:
            t.join()
        drained.extend(engine.poll_outputs())
        assert not errors, errors
        assert len(replies) == THREADS * CALLS
        for reply in replies:
            assert_envelope(reply)
        # Every thread's store was authorized at least once (KEY without verify).
        authorized = {o["store_id"] for o in drained if o["type"] == "transition" and o["to"] == "authorized"}
        assert authorized == {f"store-{n}" for n in range(THREADS)}
        # Event ids name one change (spec section 9): two transitions share an
        # id only when they report the same change. A store removed and
        # registered again restarts at seq 1, and the engine clock (never
        # behind) often makes two of its lives meet at one instant, so equal
        # ids occur here -- for equal changes only.
        seen: Dict[str, Any] = {}
        for o in drained:
            if o["type"] == "transition":
                change = (o["store_id"], o["seq"], o["from"], o["to"], o["at"])
                assert seen.setdefault(o["event_id"], change) == change, (o, seen[o["event_id"]])


def test_close_while_other_threads_call() -> None:
    engine = shopauth.Engine(OAUTH_CONFIG)
    started = threading.Barrier(THREADS + 1)
    outcomes: List[str] = []
    lock = threading.Lock()

    def run(n: int) -> None:
        started.wait()
        for i in range(CALLS):
            try:
                reply = engine.handle(
                    {"type": "register_store", "client_id": "c", "store_id": f"s{n}-{i}", "platform": "mykey"},
                    T0 + i,
                )
                assert_envelope(reply)
                engine.poll_outputs()
                result = "ok"
            except shopauth.ClosedError:
                result = "closed"
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    started.wait()
    engine.close()
    for t in threads:
        t.join()
    assert len(outcomes) == THREADS * CALLS
    assert "closed" in outcomes
    assert engine.closed
