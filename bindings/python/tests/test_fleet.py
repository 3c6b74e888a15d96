"""Fleets through the Python binding (spec section 11): load, unload, route."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest

import shopauth
from conftest import KEY_CONFIG, OAUTH_CONFIG, T0


def register(engine: shopauth.Engine, store_id: str, platform: str = "mykey") -> None:
    reply = engine.handle(
        {"type": "register_store", "client_id": "c1", "store_id": store_id, "platform": platform},
        T0,
    )
    assert reply["code"] == 200, reply


def authorize(engine: shopauth.Engine, store_id: str, token: str, seller: str) -> Dict[str, Any]:
    return engine.handle(
        {
            "type": "authorize",
            "client_id": "c1",
            "store_id": store_id,
            "auth_type": "KEY",
            "seller_id": seller,
            "auth_info": {"token": token},
        },
        T0,
    )


def entries(engine: shopauth.Engine) -> Dict[str, Dict[str, Any]]:
    return {e["store_id"]: e for e in engine.take_changes()["stores"]}


def foreign(entry: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [dict(c, store_id=entry["store_id"]) for c in entry["claims"]]


def test_a_store_moves_between_engines() -> None:
    with shopauth.Engine(OAUTH_CONFIG) as a, shopauth.Engine(OAUTH_CONFIG) as b:
        register(a, "o1", "myshop")
        reply = a.handle(
            {"type": "authorize", "client_id": "c1", "store_id": "o1", "auth_type": "URL"}, T0
        )
        url = reply["data"]["auth_url"]
        state = url.split("state=")[1].split("&")[0]
        entry = entries(a)["o1"]
        a.unload({"store_ids": ["o1"]})
        assert a.snapshot()["stores"] == []
        b.load({"stores": [entry["record"]]})
        assert b.take_changes()["stores"] == []
        redirect = {
            "type": "oauth_redirect",
            "platform": "myshop",
            "params": {"code": "the-code", "state": state},
        }
        # route works without the store, in any engine of the same secret
        assert a.route(redirect) == {"ref": entry["ref"], "store_id": None}
        assert b.handle(redirect, T0 + 1000)["code"] == 200
        (create,) = [o for o in b.poll_outputs() if o["type"] == "http_request"]
        assert a.route(
            {"type": "http_response", "request_id": create["request_id"], "status": 200, "body": ""}
        ) == {"ref": entry["ref"], "store_id": None}


def test_load_refusals_raise_snapshot_error(key_engine: shopauth.Engine) -> None:
    register(key_engine, "s1")
    assert authorize(key_engine, "s1", "tok-secret-1", "S1")["code"] == 200
    entry = entries(key_engine)["s1"]
    before = key_engine.snapshot()
    with pytest.raises(shopauth.SnapshotError, match=r"already_loaded"):
        key_engine.load({"stores": [entry["record"]]})
    with pytest.raises(shopauth.SnapshotError, match=r"claim_conflict") as info:
        key_engine.load({"foreign_claims": [dict(c, store_id="elsewhere") for c in entry["claims"]]})
    assert "tok-secret-1" not in str(info.value)
    with pytest.raises(shopauth.SnapshotError, match=r"malformed"):
        key_engine.load("not json")
    with pytest.raises(shopauth.SnapshotError, match=r"malformed"):
        key_engine.load({"stores": "x"})
    with pytest.raises(shopauth.SnapshotError, match=r"invalid_claim"):
        key_engine.unload({"foreign_claims": [{"kind": "seller", "platform": "mykey", "seller_id": "", "store_id": "x"}]})
    assert key_engine.snapshot() == before


def test_foreign_claims_answer_like_local_ones() -> None:
    with shopauth.Engine(KEY_CONFIG) as a, shopauth.Engine(KEY_CONFIG) as b:
        register(a, "s1")
        assert authorize(a, "s1", "tok-1", "S1")["code"] == 200
        register(a, "s2")
        changes = entries(a)
        one = authorize(a, "s2", "tok-2", "S1")
        assert one["kind"] == "seller_id_taken"
        b.load({"stores": [changes["s2"]["record"]], "foreign_claims": foreign(changes["s1"])})
        assert authorize(b, "s2", "tok-2", "S1") == one
        assert authorize(b, "s2", "tok-1", "S2")["kind"] == "auth_info_taken"
        # not persisted
        assert "foreign" not in json.dumps(b.snapshot())
        b.unload({"store_ids": ["s2"], "foreign_claims": foreign(changes["s1"])})
        assert b.snapshot()["stores"] == []


def test_unload_is_idempotent_and_leaves_no_trace(key_engine: shopauth.Engine) -> None:
    with shopauth.Engine(KEY_CONFIG) as other:
        register(other, "x1")
        record = entries(other)["x1"]["record"]
    before = key_engine.snapshot_json()
    key_engine.load(json.dumps({"stores": [record]}))
    key_engine.unload({"store_ids": ["x1", "x1", "never-here"]})
    key_engine.unload({"store_ids": ["x1"]})
    assert key_engine.snapshot_json() == before


@pytest.mark.parametrize(
    "input",
    [
        {"type": "oauth_redirect", "platform": "myshop", "params": {"state": "forged.1.2.3.x"}},
        {"type": "http_failure", "request_id": "not-an-id", "error": "x"},
        {"type": "nope", "store_id": "s1"},
        {"store_id": "s1"},
        [1, 2],
        "s1",
    ],
)
def test_route_tells_nothing_of_what_names_no_store(oauth_engine: shopauth.Engine, input: Any) -> None:
    assert oauth_engine.route(input) == {"ref": None, "store_id": None}


def test_route_of_a_store_id(key_engine: shopauth.Engine) -> None:
    got = key_engine.route({"type": "query", "client_id": "c1", "store_id": "far"})
    assert got["store_id"] == "far"
    ref = got["ref"]
    assert isinstance(ref, str) and len(ref) == 22
    assert key_engine.route_json('{"type":"revoke","client_id":"c","store_id":"far"}') == json.dumps(
        got, separators=(",", ":")
    )
    assert key_engine.route_json("{not json") == '{"ref":null,"store_id":null}'


def test_fleet_calls_on_a_closed_engine_raise() -> None:
    engine = shopauth.Engine(KEY_CONFIG)
    engine.close()
    with pytest.raises(shopauth.ClosedError):
        engine.load({})
    with pytest.raises(shopauth.ClosedError):
        engine.unload({})
    with pytest.raises(shopauth.ClosedError):
        engine.route({"type": "query"})


def test_pacer_counts_a_send_until_its_answer_is_back() -> None:
    """A fleet process's send-side limiter: a send counts from its grant
    until its answer is back, so one delayed in flight still takes a slot
    (it may reach the platform at any moment) and a later grant keeps a
    full window after the latest answer."""
    import threading
    import time

    from shopauth.host._pg import _Pacer

    pacer = _Pacer({"taobao": 2})
    stop = threading.Event()
    assert pacer.wait("other", stop) is None  # no rate: no grant to track
    a = pacer.wait("taobao", stop)
    b = pacer.wait("taobao", stop)
    assert a is not None and b is not None
    granted: List[float] = []

    def third() -> None:
        pacer.wait("taobao", stop)
        granted.append(time.monotonic())

    t = threading.Thread(target=third)
    t.start()
    time.sleep(1.2)  # longer than the window: only answers free a slot
    assert granted == [], "a slot was given while both sends were in flight"
    pacer.done(a)
    answered = time.monotonic()
    t.join(5)
    assert len(granted) == 1
    assert granted[0] - answered >= 1.0, "the slot came back before a window after the answer"
    pacer.done(b)
