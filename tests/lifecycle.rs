//! Lifecycle scenarios on the generic platforms (oauth2, key): the whole
//! path from register to authorized, refresh, expiry, failures, retries,
//! re-authorization, revoke, remove, redirects and notifications.

mod common;
use common::*;
use serde_json::json;

fn authorize_url(h: &mut Host, store: &str, extra: serde_json::Value) -> String {
    let mut a =
        json!({"type": "authorize", "client_id": "c1", "store_id": store, "auth_type": "URL"});
    for (k, v) in extra.as_object().unwrap() {
        a[k] = v.clone();
    }
    let r = h.send(a);
    ok(&r);
    r["data"]["auth_url"].as_str().unwrap().to_owned()
}

#[test]
fn oauth2_code_flow_to_authorized_then_refresh_then_expiry() {
    let mut h = Host::new();
    ok(&h.register("s1", "myshop"));
    let url = authorize_url(
        &mut h,
        "s1",
        json!({"redirect_url": "https://biz.example/done"}),
    );
    assert!(url.starts_with("https://as.example/authorize?response_type=code&client_id=cid&redirect_uri=https%3A%2F%2Fhost.example%2Fcb%2Fmyshop&scope=orders&state="));
    assert_eq!(
        param(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let state = param(&url, "state").unwrap();
    let challenge = param(&url, "code_challenge").unwrap();
    assert_eq!(
        h.transitions(),
        vec![("s1".into(), "unauthorized".into(), "requested".into(), None)]
    );
    assert_eq!(h.query("s1")["auth_url"], url);

    let r = h.send(json!({"type": "oauth_redirect", "platform": "myshop", "query": format!("code=abc&state={state}")}));
    ok(&r);
    assert_eq!(
        r["data"],
        json!({"client_id": "c1", "store_id": "s1", "attempt": 1})
    );
    let req = h.request("token_create");
    assert_eq!(req["url"], "https://as.example/token");
    let body = form(req["body"].as_str().unwrap());
    let get = |k: &str| {
        body.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("grant_type"), "authorization_code");
    assert_eq!(get("code"), "abc");
    assert_eq!(get("redirect_uri"), "https://host.example/cb/myshop");
    assert_eq!(get("client_secret"), "oauth2-app-secret");
    // PKCE: the verifier hashes to the challenge of the authorize URL.
    use base64::Engine as _;
    use sha2::Digest;
    let hashed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(get("code_verifier").as_bytes()));
    assert_eq!(hashed, challenge);
    assert_eq!(h.state("s1"), "pending");

    // A second redirect with the spent nonce is invalid_state.
    let again = h.send(json!({"type": "oauth_redirect", "platform": "myshop", "query": format!("code=abc&state={state}")}));
    assert_eq!(code(&again), 900007);

    ok(&h.respond(
        &req,
        200,
        r#"{"access_token":"AT1","refresh_token":"RT1","expires_in":7200,"token_type":"Bearer"}"#,
    ));
    let t = h.transitions();
    assert_eq!(t.last().unwrap().2, "authorized");
    let redirect = h.take_kind("redirect");
    assert_eq!(
        redirect[0]["location"],
        "https://biz.example/done?client_id=c1&store_id=s1&seller_id=&auth_status=SUCCESS&auth_fail_reason="
    );
    let creds = h.send(json!({"type": "credentials", "client_id": "c1", "store_id": "s1"}));
    assert_eq!(creds["data"]["access_token"], "AT1");
    // Refresh due at expiry − min(1800 s, lifetime/2 = 3600 s) = T + 5400 s.
    assert_eq!(h.engine.poll_timeout_ms(), Some(h.now + 5_400_000));
    h.jump();
    let rf = h.request("token_refresh");
    let body = form(rf["body"].as_str().unwrap());
    assert!(body.contains(&("grant_type".into(), "refresh_token".into())));
    assert!(body.contains(&("refresh_token".into(), "RT1".into())));
    // No new refresh token: the old one is kept.
    ok(&h.respond(&rf, 200, r#"{"access_token":"AT2","expires_in":7200}"#));
    let creds = h.send(json!({"type": "credentials", "client_id": "c1", "store_id": "s1"}));
    assert_eq!(creds["data"]["access_token"], "AT2");
    h.jump();
    let rf = h.request("token_refresh");
    assert!(form(rf["body"].as_str().unwrap()).contains(&("refresh_token".into(), "RT1".into())));
    // invalid_grant on refresh → expired (refresh_rejected).
    ok(&h.respond(&rf, 400, r#"{"error":"invalid_grant"}"#));
    assert_eq!(
        h.transitions(),
        vec![(
            "s1".into(),
            "authorized".into(),
            "expired".into(),
            Some("refresh_rejected".into())
        )]
    );
    assert_eq!(h.query("s1")["last_error"]["reason"], "refresh_rejected");
    assert_eq!(
        code(&h.send(json!({"type": "credentials", "client_id": "c1", "store_id": "s1"}))),
        900010
    );
}

#[test]
fn refresh_retries_never_fail_the_store_but_expiry_does() {
    let mut h = Host::new();
    h.register("s1", "myshop");
    let url = authorize_url(&mut h, "s1", json!({}));
    let state = param(&url, "state").unwrap();
    h.send(json!({"type": "oauth_redirect", "platform": "myshop", "params": {"code": "c", "state": state}}));
    let req = h.request("token_create");
    h.respond(
        &req,
        200,
        r#"{"access_token":"A","refresh_token":"R","expires_in":"4000"}"#,
    );
    h.take();
    let expiry = h.now + 4_000_000;
    let mut delays = Vec::new();
    let mut last = None;
    while h.state("s1") == "authorized" {
        assert!(h.jump(), "a timer must be pending while authorized");
        if let Some(pos) = h
            .outputs
            .iter()
            .position(|o| o["purpose"] == "token_refresh")
        {
            let rf = h.outputs.remove(pos);
            if let Some(l) = last {
                delays.push(h.now - l);
            }
            last = Some(h.now);
            h.respond(&rf, 503, "");
        }
    }
    assert_eq!(h.now, expiry);
    assert_eq!(
        h.transitions().last().unwrap().3.as_deref(),
        Some("token_expired")
    );
    assert_eq!(&delays[..5], &[1000, 2000, 4000, 8000, 16000]);
    assert!(delays.iter().all(|d| *d <= 300_000));
}

#[test]
fn retry_after_of_429_and_503_is_honoured_up_to_the_backoff_cap() {
    let mut h = Host::new();
    h.register("s1", "myshop");
    let url = authorize_url(&mut h, "s1", json!({}));
    let state = param(&url, "state").unwrap();
    h.send(json!({"type": "oauth_redirect", "platform": "myshop", "params": {"code": "c", "state": state}}));
    let mut req = h.request("token_create");
    let mut delays = Vec::new();
    // A 500's Retry-After is not a rate limit's: plain backoff (1 s). A
    // 429's is honoured (30 s instead of 2 s); a 503's day is cut to the
    // 5-minute cap.
    for (status, after) in [(500, "100"), (429, "30"), (503, "86400")] {
        let sent = h.now;
        ok(&h.send(
            json!({"type": "http_response", "request_id": req["request_id"],
            "status": status, "headers": [["Retry-After", after]], "body": ""}),
        ));
        req = loop {
            assert!(h.jump(), "a retry must be pending");
            if let Some(pos) = h
                .outputs
                .iter()
                .position(|o| o["purpose"] == "token_create")
            {
                break h.outputs.remove(pos);
            }
        };
        delays.push(h.now - sent);
    }
    assert_eq!(delays, [1_000, 30_000, 300_000]);
    assert_eq!(h.state("s1"), "pending");
}

#[test]
fn key_flow_is_authorized_at_once_and_claims_the_credentials() {
    let mut h = Host::new();
    ok(&h.register("k1", "mykey"));
    ok(&h.register("k2", "mykey"));
    let r = h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "k1", "auth_type": "KEY", "auth_info": {"token": "tok-1"}}));
    ok(&r);
    assert_eq!(r["data"], json!({}));
    assert_eq!(
        h.transitions(),
        vec![(
            "k1".into(),
            "unauthorized".into(),
            "authorized".into(),
            None
        )]
    );
    let creds = h.send(json!({"type": "credentials", "client_id": "c1", "store_id": "k1"}));
    assert_eq!(creds["data"], json!({"token": "tok-1"}));
    // The same token on another store is auth_info_taken; nothing changes.
    let r = h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "k2", "auth_type": "KEY", "auth_info": {"token": "tok-1"}}));
    assert_eq!(code(&r), 900005);
    assert_eq!(r["kind"], "auth_info_taken");
    assert!(h.take().is_empty());
    // Authorized again → 900004.
    let r = h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "k1", "auth_type": "KEY", "auth_info": {"token": "tok-2"}}));
    assert_eq!(code(&r), 900004);
    // token_rejected on KEY → expired; claims kept; re-authorization with a new token swaps them.
    ok(&h.send(json!({"type": "token_rejected", "client_id": "c1", "store_id": "k1"})));
    assert_eq!(h.state("k1"), "expired");
    assert_eq!(code(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "k2", "auth_type": "KEY", "auth_info": {"token": "tok-1"}}))), 900005);
    ok(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "k1", "auth_type": "KEY", "auth_info": {"token": "tok-2"}})));
    assert_eq!(h.query("k1")["attempt"], 2);
    ok(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "k2", "auth_type": "KEY", "auth_info": {"token": "tok-1"}})));
    // Revoke releases: now k1's token can go elsewhere.
    ok(&h.send(json!({"type": "revoke", "client_id": "c1", "store_id": "k1"})));
    assert_eq!(h.query("k1")["claims"], json!([]));
    ok(&h.send(json!({"type": "remove_store", "client_id": "c1", "store_id": "k2"})));
    let t = h.transitions();
    assert_eq!(t.last().unwrap().2, "removed");
    assert_eq!(
        code(&h.send(json!({"type": "query", "client_id": "c1", "store_id": "k2"}))),
        940002
    );
}

#[test]
fn key_verification_retries_five_times_then_fails() {
    let mut h = Host::new();
    h.register("v1", "vkey");
    ok(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "v1", "auth_type": "KEY", "auth_info": {"api_key": "k y", "api_secret": "s"}})));
    assert_eq!(h.state("v1"), "pending");
    for i in 0..5 {
        let req = h.request("key_verify");
        assert_eq!(req["url"], "https://api.example/verify?key=k%20y");
        assert_eq!(req["headers"][0], json!(["X-Secret", "s"]));
        if i % 2 == 0 {
            h.fail_transport(&req);
        } else {
            h.respond(&req, 502, "");
        }
        if i < 4 {
            assert_eq!(h.state("v1"), "pending");
            h.jump();
        }
    }
    assert_eq!(h.state("v1"), "failed");
    assert_eq!(h.query("v1")["last_error"]["reason"], "verify_failed");
    // Re-authorization, this time valid.
    ok(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "v1", "auth_type": "KEY", "auth_info": {"api_key": "k", "api_secret": "s"}})));
    let req = h.request("key_verify");
    h.respond(&req, 200, "{}");
    assert_eq!(h.state("v1"), "authorized");
    assert_eq!(
        h.send(json!({"type": "credentials", "client_id": "c1", "store_id": "v1"}))["data"],
        json!({"api_key": "k", "api_secret": "s"})
    );
}

#[test]
fn requested_is_idempotent_superseded_and_times_out() {
    let mut h = Host::new();
    h.register("s1", "myshop");
    let u1 = authorize_url(&mut h, "s1", json!({}));
    let u1b = authorize_url(&mut h, "s1", json!({}));
    assert_eq!(u1, u1b);
    assert_eq!(h.query("s1")["attempt"], 1);
    let u2 = authorize_url(
        &mut h,
        "s1",
        json!({"redirect_url": "https://biz.example/x"}),
    );
    assert_ne!(u1, u2);
    assert_eq!(h.query("s1")["attempt"], 2);
    // The superseded nonce is stale.
    let old = param(&u1, "state").unwrap();
    assert_eq!(code(&h.send(json!({"type": "oauth_redirect", "platform": "myshop", "query": format!("code=x&state={old}")}))), 900007);
    // A redirect without code or error is illegal_param and keeps the nonce.
    let st = param(&u2, "state").unwrap();
    assert_eq!(
        code(&h.send(
            json!({"type": "oauth_redirect", "platform": "myshop", "query": format!("state={st}")})
        )),
        900002
    );
    // Mix-up defence: the right nonce at another platform's callback.
    assert_eq!(code(&h.send(json!({"type": "oauth_redirect", "platform": "taobao_tw", "query": format!("code=x&state={st}")}))), 900007);
    h.take();
    h.tick(3_600_000 - 1);
    assert_eq!(h.state("s1"), "requested");
    h.tick(1);
    assert_eq!(
        h.transitions(),
        vec![(
            "s1".into(),
            "requested".into(),
            "failed".into(),
            Some("timeout".into())
        )]
    );
    // The seller never came back: no redirect.
    assert!(h.take_kind("redirect").is_empty());
}

#[test]
fn denied_redirect_fails_and_redirects_with_reason() {
    let mut h = Host::new();
    h.register("s1", "myshop");
    let u = authorize_url(
        &mut h,
        "s1",
        json!({"redirect_url": "https://biz.example/done?src=a", "seller_id": "seller-9"}),
    );
    let st = param(&u, "state").unwrap();
    ok(&h.send(json!({"type": "oauth_redirect", "platform": "myshop", "query": format!("error=access_denied&state={st}")})));
    assert_eq!(h.state("s1"), "failed");
    let r = h.take_kind("redirect");
    assert_eq!(
        r[0]["location"],
        "https://biz.example/done?src=a&client_id=c1&store_id=s1&seller_id=seller-9&auth_status=FAIL&auth_fail_reason=denied"
    );
}

#[test]
fn code_expires_under_repeated_transport_failures() {
    let mut h = Host::new();
    h.register("s1", "myshop");
    let u = authorize_url(&mut h, "s1", json!({}));
    let st = param(&u, "state").unwrap();
    h.send(json!({"type": "oauth_redirect", "platform": "myshop", "query": format!("code=c&state={st}")}));
    let start = h.now;
    loop {
        if let Some(pos) = h
            .outputs
            .iter()
            .position(|o| o["purpose"] == "token_create")
        {
            let r = h.outputs.remove(pos);
            h.fail_transport(&r);
        }
        if h.state("s1") != "pending" {
            break;
        }
        assert!(h.jump());
    }
    assert_eq!(h.now - start, 600_000);
    assert_eq!(h.query("s1")["last_error"]["reason"], "code_expired");
}

#[test]
fn unanswered_requests_time_out_and_answers_to_old_ids_are_unknown() {
    let mut h = Host::new();
    h.register("s1", "myshop");
    let u = authorize_url(&mut h, "s1", json!({}));
    let st = param(&u, "state").unwrap();
    h.send(json!({"type": "oauth_redirect", "platform": "myshop", "query": format!("code=c&state={st}")}));
    let first = h.request("token_create");
    h.tick(60_000);
    // timed out → retry after 1 s
    h.tick(1000);
    let second = h.request("token_create");
    assert_ne!(first["request_id"], second["request_id"]);
    assert_eq!(code(&h.respond(&first, 200, "{}")), 900008);
    assert_eq!(
        code(&h.send(json!({"type": "http_failure", "request_id": "nope", "error": "x"}))),
        900008
    );
    ok(&h.respond(&second, 200, r#"{"access_token":"A"}"#));
    assert_eq!(h.state("s1"), "authorized");
    assert_eq!(h.query("s1")["access_expires_at"], serde_json::Value::Null);
}

#[test]
fn notifications_are_signed_fifo_and_retried_until_abandoned() {
    let mut h = Host::new();
    let r = h.send(
        json!({"type": "register_store", "client_id": "c1", "store_id": "n1", "platform": "mykey",
        "notify_url": "https://biz.example/notify", "notify_secret": "notify-key"}),
    );
    ok(&r);
    h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "n1", "auth_type": "KEY", "auth_info": {"token": "t"}}));
    h.send(json!({"type": "revoke", "client_id": "c1", "store_id": "n1"}));
    let revoked_at = h.now;
    let n = h.request("notify");
    // Only one in flight per store (FIFO).
    assert!(h.outputs.iter().all(|o| o["purpose"] != "notify"));
    let body = n["body"].as_str().unwrap().to_owned();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["auth_status"], "SUCCESS");
    assert_eq!(v["seq"], 1);
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"notify-key").unwrap();
    mac.update(body.as_bytes());
    let sig = hex::encode(mac.finalize().into_bytes());
    assert!(
        n["headers"]
            .as_array()
            .unwrap()
            .contains(&json!(["X-Shopauth-Signature", sig]))
    );
    // Fail it: the same body comes again after 1 s, 2 s, ...
    h.respond(&n, 500, "");
    h.tick(999);
    assert!(h.outputs.iter().all(|o| o["purpose"] != "notify"));
    h.tick(1);
    let again = h.request("notify");
    assert_eq!(again["body"], n["body"]);
    ok(&h.respond(&again, 204, ""));
    let next = h.request("notify");
    let v: serde_json::Value = serde_json::from_str(next["body"].as_str().unwrap()).unwrap();
    assert_eq!(v["auth_status"], "REVOKED");
    // Never answered: retried with backoff, abandoned after 24 h.
    let mut tries = 1;
    h.fail_transport(&next);
    while h.jump() {
        if let Some(pos) = h.outputs.iter().position(|o| o["purpose"] == "notify") {
            let r = h.outputs.remove(pos);
            tries += 1;
            h.fail_transport(&r);
        }
    }
    // The last try is exactly 24 h after the notification was produced.
    assert_eq!(h.now - revoked_at, 86_400_000);
    assert!(tries > 20 && tries < 60, "{tries}");
    assert_eq!(h.query("n1")["last_error"]["reason"], "notify_abandoned");
}

#[test]
fn time_never_moves_backwards() {
    let mut h = Host::new();
    h.register("s1", "myshop");
    authorize_url(&mut h, "s1", json!({}));
    h.now += 3_600_000;
    h.engine.handle_timeout_ms(h.now);
    h.engine.handle_timeout_ms(0);
    h.engine.handle_timeout_ms(-5);
    h.drain();
    assert_eq!(h.state("s1"), "failed");
    assert_eq!(h.engine.now().timestamp_millis(), h.now);
}
