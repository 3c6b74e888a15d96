//! Ids per spec §9 (issue 9): state nonces, PKCE challenges, request ids
//! and event ids handed out in a lost tail — after the last persisted
//! snapshot — are never accepted by, or equal to, anything an engine
//! restored from that snapshot starts at another time; every id carries its
//! store's `ref`, has the §9 shape, and forging any part of it is refused.
//!
//! Each reproduction fails on the old scheme (ids made of an engine-wide
//! serial and a MAC of it alone), where two engines restored from one
//! snapshot issue the same serials and so the same ids.

mod common;
use common::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

fn register_as(h: &mut Host, client: &str, store: &str, platform: &str) {
    ok(&h.send(json!({"type": "register_store", "client_id": client, "store_id": store, "platform": platform,
        "notify_url": "https://biz.example/n"})));
}

fn authorize_url(h: &mut Host, client: &str, store: &str) -> String {
    let r = h.send(json!({"type": "authorize", "client_id": client, "store_id": store, "auth_type": "URL", "redirect_url": "https://biz.example/r"}));
    ok(&r);
    r["data"]["auth_url"].as_str().unwrap().to_owned()
}

fn state_of(h: &mut Host, client: &str, store: &str) -> String {
    let r = h.send(json!({"type": "query", "client_id": client, "store_id": store}));
    ok(&r);
    r["data"]["state"].as_str().unwrap().to_owned()
}

/// A fresh engine (same configuration and secret) restored from `snap` at `now`.
fn restored(snap: &str, now: i64) -> Host {
    let mut h = Host::new();
    h.now = now;
    h.engine.restore(snap).unwrap();
    h.engine.handle_timeout_ms(now);
    h.drain();
    h
}

fn redirect(h: &mut Host, platform: &str, nonce: &str, code: &str) -> Value {
    h.send(json!({"type": "oauth_redirect", "platform": platform, "params": {"state": nonce, "code": code}}))
}

fn request_of(h: &mut Host, store: &str, purpose: &str) -> Value {
    let pos = h
        .outputs
        .iter()
        .position(|o| {
            o["type"] == "http_request" && o["store_id"] == store && o["purpose"] == purpose
        })
        .unwrap_or_else(|| panic!("no {purpose} request of {store} in {:#?}", h.outputs));
    h.outputs.remove(pos)
}

fn transitions_of(h: &mut Host, store: &str) -> Vec<Value> {
    h.outputs
        .iter()
        .filter(|o| o["type"] == "transition" && o["store_id"] == store)
        .cloned()
        .collect()
}

const TOKENS: &str = r#"{"access_token":"A","refresh_token":"R","expires_in":7200}"#;

// ------------------------------------------------------------ (a) nonces

/// (a) Engine A is persisted as S, then issues a state nonce to store X
/// (client c1) and crashes. Engine B restores S and, later, issues a nonce
/// to store Y (client c2). The nonces and PKCE challenges differ, and X's
/// nonce from the lost tail is `invalid_state` in B: Y stays `requested`.
#[test]
fn a_nonce_from_a_lost_tail_is_not_accepted_for_another_store() {
    let mut a = Host::new();
    register_as(&mut a, "c1", "X", "myshop");
    register_as(&mut a, "c2", "Y", "myshop");
    let snap = a.engine.snapshot();
    a.tick(1_000);
    let url_x = authorize_url(&mut a, "c1", "X");
    let nonce_x = param(&url_x, "state").unwrap();

    let mut b = restored(&snap, T0 + 5_000);
    let url_y = authorize_url(&mut b, "c2", "Y");
    let nonce_y = param(&url_y, "state").unwrap();
    assert_ne!(nonce_x, nonce_y);
    assert_ne!(
        param(&url_x, "code_challenge").unwrap(),
        param(&url_y, "code_challenge").unwrap()
    );
    b.take();
    let before = b.engine.snapshot();
    let r = redirect(&mut b, "myshop", &nonce_x, "code-of-x");
    assert_eq!(code(&r), 900007, "{r}");
    assert_eq!(r["kind"], "invalid_state");
    assert_eq!(
        b.engine.snapshot(),
        before,
        "a refused nonce changes nothing"
    );
    assert!(b.take().is_empty());
    assert_eq!(state_of(&mut b, "c2", "Y"), "requested");
    // Y's own nonce still works.
    ok(&redirect(&mut b, "myshop", &nonce_y, "code-of-y"));
    assert_eq!(state_of(&mut b, "c2", "Y"), "pending");
}

/// (a) The same store, the same attempt and the same nonce serial in both
/// engines: the time of issue tells them apart.
#[test]
fn a_nonce_from_a_lost_tail_is_not_accepted_for_the_same_store_later() {
    let mut a = Host::new();
    register_as(&mut a, "c1", "X", "myshop");
    let snap = a.engine.snapshot();
    a.tick(1_000);
    let url_a = authorize_url(&mut a, "c1", "X");
    let mut b = restored(&snap, T0 + 5_000);
    let url_b = authorize_url(&mut b, "c1", "X");
    let (na, nb) = (
        param(&url_a, "state").unwrap(),
        param(&url_b, "state").unwrap(),
    );
    assert_ne!(na, nb);
    assert_ne!(
        param(&url_a, "code_challenge").unwrap(),
        param(&url_b, "code_challenge").unwrap()
    );
    b.take();
    let before = b.engine.snapshot();
    assert_eq!(code(&redirect(&mut b, "myshop", &na, "c")), 900007);
    assert_eq!(b.engine.snapshot(), before);
    assert_eq!(state_of(&mut b, "c1", "X"), "requested");
    ok(&redirect(&mut b, "myshop", &nb, "c"));
    // The PKCE verifier B sends is the one of B's challenge, not A's.
    let req = request_of(&mut b, "X", "token_create");
    let verifier = form(req["body"].as_str().unwrap())
        .into_iter()
        .find(|(k, _)| k == "code_verifier")
        .unwrap()
        .1;
    use base64::Engine as _;
    use sha2::Digest as _;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    assert_eq!(challenge, param(&url_b, "code_challenge").unwrap());
    assert_ne!(challenge, param(&url_a, "code_challenge").unwrap());
}

// ------------------------------------------------------------ (b) event ids

/// (b) After the same kind of restore, K2's SUCCESS event in B does not get
/// the id of K1's SUCCESS event in A's lost tail — neither in the
/// transition nor in the notification body.
#[test]
fn event_ids_from_a_lost_tail_are_not_reused() {
    let mut a = Host::new();
    register_as(&mut a, "c1", "K1", "mykey");
    register_as(&mut a, "c2", "K2", "mykey");
    let snap = a.engine.snapshot();
    a.tick(1_000);
    ok(&a.send(json!({"type": "authorize", "client_id": "c1", "store_id": "K1", "auth_type": "KEY", "auth_info": {"token": "t1"}})));
    let t1 = transitions_of(&mut a, "K1");
    let n1 = request_of(&mut a, "K1", "notify");

    let mut b = restored(&snap, T0 + 3_000);
    ok(&b.send(json!({"type": "authorize", "client_id": "c2", "store_id": "K2", "auth_type": "KEY", "auth_info": {"token": "t2"}})));
    let t2 = transitions_of(&mut b, "K2");
    let n2 = request_of(&mut b, "K2", "notify");
    assert_eq!((t1.len(), t2.len()), (1, 1));
    assert_eq!((&t1[0]["seq"], &t2[0]["seq"]), (&json!(1), &json!(1)));
    assert_ne!(t1[0]["event_id"], t2[0]["event_id"]);
    let body = |n: &Value| -> Value { serde_json::from_str(n["body"].as_str().unwrap()).unwrap() };
    assert_eq!(body(&n1)["event_id"], t1[0]["event_id"]);
    assert_eq!(body(&n2)["event_id"], t2[0]["event_id"]);
    assert_ne!(body(&n1)["event_id"], body(&n2)["event_id"]);
    assert_ne!(n1["request_id"], n2["request_id"]);

    // The same store authorized in both, at other times: other changes, other ids.
    ok(&b.send(json!({"type": "authorize", "client_id": "c1", "store_id": "K1", "auth_type": "KEY", "auth_info": {"token": "t1"}})));
    let t1b = transitions_of(&mut b, "K1");
    assert_eq!(t1b[0]["seq"], 1);
    assert_ne!(t1b[0]["event_id"], t1[0]["event_id"]);
}

/// A notification re-sent after a restore keeps its body and event id (the
/// receiver deduplicates), under a new request id.
#[test]
fn a_resent_notification_keeps_its_event_id() {
    let mut a = Host::new();
    register_as(&mut a, "c1", "K", "mykey");
    ok(&a.send(json!({"type": "authorize", "client_id": "c1", "store_id": "K", "auth_type": "KEY", "auth_info": {"token": "t"}})));
    let sent = request_of(&mut a, "K", "notify");
    let snap = a.engine.snapshot();
    let mut b = restored(&snap, T0 + 7_000);
    let again = request_of(&mut b, "K", "notify");
    assert_eq!(again["body"], sent["body"]);
    assert_ne!(again["request_id"], sent["request_id"]);
    assert_eq!(code(&b.respond(&sent, 200, "")), 900008);
    ok(&b.respond(&again, 200, ""));
}

// ------------------------------------------------------------ (c) request ids

/// (c) Two engines restored from one snapshot at different times both issue
/// requests (for two stores, and for one store): the ids differ, and an
/// answer to one engine's request given to the other is `unknown_request`
/// and changes nothing.
#[test]
fn two_engines_restored_from_one_snapshot_issue_distinct_request_ids() {
    let mut a = Host::new();
    register_as(&mut a, "c1", "P", "taobao_tw");
    register_as(&mut a, "c2", "Q", "taobao_tw");
    let np = param(&authorize_url(&mut a, "c1", "P"), "state").unwrap();
    let nq = param(&authorize_url(&mut a, "c2", "Q"), "state").unwrap();
    let snap = a.engine.snapshot();

    let mut b1 = restored(&snap, T0 + 1_000);
    ok(&redirect(&mut b1, "taobao_tw", &np, "code-p"));
    let r1 = request_of(&mut b1, "P", "token_create");
    let mut b2 = restored(&snap, T0 + 2_000);
    ok(&redirect(&mut b2, "taobao_tw", &nq, "code-q"));
    let r2 = request_of(&mut b2, "Q", "token_create");
    assert_ne!(r1["request_id"], r2["request_id"]);

    let answer = r#"{"code":"0","access_token":"A","refresh_token":"R","expires_in":3600,"refresh_expires_in":7200}"#;
    for (engine, foreign, store, client) in [(&mut b2, &r1, "Q", "c2"), (&mut b1, &r2, "P", "c1")] {
        engine.take();
        let before = engine.engine.snapshot();
        let r = engine.respond(foreign, 200, answer);
        assert_eq!(code(&r), 900008, "{r}");
        assert_eq!(r["kind"], "unknown_request");
        assert_eq!(
            engine.engine.snapshot(),
            before,
            "a refused answer changes nothing"
        );
        assert!(engine.take().is_empty());
        assert_eq!(state_of(engine, client, store), "pending");
    }
    // The same store redirected in both engines: other ids again.
    ok(&redirect(&mut b2, "taobao_tw", &np, "code-p"));
    let r2p = request_of(&mut b2, "P", "token_create");
    assert_ne!(r2p["request_id"], r1["request_id"]);
    let before = b2.engine.snapshot();
    assert_eq!(code(&b2.respond(&r1, 200, answer)), 900008);
    assert_eq!(b2.engine.snapshot(), before);
    // Each engine's own answers are taken.
    ok(&b1.respond(&r1, 200, answer));
    ok(&b2.respond(&r2p, 200, answer));
    assert_eq!(state_of(&mut b1, "c1", "P"), "authorized");
    assert_eq!(state_of(&mut b2, "c1", "P"), "authorized");
}

/// (c) Requests open in the snapshot are re-sent by both engines, at their
/// own times, under ids unlike each other's and the original's.
#[test]
fn requests_resent_by_two_restored_engines_have_distinct_ids() {
    let mut a = Host::new();
    register_as(&mut a, "c1", "P", "myshop");
    let n = param(&authorize_url(&mut a, "c1", "P"), "state").unwrap();
    ok(&redirect(&mut a, "myshop", &n, "code-p"));
    let original = request_of(&mut a, "P", "token_create");
    let snap = a.engine.snapshot();
    let mut b1 = restored(&snap, T0 + 1_000);
    let mut b2 = restored(&snap, T0 + 2_000);
    let r1 = request_of(&mut b1, "P", "token_create");
    let r2 = request_of(&mut b2, "P", "token_create");
    let ids: BTreeSet<&str> = [&original, &r1, &r2]
        .into_iter()
        .map(|r| r["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    for (engine, foreign) in [(&mut b1, [&r2, &original]), (&mut b2, [&r1, &original])] {
        for f in foreign {
            engine.take();
            let before = engine.engine.snapshot();
            assert_eq!(code(&engine.respond(f, 200, TOKENS)), 900008);
            assert_eq!(engine.engine.snapshot(), before);
        }
    }
    ok(&b1.respond(&r1, 200, TOKENS));
    assert_eq!(state_of(&mut b1, "c1", "P"), "authorized");
}

// ------------------------------------------------------------ (d) shape and refs

const ID_CHARS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-";

fn is_ref(s: &str) -> bool {
    s.len() == 22
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Store ids that are long, non-ASCII, or full of characters ids may not hold.
const STORE_IDS: [(&str, &str); 8] = [
    (
        "a-store-id-of-sixty-four-characters-for-myshop-xxxxxxxxxxxxxxxxx",
        "myshop",
    ),
    ("店铺 台湾/1?x=y&z", "taobao_tw"),
    ("laz:ada#1", "lazada"),
    ("shop line", "shopline"),
    ("taobao.checker.1", "taobao"),
    ("key%20store", "mykey"),
    ("pair+key", "pairkey"),
    ("v key", "vkey"),
];

/// Every id one engine hands out over full lifecycles on every platform,
/// grouped by store: `(store_id, kind, id)`.
fn every_id(config: Value) -> Vec<(String, &'static str, String)> {
    let mut h = Host::with(config);
    assert_eq!(STORE_IDS[0].0.chars().count(), 64);
    let mut ids: Vec<(String, &'static str, String)> = Vec::new();
    for (i, (store, platform)) in STORE_IDS.iter().enumerate() {
        register_as(&mut h, "c1", store, platform);
        let mut a = json!({"type": "authorize", "client_id": "c1", "store_id": store, "redirect_url": "https://biz.example/r"});
        match *platform {
            "mykey" => {
                a["auth_type"] = json!("KEY");
                a["auth_info"] = json!({"token": format!("tok{i}")});
            }
            "pairkey" | "vkey" => {
                a["auth_type"] = json!("KEY");
                a["auth_info"] = json!({"api_key": format!("k{i}"), "api_secret": "s"});
            }
            "shopline" => {
                a["auth_type"] = json!("URL");
                a["seller_id"] = json!("myhandle");
            }
            "taobao" => {
                a["auth_type"] = json!("URL");
                a["seller_id"] = json!("9001");
            }
            _ => a["auth_type"] = json!("URL"),
        }
        let r = h.send(a);
        ok(&r);
        if let Some(url) = r["data"]["auth_url"].as_str() {
            let p = if *platform == "shopline" {
                "customField"
            } else {
                "state"
            };
            if let Some(n) = param(url, p) {
                ids.push((store.to_string(), "nonce", n.clone()));
                if *platform != "shopline" {
                    ok(&redirect(&mut h, platform, &n, "the-code"));
                }
            }
        }
    }
    // Answer everything the platforms are asked, refresh, re-check, revoke.
    let mut seen = BTreeSet::new();
    let mut purposes_seen: BTreeSet<String> = BTreeSet::new();
    for round in 0..8 {
        for o in h.take() {
            let store = o["store_id"].as_str().unwrap_or("").to_owned();
            match o["type"].as_str().unwrap() {
                "http_request" => {
                    let id = o["request_id"].as_str().unwrap().to_owned();
                    if !seen.insert(id.clone()) {
                        continue;
                    }
                    ids.push((store.clone(), "request", id));
                    purposes_seen.insert(o["purpose"].as_str().unwrap().to_owned());
                    let body = match o["purpose"].as_str().unwrap() {
                        "token_create" | "token_refresh" => {
                            r#"{"code":"0","access_token":"A","refresh_token":"R","expires_in":100,"refresh_expires_in":100000}"#
                        }
                        "status_check" => r#"{"code":0,"data":{"status":"subAuthorize"}}"#,
                        _ => "",
                    };
                    let status = if o["purpose"] == "notify" && round % 2 == 0 {
                        500
                    } else {
                        200
                    };
                    ok(&h.respond(&o, status, body));
                    if o["purpose"] == "notify" {
                        let b: Value = serde_json::from_str(o["body"].as_str().unwrap()).unwrap();
                        ids.push((store, "event", b["event_id"].as_str().unwrap().to_owned()));
                    }
                }
                "transition" => {
                    ids.push((store, "event", o["event_id"].as_str().unwrap().to_owned()));
                }
                _ => {}
            }
        }
        if round == 4 {
            // Revoked now; their notifications are answered before time moves on.
            for (store, _) in STORE_IDS {
                h.send(json!({"type": "revoke", "client_id": "c1", "store_id": store}));
            }
            continue;
        }
        h.jump();
    }
    for p in [
        "token_create",
        "token_refresh",
        "status_check",
        "key_verify",
        "notify",
    ] {
        assert!(
            purposes_seen.contains(p),
            "no {p} request in the run: {purposes_seen:?}"
        );
    }
    ids
}

/// (d) Every id — nonces in auth URLs, request ids, event ids in
/// transitions and notification bodies — is at most 160 characters of
/// `[A-Za-z0-9._~-]` and begins with its store's ref: 22 base64url
/// characters, one per store, never the store id.
#[test]
fn every_id_has_the_section_9_shape_and_begins_with_its_stores_ref() {
    let ids = every_id(config());
    let kinds: BTreeSet<&str> = ids.iter().map(|(_, k, _)| *k).collect();
    assert_eq!(kinds, BTreeSet::from(["event", "nonce", "request"]));
    let mut refs: BTreeMap<&str, &str> = BTreeMap::new();
    for (store, kind, id) in &ids {
        assert!(id.len() <= 160, "{kind} {id} is {} long", id.len());
        assert!(
            id.chars().all(|c| ID_CHARS.contains(c)),
            "{kind} {id} has a character outside [A-Za-z0-9._~-]"
        );
        let r = id.split('.').next().unwrap();
        assert!(is_ref(r), "{kind} {id} does not begin with a ref");
        assert!(
            !id.contains(store.as_str()),
            "{kind} {id} carries the store id"
        );
        let known = *refs.entry(store.as_str()).or_insert(r);
        assert_eq!(known, r, "{kind} {id} of {store} carries another ref");
    }
    assert_eq!(refs.len(), STORE_IDS.len());
    let distinct: BTreeSet<&&str> = refs.values().collect();
    assert_eq!(distinct.len(), STORE_IDS.len(), "one ref per store");
    // The same store ids under the same secret (another configuration):
    // the same refs; under another secret: others.
    let mut rotated = config();
    rotated["apps"]["taobao_tw"]["app_secret"] = json!("rotated");
    let same: BTreeMap<String, String> = first_refs(every_id(rotated));
    for (store, r) in &refs {
        assert_eq!(same[*store], *r, "{store}");
    }
    let mut other = config();
    other["secret"] = json!("77".repeat(32));
    let others = first_refs(every_id(other));
    for (store, r) in &refs {
        assert_ne!(others[*store], *r, "{store}");
    }
}

fn first_refs(ids: Vec<(String, &'static str, String)>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (store, _, id) in ids {
        out.entry(store)
            .or_insert_with(|| id.split('.').next().unwrap().to_owned());
    }
    out
}

/// `id` with one MAC character (the last segment) changed.
fn bad_mac(id: &str) -> String {
    let (head, mac) = id.rsplit_once('.').unwrap();
    let mut c: Vec<char> = mac.chars().collect();
    let i = c.len() / 2;
    c[i] = if c[i] == 'A' { 'B' } else { 'A' };
    format!("{head}.{}", c.into_iter().collect::<String>())
}

/// `id` with the ref of another store swapped in.
fn other_ref(id: &str, r: &str) -> String {
    let (_, rest) = id.split_once('.').unwrap();
    format!("{r}.{rest}")
}

/// (d) A forged nonce — one MAC character changed, or another store's ref
/// swapped in, or any other part changed — is `invalid_state` and changes
/// nothing; a forged request id is `unknown_request`.
#[test]
fn forged_nonces_and_request_ids_are_refused() {
    let mut h = Host::new();
    register_as(&mut h, "c1", "X", "myshop");
    register_as(&mut h, "c1", "Y", "myshop");
    let nx = param(&authorize_url(&mut h, "c1", "X"), "state").unwrap();
    let ny = param(&authorize_url(&mut h, "c1", "Y"), "state").unwrap();
    let ref_y = ny.split('.').next().unwrap().to_owned();
    assert_eq!(
        nx.split('.').count(),
        5,
        "{{ref}}.{{attempt}}.{{serial}}.{{at}}.{{mac}}: {nx}"
    );
    let parts: Vec<&str> = nx.split('.').collect();
    let mut forged = vec![bad_mac(&nx), other_ref(&nx, &ref_y)];
    // Attempt, serial or time changed under the same MAC.
    for (i, v) in [(1, "2"), (2, "2"), (3, "1700000000001")] {
        let mut p = parts.clone();
        p[i] = v;
        forged.push(p.join("."));
    }
    forged.push(format!("{nx}x"));
    forged.push(nx[..nx.len() - 1].to_owned());
    h.take();
    for f in &forged {
        assert_ne!(f, &nx);
        let before = h.engine.snapshot();
        let r = redirect(&mut h, "myshop", f, "code");
        assert_eq!(code(&r), 900007, "{f}: {r}");
        assert_eq!(h.engine.snapshot(), before, "{f}");
        assert!(h.take().is_empty());
    }
    assert_eq!(h.state("X"), "requested");
    assert_eq!(h.state("Y"), "requested");
    ok(&redirect(&mut h, "myshop", &nx, "code"));
    let req = request_of(&mut h, "X", "token_create");
    let id = req["request_id"].as_str().unwrap();
    assert_eq!(
        id.split('.').count(),
        5,
        "{{ref}}.{{serial}}.{{at}}.{{purpose}}.{{mac}}: {id}"
    );
    for f in [bad_mac(id), other_ref(id, &ref_y), format!("{id}A")] {
        let before = h.engine.snapshot();
        let r = h
            .send(json!({"type": "http_response", "request_id": f, "status": 200, "body": TOKENS}));
        assert_eq!(code(&r), 900008, "{f}: {r}");
        assert_eq!(h.engine.snapshot(), before);
    }
    assert_eq!(h.state("X"), "pending");
    ok(&h.respond(&req, 200, TOKENS));
    assert_eq!(h.state("X"), "authorized");
}
