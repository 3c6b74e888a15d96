//! Fleets (spec §11), the engine's part: `load`, `unload`, `route` and
//! foreign claims.
//!
//! - A store moves between engines: open requests, nonces and deadlines
//!   loaded into another engine are honoured there.
//! - `load` refuses each of its rules, all or nothing; `unload` leaves no
//!   trace; neither is a change.
//! - Foreign claims answer exactly as the claims of a store in the engine.
//! - `route` for every kind of input, forged ids, ids of other engines.
//! - Records from two engines share timer sequence numbers and request
//!   serials; a fleet engine still orders them, and its snapshot restores.
//! - `fleet_matches_one_engine` (proptest, `SHOPAUTH_FLEET_CASES`, default
//!   64): the model test's random workloads applied to one engine and, fleet
//!   style, to 2–3 engines that load each store's latest record (and every
//!   other store's claims as foreign claims) for every input and every due
//!   timer, then take the changes and unload; replies, outputs per store,
//!   views, claims and due times must be the same (ids that carry an
//!   engine's own counters are compared up to renaming).

mod common;
use common::*;
use serde_json::{Value, json};
use shopauth::{Engine, LoadError};

#[path = "model/reference.rs"]
mod reference;
#[path = "model/sut.rs"]
mod sut;
#[path = "model/transition.rs"]
mod transition;

#[path = "fleet/equivalence.rs"]
mod equivalence;

// ------------------------------------------------------------------ helpers

fn take(h: &mut Host) -> Value {
    serde_json::from_str(&h.engine.take_changes()).unwrap()
}

fn entry<'a>(c: &'a Value, id: &str) -> &'a Value {
    c["stores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["store_id"] == id)
        .unwrap_or_else(|| panic!("no change entry for {id} in {c}"))
}

/// The claims of a change entry as foreign claims (with their `store_id`).
fn foreign(e: &Value) -> Vec<Value> {
    e["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c["store_id"] = e["store_id"].clone();
            c
        })
        .collect()
}

fn load(h: &mut Host, stores: &[&Value], foreign: &[Value]) -> Result<(), LoadError> {
    h.engine
        .load(&json!({"stores": stores, "foreign_claims": foreign}).to_string())
}

fn unload(h: &mut Host, ids: &[&str], foreign: &[Value]) {
    h.engine
        .unload(&json!({"store_ids": ids, "foreign_claims": foreign}).to_string())
        .unwrap();
}

fn vkey_authorize(h: &mut Host, store: &str, key: &str) -> Value {
    ok(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": store, "auth_type": "KEY", "auth_info": {"api_key": key, "api_secret": "sek-1"}})));
    h.request("key_verify")
}

fn url_authorize(h: &mut Host, store: &str, platform: &str) -> String {
    let r = h.send(
        json!({"type": "authorize", "client_id": "c1", "store_id": store, "auth_type": "URL"}),
    );
    ok(&r);
    let url = r["data"]["auth_url"].as_str().unwrap().to_owned();
    let name = if platform == "shopline" {
        "customField"
    } else {
        "state"
    };
    param(&url, name).unwrap()
}

const IOP_TOKEN: &str = r#"{"code":"0","access_token":"A1","refresh_token":"R1","expires_in":3600,"refresh_expires_in":7200,"user_info":[{"seller_id":"1001","user_id":1}]}"#;

// ------------------------------------------------------------------ moving stores

/// Spec §11: "load keeps open requests open under their ids … its answer
/// may reach whichever engine has the store loaded then — it is accepted
/// there."
#[test]
fn a_store_moves_to_another_engine_and_its_open_request_is_answered_there() {
    let mut a = Host::new();
    ok(&a.register("s1", "vkey"));
    let verify = vkey_authorize(&mut a, "s1", "k1");
    let c = take(&mut a);
    let record = entry(&c, "s1")["record"].clone();
    assert_eq!(record["state"], "pending");
    let mut b = Host::new();
    b.now = a.now + 5_000;
    load(&mut b, &[&record], &[]).unwrap();
    // Not a change: the next take lists nothing.
    assert_eq!(take(&mut b)["stores"], json!([]));
    ok(&b.respond(&verify, 200, "{}"));
    assert_eq!(b.state("s1"), "authorized");
    assert_eq!(
        b.transitions(),
        [("s1".into(), "pending".into(), "authorized".into(), None)]
    );
    // The answer is a change of s1 in b; a forgets s1 without a trace.
    let c = take(&mut b);
    assert_eq!(entry(&c, "s1")["record"]["state"], "authorized");
    unload(&mut a, &["s1"], &[]);
    assert_eq!(a.engine.store_count(), 0);
    assert_eq!(take(&mut a)["stores"], json!([]));
    // A second answer to the same id is unknown in b (it is closed).
    assert_eq!(code(&b.respond(&verify, 200, "{}")), 900008);
}

/// Authorize in one engine, the seller comes back to a second, the token
/// answer reaches a third: nonce, PKCE verifier and request id all carry
/// over in the record.
#[test]
fn a_url_flow_crosses_three_engines() {
    let mut hosts = [Host::new(), Host::new(), Host::new()];
    ok(&hosts[0].register("o1", "myshop"));
    let nonce = url_authorize(&mut hosts[0], "o1", "myshop");
    let r0 = take(&mut hosts[0]);
    unload(&mut hosts[0], &["o1"], &[]);
    load(&mut hosts[1], &[&entry(&r0, "o1")["record"]], &[]).unwrap();
    hosts[1].now += 1000;
    ok(&hosts[1].send(json!({"type": "oauth_redirect", "platform": "myshop", "params": {"code": "the-code", "state": nonce}})));
    let create = hosts[1].request("token_create");
    let r1 = take(&mut hosts[1]);
    unload(&mut hosts[1], &["o1"], &[]);
    load(&mut hosts[2], &[&entry(&r1, "o1")["record"]], &[]).unwrap();
    hosts[2].now += 2000;
    ok(&hosts[2].respond(
        &create,
        200,
        r#"{"access_token":"AT","token_type":"Bearer","expires_in":3600}"#,
    ));
    assert_eq!(hosts[2].state("o1"), "authorized");
    // The nonce was spent in the second engine: the third refuses it too.
    assert_eq!(
        code(&hosts[2].send(json!({"type": "oauth_redirect", "platform": "myshop", "params": {"code": "again", "state": nonce}}))),
        900007
    );
}

/// A loaded store keeps its timers — the open request's time-out among
/// them (spec §11: "its deadline is part of due_at") — and fires them in
/// the new engine.
#[test]
fn a_loaded_store_keeps_its_deadlines() {
    let mut a = Host::new();
    ok(&a.register("v1", "vkey"));
    let verify = vkey_authorize(&mut a, "v1", "k1");
    let c = take(&mut a);
    let e = entry(&c, "v1");
    let mut b = Host::new();
    load(&mut b, &[&e["record"]], &[]).unwrap();
    let due = b.engine.poll_timeout().unwrap();
    assert_eq!(
        shopauth::message::rfc3339(due),
        e["due_at"].as_str().unwrap()
    );
    assert_eq!(due.timestamp_millis(), T0 + 60_000);
    // No answer within request_timeout_s: a transport failure, retried 1 s later.
    b.now = T0 + 60_000;
    b.tick(0);
    assert!(b.take().is_empty());
    b.tick(1000);
    let again = b.request("key_verify");
    assert_ne!(again["request_id"], verify["request_id"]);
    assert_eq!(code(&b.respond(&verify, 200, "{}")), 900008);
    ok(&b.respond(&again, 200, "{}"));
    assert_eq!(b.state("v1"), "authorized");
}

/// A request waiting for its rate slot re-enters the gate of the engine it
/// is loaded into (vv-tool: 10 per second).
#[test]
fn a_queued_request_re_enters_the_rate_gate() {
    let mut a = Host::new();
    for i in 0..11 {
        let s = format!("t{i:02}");
        ok(&a.register(&s, "taobao"));
        ok(&a.send(json!({"type": "authorize", "client_id": "c1", "store_id": s, "auth_type": "URL", "seller_id": format!("shop{i}")})));
    }
    assert_eq!(a.take_kind("http_request").len(), 10);
    let c = take(&mut a);
    let e = entry(&c, "t10");
    assert!(e["record"]["request"]["queued"].is_object(), "{e}");
    let mut b = Host::new();
    b.tick(0);
    load(&mut b, &[&e["record"]], &[]).unwrap();
    assert_eq!(b.engine.poll_timeout_ms(), Some(T0), "a free slot: due now");
    b.tick(0);
    let check = b.request("status_check");
    assert_eq!(check["store_id"], "t10");
}

// ------------------------------------------------------------------ load rules

/// A rich engine (stores in several states, claims, a notification in
/// flight) and the records and claims of a second engine's stores.
fn two_engines() -> (Host, Value) {
    let mut here = Host::new();
    ok(&here.register("h1", "mykey"));
    ok(&here.send(json!({"type": "authorize", "client_id": "c1", "store_id": "h1", "auth_type": "KEY", "seller_id": "HS", "auth_info": {"token": "here-token"}})));
    ok(&here.register("h2", "myshop"));
    url_authorize(&mut here, "h2", "myshop");
    here.take();
    take(&mut here);
    let mut there = Host::new();
    ok(&there.send(json!({"type": "register_store", "client_id": "c1", "store_id": "x1", "platform": "mykey", "notify_url": "https://biz.example/n"})));
    ok(&there.send(json!({"type": "authorize", "client_id": "c1", "store_id": "x1", "auth_type": "KEY", "seller_id": "XS", "auth_info": {"token": "there-token"}})));
    ok(&there.register("x2", "vkey"));
    vkey_authorize(&mut there, "x2", "k1");
    ok(&there.register("x3", "mykey"));
    (here, take(&mut there))
}

struct Refusal {
    name: &'static str,
    kind: &'static str,
    says: &'static str,
    load: Value,
}

#[test]
fn load_refuses_each_rule_and_changes_nothing() {
    let (mut h, there) = two_engines();
    let x1 = entry(&there, "x1")["record"].clone();
    let x2 = entry(&there, "x2")["record"].clone();
    let x3 = entry(&there, "x3")["record"].clone();
    let h1_credential = h.query("h1")["claims"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "credential")
        .unwrap()
        .clone()
        .tap(|c| c["store_id"] = json!("y7"));
    let mut removed_x3 = x3.clone();
    removed_x3["state"] = json!("removed");
    let mut lost = x1.clone();
    lost["platform"] = json!("no-such-platform");
    let mut clash = x3.clone();
    clash["store_id"] = json!("x3b");
    clash["state"] = json!("authorized");
    clash["attempt"] = json!(1);
    clash["seller_id"] = json!("HS");
    clash["auth_type"] = json!("KEY");
    let mut clash2 = x3.clone();
    clash2["store_id"] = json!("x3c");
    clash2["state"] = json!("authorized");
    clash2["attempt"] = json!(1);
    clash2["seller_id"] = json!("XS");
    clash2["auth_type"] = json!("KEY");
    let seller = |s: &str, store: &str| json!({"kind": "seller", "platform": "mykey", "seller_id": s, "store_id": store});
    let cases = vec![
        Refusal {
            name: "a store already here",
            kind: "already_loaded",
            says: "already holds",
            load: json!({"stores": [x1, h.engine_record("h1")]}),
        },
        Refusal {
            name: "two records of one store",
            kind: "duplicate_store",
            says: "store ids are unique",
            load: json!({"stores": [x1, x2, x1]}),
        },
        Refusal {
            name: "a platform this engine lacks",
            kind: "platform_not_configured",
            says: "platform",
            load: json!({"stores": [lost]}),
        },
        Refusal {
            name: "a record that breaks an invariant",
            kind: "invalid_record",
            says: "states are from the closed list",
            load: json!({"stores": [x2, removed_x3]}),
        },
        Refusal {
            name: "a record's seller is held by a store here",
            kind: "claim_conflict",
            says: "a seller claim of stores[0]",
            load: json!({"stores": [clash]}),
        },
        Refusal {
            name: "two records claim one seller",
            kind: "claim_conflict",
            says: "a seller claim of stores[1]",
            load: json!({"stores": [x1, clash2]}),
        },
        Refusal {
            name: "a record's seller is held by a foreign claim of the load",
            kind: "claim_conflict",
            says: "a seller claim of foreign_claims[0]",
            load: json!({"stores": [x1], "foreign_claims": [seller("XS", "y9")]}),
        },
        Refusal {
            name: "a foreign claim of a seller held here",
            kind: "claim_conflict",
            says: "foreign_claims[0]",
            load: json!({"foreign_claims": [seller("HS", "y9")]}),
        },
        Refusal {
            name: "two foreign claims of one seller for two stores",
            kind: "claim_conflict",
            says: "foreign_claims[1]",
            load: json!({"foreign_claims": [seller("S9", "y8"), seller("S9", "y9")]}),
        },
        Refusal {
            name: "a foreign claim of a credential held here",
            kind: "claim_conflict",
            says: "a credential claim of foreign_claims[0]",
            load: json!({"foreign_claims": [h1_credential]}),
        },
        Refusal {
            name: "a foreign claim naming a store here",
            kind: "foreign_store_loaded",
            says: "foreign_claims[0]",
            load: json!({"foreign_claims": [seller("S9", "h2")]}),
        },
        Refusal {
            name: "a foreign claim naming a store of the load",
            kind: "foreign_store_loaded",
            says: "foreign_claims[0]",
            load: json!({"stores": [x3], "foreign_claims": [seller("S9", "x3")]}),
        },
        Refusal {
            name: "a malformed foreign claim",
            kind: "invalid_claim",
            says: "foreign_claims[0].store_id",
            load: json!({"foreign_claims": [seller("S9", " padded")]}),
        },
        Refusal {
            name: "not JSON",
            kind: "malformed",
            says: "does not have the shape of a load text (unexpected end",
            load: json!("{\"stores\": ["),
        },
        Refusal {
            name: "an unknown field",
            kind: "malformed",
            says: "the shape of a load text",
            load: json!({"store": [x1]}),
        },
        Refusal {
            name: "a fingerprint that is not 32 hex digits",
            kind: "malformed",
            says: "load.foreign_claims[0]",
            load: json!({"foreign_claims": [{"kind": "credential", "fingerprint": "abc", "store_id": "y1"}]}),
        },
    ];
    let before = h.engine.snapshot();
    let planted = [
        "there-token",
        "here-token",
        "XS",
        "HS",
        "x1",
        "x3b",
        "y9",
        "no-such-platform",
        "sek-1",
    ];
    for c in cases {
        let text = match &c.load {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        let err = h.engine.load(&text).expect_err(c.name);
        assert_eq!(err.kind(), c.kind, "{}: {err}", c.name);
        let msg = err.to_string();
        assert!(msg.contains(c.says), "{}: {msg}", c.name);
        assert!(msg.contains(c.kind), "{}: {msg}", c.name);
        for p in planted {
            assert!(
                !msg.contains(p),
                "{}: the message carries {p}: {msg}",
                c.name
            );
        }
        assert_eq!(
            h.engine.snapshot(),
            before,
            "{}: the engine changed",
            c.name
        );
        assert_eq!(h.engine.foreign_claim_count(), 0, "{}", c.name);
    }
    assert_eq!(take(&mut h)["stores"], json!([]));
    // Records of a store registered there and once here, removed here
    // before the removal was taken: refused until it is.
    ok(&h.register("x3", "mykey"));
    take(&mut h);
    ok(&h.send(json!({"type": "remove_store", "client_id": "c1", "store_id": "x3"})));
    let err = h
        .engine
        .load(&json!({"stores": [x3]}).to_string())
        .unwrap_err();
    assert_eq!(err.kind(), "removed_not_taken", "{err}");
    assert_eq!(entry(&take(&mut h), "x3")["record"], Value::Null);
    h.engine.load(&json!({"stores": [x3]}).to_string()).unwrap();
    // The same load as before, but now of a store named by foreign claims.
    let err = h
        .engine
        .load(&json!({"foreign_claims": [seller("S9", "x3")]}).to_string())
        .unwrap_err();
    assert_eq!(err.kind(), "foreign_store_loaded");
    unload(&mut h, &["x3"], &[]);
    h.engine
        .load(&json!({"foreign_claims": [seller("S9", "x3")]}).to_string())
        .unwrap();
    let err = h
        .engine
        .load(&json!({"stores": [x3]}).to_string())
        .unwrap_err();
    assert_eq!(err.kind(), "foreign_store_loaded", "{err}");
    assert!(err.to_string().contains("stores[0]"), "{err}");
}

trait Tap: Sized {
    fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
}

impl Tap for Value {
    fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

trait Record {
    fn engine_record(&self, id: &str) -> Value;
}

impl Record for Host {
    /// The store's record as a snapshot holds it.
    fn engine_record(&self, id: &str) -> Value {
        let s: Value = serde_json::from_str(&self.engine.snapshot()).unwrap();
        s["stores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["store_id"] == id)
            .unwrap()
            .clone()
    }
}

/// The same records loaded again and again: equal foreign claims are
/// idempotent, the same foreign claim for one store loaded twice is one.
#[test]
fn foreign_claims_load_idempotently() {
    let (mut h, there) = two_engines();
    let claims = foreign(entry(&there, "x1"));
    assert_eq!(claims.len(), 2);
    load(&mut h, &[], &claims).unwrap();
    load(&mut h, &[], &claims).unwrap();
    assert_eq!(h.engine.foreign_claim_count(), 2);
    unload(&mut h, &[], &claims);
    assert_eq!(h.engine.foreign_claim_count(), 0);
}

// ------------------------------------------------------------------ unload

/// `unload` forgets every trace: after load + unload the engine's snapshot
/// is exactly the one before the load (counters included), nothing is
/// listed as changed, and what the stores held (request ids, nonces,
/// claims, timers) means nothing here any more.
#[test]
fn unload_leaves_no_trace() {
    let (mut h, there) = two_engines();
    // x1 authorized with a notification in flight, x2 pending with a
    // key_verify in flight, x3 unauthorized.
    let recs: Vec<&Value> = ["x1", "x2", "x3"]
        .iter()
        .map(|id| &entry(&there, id)["record"])
        .collect();
    assert!(recs[0]["notify"]["in_flight"].is_u64(), "{}", recs[0]);
    assert!(recs[1]["request"]["in_flight"].is_object(), "{}", recs[1]);
    let others =
        vec![json!({"kind": "seller", "platform": "myshop", "seller_id": "OS", "store_id": "y1"})];
    let before = h.engine.snapshot();
    let poll = h.engine.poll_timeout_ms();
    load(&mut h, &recs, &others).unwrap();
    assert_ne!(h.engine.snapshot(), before);
    assert_eq!(h.engine.store_count(), 5);
    assert_eq!(h.engine.foreign_claim_count(), 1);
    unload(&mut h, &["x1", "x2", "x3"], &others);
    assert_eq!(h.engine.snapshot(), before, "load + unload left a trace");
    assert_eq!(h.engine.poll_timeout_ms(), poll);
    assert_eq!(h.engine.foreign_claim_count(), 0);
    assert_eq!(take(&mut h)["stores"], json!([]));
    // What x1 held binds nothing here now.
    ok(&h.register("z1", "mykey"));
    ok(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "z1", "auth_type": "KEY", "seller_id": "XS", "auth_info": {"token": "there-token"}})));
    assert_eq!(h.state("z1"), "authorized");
    // A change made while loaded and not taken is dropped with the store.
    load(&mut h, &[recs[2]], &[]).unwrap();
    h.tick(1);
    take(&mut h);
    ok(&h.send(json!({"type": "revoke", "client_id": "c1", "store_id": "x3"})));
    ok(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "x3", "auth_type": "KEY", "auth_info": {"token": "t3"}})));
    unload(&mut h, &["x3"], &[]);
    assert_eq!(take(&mut h)["stores"], json!([]));
}

/// Unknown store ids and claims never registered are ignored (a host can
/// always unload what it loaded, even twice); the undo of counters only
/// happens when no call came in between.
#[test]
fn unload_of_unknown_stores_and_claims_is_a_no_op() {
    let (mut h, there) = two_engines();
    let before = h.engine.snapshot();
    unload(
        &mut h,
        &["nope", "x1", ""],
        &[json!({"kind": "seller", "platform": "mykey", "seller_id": "HS", "store_id": "h1"})],
    );
    assert_eq!(h.engine.snapshot(), before);
    // A claim registered for one store is not forgotten for another.
    let c = foreign(entry(&there, "x1"));
    load(&mut h, &[], &c).unwrap();
    let mut other = c.clone();
    for x in &mut other {
        x["store_id"] = json!("x9");
    }
    unload(&mut h, &[], &other);
    assert_eq!(h.engine.foreign_claim_count(), 2);
    // Malformed: refused, nothing changed.
    let err = h.engine.unload(r#"{"store_ids": "x1"}"#).unwrap_err();
    assert_eq!(err.kind(), "malformed");
    let err = h
        .engine
        .unload(r#"{"foreign_claims": [{"kind": "seller", "platform": "", "seller_id": "S", "store_id": "x1"}]}"#)
        .unwrap_err();
    assert_eq!(err.kind(), "invalid_claim");
    assert!(
        err.to_string()
            .starts_with("unload refused (invalid_claim)"),
        "{err}"
    );
    assert_eq!(h.engine.foreign_claim_count(), 2);
    // Loaded, then a call (which may issue ids under the raised counters),
    // then unloaded: the counters stay where they are.
    let x2 = entry(&there, "x2")["record"].clone();
    load(&mut h, &[&x2], &[]).unwrap();
    let raised: Value = serde_json::from_str(&h.engine.snapshot()).unwrap();
    h.tick(0);
    unload(&mut h, &["x2"], &[]);
    let after: Value = serde_json::from_str(&h.engine.snapshot()).unwrap();
    assert_eq!(after["engine"]["counters"], raised["engine"]["counters"]);
}

// ------------------------------------------------------------------ foreign claims

/// Every store of a one-engine run, and the same run with `store` alone
/// in a second engine and the others' claims loaded as foreign claims:
/// the reply must be the same.
fn one_vs_fleet(setup: impl Fn(&mut Host), input: Value) -> (Value, Value) {
    let mut one = Host::new();
    setup(&mut one);
    let target = input["store_id"].as_str().unwrap().to_owned();
    let changes = take(&mut one);
    let mut fleet = Host::new();
    fleet.now = one.now;
    let mut claims = Vec::new();
    let mut record = None;
    for e in changes["stores"].as_array().unwrap() {
        if e["store_id"] == target.as_str() {
            record = Some(e["record"].clone());
        } else {
            claims.extend(foreign(e));
        }
    }
    load(&mut fleet, &[&record.unwrap()], &claims).unwrap();
    let a = one.send(input.clone());
    let b = fleet.send(input);
    (a, b)
}

#[test]
fn foreign_claims_answer_as_local_claims_do() {
    let setup = |h: &mut Host| {
        ok(&h.register("s1", "mykey"));
        ok(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "s1", "auth_type": "KEY", "seller_id": "S1", "auth_info": {"token": "tok-1"}})));
        ok(&h.register("s2", "mykey"));
        ok(&h.register("p1", "shopline"));
        ok(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "p1", "auth_type": "KEY", "seller_id": "Shop-A", "auth_info": {"token": "tok-p"}})));
        ok(&h.register("p2", "shopline"));
    };
    let auth = |store: &str, seller: &str, token: &str| json!({"type": "authorize", "client_id": "c1", "store_id": store, "auth_type": "KEY", "seller_id": seller, "auth_info": {"token": token}});
    for (input, want) in [
        // the seller: 900003
        (auth("s2", "S1", "tok-2"), 900003),
        // the credentials: auth_info_taken
        (auth("s2", "S2", "tok-1"), 900005),
        // both: the seller answers first (spec §4 order)
        (auth("s2", "S1", "tok-1"), 900003),
        // a Shopline handle compares case-insensitively, foreign too
        (auth("p2", "shop-a", "tok-q"), 900003),
        // free: accepted
        (auth("s2", "S2", "tok-2"), 200),
    ] {
        let (a, b) = one_vs_fleet(setup, input.clone());
        assert_eq!(code(&a), want, "one engine: {input} → {a}");
        assert_eq!(a, b, "fleet answered {input} differently");
    }
    // The view of the loaded store shows its own claims only.
    let (a, b) = one_vs_fleet(
        setup,
        json!({"type": "query", "client_id": "c1", "store_id": "s1"}),
    );
    assert_eq!(a, b);
}

/// Spec §11: "a learned seller held by a foreign store fails the attempt
/// with seller_id_taken" — the same transition, redirect and view as in one
/// engine.
#[test]
fn a_learned_seller_held_by_a_foreign_store_fails_the_attempt() {
    fn run(fleet: bool) -> (Vec<Value>, Value) {
        let mut h = Host::new();
        ok(&h.register("tw1", "taobao_tw"));
        let st = url_authorize(&mut h, "tw1", "taobao_tw");
        ok(&h.send(json!({"type": "oauth_redirect", "platform": "taobao_tw", "params": {"code": "c1", "state": st}})));
        let create = h.request("token_create");
        ok(&h.respond(&create, 200, IOP_TOKEN));
        assert_eq!(h.query("tw1")["claims"][0]["seller_id"], "1001");
        ok(&h.register("tw2", "taobao_tw"));
        ok(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "tw2", "auth_type": "URL", "redirect_url": "https://biz.example/done"})));
        let url = h.take_kind("redirect");
        assert!(url.is_empty());
        let st2 = {
            let q = h.query("tw2");
            param(q["auth_url"].as_str().unwrap(), "state").unwrap()
        };
        h.take();
        if fleet {
            let c = take(&mut h);
            let mut other = Host::new();
            other.now = h.now;
            load(
                &mut other,
                &[&entry(&c, "tw2")["record"]],
                &foreign(entry(&c, "tw1")),
            )
            .unwrap();
            h = other;
        }
        ok(&h.send(json!({"type": "oauth_redirect", "platform": "taobao_tw", "params": {"code": "c2", "state": st2}})));
        let create = h.request("token_create");
        ok(&h.respond(&create, 200, &IOP_TOKEN.replace("A1", "A2")));
        let outs: Vec<Value> = h
            .take()
            .into_iter()
            .map(|mut o| {
                o.as_object_mut().unwrap().remove("event_id");
                o
            })
            .collect();
        (outs, h.query("tw2"))
    }
    let (one, view_one) = run(false);
    let (fleet, view_fleet) = run(true);
    assert_eq!(view_one["state"], "failed");
    assert_eq!(view_one["last_error"]["reason"], "seller_id_taken");
    assert!(one.iter().any(|o| o["type"] == "redirect"), "{one:?}");
    assert_eq!(one, fleet);
    assert_eq!(view_one, view_fleet);
}

/// A refresh answer naming a seller a foreign store holds: not added, the
/// store stays authorized and notes seller_id_taken.
#[test]
fn a_refresh_does_not_take_a_foreign_seller() {
    let mut h = Host::new();
    ok(&h.register("tw1", "taobao_tw"));
    let st = url_authorize(&mut h, "tw1", "taobao_tw");
    ok(&h.send(json!({"type": "oauth_redirect", "platform": "taobao_tw", "params": {"code": "c1", "state": st}})));
    let create = h.request("token_create");
    ok(&h.respond(&create, 200, IOP_TOKEN));
    h.take();
    load(
        &mut h,
        &[],
        &[json!({"kind": "seller", "platform": "taobao_tw", "seller_id": "2002", "store_id": "far"})],
    )
    .unwrap();
    // refresh due at expiry - min(1800 s, lifetime / 2) = +1800 s
    h.tick(1_800_000);
    let refresh = h.request("token_refresh");
    ok(&h.respond(&refresh, 200, r#"{"code":"0","access_token":"A2","refresh_token":"R2","expires_in":3600,"refresh_expires_in":7200,"user_info":[{"seller_id":"1001"},{"seller_id":"2002"}]}"#));
    let q = h.query("tw1");
    assert_eq!(q["state"], "authorized");
    assert_eq!(q["last_error"]["reason"], "seller_id_taken");
    assert_eq!(q["seller_ids"], json!(["1001"]));
}

/// Foreign claims are not state: neither the snapshot nor the changes
/// carry them, and restore drops them (the host supplies them per load).
#[test]
fn foreign_claims_are_not_persisted() {
    let (mut h, there) = two_engines();
    let before = h.engine.snapshot();
    load(&mut h, &[], &foreign(entry(&there, "x1"))).unwrap();
    assert_eq!(h.engine.foreign_claim_count(), 2);
    assert_eq!(h.engine.snapshot(), before);
    assert_eq!(take(&mut h)["stores"], json!([]));
    h.engine.restore(&before).unwrap();
    assert_eq!(h.engine.foreign_claim_count(), 0);
}

// ------------------------------------------------------------------ route

fn route(e: &Engine, input: &Value) -> Value {
    let text = input.to_string();
    let r = e.route_json(&text).unwrap();
    let v = serde_json::to_value(&r).unwrap();
    // The typed route of a parsed input is the same.
    if let Ok(typed) = serde_json::from_str::<shopauth::Input>(&text) {
        assert_eq!(e.route(&typed), r, "typed route of {text}");
    }
    v
}

fn nowhere() -> Value {
    json!({"ref": null, "store_id": null})
}

#[test]
fn route_names_the_store_of_every_input_kind() {
    let mut h = Host::new();
    let sref = |h: &mut Host, id: &str| {
        let c = take(h);
        entry(&c, id)["ref"].clone()
    };
    ok(&h.register("o1", "myshop"));
    let r_o1 = sref(&mut h, "o1");
    for t in [
        "register_store",
        "remove_store",
        "authorize",
        "token_rejected",
        "revoke",
        "query",
        "credentials",
    ] {
        let got = route(
            &h.engine,
            &json!({"type": t, "client_id": "c1", "store_id": "o1"}),
        );
        assert_eq!(got, json!({"ref": r_o1, "store_id": "o1"}), "{t}");
    }
    // A store this engine does not hold: the ref is computed all the same.
    let far = route(
        &h.engine,
        &json!({"type": "query", "client_id": "c9", "store_id": "far-away"}),
    );
    assert_eq!(far["store_id"], "far-away");
    assert_eq!(far["ref"].as_str().unwrap().len(), 22);
    // oauth_redirect: the nonce's ref (params, query, Shopline's customField).
    let st = url_authorize(&mut h, "o1", "myshop");
    let want = json!({"ref": r_o1, "store_id": null});
    assert_eq!(
        route(
            &h.engine,
            &json!({"type": "oauth_redirect", "platform": "myshop", "params": {"code": "c", "state": st}})
        ),
        want
    );
    assert_eq!(
        route(
            &h.engine,
            &json!({"type": "oauth_redirect", "platform": "myshop", "query": format!("code=c&state={st}")})
        ),
        want
    );
    // (query wins over params, as in handle)
    assert_eq!(
        route(
            &h.engine,
            &json!({"type": "oauth_redirect", "platform": "myshop", "query": format!("state={st}"), "params": {"state": "junk"}})
        ),
        want
    );
    // the nonce under another platform's name: still its store (handle then refuses it)
    assert_eq!(
        route(
            &h.engine,
            &json!({"type": "oauth_redirect", "platform": "taobao_tw", "params": {"state": st}})
        ),
        want
    );
    ok(&h.register("sl", "shopline"));
    let r_sl = sref(&mut h, "sl");
    ok(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "sl", "auth_type": "URL", "seller_id": "shop-a"})));
    let url = h.query("sl")["auth_url"].as_str().unwrap().to_owned();
    let cf = url.split("customField=").nth(1).unwrap().to_owned();
    assert_eq!(
        route(
            &h.engine,
            &json!({"type": "oauth_redirect", "platform": "shopline", "params": {"customField": cf}})
        ),
        json!({"ref": r_sl, "store_id": null})
    );
    // http_response / http_failure: the request id's ref, notifications too.
    ok(&h.send(json!({"type": "register_store", "client_id": "c1", "store_id": "n1", "platform": "vkey", "notify_url": "https://biz.example/n"})));
    let r_n1 = sref(&mut h, "n1");
    let verify = vkey_authorize(&mut h, "n1", "k1");
    ok(&h.respond(&verify, 200, "{}"));
    let notify = h.request("notify");
    for (req, kind) in [(&verify, "http_response"), (&notify, "http_failure")] {
        let got = route(
            &h.engine,
            &json!({"type": kind, "request_id": req["request_id"], "status": 200, "body": "", "error": "x"}),
        );
        assert_eq!(got, json!({"ref": r_n1, "store_id": null}), "{kind}");
    }
    // Route is pure: nothing changed.
    let snap = h.engine.snapshot();
    take(&mut h);
    route(
        &h.engine,
        &json!({"type": "query", "client_id": "c1", "store_id": "o1"}),
    );
    assert_eq!(h.engine.snapshot(), snap);
    assert_eq!(take(&mut h)["stores"], json!([]));
}

#[test]
fn route_reads_ids_of_other_engines_and_tells_nothing_of_forged_ones() {
    let mut a = Host::new();
    ok(&a.register("o1", "myshop"));
    let st = url_authorize(&mut a, "o1", "myshop");
    ok(&a.send(json!({"type": "oauth_redirect", "platform": "myshop", "params": {"code": "c", "state": st}})));
    let create = a.request("token_create");
    let id = create["request_id"].as_str().unwrap().to_owned();
    let r_o1 = entry(&take(&mut a), "o1")["ref"].clone();
    // Another engine with the same secret, holding nothing.
    let b = Host::new();
    let from_b = route(
        &b.engine,
        &json!({"type": "http_failure", "request_id": id, "error": "x"}),
    );
    assert_eq!(from_b, json!({"ref": r_o1, "store_id": null}));
    assert_eq!(
        route(
            &b.engine,
            &json!({"type": "oauth_redirect", "platform": "myshop", "params": {"code": "c", "state": st}})
        ),
        json!({"ref": r_o1, "store_id": null})
    );
    // Another secret: nothing.
    let mut other = config();
    other["secret"] = json!("ff".repeat(32));
    let c = Host::with(other);
    assert_eq!(
        route(
            &c.engine,
            &json!({"type": "http_failure", "request_id": id, "error": "x"})
        ),
        nowhere()
    );
    // Forged and garbled ids, inputs naming no store.
    let flip = |s: &str| {
        let mut v: Vec<char> = s.chars().collect();
        let i = v.len() - 3;
        v[i] = if v[i] == 'A' { 'B' } else { 'A' };
        v.into_iter().collect::<String>()
    };
    let (head, _) = id.split_once('.').unwrap();
    for bad in [
        json!({"type": "http_response", "request_id": flip(&id), "status": 200, "body": ""}),
        json!({"type": "http_response", "request_id": format!("{head}.1.2.c.AAAAAAAAAAAAAAAAAAAAAA"), "status": 200}),
        json!({"type": "http_response", "request_id": "req-0-1", "status": 200}),
        json!({"type": "http_response", "request_id": 17}),
        json!({"type": "http_failure"}),
        json!({"type": "oauth_redirect", "platform": "myshop", "params": {"state": flip(&st)}}),
        json!({"type": "oauth_redirect", "platform": "myshop", "params": {"state": ""}}),
        json!({"type": "oauth_redirect", "platform": "myshop", "params": {"code": "c"}}),
        json!({"type": "oauth_redirect", "platform": "nope", "params": {"state": st}}),
        json!({"type": "oauth_redirect", "platform": "myshop", "params": {"state": 5}}),
        json!({"type": "oauth_redirect", "platform": "myshop", "params": [st]}),
        json!({"type": "oauth_redirect", "platform": "myshop", "query": 5, "params": {"state": st}}),
        json!({"type": "query", "client_id": "c1"}),
        json!({"type": "query", "client_id": "c1", "store_id": ["o1"]}),
        json!({"type": "nope", "store_id": "o1"}),
        json!({"store_id": "o1"}),
        json!([1, 2]),
        json!("o1"),
        json!(null),
    ] {
        assert_eq!(route(&b.engine, &bad), nowhere(), "{bad}");
    }
    // A bad field elsewhere does not stop the route (handle refuses it).
    assert_eq!(
        route(
            &b.engine,
            &json!({"type": "authorize", "client_id": 5, "store_id": "o1", "deep": [[[[[[1]]]]]]})
        )["ref"],
        r_o1
    );
    let deep = format!(
        r#"{{"type":"query","client_id":"c1","store_id":"o1","x":{}1{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(
        b.engine.route_json(&deep).unwrap().r#ref,
        r_o1.as_str().map(str::to_owned)
    );
    // Not JSON at all: an error (INVALID_ARGUMENT over the C ABI).
    assert!(b.engine.route_json("{\"type\":").is_err());
    assert!(b.engine.route_json("").is_err());
}

/// A version-1 nonce (shopauth 0.1) carries no ref: it routes only where
/// its store is loaded.
#[test]
fn route_of_a_version_1_nonce_needs_the_store_loaded() {
    let fixture: Value = serde_json::from_str(include_str!("fixtures/v1_snapshot.json")).unwrap();
    let mut h = Host::new();
    h.now = fixture["now_ms"].as_i64().unwrap() + 1000;
    h.engine.restore(&fixture["snapshot"].to_string()).unwrap();
    let st = param(fixture["auth_url_tw1"].as_str().unwrap(), "state").unwrap();
    assert!(!st.contains('.'), "a v1 nonce: {st}");
    let input = json!({"type": "oauth_redirect", "platform": "taobao_tw", "params": {"code": "c", "state": st}});
    let tw1 = route(
        &h.engine,
        &json!({"type": "query", "client_id": "c1", "store_id": "tw1"}),
    );
    assert_eq!(
        route(&h.engine, &input),
        json!({"ref": tw1["ref"], "store_id": null})
    );
    // Moved to an engine that has it: routes there; elsewhere: nothing.
    let record = h.engine_record("tw1");
    unload(&mut h, &["tw1"], &[]);
    assert_eq!(route(&h.engine, &input), nowhere());
    let mut b = Host::new();
    b.now = h.now;
    assert_eq!(route(&b.engine, &input), nowhere());
    load(&mut b, &[&record], &[]).unwrap();
    assert_eq!(
        route(&b.engine, &input),
        json!({"ref": tw1["ref"], "store_id": null})
    );
    ok(&b.send(input));
    assert_eq!(b.state("tw1"), "pending");
    // Two records holding one v1 serial cannot both be here.
    let mut twin = record.clone();
    twin["store_id"] = json!("tw1-twin");
    let err = b.engine.load(&json!({"stores": [record]}).to_string());
    assert_eq!(err.unwrap_err().kind(), "already_loaded");
    let mut c = Host::new();
    let err = c
        .engine
        .load(&json!({"stores": [record, twin]}).to_string())
        .unwrap_err();
    assert_eq!(err.kind(), "invalid_record");
    assert!(
        err.to_string().contains("live state nonces are unique"),
        "{err}"
    );
}

// ------------------------------------------------------------------ counters

/// Two engines each register and authorize a store at the same instant:
/// their records carry the same timer sequence numbers (and request
/// serials and nonce serials). Loaded into a third engine, both stores'
/// timers are kept and fire, each store's own order holds, and the third
/// engine's snapshot restores.
#[test]
fn records_from_two_engines_share_timer_sequence_numbers() {
    let mut a = Host::new();
    let mut c = Host::new();
    ok(&a.send(json!({"type": "register_store", "client_id": "c1", "store_id": "a1", "platform": "vkey", "notify_url": "https://biz.example/n"})));
    ok(&c.send(json!({"type": "register_store", "client_id": "c1", "store_id": "c1", "platform": "vkey", "notify_url": "https://biz.example/n"})));
    for (h, s) in [(&mut a, "a1"), (&mut c, "c1")] {
        let v = vkey_authorize(h, s, &format!("key-{s}"));
        ok(&h.respond(&v, 503, ""));
        // authorized after the retry: a notification in flight and the
        // verification done; then revoke → another notification queued.
        h.tick(1000);
        let v = h.request("key_verify");
        ok(&h.respond(&v, 200, "{}"));
    }
    let ra = entry(&take(&mut a), "a1")["record"].clone();
    let rc = entry(&take(&mut c), "c1")["record"].clone();
    assert_eq!(
        ra["timers"], rc["timers"],
        "the same timers in both engines"
    );
    assert_eq!(
        ra["notify"]["in_flight"], rc["notify"]["in_flight"],
        "the same serials"
    );
    let mut b = Host::new();
    b.now = a.now;
    load(&mut b, &[&rc, &ra], &[]).unwrap();
    let snap: Value = serde_json::from_str(&b.engine.snapshot()).unwrap();
    let seqs: Vec<u64> = snap["stores"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r["timers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t[2].as_u64().unwrap())
        })
        .collect();
    let mut unique = seqs.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        seqs.len(),
        "timer sequence numbers collide: {seqs:?}"
    );
    // The fleet engine's own snapshot restores (equal request serials in two stores).
    let mut r = Host::new();
    r.engine.restore(&b.engine.snapshot()).unwrap();
    // Both notifications time out and are retried, both stores.
    let mut n = 0;
    for _ in 0..3 {
        b.jump();
        n += b.take_kind("http_request").len();
    }
    assert!(n >= 2, "both notifications retried");
    for s in ["a1", "c1"] {
        assert_eq!(b.state(s), "authorized");
    }
}

/// An id this engine issues for a loaded store never repeats one the
/// store's record holds: the request counter is raised to the record's
/// serials (here a request superseded and re-sent at the same millisecond
/// would otherwise get the very id of the first).
#[test]
fn a_new_request_for_a_loaded_store_never_repeats_its_open_request_id() {
    let mut a = Host::new();
    ok(&a.register("v1", "vkey"));
    let first = vkey_authorize(&mut a, "v1", "k1");
    let record = entry(&take(&mut a), "v1")["record"].clone();
    let mut b = Host::new();
    load(&mut b, &[&record], &[]).unwrap();
    // Same millisecond: revoke (cancels the verification), authorize again.
    ok(&b.send(json!({"type": "revoke", "client_id": "c1", "store_id": "v1"})));
    let second = vkey_authorize(&mut b, "v1", "k1");
    assert_eq!(first["url"], second["url"]);
    assert_ne!(first["request_id"], second["request_id"]);
    assert_eq!(code(&b.respond(&first, 200, "{}")), 900008);
    ok(&b.respond(&second, 200, "{}"));
}

/// Two engines issue a state nonce with the same serial at the same
/// millisecond (and the same request serial): a third engine holding both
/// stores keeps both nonces apart (they carry their store's ref), its
/// snapshot restores, and both nonces still work after the restore.
#[test]
fn a_fleet_engines_snapshot_restores_with_equal_serials_from_two_engines() {
    let mut a = Host::new();
    let mut c = Host::new();
    ok(&a.register("o1", "myshop"));
    ok(&c.register("o2", "myshop"));
    let n1 = url_authorize(&mut a, "o1", "myshop");
    let n2 = url_authorize(&mut c, "o2", "myshop");
    let r1 = entry(&take(&mut a), "o1")["record"].clone();
    let r2 = entry(&take(&mut c), "o2")["record"].clone();
    assert_eq!(
        r1["open"]["nonce"], r2["open"]["nonce"],
        "the same serial and time"
    );
    let mut b = Host::new();
    load(&mut b, &[&r1, &r2], &[]).unwrap();
    let snap = b.engine.snapshot();
    let mut r = Host::new();
    r.engine.restore(&snap).unwrap();
    assert_eq!(r.engine.snapshot(), snap);
    for (host, name) in [(&mut b, "loaded"), (&mut r, "restored")] {
        for (store, nonce) in [("o1", &n1), ("o2", &n2)] {
            let reply = host.send(json!({"type": "oauth_redirect", "platform": "myshop", "params": {"code": "c", "state": nonce}}));
            assert_eq!(code(&reply), 200, "{name}: {reply}");
            assert_eq!(reply["data"]["store_id"], store, "{name}");
        }
        let creates = host.take_kind("http_request");
        assert_eq!(creates.len(), 2, "{name}");
        assert_ne!(creates[0]["request_id"], creates[1]["request_id"]);
    }
}
