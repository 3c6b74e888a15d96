//! Snapshot and restore: round trips, refusals that leave the engine
//! unchanged, and the re-sending of requests open at snapshot time.

mod common;
use common::*;
use serde_json::{Value, json};
use shopauth::RestoreError;

fn busy_host() -> (Host, Value) {
    let mut h = Host::new();
    h.register("k1", "mykey");
    h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "k1", "auth_type": "KEY", "auth_info": {"token": "t"}}));
    h.register("o1", "myshop");
    let r = h.send(
        json!({"type": "authorize", "client_id": "c1", "store_id": "o1", "auth_type": "URL"}),
    );
    let st = param(r["data"]["auth_url"].as_str().unwrap(), "state").unwrap();
    h.send(json!({"type": "oauth_redirect", "platform": "myshop", "query": format!("code=c&state={st}")}));
    let req = h.request("token_create");
    (h, req)
}

fn normalized(snapshot: &str) -> Value {
    let mut v: Value = serde_json::from_str(snapshot).unwrap();
    v["counters"]["generation"] = json!(0);
    v
}

#[test]
fn round_trip_is_exact_when_nothing_is_open() {
    let mut h = Host::new();
    h.register("k1", "mykey");
    h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "k1", "auth_type": "KEY", "seller_id": "S", "auth_info": {"token": "t"}}));
    h.register("o1", "myshop");
    h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "o1", "auth_type": "URL"}));
    // keep some outputs undrained: they belong to the snapshot
    h.engine.handle_json(
        r#"{"type":"revoke","client_id":"c1","store_id":"k1"}"#,
        h.now,
    );
    let snap = h.engine.snapshot();
    let v: Value = serde_json::from_str(&snap).unwrap();
    assert_eq!(v["version"], "1.0");
    assert_eq!(v["outputs"].as_array().unwrap().len(), 1);
    let mut r = Host::new();
    r.engine.restore(&snap).unwrap();
    assert_eq!(normalized(&r.engine.snapshot()), normalized(&snap));
    assert_eq!(r.engine.poll_timeout_ms(), h.engine.poll_timeout_ms());
    // Same behaviour afterwards.
    for e in [&mut h, &mut r] {
        e.drain();
        e.take();
        e.tick(3_600_000);
    }
    assert_eq!(h.take(), r.take());
}

#[test]
fn open_requests_are_sent_again_under_new_ids() {
    let (h, req) = busy_host();
    let snap = h.engine.snapshot();
    let mut r = Host::new();
    r.engine.restore(&snap).unwrap();
    r.now = h.now + 5;
    assert_eq!(r.engine.poll_timeout_ms(), Some(h.now));
    assert_eq!(code(&r.respond(&req, 200, "{}")), 900008);
    let again = r.request("token_create");
    assert_ne!(again["request_id"], req["request_id"]);
    assert_eq!(again["url"], req["url"]);
    ok(&r.respond(&again, 200, r#"{"access_token":"A","expires_in":100}"#));
    assert_eq!(r.state("o1"), "authorized");
    // A restore of a restore issues ids unlike both.
    let mut r2 = Host::new();
    let (mut h2, _) = busy_host();
    r2.engine.restore(&h2.engine.snapshot()).unwrap();
    r2.tick(0);
    let a = r2.request("token_create");
    let snap2 = r2.engine.snapshot();
    let mut r3 = Host::new();
    r3.engine.restore(&snap2).unwrap();
    r3.tick(0);
    let b = r3.request("token_create");
    h2.tick(0);
    assert_ne!(a["request_id"], b["request_id"]);
    assert_ne!(a["request_id"], req["request_id"]);
}

#[test]
fn refused_snapshots_leave_the_engine_unchanged() {
    let (mut h, _) = busy_host();
    let before = h.engine.snapshot();
    let good: Value = serde_json::from_str(&before).unwrap();
    let mut check = |text: &str| -> RestoreError {
        let e = h.engine.restore(text).unwrap_err();
        assert_eq!(h.engine.snapshot(), before);
        e
    };
    assert!(matches!(check("garbage"), RestoreError::Malformed(_)));
    assert!(matches!(check("[]"), RestoreError::Malformed(_)));
    assert!(matches!(check("{}"), RestoreError::Malformed(_)));
    let mut v = good.clone();
    v["version"] = json!("2.0");
    assert!(matches!(
        check(&v.to_string()),
        RestoreError::Version { .. }
    ));
    let mut v = good.clone();
    v["stores"] = json!("nope");
    assert!(matches!(check(&v.to_string()), RestoreError::Malformed(_)));
    // Another configuration.
    let mut other = config();
    other["apps"]["myshop"]["app_secret"] = json!("different");
    let o = shopauth::Engine::from_config_json(&other.to_string()).unwrap();
    let foreign = o.snapshot();
    assert_eq!(check(&foreign), RestoreError::OtherConfiguration);
    // Claims that contradict the stores.
    let mut v = good.clone();
    v["claims"]["credentials"] = json!([]);
    assert!(matches!(
        check(&v.to_string()),
        RestoreError::Inconsistent(_)
    ));
    let mut v = good.clone();
    let dup = v["stores"][0].clone();
    v["stores"].as_array_mut().unwrap().push(dup);
    assert!(matches!(
        check(&v.to_string()),
        RestoreError::Inconsistent(_)
    ));
}

#[test]
fn snapshot_lists_claims_for_database_mirrors() {
    let mut h = Host::new();
    h.register("k1", "mykey");
    h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "k1", "auth_type": "KEY", "seller_id": "S9", "auth_info": {"token": "t"}}));
    let v: Value = serde_json::from_str(&h.engine.snapshot()).unwrap();
    assert_eq!(v["claims"]["sellers"], json!([["mykey", "S9", "k1"]]));
    assert_eq!(v["claims"]["credentials"].as_array().unwrap()[0][1], "k1");
    let fp = v["claims"]["credentials"][0][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        h.query("k1")["claims"][0],
        json!({"kind": "seller", "platform": "mykey", "seller_id": "S9"})
    );
    assert_eq!(
        h.query("k1")["claims"][1],
        json!({"kind": "credential", "fingerprint": fp})
    );
    assert_eq!(fp.len(), 32);
}
