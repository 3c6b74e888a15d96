"""The engine through the Python binding: lifecycle, errors, snapshots."""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List, cast
from urllib.parse import parse_qs, urlsplit

import pytest

import shopauth
from conftest import KEY_CONFIG, OAUTH_CONFIG, SECRET, T0, assert_envelope


def register(engine: shopauth.Engine, store_id: str, platform: str, now: int = T0) -> None:
    reply = engine.handle(
        {"type": "register_store", "client_id": "c1", "store_id": store_id, "platform": platform},
        now,
    )
    assert reply["code"] == 200, reply


def authorize_key(engine: shopauth.Engine, store_id: str, token: str, now: int = T0) -> Dict[str, Any]:
    return engine.handle(
        {
            "type": "authorize",
            "client_id": "c1",
            "store_id": store_id,
            "auth_type": "KEY",
            "auth_info": {"token": token},
        },
        now,
    )


def transitions(outputs: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [o for o in outputs if o["type"] == "transition"]


def test_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", shopauth.version())
    assert shopauth.__version__ == shopauth.version()


def test_key_lifecycle(key_engine: shopauth.Engine) -> None:
    register(key_engine, "s1", "mykey")
    reply = authorize_key(key_engine, "s1", "tok-1234")
    assert reply["code"] == 200, reply
    assert reply["message"] == "SUCCESS"
    assert reply["data"] == {}

    outputs = key_engine.poll_outputs()
    moves = transitions(outputs)
    assert moves, outputs
    last = moves[-1]
    assert last["to"] == "authorized"
    assert last["client_id"] == "c1" and last["store_id"] == "s1"
    assert last["attempt"] == 1
    assert key_engine.poll_outputs() == []  # drained

    view = key_engine.handle({"type": "query", "client_id": "c1", "store_id": "s1"}, T0 + 1)
    assert view["code"] == 200
    assert view["data"]["state"] == "authorized"
    assert view["data"]["status"] == "subAuthorize"
    assert "tok-1234" not in json.dumps(view)  # never a secret in a query

    creds = key_engine.handle({"type": "credentials", "client_id": "c1", "store_id": "s1"}, T0 + 2)
    assert creds["code"] == 200
    assert creds["data"] == {"token": "tok-1234"}

    # Authorizing again is refused with the seed's code, and changes nothing.
    again = authorize_key(key_engine, "s1", "tok-1234", T0 + 3)
    assert again["code"] == 900004 and again["kind"] == "repeat_authorized"
    assert key_engine.poll_outputs() == []

    # The same credentials on another store are bound elsewhere.
    register(key_engine, "s2", "mykey", T0 + 4)
    taken = authorize_key(key_engine, "s2", "tok-1234", T0 + 5)
    assert taken["code"] == 900005 and taken["kind"] == "auth_info_taken"

    revoked = key_engine.handle({"type": "revoke", "client_id": "c1", "store_id": "s1"}, T0 + 6)
    assert revoked["code"] == 200
    assert transitions(key_engine.poll_outputs())[-1]["to"] == "revoked"

    removed = key_engine.handle({"type": "remove_store", "client_id": "c1", "store_id": "s1"}, T0 + 7)
    assert removed["code"] == 200
    assert transitions(key_engine.poll_outputs())[-1]["to"] == "removed"
    gone = key_engine.handle({"type": "query", "client_id": "c1", "store_id": "s1"}, T0 + 8)
    assert gone["code"] == 940002 and gone["kind"] == "store_not_exist"


def test_refusals_are_replies(key_engine: shopauth.Engine) -> None:
    missing = key_engine.handle({"type": "query", "client_id": "c1", "store_id": "nope"}, T0)
    assert missing["code"] == 940002
    assert missing["message"].startswith("store not exist")
    assert missing["data"] is None

    register(key_engine, "s1", "mykey")
    dup = key_engine.handle(
        {"type": "register_store", "client_id": "c1", "store_id": "s1", "platform": "mykey"}, T0
    )
    assert dup["code"] == 900009 and dup["kind"] == "store_exists"

    bad = key_engine.handle(
        {"type": "authorize", "client_id": "c1", "store_id": "s1", "auth_type": "KEY"}, T0
    )
    assert bad["code"] == 900002 and bad["kind"] == "illegal_param"
    assert bad["message"].startswith("illegal param")


@pytest.mark.parametrize(
    "raw",
    [
        [],
        [1, 2, 3],
        "authorize",
        42,
        None,
        {},
        {"type": 7},
        {"type": "no_such_type", "client_id": "c1"},
        {"client_id": "c1", "store_id": "s1"},
    ],
)
def test_invalid_inputs_answer_900002(key_engine: shopauth.Engine, raw: Any) -> None:
    reply = key_engine.handle(raw, T0)
    assert_envelope(reply)
    assert reply["code"] == 900002, reply
    assert reply["kind"] == "illegal_param"
    assert reply["data"] is None


def test_invalid_json_texts_answer_900002(key_engine: shopauth.Engine) -> None:
    texts: List[Any] = ["", "{", "nul", '{"type": "query"', b"\xff\xfe{}", b"{\"type\":\"query\",\"x\":\"\\ud800\"}"]
    for text in texts:
        reply = json.loads(key_engine.handle_json(text, T0))
        assert_envelope(reply)
        assert reply["code"] == 900002, (text, reply)


def test_lone_surrogate_is_a_reply(key_engine: shopauth.Engine) -> None:
    # json escapes it as \ud800, which is not a Unicode scalar value: the
    # engine answers 900002 rather than the binding raising.
    reply = key_engine.handle({"type": "query", "client_id": "\ud800", "store_id": "s"}, T0)
    assert_envelope(reply)
    assert reply["code"] == 900002


def test_handle_json_round_trip(key_engine: shopauth.Engine) -> None:
    register(key_engine, "s1", "mykey")
    text = key_engine.handle_json('{"type":"query","client_id":"c1","store_id":"s1"}', T0)
    assert isinstance(text, str)
    assert json.loads(text)["data"]["state"] == "unauthorized"
    raw = key_engine.handle_json(b'{"type":"query","client_id":"c1","store_id":"s1"}', T0)
    assert json.loads(raw)["code"] == 200


def test_unserializable_input_raises(key_engine: shopauth.Engine) -> None:
    with pytest.raises(shopauth.SerializationError):
        key_engine.handle({"type": "query", "x": {1, 2}}, T0)
    with pytest.raises(shopauth.SerializationError):
        key_engine.handle({"type": "query", "x": float("nan")}, T0)
    with pytest.raises(shopauth.SerializationError):
        key_engine.handle(cast(Any, b'{"type":"query"}'), T0)  # bytes are not JSON
    with pytest.raises(shopauth.SerializationError):
        key_engine.handle(cast(Any, {(1, 2): "tuple key"}), T0)
    loop: Dict[str, Any] = {"type": "query"}
    loop["self"] = loop
    with pytest.raises(shopauth.SerializationError):
        key_engine.handle(loop, T0)
    with pytest.raises(shopauth.SerializationError):
        key_engine.handle({"type": "query"}, 2**63)
    with pytest.raises(shopauth.SerializationError):
        key_engine.handle({"type": "query"}, "now")  # type: ignore[arg-type]
    with pytest.raises(shopauth.SerializationError):
        key_engine.handle_timeout(-(2**63) - 1)
    with pytest.raises(shopauth.SerializationError):
        key_engine.handle_json("\ud800", T0)  # a str that is not UTF-8 encodable
    # Still usable afterwards.
    assert key_engine.handle({"type": "query", "client_id": "c", "store_id": "s"}, T0)["code"] == 940002


def test_oauth2_url_flow(oauth_engine: shopauth.Engine) -> None:
    register(oauth_engine, "s9", "myshop")
    reply = oauth_engine.handle(
        {
            "type": "authorize",
            "client_id": "c1",
            "store_id": "s9",
            "auth_type": "URL",
            "redirect_url": "https://biz.example/done?x=1",
        },
        T0,
    )
    assert reply["code"] == 200, reply
    auth_url = reply["data"]["auth_url"]
    assert auth_url.startswith("https://as.example/authorize?")
    params = parse_qs(urlsplit(auth_url).query)
    assert params["client_id"] == ["cid"]
    assert params["redirect_uri"] == ["https://host.example/cb"]
    assert params["response_type"] == ["code"]
    assert "sec" not in auth_url
    state = params["state"][0]
    assert transitions(oauth_engine.poll_outputs())[-1]["to"] == "requested"

    # Same parameters again: the same auth_url (idempotent).
    again = oauth_engine.handle(
        {
            "type": "authorize",
            "client_id": "c1",
            "store_id": "s9",
            "auth_type": "URL",
            "redirect_url": "https://biz.example/done?x=1",
        },
        T0 + 10,
    )
    assert again["data"]["auth_url"] == auth_url

    # A forged state is refused.
    forged = oauth_engine.handle(
        {"type": "oauth_redirect", "platform": "myshop", "query": "code=abc&state=forged"}, T0 + 20
    )
    assert forged["code"] == 900007 and forged["kind"] == "invalid_state"

    # The seller comes back: token exchange requested from the host.
    back = oauth_engine.handle(
        {"type": "oauth_redirect", "platform": "myshop", "query": f"code=abc&state={state}"}, T0 + 30
    )
    assert back["code"] == 200, back
    assert back["data"] == {"client_id": "c1", "store_id": "s9", "attempt": 1}
    outputs = oauth_engine.poll_outputs()
    assert transitions(outputs)[-1]["to"] == "pending"
    requests = [o for o in outputs if o["type"] == "http_request"]
    assert len(requests) == 1
    request = requests[0]
    assert request["purpose"] == "token_create"
    assert request["method"] == "POST"
    assert request["url"] == "https://as.example/token"
    assert oauth_engine.poll_timeout() is not None  # the request's timeout

    token = {
        "access_token": "at-1",
        "token_type": "bearer",
        "expires_in": 7200,
        "refresh_token": "rt-1",
    }
    done = oauth_engine.handle(
        {
            "type": "http_response",
            "request_id": request["request_id"],
            "status": 200,
            "headers": [["content-type", "application/json"]],
            "body": json.dumps(token),
        },
        T0 + 40,
    )
    assert done["code"] == 200, done
    outputs = oauth_engine.poll_outputs()
    assert transitions(outputs)[-1]["to"] == "authorized"
    redirects = [o for o in outputs if o["type"] == "redirect"]
    assert len(redirects) == 1
    assert redirects[0]["location"].startswith("https://biz.example/done?x=1&client_id=c1&store_id=s9")
    assert "auth_status=SUCCESS" in redirects[0]["location"]

    creds = oauth_engine.handle({"type": "credentials", "client_id": "c1", "store_id": "s9"}, T0 + 50)
    assert creds["code"] == 200
    assert creds["data"]["access_token"] == "at-1"

    # The refresh is scheduled before the token expires.
    due = oauth_engine.poll_timeout()
    assert due is not None and T0 + 40 < due < T0 + 40 + 7200 * 1000

    # The same answer again is for a request no longer open.
    stale = oauth_engine.handle(
        {"type": "http_response", "request_id": request["request_id"], "status": 200, "body": "{}"},
        T0 + 60,
    )
    assert stale["code"] == 900008 and stale["kind"] == "unknown_request"


def test_poll_timeout_none_when_idle(key_engine: shopauth.Engine) -> None:
    assert key_engine.poll_timeout() is None
    key_engine.handle_timeout(T0)
    assert key_engine.poll_timeout() is None
    assert key_engine.poll_outputs() == []


def test_bad_config_raises() -> None:
    bad_configs: List[Any] = [
        {},
        {"secret": "abcd"},
        {"secret": "zz" * 32},
        {"secret": SECRET, "platforms": {"x": {"kind": "nope"}}},
        {"secret": SECRET, "apps": {"myshop": {"app_key": "k"}}},
        [],
        "{",
    ]
    for config in bad_configs:
        with pytest.raises(shopauth.ConfigError) as info:
            shopauth.Engine(config)
        assert str(info.value), config
    # The message names the path of the bad field.
    with pytest.raises(shopauth.ConfigError, match="secret"):
        shopauth.Engine({"secret": "abcd"})
    # A config that cannot be serialized is a serialization error.
    with pytest.raises(shopauth.SerializationError):
        shopauth.Engine({"secret": object()})
    assert issubclass(shopauth.ConfigError, shopauth.Error)


def test_config_errors_never_echo_a_value() -> None:
    # Wrong-typed secrets: the message names the path, never the value.
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({**KEY_CONFIG, "secret": 987654321012}, "secret", "987654321012"),
        ({**KEY_CONFIG, "secret": ["SECRET-ARR"]}, "secret", "SECRET-ARR"),
        (
            {**KEY_CONFIG, "apps": {"taobao": {"checker": "vvtool", "access_token": {"t": "SECRET-OBJ"},
                                               "auth_page_url": "https://auth.example/"}}},
            "apps.taobao.access_token",
            "SECRET-OBJ",
        ),
    ]
    for config, path, value in cases:
        with pytest.raises(shopauth.ConfigError) as info:
            shopauth.Engine(config)
        message = str(info.value)
        assert path in message, message
        assert value not in message, message
    # Nor does a config that cannot be encoded.
    with pytest.raises(shopauth.SerializationError) as err:
        shopauth.Engine('{"secret": "SECRET-\ud800"}')
    assert "SECRET" not in str(err.value) and err.value.__cause__ is None


def test_config_as_json_text() -> None:
    with shopauth.Engine(json.dumps(KEY_CONFIG)) as engine:
        assert engine.poll_timeout() is None


def test_snapshot_restore_round_trip(oauth_engine: shopauth.Engine) -> None:
    register(oauth_engine, "k1", "mykey")
    assert authorize_key(oauth_engine, "k1", "tok-abc")["code"] == 200
    register(oauth_engine, "u1", "myshop")
    url = oauth_engine.handle(
        {"type": "authorize", "client_id": "c1", "store_id": "u1", "auth_type": "URL"}, T0 + 1
    )
    assert url["code"] == 200
    pending = oauth_engine.poll_outputs()

    snap = oauth_engine.snapshot()
    assert isinstance(snap, dict)
    assert "version" in snap
    text = json.dumps(snap)
    assert SECRET not in text  # never a configuration secret
    assert OAUTH_CONFIG["apps"]["myshop"]["app_secret"] not in text
    assert "tok-abc" in text  # store credentials are part of the state

    with shopauth.Engine(OAUTH_CONFIG) as fresh:
        fresh.restore(snap)
        for store in ("k1", "u1"):
            q_old = oauth_engine.handle({"type": "query", "client_id": "c1", "store_id": store}, T0 + 2)
            q_new = fresh.handle({"type": "query", "client_id": "c1", "store_id": store}, T0 + 2)
            assert q_old == q_new
        assert fresh.poll_timeout() == oauth_engine.poll_timeout()
        # The JSON-text form restores too.
        again = shopauth.Engine(OAUTH_CONFIG)
        again.restore(oauth_engine.snapshot_json())
        assert again.handle({"type": "query", "client_id": "c1", "store_id": "u1"}, T0 + 3)["data"][
            "state"
        ] == "requested"
        again.close()
    assert pending  # transitions were produced before the snapshot


def test_restore_refusals(key_engine: shopauth.Engine) -> None:
    register(key_engine, "s1", "mykey")
    before = key_engine.snapshot()
    bads: List[Any] = ["{", "[]", b"\xff", {"version": "x"}, {"no": "version"}]
    for bad in bads:
        with pytest.raises(shopauth.SnapshotError):
            key_engine.restore(bad)
    # Another configuration is refused; the engine is unchanged.
    other = dict(KEY_CONFIG, secret="ab" * 32)
    with shopauth.Engine(other) as stranger:
        with pytest.raises(shopauth.SnapshotError):
            stranger.restore(before)
        assert stranger.handle({"type": "query", "client_id": "c1", "store_id": "s1"}, T0)["code"] == 940002
    assert key_engine.snapshot() == before


def test_closed_engine_raises() -> None:
    engine = shopauth.Engine(KEY_CONFIG)
    assert not engine.closed
    engine.close()
    assert engine.closed
    engine.close()  # idempotent
    with pytest.raises(shopauth.ClosedError):
        engine.handle({"type": "query"}, T0)
    with pytest.raises(shopauth.ClosedError):
        engine.handle_json("{}", T0)
    with pytest.raises(shopauth.ClosedError):
        engine.handle_drain({"type": "query"}, T0)
    with pytest.raises(shopauth.ClosedError):
        engine.handle_timeout(T0)
    with pytest.raises(shopauth.ClosedError):
        engine.poll_outputs()
    with pytest.raises(shopauth.ClosedError):
        engine.poll_timeout()
    with pytest.raises(shopauth.ClosedError):
        engine.snapshot()
    with pytest.raises(shopauth.ClosedError):
        engine.restore({"version": 1})
    assert "closed" in repr(engine)


def test_context_manager_closes() -> None:
    with shopauth.Engine(KEY_CONFIG) as engine:
        assert engine.handle({"type": "query", "client_id": "c", "store_id": "s"}, T0)["code"] == 940002
    assert engine.closed
    with pytest.raises(shopauth.ClosedError):
        engine.poll_outputs()


def test_garbage_collected_engine_is_freed() -> None:
    for _ in range(50):
        engine = shopauth.Engine(KEY_CONFIG)
        engine.handle({"type": "query", "client_id": "c", "store_id": "s"}, T0)
        del engine


class _FakeLib:
    """Stands in for the library to reach the statuses a sound engine never
    returns (a caught panic, then a poisoned engine)."""

    def __init__(self, real: Any, status: int) -> None:
        self._real = real
        self.status = status

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def shopauth_engine_handle(self, *args: Any) -> int:
        return self.status

    def shopauth_engine_handle_timeout(self, *args: Any) -> int:
        return self.status

    def shopauth_engine_handle_drain(self, *args: Any) -> int:
        return self.status

    def shopauth_engine_poll_outputs(self, *args: Any) -> int:
        return self.status

    def shopauth_engine_snapshot(self, *args: Any) -> int:
        return self.status

    def shopauth_engine_poll_timeout(self, *args: Any) -> int:
        return -1


def test_panic_and_poison_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = shopauth.Engine(KEY_CONFIG)
    fake = _FakeLib(shopauth._lib, 4)
    monkeypatch.setattr(shopauth, "_lib", fake)
    with pytest.raises(shopauth.PanicError):
        engine.handle({"type": "query"}, T0)
    fake.status = 5
    with pytest.raises(shopauth.PoisonedError):
        engine.handle({"type": "query"}, T0)
    with pytest.raises(shopauth.PoisonedError):
        engine.handle_drain({"type": "query"}, T0)
    with pytest.raises(shopauth.PoisonedError):
        engine.handle_timeout(T0)
    with pytest.raises(shopauth.PoisonedError):
        engine.poll_outputs()
    with pytest.raises(shopauth.PoisonedError):
        engine.snapshot()
    with pytest.raises(shopauth.PoisonedError):
        engine.poll_timeout()
    assert "poisoned" in repr(engine)
    monkeypatch.undo()
    engine.close()


def test_error_hierarchy() -> None:
    for cls in (
        shopauth.ConfigError,
        shopauth.SnapshotError,
        shopauth.SerializationError,
        shopauth.PanicError,
        shopauth.PoisonedError,
        shopauth.ClosedError,
    ):
        assert issubclass(cls, shopauth.Error)
    assert issubclass(shopauth.Error, Exception)


def _oauth_flow_inputs(engine: shopauth.Engine, drain: bool, store: str) -> List[Any]:
    """One URL flow through ``handle`` + ``poll_outputs`` or through
    ``handle_drain``; returns every (reply, outputs) pair."""
    def step(inp: Dict[str, Any], now: int) -> Any:
        if drain:
            return engine.handle_drain(inp, now)
        return engine.handle(inp, now), engine.poll_outputs()

    seen = [step({"type": "register_store", "client_id": "c1", "store_id": store, "platform": "myshop"}, T0)]
    reply, outs = step({"type": "authorize", "client_id": "c1", "store_id": store, "auth_type": "URL",
                        "redirect_url": "https://erp.example/done"}, T0 + 1)
    seen.append((reply, outs))
    state = parse_qs(urlsplit(reply["data"]["auth_url"]).query)["state"][0]
    reply, outs = step({"type": "oauth_redirect", "platform": "myshop", "query": f"code=abc&state={state}"}, T0 + 2)
    seen.append((reply, outs))
    req = next(o for o in outs if o["type"] == "http_request")
    body = '{"access_token":"at-\u00e9","token_type":"Bearer","expires_in":3600,"refresh_token":"rt"}'
    seen.append(step({"type": "http_response", "request_id": req["request_id"], "status": 200,
                      "headers": [["content-type", "application/json"]], "body": body}, T0 + 3))
    for bad in ({}, {"type": "query", "client_id": 5}, {"type": "query", "client_id": "c1", "store_id": "\ud800"},
                {"type": "query", "client_id": "c1", "store_id": store, "x": None, "y": "null"},
                {"type": "query", "client_id": "c1", "store_id": "店"}):
        seen.append(step(bad, T0 + 4))
    seen.append(step({"type": "revoke", "client_id": "c1", "store_id": store}, T0 + 5))
    return seen


def test_handle_drain_is_handle_then_poll_outputs() -> None:
    with shopauth.Engine(OAUTH_CONFIG) as a, shopauth.Engine(OAUTH_CONFIG) as b:
        one = _oauth_flow_inputs(a, False, "s1")
        both = _oauth_flow_inputs(b, True, "s1")
        assert one == both
        assert all(isinstance(o, list) for _, o in both)
        assert a.snapshot() == b.snapshot()


def test_handle_drain_refuses_what_handle_refuses(key_engine: shopauth.Engine) -> None:
    for bad in ({"type": "query", "x": {1, 2}}, {"type": "query", "x": float("nan")},
                {"type": "query", "x": float("inf")}, {(1, 2): "tuple key"}):
        with pytest.raises(shopauth.SerializationError):
            key_engine.handle_drain(cast(Any, bad), T0)
    with pytest.raises(shopauth.SerializationError):
        key_engine.handle_drain({"type": "query"}, 2**63)
    # What orjson refuses but the json module takes goes through the json
    # module: keys that are not str, integers beyond 64 bits.
    reply, outs = key_engine.handle_drain(cast(Any, {"type": "query", "client_id": "c", "store_id": "s",
                                                     1: 2, "n": 2**70}), T0)
    assert reply["code"] == 940002 and outs == []
