"""Random input sequences through the binding never crash and always answer
with an envelope."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List
from urllib.parse import parse_qs, urlsplit

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import shopauth
from conftest import OAUTH_CONFIG, T0, assert_envelope

EXAMPLES = int(os.environ.get("SHOPAUTH_HYPOTHESIS_EXAMPLES", "200"))

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

TYPES = [
    "register_store",
    "remove_store",
    "authorize",
    "oauth_redirect",
    "http_response",
    "http_failure",
    "token_rejected",
    "revoke",
    "query",
    "credentials",
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)

short_ids = st.sampled_from(["c1", "c2", "s1", "s2", "s3", "", "x" * 64, "x" * 65, "店铺", "\u0000"])
platforms = st.sampled_from(["mykey", "myshop", "taobao_tw", "lazada", "shopline", "taobao", "nope", ""])
auth_types = st.sampled_from(["URL", "KEY", "url", "", "OAUTH"])
auth_infos = st.one_of(
    st.none(),
    st.fixed_dictionaries({"token": st.text(max_size=20)}),
    st.fixed_dictionaries({"api_key": st.text(max_size=8), "api_secret": st.text(max_size=8)}),
    st.fixed_dictionaries({"token": st.sampled_from(["t1", "t2", "t3"])}),
    json_values,
)
redirect_urls = st.sampled_from(
    ["https://biz.example/done", "http://biz.example/r?x=1", "ftp://x", "https://u:p@h/", "not a url", "h" * 300]
)
statuses = st.sampled_from([200, 201, 204, 400, 401, 429, 500, 503, 0, 999, -1])
bodies = st.one_of(
    st.sampled_from(
        [
            "",
            "{}",
            "not json",
            json.dumps({"access_token": "at", "token_type": "bearer", "expires_in": 3600, "refresh_token": "rt"}),
            json.dumps({"access_token": "at2", "expires_in": "60"}),
            json.dumps({"error": "invalid_grant"}),
            json.dumps({"code": "0", "access_token": "a", "refresh_token": "r", "expires_in": 10}),
        ]
    ),
    st.text(max_size=60),
)


class World:
    """What the host has seen so far: request ids and auth urls to answer."""

    def __init__(self) -> None:
        self.request_ids: List[str] = ["r-unknown"]
        self.states: List[str] = ["forged"]

    def learn(self, reply: Dict[str, Any], outputs: List[Dict[str, Any]]) -> None:
        data = reply.get("data")
        if isinstance(data, dict) and isinstance(data.get("auth_url"), str):
            query = parse_qs(urlsplit(data["auth_url"]).query)
            for key in ("state", "customField"):
                self.states.extend(query.get(key, []))
        for output in outputs:
            assert isinstance(output, dict) and isinstance(output.get("type"), str), output
            if output["type"] == "http_request":
                assert isinstance(output["request_id"], str)
                self.request_ids.append(output["request_id"])


def typed_input(data: st.DataObject, world: World) -> Dict[str, Any]:
    draw = data.draw
    kind = draw(st.sampled_from(TYPES + ["bogus", "Query"]))
    msg: Dict[str, Any] = {"type": kind}
    fields = {
        "client_id": short_ids,
        "store_id": short_ids,
        "platform": platforms,
        "seller_id": short_ids,
        "auth_type": auth_types,
        "auth_info": auth_infos,
        "redirect_url": redirect_urls,
        "notify_url": redirect_urls,
        "notify_secret": st.text(max_size=10),
        "request_id": st.sampled_from(world.request_ids),
        "status": statuses,
        "body": bodies,
        "error": st.sampled_from(["timeout", "connection refused", ""]),
        "headers": st.one_of(
            st.just([["content-type", "application/json"]]), st.lists(st.lists(st.text(max_size=5), max_size=3))
        ),
        "query": st.builds(
            lambda code, state, err: "&".join(p for p in (code, state, err) if p),
            st.sampled_from(["", "code=abc", "code="]),
            st.sampled_from(world.states).map(lambda s: f"state={s}"),
            st.sampled_from(["", "error=access_denied"]),
        ),
        "params": st.dictionaries(st.sampled_from(["code", "state", "error"]), st.text(max_size=8), max_size=3),
    }
    for name in draw(st.lists(st.sampled_from(sorted(fields)), max_size=8, unique=True)):
        msg[name] = draw(fields[name])
    if draw(st.booleans()):
        # Usually keep the identifiers valid so the sequence goes somewhere.
        msg.setdefault("client_id", "c1")
        msg.setdefault("store_id", draw(st.sampled_from(["s1", "s2"])))
    for _ in range(draw(st.integers(0, 1))):
        msg[draw(st.text(max_size=6))] = draw(json_values)
    return msg


def good_input(data: st.DataObject, world: World) -> Dict[str, Any]:
    """A well-formed input, so that sequences reach every state."""
    draw = data.draw
    store = draw(st.sampled_from(["s1", "s2", "s3"]))
    ids = {"client_id": "c1", "store_id": store}
    kind = draw(
        st.sampled_from(
            ["register", "authorize_key", "authorize_url", "redirect", "answer", "fail", "other"]
        )
    )
    if kind == "register":
        platform = draw(st.sampled_from(["mykey", "myshop"]))
        msg: Dict[str, Any] = {"type": "register_store", "platform": platform, **ids}
        if draw(st.booleans()):
            msg["notify_url"] = "https://biz.example/notify"
            msg["notify_secret"] = "notify-secret-7"
        return msg
    if kind == "authorize_key":
        token = draw(st.sampled_from(["t1", "t2", "t3"]))
        return {"type": "authorize", "auth_type": "KEY", "auth_info": {"token": token}, **ids}
    if kind == "authorize_url":
        msg = {"type": "authorize", "auth_type": "URL", **ids}
        if draw(st.booleans()):
            msg["redirect_url"] = "https://biz.example/done?x=1"
        return msg
    if kind == "redirect":
        state = draw(st.sampled_from(world.states))
        outcome = draw(st.sampled_from(["code=abc", "error=access_denied", ""]))
        return {"type": "oauth_redirect", "platform": "myshop", "query": f"{outcome}&state={state}"}
    request_id = draw(st.sampled_from(world.request_ids))
    if kind == "answer":
        return {
            "type": "http_response",
            "request_id": request_id,
            "status": draw(statuses),
            "headers": [["content-type", "application/json"]],
            "body": draw(bodies),
        }
    if kind == "fail":
        return {"type": "http_failure", "request_id": request_id, "error": "timeout"}
    other = draw(st.sampled_from(["token_rejected", "revoke", "query", "credentials", "remove_store"]))
    return {"type": other, **ids}


REPLY_CODES = {200, 900000, 900002, 900003, 900004, 900005, 900006, 900007, 900008, 900009, 900010, 940002}
CONFIG_SECRETS = [OAUTH_CONFIG["secret"], OAUTH_CONFIG["apps"]["myshop"]["app_secret"], "notify-secret-7"]


def draw_now(data: st.DataObject, now: int) -> int:
    pick = data.draw(st.integers(0, 19), label="now kind")
    if pick == 0:
        return data.draw(st.integers(INT64_MIN, INT64_MAX), label="now_ms")
    if pick == 1:
        return data.draw(st.sampled_from([0, -1, T0, 2**53]), label="now_ms")
    delta = data.draw(st.integers(-5_000, 4_000_000), label="delta")
    return min(max(now + delta, INT64_MIN), INT64_MAX)


@FUZZ_SETTINGS
@given(st.data())
def test_random_sequences_always_answer(data: st.DataObject) -> None:
    world = World()
    now = T0
    with shopauth.Engine(OAUTH_CONFIG) as engine:
        # Start from registered stores so that short sequences go somewhere.
        for store, platform, notify in (("s1", "mykey", False), ("s2", "myshop", False), ("s3", "myshop", True)):
            setup: Dict[str, Any] = {"type": "register_store", "client_id": "c1", "store_id": store, "platform": platform}
            if notify:
                setup.update(notify_url="https://biz.example/notify", notify_secret="notify-secret-7")
            assert engine.handle(setup, now)["code"] == 200
        for _ in range(data.draw(st.integers(1, 40), label="steps")):
            action = data.draw(
                st.sampled_from(["good", "good", "good", "typed", "typed", "raw", "timeout", "snapshot"])
            )
            now = draw_now(data, now)
            if action == "timeout":
                engine.handle_timeout(now)
                reply: Dict[str, Any] = {"code": 200, "message": "SUCCESS", "data": None}
            elif action == "snapshot":
                snap = engine.snapshot()
                assert isinstance(snap, dict)
                text = json.dumps(snap)
                assert not any(secret in text for secret in CONFIG_SECRETS[:2])
                engine.restore(snap)
                reply = {"code": 200, "message": "SUCCESS", "data": None}
            else:
                msg: Any
                if action == "good":
                    msg = good_input(data, world)
                elif action == "typed":
                    msg = typed_input(data, world)
                else:
                    msg = data.draw(json_values)
                reply = engine.handle(msg, now)
                assert_envelope(reply)
                assert reply["code"] in REPLY_CODES, reply
                if not isinstance(msg, dict) or msg.get("type") not in TYPES:
                    assert reply["code"] == 900002, (msg, reply)
                text = json.dumps(reply)
                assert not any(secret in text for secret in CONFIG_SECRETS), reply
            outputs = engine.poll_outputs()
            for output in outputs:
                if output["type"] == "transition":
                    event(f"reached {output['to']}")
                elif output["type"] == "http_request":
                    event(f"request {output['purpose']}")
                if output["type"] != "http_request":
                    text = json.dumps(output)
                    assert not any(secret in text for secret in CONFIG_SECRETS), output
            world.learn(reply, outputs)
            due = engine.poll_timeout()
            assert due is None or type(due) is int


@FUZZ_SETTINGS
@given(st.lists(st.one_of(st.text(max_size=40), st.binary(max_size=40)), max_size=10))
def test_random_texts_always_answer(texts: List[Any]) -> None:
    with shopauth.Engine(OAUTH_CONFIG) as engine:
        for text in texts:
            reply = json.loads(engine.handle_json(text, T0))
            assert_envelope(reply)
