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
    serde_json::from_str(snapshot).unwrap()
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
    assert_eq!(v["version"], "2.0");
    assert_eq!(v["engine"]["outputs"].as_array().unwrap().len(), 1);
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
    v["version"] = json!("9.0");
    assert!(matches!(
        check(&v.to_string()),
        RestoreError::Version { .. }
    ));
    let mut v = good.clone();
    v["stores"] = json!("nope");
    assert!(matches!(check(&v.to_string()), RestoreError::Malformed(_)));
    // Another engine secret.
    let mut other = config();
    other["secret"] = json!("ff".repeat(32));
    let o = shopauth::Engine::from_config_json(&other.to_string()).unwrap();
    let foreign = o.snapshot();
    assert_eq!(check(&foreign), RestoreError::OtherSecret);
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
    let claims = &v["stores"][0]["claims"];
    assert_eq!(
        claims[0],
        json!({"kind": "seller", "platform": "mykey", "seller_id": "S9"})
    );
    let fp = claims[1]["fingerprint"].as_str().unwrap().to_owned();
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

/// A snapshot's records carry claims for database mirrors, but a restore
/// recomputes them: written claims that disagree are not trusted.
#[test]
fn written_claims_are_recomputed_on_restore() {
    let (h, _) = busy_host();
    let mut v: Value = serde_json::from_str(&h.engine.snapshot()).unwrap();
    for s in v["stores"].as_array_mut().unwrap() {
        s["claims"] = json!([{"kind": "seller", "platform": "mykey", "seller_id": "forged"}]);
    }
    let mut r = Host::new();
    r.engine.restore(&v.to_string()).unwrap();
    let k1 = r.query("k1");
    assert_eq!(k1["claims"].as_array().unwrap().len(), 1);
    assert_eq!(k1["claims"][0]["kind"], "credential");
}

/// Compatible configuration changes (spec §3): a rotated app secret and an
/// added platform restore, and the next request is signed with the new
/// secret; a store on a platform that is gone is refused, naming it.
#[test]
fn compatible_configuration_changes_restore() {
    let mut h = Host::new();
    h.register("tw", "taobao_tw");
    let r = h.send(
        json!({"type": "authorize", "client_id": "c1", "store_id": "tw", "auth_type": "URL"}),
    );
    let st = param(r["data"]["auth_url"].as_str().unwrap(), "state").unwrap();
    h.send(json!({"type": "oauth_redirect", "platform": "taobao_tw", "params": {"code": "c1", "state": st}}));
    let old = h.request("token_create");
    let snap = h.engine.snapshot();

    let mut rotated = config();
    rotated["apps"]["taobao_tw"]["app_secret"] = json!("rotated-secret");
    rotated["platforms"]["added"] = json!({"kind": "key", "credential": "token"});
    let mut r = Host::with(rotated);
    r.now = h.now + 10;
    r.engine.restore(&snap).unwrap();
    r.tick(0);
    let again = r.request("token_create");
    let sign_of = |req: &Value| {
        form(req["body"].as_str().unwrap())
            .into_iter()
            .find(|(k, _)| k == "sign")
            .unwrap()
            .1
    };
    assert_ne!(sign_of(&again), sign_of(&old));
    let params: Vec<(String, String)> = form(again["body"].as_str().unwrap());
    let pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        shopauth::platform::iop::sign("rotated-secret", "/auth/token/create", &pairs),
        sign_of(&again)
    );

    let mut gone = config();
    gone["apps"].as_object_mut().unwrap().remove("taobao_tw");
    let mut g = Host::with(gone);
    let before = g.engine.snapshot();
    let e = g.engine.restore(&snap).unwrap_err();
    assert!(matches!(e, RestoreError::Inconsistent(_)));
    assert!(e.to_string().contains("taobao_tw"), "{e}");
    assert_eq!(g.engine.snapshot(), before);
}

/// A version-1 snapshot written by shopauth 0.1 (tests/fixtures) restores:
/// its live state nonces stay valid for their stores, its queued
/// notification keeps its body and event id, its tokens and claims are
/// there. Under another configuration it is refused.
#[test]
fn version_1_snapshots_restore() {
    let fixture: Value = serde_json::from_str(include_str!("fixtures/v1_snapshot.json")).unwrap();
    let snap = fixture["snapshot"].to_string();
    let mut h = Host::new();
    h.now = fixture["now_ms"].as_i64().unwrap() + 1000;
    h.engine.restore(&snap).unwrap();
    assert_eq!(h.state("tw2"), "authorized");
    assert_eq!(h.query("k1")["claims"][0]["kind"], "credential");
    assert_eq!(h.state("req1"), "requested");
    assert_eq!(
        h.query("req1")["auth_url"],
        fixture["auth_url_req1"],
        "the auth_url is kept"
    );
    // The queued notification goes out again with its body (and event id).
    h.tick(0);
    let notify = h.request("notify");
    assert_eq!(notify["body"], fixture["notify_bodies"][0]);
    // The seller comes back with the version-1 nonce of the old auth_url.
    let st = param(fixture["auth_url_tw1"].as_str().unwrap(), "state").unwrap();
    assert!(st.contains('_') && !st.contains('.'), "a v1 nonce: {st}");
    ok(&h.send(json!({"type": "oauth_redirect", "platform": "taobao_tw", "params": {"code": "cv1", "state": st}})));
    let create = h.request("token_create");
    ok(&h.respond(&create, 200, r#"{"code":"0","access_token":"A","refresh_token":"R","expires_in":3600,"refresh_expires_in":7200}"#));
    assert_eq!(h.state("tw1"), "authorized");
    // The oauth2 store's nonce works too, and its PKCE verifier is the one
    // its challenge was made from.
    let url = fixture["auth_url_req1"].as_str().unwrap();
    let st = param(url, "state").unwrap();
    let challenge = param(url, "code_challenge").unwrap();
    ok(&h.send(json!({"type": "oauth_redirect", "platform": "myshop", "params": {"code": "c", "state": st}})));
    let create = h.request("token_create");
    let verifier = form(create["body"].as_str().unwrap())
        .into_iter()
        .find(|(k, _)| k == "code_verifier")
        .unwrap()
        .1;
    use base64::Engine as _;
    use sha2::Digest as _;
    assert_eq!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier)),
        challenge
    );
    // A second use of a v1 nonce is refused.
    assert_eq!(
        code(&h.send(json!({"type": "oauth_redirect", "platform": "myshop", "params": {"code": "c", "state": st}}))),
        900007
    );
    // Under another configuration: refused, unchanged.
    let mut other = config();
    other["apps"]["myshop"]["app_secret"] = json!("different");
    let mut o = Host::with(other);
    let before = o.engine.snapshot();
    assert_eq!(
        o.engine.restore(&snap).unwrap_err(),
        RestoreError::OtherConfiguration
    );
    assert_eq!(o.engine.snapshot(), before);
}
