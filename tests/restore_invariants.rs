//! Restore checks every invariant of `src/invariants.rs` before it replaces
//! anything (spec §3 "Snapshot and restore"). A rich snapshot is built
//! through the public API — stores on every platform of the test
//! configuration, in every state that holds ids: live nonces, requests in
//! flight, retries, tokens, KEY credential claims, checker requests queued
//! behind the vv-tool rate gate, queued notifications, undrained outputs —
//! then its JSON is changed so that exactly one invariant breaks. Each
//! refusal must be the expected `RestoreError`, name the invariant, carry no
//! value of the snapshot, and leave the engine exactly as it was.

mod common;
use common::*;
use serde_json::{Value, json};
use shopauth::RestoreError;
use shopauth::engine::{MAX_TIME_MS, NOTIFY_MAX_MS, POLL_MAX_MS, RETRY_MAX_MS};
use shopauth::ffi::shopauth_status::*;
use shopauth::ffi::*;
use std::ffi::{CStr, c_char};
use std::ptr::null_mut;

// ------------------------------------------------------------ the rich snapshot

fn authorize_url(h: &mut Host, store: &str, platform: &str) -> String {
    ok(&h.register(store, platform));
    let r = h.send(
        json!({"type": "authorize", "client_id": "c1", "store_id": store, "auth_type": "URL"}),
    );
    ok(&r);
    r["data"]["auth_url"].as_str().unwrap().to_owned()
}

/// A URL store redirected back with `code`: `pending`, its token_create request returned.
fn to_pending(h: &mut Host, store: &str, platform: &str, code: &str) -> Value {
    let url = authorize_url(h, store, platform);
    let st = param(&url, "state").unwrap();
    ok(&h.send(json!({"type": "oauth_redirect", "platform": platform, "params": {"code": code, "state": st}})));
    h.request("token_create")
}

fn key_authorize(h: &mut Host, client: &str, store: &str, info: Value) {
    ok(&h.send(json!({"type": "authorize", "client_id": client, "store_id": store, "auth_type": "KEY", "auth_info": info})));
}

/// Stores on every platform of the test configuration:
///
/// | store | platform | state |
/// |---|---|---|
/// | `o_req1`, `o_req2` | myshop | requested, live nonce + PKCE, redirect_url |
/// | `tw_req` | taobao_tw | requested, live nonce |
/// | `sl_req` | shopline | requested, live nonce, seller claim |
/// | `tw_pend`, `o_pend` | taobao_tw, myshop | pending, token_create in flight |
/// | `lz_retry` | lazada | pending, retrying (action timer, no request) |
/// | `v_pend` | vkey | pending, key_verify in flight |
/// | `v_retry` | vkey | pending, verification retrying |
/// | `tw_auth`, `o_auth` | taobao_tw, myshop | authorized with tokens (and learned sellers) |
/// | `k_auth`, `k_auth2`, `p_auth`, `sl_key` | mykey, pairkey, shopline | authorized KEY, credential claims |
/// | `n_key` | mykey (client c2) | authorized, one notification in flight and more queued |
/// | `c_auth` | taobao | authorized checker, re-check timer |
/// | `c_q00`…`c_q11` | taobao | requested; ten checks in flight, two queued behind the 10/s gate |
/// | `o_fail` | myshop | failed (denied) |
/// | `k_rev` | mykey | revoked, its transition left undrained in the engine |
/// | `u_new` | myshop | unauthorized |
fn rich() -> Host {
    let mut h = Host::new();
    for s in ["o_req1", "o_req2"] {
        ok(&h.register(s, "myshop"));
        ok(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": s, "auth_type": "URL", "redirect_url": "https://biz.example/r"})));
    }
    authorize_url(&mut h, "tw_req", "taobao_tw");
    ok(&h.register("sl_req", "shopline"));
    ok(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "sl_req", "auth_type": "URL", "seller_id": "slshop"})));
    to_pending(&mut h, "tw_pend", "taobao_tw", "code-tw");
    to_pending(&mut h, "o_pend", "myshop", "code-o");
    let lz = to_pending(&mut h, "lz_retry", "lazada", "code-lz");
    let tw = to_pending(&mut h, "tw_auth", "taobao_tw", "code-tw2");
    ok(&h.respond(
        &tw,
        200,
        r#"{"code":"0","access_token":"AT-tw","refresh_token":"RT-tw","expires_in":86400,"refresh_expires_in":864000,"user_info":[{"seller_id":"1001"},{"seller_id":"2001"}]}"#,
    ));
    let o = to_pending(&mut h, "o_auth", "myshop", "code-o2");
    ok(&h.respond(
        &o,
        200,
        r#"{"access_token":"AT-o","refresh_token":"RT-o","expires_in":7200}"#,
    ));
    for (s, p, info) in [
        ("k_auth", "mykey", json!({"token": "key-token-1"})),
        ("k_auth2", "mykey", json!({"token": "key-token-2"})),
        (
            "p_auth",
            "pairkey",
            json!({"api_key": "ak-1", "api_secret": "as-1"}),
        ),
        (
            "v_pend",
            "vkey",
            json!({"api_key": "ak-v", "api_secret": "as-v"}),
        ),
        (
            "v_retry",
            "vkey",
            json!({"api_key": "ak-v2", "api_secret": "as-v2"}),
        ),
    ] {
        ok(&h.register(s, p));
        key_authorize(&mut h, "c1", s, info);
    }
    let verifies = h.take_kind("http_request");
    let v_retry = verifies
        .iter()
        .find(|r| r["store_id"] == "v_retry")
        .unwrap()
        .clone();
    ok(&h.register("sl_key", "shopline"));
    ok(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "sl_key", "auth_type": "KEY", "seller_id": "slkeyshop", "auth_info": {"token": "sl-token"}})));
    // Notifications: the first in flight (never answered), two queued behind it.
    ok(&h.send(json!({"type": "register_store", "client_id": "c2", "store_id": "n_key", "platform": "mykey",
        "notify_url": "https://biz.example/n", "notify_secret": "notify-secret-n"})));
    key_authorize(&mut h, "c2", "n_key", json!({"token": "n-token"}));
    ok(&h.send(json!({"type": "revoke", "client_id": "c2", "store_id": "n_key"})));
    key_authorize(&mut h, "c2", "n_key", json!({"token": "n-token"}));
    // A failed attempt.
    let url = authorize_url(&mut h, "o_fail", "myshop");
    let st = param(&url, "state").unwrap();
    ok(&h.send(json!({"type": "oauth_redirect", "platform": "myshop", "params": {"error": "access_denied", "state": st}})));
    // An authorized checker store.
    ok(&h.register("c_auth", "taobao"));
    ok(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "c_auth", "auth_type": "URL", "seller_id": "shop-auth"})));
    let c = h.request("status_check");
    ok(&h.respond(
        &c,
        200,
        r#"{"code":0,"data":{"status":"subAuthorize","withholding_money":2}}"#,
    ));
    // One second on: twelve checker stores at one instant; the gate sends ten.
    h.tick(1000);
    for i in 0..12 {
        let s = format!("c_q{i:02}");
        ok(&h.register(&s, "taobao"));
        ok(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": s, "auth_type": "URL", "seller_id": format!("shop-{i}")})));
    }
    // The retries: answered now, so their next try waits on an action timer.
    ok(&h.respond(&lz, 503, "busy"));
    ok(&h.respond(&v_retry, 500, ""));
    ok(&h.register("u_new", "myshop"));
    ok(&h.register("k_rev", "mykey"));
    key_authorize(&mut h, "c1", "k_rev", json!({"token": "key-token-rev"}));
    h.take();
    // Left in the engine's queue: the snapshot header carries it.
    let (_, r) = h.engine.handle_json(
        r#"{"type":"revoke","client_id":"c1","store_id":"k_rev"}"#,
        h.now,
    );
    assert!(r.contains("200"), "{r}");
    h
}

fn rich_snapshot() -> (Host, Value) {
    let h = rich();
    let v: Value = serde_json::from_str(&h.engine.snapshot()).unwrap();
    // The states the table above promises.
    let state = |id: &str| rec(&v, id)["state"].as_str().unwrap().to_owned();
    for (id, want) in [
        ("o_req1", "requested"),
        ("tw_pend", "pending"),
        ("lz_retry", "pending"),
        ("v_retry", "pending"),
        ("tw_auth", "authorized"),
        ("k_auth", "authorized"),
        ("n_key", "authorized"),
        ("c_q11", "requested"),
        ("o_fail", "failed"),
        ("k_rev", "revoked"),
        ("u_new", "unauthorized"),
    ] {
        assert_eq!(state(id), want, "{id}");
    }
    assert!(rec(&v, "o_req1")["open"]["nonce"].is_object());
    assert!(rec(&v, "tw_pend")["request"]["in_flight"].is_object());
    assert!(rec(&v, "lz_retry").get("request").is_none());
    assert!(timer(&v, "lz_retry", "action").is_some());
    assert!(rec(&v, "c_q10")["request"]["queued"].is_object());
    assert!(rec(&v, "c_q11")["request"]["queued"].is_object());
    assert!(rec(&v, "n_key")["notify"]["in_flight"].is_u64());
    assert_eq!(
        rec(&v, "n_key")["notify"]["outbox"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(v["engine"]["outputs"].as_array().unwrap().len(), 1);
    (h, v)
}

fn rec<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["stores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["store_id"] == id)
        .unwrap_or_else(|| panic!("no store {id}"))
}

fn rec_mut<'a>(v: &'a mut Value, id: &str) -> &'a mut Value {
    v["stores"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["store_id"] == id)
        .unwrap_or_else(|| panic!("no store {id}"))
}

fn timer(v: &Value, id: &str, kind: &str) -> Option<Value> {
    rec(v, id)["timers"]
        .as_array()?
        .iter()
        .find(|t| t[0] == kind)
        .cloned()
}

// ------------------------------------------------------------ the cases

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Inconsistent,
    Malformed,
    OtherSecret,
}

struct Case {
    name: &'static str,
    want: Want,
    /// A distinctive part of the message (the invariant's name).
    says: &'static str,
    /// Values planted by the mutation that the message must not carry.
    planted: Vec<String>,
    mutate: Box<dyn Fn(&mut Value)>,
}

fn case(
    name: &'static str,
    want: Want,
    says: &'static str,
    planted: &[&str],
    mutate: impl Fn(&mut Value) + 'static,
) -> Case {
    Case {
        name,
        want,
        says,
        planted: planted.iter().map(|s| s.to_string()).collect(),
        mutate: Box::new(mutate),
    }
}

const CLOCK: &str = "the clock is within 1970-9999";
const TIMES: &str = "times are within 1970-9999";
const COUNTERS: &str = "counters are not behind the ids in the records";
const IDS: &str = "client_id and store_id are within the limits of section 4";
const BACKOFFS: &str = "backoffs are within their caps";
const PENDING: &str = "a pending store has its request";
const STATES: &str = "states are from the closed list";
const NOTIFY_LIMITS: &str = "notify_url and notify_secret are within the limits of section 4";
const BODIES: &str = "notification bodies are JSON objects";
const SELLERS: &str = "learned sellers are at most 1000, each within the limits of section 4";
const AFTER_9999: i64 = MAX_TIME_MS + 1;
const LONG_STORE_ID: &str = "s-65-chars-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

fn cases() -> Vec<Case> {
    use Want::*;
    assert_eq!(LONG_STORE_ID.chars().count(), 65);
    vec![
        // ---- across stores
        // Version-1 nonces are looked up by serial alone; version-2 ones
        // (and request ids) carry their store's ref, so two stores may hold
        // equal serials (records loaded from several engines, spec §11).
        case(
            "two stores with the same live version-1 nonce serial",
            Inconsistent,
            "live state nonces are unique",
            &[],
            |v| {
                rec_mut(v, "o_req1")["open"]["nonce"] = json!(1);
                rec_mut(v, "o_req2")["open"]["nonce"] = json!(1);
            },
        ),
        case(
            "nonce counter behind the nonces in the records",
            Inconsistent,
            COUNTERS,
            &[],
            |v| v["engine"]["counters"]["nonce"] = json!(3),
        ),
        case(
            "request counter behind the request serials in the records",
            Inconsistent,
            COUNTERS,
            &[],
            |v| v["engine"]["counters"]["request"] = json!(5),
        ),
        case(
            "timer counter behind the timer keys in the records",
            Inconsistent,
            COUNTERS,
            &[],
            |v| v["engine"]["counters"]["timer"] = json!(10),
        ),
        case(
            "queue counter behind the rate-queue keys in the records",
            Inconsistent,
            COUNTERS,
            &[],
            |v| v["engine"]["counters"]["queue"] = json!(1),
        ),
        case(
            "duplicate timer keys",
            Inconsistent,
            "timer keys are unique",
            &[],
            |v| {
                let t = timer(v, "o_auth", "action").unwrap();
                rec_mut(v, "k_auth")["timers"] = json!([t]);
            },
        ),
        case(
            "duplicate rate-queue keys",
            Inconsistent,
            "rate-queue keys are unique",
            &[],
            |v| {
                let q = rec(v, "c_q10")["request"].clone();
                rec_mut(v, "c_q11")["request"] = q;
            },
        ),
        case(
            "one store's request and notification under one serial",
            Inconsistent,
            "request serials are unique",
            &[],
            |v| {
                let serial = rec(v, "n_key")["notify"]["in_flight"].clone();
                let sent = rec(v, "n_key")["notify"]["sent_at"].clone();
                rec_mut(v, "n_key")["request"] = json!({"in_flight": {"serial": serial, "purpose": "key_verify", "sent_at": sent}});
            },
        ),
        case(
            "a seller claimed by two stores",
            Inconsistent,
            "no seller is claimed by two stores",
            &["shop-1"],
            |v| rec_mut(v, "c_q00")["seller_id"] = json!("shop-1"),
        ),
        case(
            "a learned seller claimed by two stores",
            Inconsistent,
            "no seller is claimed by two stores",
            &["1001"],
            |v| rec_mut(v, "tw_req")["learned"] = json!(["1001"]),
        ),
        case(
            "a credential claimed by two stores",
            Inconsistent,
            "no credential is claimed by two stores",
            &["key-token-1"],
            |v| {
                let a = rec(v, "k_auth").clone();
                let b = rec_mut(v, "k_auth2");
                b["key"] = a["key"].clone();
                b["fingerprint"] = a["fingerprint"].clone();
            },
        ),
        case(
            "duplicate store ids (a record twice)",
            Inconsistent,
            "store ids are unique",
            &[],
            |v| {
                let r = rec(v, "u_new").clone();
                v["stores"].as_array_mut().unwrap().push(r);
            },
        ),
        case(
            "duplicate store ids (two records, one id)",
            Inconsistent,
            "store ids are unique",
            &[],
            |v| rec_mut(v, "k_auth2")["store_id"] = json!("k_auth"),
        ),
        // ---- credentials
        case(
            "a fingerprint that is not the credentials'",
            Inconsistent,
            "every credential claim is the fingerprint of the store's credentials",
            &[],
            |v| rec_mut(v, "k_auth")["fingerprint"] = json!("00112233445566778899aabbccddeeff"),
        ),
        case(
            "credentials changed under their fingerprint",
            Inconsistent,
            "every credential claim is the fingerprint of the store's credentials",
            &["forged-api-secret-zz"],
            |v| rec_mut(v, "p_auth")["key"]["api_secret"] = json!("forged-api-secret-zz"),
        ),
        case(
            "a KEY token over 2048 characters",
            Inconsistent,
            "auth_info values are within the limits of section 4",
            &["tttttttttttttttt"],
            |v| rec_mut(v, "k_auth")["key"]["token"] = json!("t".repeat(2049)),
        ),
        case(
            "empty tokens",
            Inconsistent,
            "tokens are not empty",
            &[],
            |v| rec_mut(v, "o_auth")["tokens"]["access"] = json!(""),
        ),
        // ---- what each state waits on
        case(
            "pending without its request",
            Inconsistent,
            PENDING,
            &[],
            |v| {
                rec_mut(v, "tw_pend")
                    .as_object_mut()
                    .unwrap()
                    .remove("request");
            },
        ),
        case(
            "pending, retrying, without its retry timer",
            Inconsistent,
            PENDING,
            &[],
            |v| {
                let r = rec_mut(v, "lz_retry");
                let kept: Vec<Value> = r["timers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|t| t[0] != "action")
                    .cloned()
                    .collect();
                r["timers"] = json!(kept);
            },
        ),
        case(
            "pending (URL) without its code",
            Inconsistent,
            PENDING,
            &[],
            |v| {
                rec_mut(v, "o_pend")["open"]
                    .as_object_mut()
                    .unwrap()
                    .remove("code");
            },
        ),
        case(
            "pending (KEY) without its credentials",
            Inconsistent,
            PENDING,
            &[],
            |v| {
                rec_mut(v, "v_pend").as_object_mut().unwrap().remove("key");
            },
        ),
        case(
            "a live nonce on a store that is not requested",
            Inconsistent,
            "live state nonces belong to requested URL attempts",
            &[],
            |v| rec_mut(v, "o_req1")["state"] = json!("failed"),
        ),
        case(
            "a live nonce on a KEY attempt",
            Inconsistent,
            "live state nonces belong to requested URL attempts",
            &[],
            |v| rec_mut(v, "tw_req")["auth_type"] = json!("KEY"),
        ),
        case(
            "a notification in flight and to be re-sent",
            Inconsistent,
            "a notification is in flight or to be re-sent, not both",
            &[],
            |v| {
                let n = rec(v, "n_key")["notify"]["in_flight"].clone();
                rec_mut(v, "n_key")["notify"]["resend"] = n;
            },
        ),
        case(
            "verification tries over the limit",
            Inconsistent,
            "verification tries are within their limit",
            &[],
            |v| rec_mut(v, "v_retry")["open"]["tries"] = json!(6),
        ),
        // ---- states
        case("state removed", Inconsistent, STATES, &[], |v| {
            rec_mut(v, "tw_auth")["state"] = json!("removed")
        }),
        case(
            "an unknown state string",
            Malformed,
            "state",
            &["bogus-state-xyz"],
            |v| rec_mut(v, "tw_auth")["state"] = json!("bogus-state-xyz"),
        ),
        case(
            "an attempt on an unauthorized store",
            Inconsistent,
            "a store has had an attempt unless it is unauthorized",
            &[],
            |v| rec_mut(v, "u_new")["attempt"] = json!(1),
        ),
        case(
            "an authorized store without an attempt",
            Inconsistent,
            "a store has had an attempt unless it is unauthorized",
            &[],
            |v| rec_mut(v, "k_auth")["attempt"] = json!(0),
        ),
        case(
            "an attempt number that cannot grow",
            Inconsistent,
            "attempt and seq numbers can grow",
            &["4294967295"],
            |v| rec_mut(v, "k_auth")["attempt"] = json!(u32::MAX),
        ),
        case(
            "a seq number that cannot grow",
            Inconsistent,
            "attempt and seq numbers can grow",
            &["9223372036854775807"],
            |v| rec_mut(v, "k_auth")["seq"] = json!(u64::MAX / 2),
        ),
        // ---- ids and fields within section 4
        case("empty client_id", Inconsistent, IDS, &[], |v| {
            rec_mut(v, "k_auth")["client_id"] = json!("")
        }),
        case(
            "client_id with trailing white space",
            Inconsistent,
            IDS,
            &["client-trailing "],
            |v| rec_mut(v, "k_auth")["client_id"] = json!("client-trailing "),
        ),
        case(
            "client_id with leading white space (U+3000)",
            Inconsistent,
            IDS,
            &["\u{3000}client-lead"],
            |v| rec_mut(v, "k_auth")["client_id"] = json!("\u{3000}client-lead"),
        ),
        case(
            "client_id with a control character",
            Inconsistent,
            IDS,
            &["client\u{7}bell"],
            |v| rec_mut(v, "k_auth")["client_id"] = json!("client\u{7}bell"),
        ),
        case(
            "client_id with a C1 control character",
            Inconsistent,
            IDS,
            &["client\u{85}nel"],
            |v| rec_mut(v, "k_auth")["client_id"] = json!("client\u{85}nel"),
        ),
        case(
            "a 65-character store_id",
            Inconsistent,
            IDS,
            &[LONG_STORE_ID],
            |v| rec_mut(v, "u_new")["store_id"] = json!(LONG_STORE_ID),
        ),
        case(
            "seller_id with trailing white space",
            Inconsistent,
            "seller_id is within the limits of section 4",
            &["shop-0 "],
            |v| rec_mut(v, "c_q00")["seller_id"] = json!("shop-0 "),
        ),
        case(
            "1001 learned sellers",
            Inconsistent,
            SELLERS,
            &["seller-1000"],
            |v| {
                let many: Vec<String> = (0..1001).map(|i| format!("seller-{i}")).collect();
                rec_mut(v, "tw_auth")["learned"] = json!(many);
            },
        ),
        case(
            "a learned seller of 65 characters",
            Inconsistent,
            SELLERS,
            &["lllllllllllllllllll"],
            |v| rec_mut(v, "tw_auth")["learned"] = json!(["1001", "l".repeat(65)]),
        ),
        case(
            "a redirect_url with a control character",
            Inconsistent,
            "redirect_url is within the limits of section 4",
            &["https://biz.example/r\n"],
            |v| rec_mut(v, "o_req1")["open"]["redirect_url"] = json!("https://biz.example/r\n"),
        ),
        case(
            "a notify_secret with a control character",
            Inconsistent,
            NOTIFY_LIMITS,
            &["notify\u{0}secret-planted"],
            |v| rec_mut(v, "n_key")["notify"]["secret"] = json!("notify\u{0}secret-planted"),
        ),
        case(
            "an empty notify_url",
            Inconsistent,
            NOTIFY_LIMITS,
            &[],
            |v| rec_mut(v, "n_key")["notify"]["url"] = json!(""),
        ),
        case(
            "a notification body that is not JSON",
            Inconsistent,
            BODIES,
            &["not json planted-body"],
            |v| rec_mut(v, "n_key")["notify"]["outbox"][1]["body"] = json!("not json planted-body"),
        ),
        case(
            "a notification body that is JSON but not an object",
            Inconsistent,
            BODIES,
            &["planted-array"],
            |v| rec_mut(v, "n_key")["notify"]["outbox"][2]["body"] = json!("[\"planted-array\"]"),
        ),
        // ---- times
        case(
            "now = i64::MAX",
            Inconsistent,
            CLOCK,
            &["9223372036854775807"],
            |v| v["engine"]["now"] = json!(i64::MAX),
        ),
        case("now negative", Inconsistent, CLOCK, &["123456789"], |v| {
            v["engine"]["now"] = json!(-123_456_789)
        }),
        case(
            "a timer after year 9999",
            Inconsistent,
            TIMES,
            &["253402300800000"],
            |v| {
                let t = rec_mut(v, "o_auth")["timers"]
                    .as_array_mut()
                    .unwrap()
                    .iter_mut()
                    .find(|t| t[0] == "expiry")
                    .unwrap();
                t[1] = json!(AFTER_9999);
            },
        ),
        case(
            "a negative timer",
            Inconsistent,
            TIMES,
            &["123456789"],
            |v| rec_mut(v, "o_req1")["timers"][0][1] = json!(-123_456_789),
        ),
        case(
            "a token expiry after year 9999",
            Inconsistent,
            TIMES,
            &["253402300800000"],
            |v| rec_mut(v, "tw_auth")["tokens"]["refresh_expires_at"] = json!(AFTER_9999),
        ),
        case(
            "a negative token time",
            Inconsistent,
            TIMES,
            &["123456789"],
            |v| rec_mut(v, "o_auth")["tokens"]["obtained_at"] = json!(-123_456_789),
        ),
        case(
            "a nonce issued after year 9999",
            Inconsistent,
            TIMES,
            &["253402300800000"],
            |v| rec_mut(v, "o_req1")["open"]["nonce"]["at"] = json!(AFTER_9999),
        ),
        case(
            "a request sent at a negative time",
            Inconsistent,
            TIMES,
            &["123456789"],
            |v| rec_mut(v, "tw_pend")["request"]["in_flight"]["sent_at"] = json!(-123_456_789),
        ),
        case(
            "a notification created after year 9999",
            Inconsistent,
            TIMES,
            &["253402300800000"],
            |v| rec_mut(v, "n_key")["notify"]["outbox"][0]["created_at"] = json!(AFTER_9999),
        ),
        case(
            "a rate window with a negative time",
            Inconsistent,
            "rate windows hold times within 1970-9999",
            &["123456789"],
            |v| {
                v["engine"]["gates"]["taobao"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!(-123_456_789))
            },
        ),
        // ---- backoffs
        case(
            "a retry backoff over its cap",
            Inconsistent,
            BACKOFFS,
            &["300001"],
            |v| rec_mut(v, "lz_retry")["retry_ms"] = json!(RETRY_MAX_MS + 1),
        ),
        case(
            "a negative retry backoff",
            Inconsistent,
            BACKOFFS,
            &[],
            |v| rec_mut(v, "lz_retry")["retry_ms"] = json!(-1),
        ),
        case(
            "a poll interval over its cap",
            Inconsistent,
            BACKOFFS,
            &["300001"],
            |v| rec_mut(v, "c_q00")["poll_ms"] = json!(POLL_MAX_MS + 1),
        ),
        case(
            "a notification backoff over its cap",
            Inconsistent,
            BACKOFFS,
            &["3600001"],
            |v| rec_mut(v, "n_key")["notify"]["backoff_ms"] = json!(NOTIFY_MAX_MS + 1),
        ),
        // ---- configuration and secret
        case(
            "a store on a platform that is not configured",
            Inconsistent,
            "every store's platform is configured",
            &[],
            |v| rec_mut(v, "tw_auth")["platform"] = json!("gone_platform"),
        ),
        case(
            "another engine secret's fingerprint",
            OtherSecret,
            "another engine secret",
            &["00000000000000000000000000000000"],
            |v| v["engine"]["secret"] = json!("0".repeat(32)),
        ),
    ]
}

/// Every store id and secret in the snapshot: no refusal may carry one.
fn snapshot_values(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["store_id"].as_str().unwrap().to_owned())
        .collect();
    out.push(v["engine"]["secret"].as_str().unwrap().to_owned());
    for s in [
        "AT-tw",
        "RT-tw",
        "AT-o",
        "RT-o",
        "key-token-1",
        "key-token-2",
        "as-1",
        "as-v2",
        "sl-token",
        "n-token",
        "notify-secret-n",
        "code-tw",
        "code-o",
        "code-lz",
        "shop-auth",
        "slshop",
    ] {
        out.push(s.to_owned());
    }
    out
}

fn check_refusal(
    target: &mut Host,
    text: &str,
    name: &str,
    want: Want,
    says: &str,
    forbidden: &[String],
) -> String {
    let before = target.engine.snapshot();
    let timeout = target.engine.poll_timeout_ms();
    let err = target
        .engine
        .restore(text)
        .expect_err(&format!("{name}: restored"));
    let kind = match &err {
        RestoreError::Inconsistent(_) => Want::Inconsistent,
        RestoreError::Malformed(_) => Want::Malformed,
        RestoreError::OtherSecret => Want::OtherSecret,
        other => panic!("{name}: unexpected {other:?}"),
    };
    assert_eq!(kind, want, "{name}: {err}");
    let msg = err.to_string();
    assert!(msg.contains(says), "{name}: {msg:?} does not say {says:?}");
    for f in forbidden {
        assert!(
            !msg.contains(f.as_str()),
            "{name}: {msg:?} carries the value {f:?}"
        );
    }
    assert_eq!(target.engine.snapshot(), before, "{name}: engine changed");
    assert_eq!(target.engine.poll_timeout_ms(), timeout, "{name}");
    msg
}

/// One refusal per invariant, each with exactly one invariant broken.
#[test]
fn every_invariant_refuses_naming_it_without_values_and_changes_nothing() {
    let (mut h, good) = rich_snapshot();
    let base = snapshot_values(&good);
    let mut names = std::collections::BTreeSet::new();
    for c in cases() {
        let mut v = good.clone();
        (c.mutate)(&mut v);
        assert_ne!(v, good, "{}: the mutation changed nothing", c.name);
        let mut forbidden = base.clone();
        forbidden.extend(c.planted.iter().cloned());
        let msg = check_refusal(&mut h, &v.to_string(), c.name, c.want, c.says, &forbidden);
        if c.want == Want::Inconsistent {
            names.insert(msg);
        }
    }
    // The store on a platform that is gone: the message says which
    // platform (spec §3), never which store.
    let mut v = good.clone();
    rec_mut(&mut v, "tw_auth")["platform"] = json!("gone_platform");
    let e = h.engine.restore(&v.to_string()).unwrap_err();
    assert!(e.to_string().contains("gone_platform"), "{e}");
    // Every invariant of src/invariants.rs was hit (v2; the v1 claims check
    // has its own test in tests/snapshot.rs).
    let src = include_str!("../src/invariants.rs");
    let mut listed: Vec<&str> = src
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| s.contains(' ') && s.starts_with(|c: char| c.is_lowercase()))
        .map(|s| s.split(" (").next().unwrap())
        .collect();
    assert!(listed.len() >= 25, "{listed:?}");
    listed.sort();
    listed.dedup();
    for inv in listed {
        assert!(
            names.iter().any(|m| m.contains(inv)),
            "no case for the invariant {inv:?}"
        );
    }
    // Still the same engine, and it restores the good snapshot.
    h.engine.restore(&good.to_string()).unwrap();
}

/// A real snapshot of an engine with another secret (and otherwise the same
/// configuration and stores) is `OtherSecret`, whatever it holds.
#[test]
fn a_snapshot_of_another_engine_secret_is_refused() {
    let (mut h, _) = rich_snapshot();
    let mut other = config();
    other["secret"] = json!("a5".repeat(32));
    let mut o = Host::with(other);
    ok(&o.register("theirs", "mykey"));
    key_authorize(&mut o, "c1", "theirs", json!({"token": "their-token"}));
    let text = o.engine.snapshot();
    let v: Value = serde_json::from_str(&text).unwrap();
    let mut forbidden = snapshot_values(&v);
    forbidden.push("a5a5a5a5".into());
    check_refusal(
        &mut h,
        &text,
        "another secret",
        Want::OtherSecret,
        "another engine secret",
        &forbidden,
    );
    // Broken invariants do not mask it either: the secret is checked first.
    let mut v = v;
    rec_mut(&mut v, "theirs")["state"] = json!("removed");
    check_refusal(
        &mut h,
        &v.to_string(),
        "another secret, broken",
        Want::OtherSecret,
        "another engine secret",
        &forbidden,
    );
}

// ------------------------------------------------------------ the C ABI

fn take_string(s: *mut c_char) -> String {
    assert!(!s.is_null());
    let t = unsafe { CStr::from_ptr(s) }.to_str().unwrap().to_owned();
    unsafe { shopauth_string_free(s) };
    t
}

fn ffi_snapshot(e: *mut shopauth_engine) -> String {
    let mut out = null_mut();
    assert_eq!(
        unsafe { shopauth_engine_snapshot(e, &mut out) },
        SHOPAUTH_OK
    );
    take_string(out)
}

fn ffi_restore(e: *mut shopauth_engine, text: &str) -> (shopauth_status, Option<String>) {
    let mut err = null_mut();
    let s = unsafe { shopauth_engine_restore(e, text.as_ptr().cast(), text.len(), &mut err) };
    (s, (!err.is_null()).then(|| take_string(err)))
}

#[test]
fn broken_invariants_are_rejected_over_the_c_abi() {
    let (_, good) = rich_snapshot();
    let cfg = config().to_string();
    let mut e = null_mut();
    let s = unsafe { shopauth_engine_new(cfg.as_ptr().cast(), cfg.len(), &mut e, null_mut()) };
    assert_eq!(s, SHOPAUTH_OK);
    // The engine holds the good state first; refusals must keep it.
    let (s, err) = ffi_restore(e, &good.to_string());
    assert_eq!((s, err), (SHOPAUTH_OK, None));
    let before = ffi_snapshot(e);
    let forbidden = snapshot_values(&good);
    let all = cases();
    let pick = |name: &str| all.iter().find(|c| c.name == name).unwrap();
    for (name, status) in [
        (
            "two stores with the same live version-1 nonce serial",
            SHOPAUTH_REJECTED,
        ),
        ("a 65-character store_id", SHOPAUTH_REJECTED),
        ("a notification body that is not JSON", SHOPAUTH_REJECTED),
        ("another engine secret's fingerprint", SHOPAUTH_REJECTED),
        ("an unknown state string", SHOPAUTH_INVALID_ARGUMENT),
    ] {
        let c = pick(name);
        let mut v = good.clone();
        (c.mutate)(&mut v);
        let (s, err) = ffi_restore(e, &v.to_string());
        assert_eq!(s, status, "{name}");
        let err = err.unwrap_or_else(|| panic!("{name}: no error string"));
        assert!(err.contains(c.says), "{name}: {err}");
        for f in forbidden.iter().chain(&c.planted) {
            assert!(!err.contains(f.as_str()), "{name}: {err} carries {f:?}");
        }
        assert_eq!(ffi_snapshot(e), before, "{name}: engine changed");
    }
    unsafe { shopauth_engine_free(e) };
}

// ------------------------------------------------------------ positive

/// A deterministic permutation of `0..n` (an LCG-keyed sort).
fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut keyed: Vec<(u64, usize)> = (0..n)
        .map(|i| {
            let x = (i as u64 + 1)
                .wrapping_mul(6364136223846793005)
                .wrapping_add(seed.wrapping_mul(1442695040888963407));
            (x ^ (x >> 29), i)
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, i)| i).collect()
}

#[test]
fn the_rich_snapshot_restores_and_record_order_does_not_matter() {
    let (h, good) = rich_snapshot();
    let text = good.to_string();
    let mut a = Host::new();
    a.engine.restore(&text).unwrap();
    let restored = a.engine.snapshot();
    // What restore keeps: every store, its state and claims.
    let r: Value = serde_json::from_str(&restored).unwrap();
    assert_eq!(r["stores"].as_array().unwrap().len(), 32);
    for s in good["stores"].as_array().unwrap() {
        let id = s["store_id"].as_str().unwrap();
        let t = rec(&r, id);
        assert_eq!(t["state"], s["state"], "{id}");
        assert_eq!(t["claims"], s["claims"], "{id}");
    }
    assert_eq!(r["engine"]["outputs"], good["engine"]["outputs"]);
    assert_eq!(r["engine"]["counters"], good["engine"]["counters"]);
    // Shuffled records: the same state, byte for byte.
    let stores = good["stores"].as_array().unwrap();
    let mut reversed = good.clone();
    reversed["stores"] = json!(stores.iter().rev().cloned().collect::<Vec<_>>());
    let mut shuffles = vec![reversed];
    for seed in 1..4 {
        let mut v = good.clone();
        let order = permutation(stores.len(), seed);
        v["stores"] = json!(order.iter().map(|&i| stores[i].clone()).collect::<Vec<_>>());
        assert_ne!(v, good);
        shuffles.push(v);
    }
    for (i, v) in shuffles.iter().enumerate() {
        let mut b = Host::new();
        b.engine.restore(&v.to_string()).unwrap();
        assert_eq!(b.engine.snapshot(), restored, "shuffle {i}");
        assert_eq!(b.engine.poll_timeout_ms(), a.engine.poll_timeout_ms());
    }
    // And the same behaviour afterwards: re-sends, gate order, timers.
    let mut b = Host::new();
    b.engine.restore(&shuffles[1].to_string()).unwrap();
    for e in [&mut a, &mut b] {
        e.now = h.now;
        e.tick(0);
        e.tick(1000);
        e.tick(60_000);
    }
    assert_eq!(a.take(), b.take());
    assert_eq!(a.engine.snapshot(), b.engine.snapshot());
}

/// When several invariants checked across stores break at once, restore
/// names the one met first going through the records in their order, as a
/// restore that checks ids, timer keys and claims store by store would
/// (restore indexes ids and claims in bulk, once every store is placed).
#[test]
fn several_broken_cross_store_invariants_name_the_first_in_record_order() {
    let (mut h, good) = rich_snapshot();
    let at = |v: &Value, id: &str| {
        v["stores"]
            .as_array()
            .unwrap()
            .iter()
            .position(|s| s["store_id"] == id)
            .unwrap()
    };
    // Broken at k_auth2: the credential k_auth holds.
    let credential_at = |v: &mut Value, id: &str| {
        let a = rec(v, "k_auth").clone();
        let b = rec_mut(v, id);
        b["key"] = a["key"].clone();
        b["fingerprint"] = a["fingerprint"].clone();
    };
    // Broken at o_auth: the timer key k_auth holds.
    let timer_at_o_auth = |v: &mut Value| {
        let t = timer(v, "o_auth", "action").unwrap();
        rec_mut(v, "k_auth")["timers"] = json!([t]);
    };
    assert!(at(&good, "k_auth") < at(&good, "k_auth2"));
    assert!(at(&good, "k_auth2") < at(&good, "o_auth"));
    assert!(at(&good, "o_auth") < at(&good, "p_auth"));
    let last = good["stores"].as_array().unwrap().len() - 1;
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "a credential twice, then a record twice at the end",
            Box::new(move |v| {
                credential_at(v, "k_auth2");
                let r = v["stores"][last].clone();
                v["stores"].as_array_mut().unwrap().push(r);
            }),
            "no credential is claimed by two stores",
        ),
        (
            "the first record twice, then a credential twice",
            Box::new(move |v| {
                credential_at(v, "k_auth2");
                let r = v["stores"][0].clone();
                v["stores"].as_array_mut().unwrap().insert(1, r);
            }),
            "store ids are unique",
        ),
        (
            "a credential twice, then a timer key twice",
            Box::new(move |v| {
                credential_at(v, "k_auth2");
                timer_at_o_auth(v);
            }),
            "no credential is claimed by two stores",
        ),
        (
            "a timer key twice, then a credential twice",
            Box::new(move |v| {
                timer_at_o_auth(v);
                credential_at(v, "p_auth");
            }),
            "timer keys are unique",
        ),
        (
            "a timer key twice, then a store id twice",
            Box::new(move |v| {
                timer_at_o_auth(v);
                rec_mut(v, "p_auth")["store_id"] = json!("k_auth");
            }),
            "timer keys are unique",
        ),
    ];
    for (name, mutate, says) in cases {
        let mut v = good.clone();
        mutate(&mut v);
        check_refusal(&mut h, &v.to_string(), name, Want::Inconsistent, says, &[]);
    }
}
