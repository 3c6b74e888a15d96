//! Scenarios for the built-in IOP (Taobao Taiwan, Lazada) and Shopline
//! platforms against a simulated platform that checks every request the
//! way the platform would: it recomputes the signature from what it
//! receives (with its own HMAC code, not the engine's), checks the app key
//! and the timestamp, and answers with seed 003's token fields.

mod common;
use common::*;
use hmac::Mac;
use serde_json::{Value, json};

fn hmac_hex(key: &str, data: &str) -> String {
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    m.update(data.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// The IOP side: verifies a token request and returns its parameters.
fn iop_verify(
    req: &Value,
    secret: &str,
    app_key: &str,
    now: i64,
    path: &str,
) -> Vec<(String, String)> {
    assert_eq!(req["method"], "POST");
    assert!(
        req["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/rest{path}")),
        "{}",
        req["url"]
    );
    let params = form(req["body"].as_str().unwrap());
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("app_key").as_deref(), Some(app_key));
    assert_eq!(get("sign_method").as_deref(), Some("sha256"));
    assert_eq!(get("timestamp"), Some(now.to_string()));
    let mut sorted: Vec<&(String, String)> = params.iter().filter(|(k, _)| k != "sign").collect();
    sorted.sort();
    let mut s = path.to_owned();
    for (k, v) in sorted {
        s.push_str(k);
        s.push_str(v);
    }
    assert_eq!(
        get("sign"),
        Some(hmac_hex(secret, &s).to_uppercase()),
        "signature mismatch"
    );
    params
}

fn get(params: &[(String, String)], k: &str) -> Option<String> {
    params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
}

fn token(
    access: &str,
    refresh: &str,
    expires_in: i64,
    refresh_in: i64,
    sellers: &[&str],
) -> String {
    let users: Vec<Value> = sellers
        .iter()
        .map(|s| json!({"seller_id": s, "user_id": 1}))
        .collect();
    json!({"access_token": access, "refresh_token": refresh, "expires_in": expires_in,
           "refresh_expires_in": refresh_in.to_string(), "account": "xxx@gmail.com",
           "account_platform": "seller_center", "user_info": users})
    .to_string()
}

fn iop_start(h: &mut Host, store: &str, platform: &str, seller: Option<&str>) -> String {
    ok(&h.register(store, platform));
    let mut a = json!({"type": "authorize", "client_id": "c1", "store_id": store, "auth_type": "URL", "redirect_url": "https://biz.example/r"});
    if let Some(s) = seller {
        a["seller_id"] = json!(s);
    }
    let r = h.send(a);
    ok(&r);
    let url = r["data"]["auth_url"].as_str().unwrap().to_owned();
    let st = param(&url, "state").unwrap();
    let code = format!("0_code_{store}");
    ok(&h.send(json!({"type": "oauth_redirect", "platform": platform, "query": format!("code={code}&state={st}")})));
    url
}

#[test]
fn taobao_tw_full_success() {
    let mut h = Host::new();
    let url = iop_start(&mut h, "tw1", "taobao_tw", Some("1001"));
    assert!(url.starts_with("https://auth.taobao.tw/oauth/authorize?response_type=code&force_auth=true&redirect_uri=https%3A%2F%2Fhost.example%2Fcb%2Ftaobao_tw&client_id=123456&state="));
    assert_eq!(param(&url, "uuid"), None);
    let req = h.request("token_create");
    assert_eq!(req["url"], "https://auth.taobao.tw/rest/auth/token/create");
    let p = iop_verify(&req, "iop-tw-secret", "123456", h.now, "/auth/token/create");
    assert_eq!(get(&p, "code").as_deref(), Some("0_code_tw1"));
    assert_eq!(get(&p, "grantType").as_deref(), Some("authorization_code"));
    ok(&h.respond(
        &req,
        200,
        &token("AT", "RT", 259200, 2592000, &["1001", "2001"]),
    ));
    assert_eq!(h.state("tw1"), "authorized");
    let v = h.query("tw1");
    assert_eq!(v["seller_ids"], json!(["1001", "2001"]));
    assert_eq!(v["claims"].as_array().unwrap().len(), 2);
    let c = h.send(json!({"type": "credentials", "client_id": "c1", "store_id": "tw1"}));
    assert_eq!(c["data"]["access_token"], "AT");
    assert_eq!(c["data"]["seller_ids"], json!(["1001", "2001"]));
    let r = h.take_kind("redirect");
    assert!(
        r[0]["location"]
            .as_str()
            .unwrap()
            .contains("seller_id=1001&auth_status=SUCCESS")
    );
}

#[test]
fn refresh_cycle_until_the_refresh_token_dies() {
    let mut h = Host::new();
    iop_start(&mut h, "tw1", "taobao_tw", None);
    let req = h.request("token_create");
    // access 4 h, refresh 10 h (never extended by refreshes).
    ok(&h.respond(&req, 200, &token("A0", "R0", 14_400, 36_000, &["1001"])));
    let refresh_dies = h.now + 36_000_000;
    let mut refreshes = 0;
    loop {
        assert!(h.jump());
        if h.state("tw1") != "authorized" {
            break;
        }
        if let Some(pos) = h
            .outputs
            .iter()
            .position(|o| o["purpose"] == "token_refresh")
        {
            let rf = h.outputs.remove(pos);
            let p = iop_verify(&rf, "iop-tw-secret", "123456", h.now, "/auth/token/refresh");
            assert_eq!(get(&p, "refresh_token"), Some(format!("R{refreshes}")));
            // Refresh due 30 min before access expiry.
            let before = h.query("tw1");
            let exp =
                chrono::DateTime::parse_from_rfc3339(before["access_expires_at"].as_str().unwrap())
                    .unwrap();
            assert_eq!(exp.timestamp_millis() - h.now, 1_800_000);
            refreshes += 1;
            // The platform offers a fresh 10 h refresh life every time; the engine keeps the first.
            ok(&h.respond(
                &rf,
                200,
                &token(
                    &format!("A{refreshes}"),
                    &format!("R{refreshes}"),
                    14_400,
                    36_000,
                    &["1001"],
                ),
            ));
            let after = h.query("tw1");
            let rexp =
                chrono::DateTime::parse_from_rfc3339(after["refresh_expires_at"].as_str().unwrap())
                    .unwrap();
            assert_eq!(rexp.timestamp_millis(), refresh_dies);
        }
    }
    assert!(refreshes >= 2, "{refreshes}");
    let t = h.transitions();
    assert_eq!(t.last().unwrap().3.as_deref(), Some("token_expired"));
    assert!(h.now > refresh_dies);
}

#[test]
fn refresh_expires_in_zero_means_no_refresh() {
    let mut h = Host::new();
    iop_start(&mut h, "tw1", "taobao_tw", None);
    let req = h.request("token_create");
    h.respond(&req, 200, &token("A", "R", 7200, 0, &["1"]));
    assert_eq!(h.query("tw1")["refresh_expires_at"], Value::Null);
    let start = h.now;
    assert!(h.jump());
    assert!(h.take_kind("http_request").is_empty());
    assert_eq!(h.now - start, 7_200_000);
    assert_eq!(h.state("tw1"), "expired");
    // token_rejected is not_authorized once expired.
    assert_eq!(
        code(&h.send(json!({"type": "token_rejected", "client_id": "c1", "store_id": "tw1"}))),
        900010
    );
}

#[test]
fn illegal_refresh_token_expires_and_invalid_code_fails() {
    let mut h = Host::new();
    iop_start(&mut h, "tw1", "taobao_tw", None);
    let req = h.request("token_create");
    h.respond(&req, 200, &token("A", "R", 7200, 72000, &["1"]));
    // IllegalAccessToken seen by the host → token_rejected → refresh now.
    ok(&h.send(json!({"type": "token_rejected", "client_id": "c1", "store_id": "tw1"})));
    let rf = h.request("token_refresh");
    h.respond(&rf, 200, r#"{"code":"IllegalRefreshToken","type":"ISV","message":"refresh token invalid","request_id":"0b1"}"#);
    assert_eq!(h.state("tw1"), "expired");
    assert_eq!(h.query("tw1")["last_error"]["reason"], "refresh_rejected");

    iop_start(&mut h, "tw2", "taobao_tw", None);
    let req = h.request("token_create");
    h.respond(&req, 200, r#"{"code":"InvalidCode","type":"ISV","message":"Invalid authorization code","request_id":"0b2"}"#);
    assert_eq!(h.state("tw2"), "failed");
    assert_eq!(h.query("tw2")["last_error"]["reason"], "platform_rejected");
    let r = h.take_kind("redirect");
    assert!(
        r.last().unwrap()["location"]
            .as_str()
            .unwrap()
            .ends_with("auth_status=FAIL&auth_fail_reason=platform_rejected")
    );
}

#[test]
fn api_call_limit_backs_off_and_code_expires_after_30_minutes() {
    let mut h = Host::new();
    iop_start(&mut h, "tw1", "taobao_tw", None);
    let start = h.now;
    let mut sent_at = Vec::new();
    loop {
        if let Some(pos) = h
            .outputs
            .iter()
            .position(|o| o["purpose"] == "token_create")
        {
            let r = h.outputs.remove(pos);
            iop_verify(&r, "iop-tw-secret", "123456", h.now, "/auth/token/create");
            sent_at.push(h.now - start);
            if sent_at.len() % 2 == 0 {
                h.respond(
                    &r,
                    200,
                    r#"{"code":"ApiCallLimit","type":"ISP","message":"too fast","request_id":"x"}"#,
                );
            } else {
                h.fail_transport(&r);
            }
        }
        if h.state("tw1") != "pending" {
            break;
        }
        assert!(h.jump());
    }
    assert_eq!(&sent_at[..5], &[0, 1000, 3000, 7000, 15000]);
    assert_eq!(h.now - start, 1_800_000);
    assert_eq!(h.query("tw1")["last_error"]["reason"], "code_expired");
}

#[test]
fn seller_taken_and_seller_mismatch() {
    let mut h = Host::new();
    iop_start(&mut h, "a", "taobao_tw", None);
    let req = h.request("token_create");
    h.respond(&req, 200, &token("A", "R", 7200, 72000, &["1001"]));
    iop_start(&mut h, "b", "taobao_tw", None);
    let req = h.request("token_create");
    h.respond(&req, 200, &token("B", "RB", 7200, 72000, &["3001", "1001"]));
    assert_eq!(h.state("b"), "failed");
    let v = h.query("b");
    assert_eq!(v["last_error"]["reason"], "seller_id_taken");
    assert_eq!(v["claims"], json!([]));
    assert_eq!(
        code(&h.send(json!({"type": "credentials", "client_id": "c1", "store_id": "b"}))),
        900010
    );
    assert!(
        !h.engine.snapshot().contains("\"RB\""),
        "discarded credentials must not stay in the state"
    );
    // 3001 was not left claimed: another store may take it.
    iop_start(&mut h, "c", "taobao_tw", Some("3001"));
    // Mismatch: requested 3001, platform says 4001.
    let req = h.request("token_create");
    h.respond(&req, 200, &token("C", "RC", 7200, 72000, &["4001"]));
    assert_eq!(h.query("c")["last_error"]["reason"], "seller_mismatch");
}

#[test]
fn lazada_multi_country_sellers() {
    let mut h = Host::new();
    let url = iop_start(&mut h, "lz", "lazada", Some("SG123"));
    assert!(url.starts_with("https://auth.lazada.com/oauth/authorize?"));
    let req = h.request("token_create");
    assert_eq!(req["url"], "https://auth.lazada.com/rest/auth/token/create");
    let p = iop_verify(&req, "iop-lz-secret", "654321", h.now, "/auth/token/create");
    assert_eq!(get(&p, "grantType"), None);
    let body = json!({"access_token": "L", "refresh_token": "LR", "expires_in": 604800, "refresh_expires_in": 2592000,
        "account": "a@b", "country": "cb", "account_platform": "seller_center",
        "country_user_info": [{"country": "sg", "user_id": "1", "seller_id": "SG123", "short_code": "SG1"},
                               {"country": "my", "user_id": "2", "seller_id": "MY456", "short_code": "MY4"}]});
    ok(&h.respond(&req, 200, &body.to_string()));
    let v = h.query("lz");
    assert_eq!(v["state"], "authorized");
    assert_eq!(v["seller_ids"], json!(["SG123", "MY456"]));
    ok(&h.register("lz2", "lazada"));
    let r = h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "lz2", "auth_type": "URL", "seller_id": "MY456"}));
    assert_eq!(code(&r), 900003);
}

fn shopline_redirect_params(secret: &str, code: &str, nonce: &str, handle: &str) -> Value {
    let mut p = serde_json::Map::new();
    p.insert("appkey".into(), json!("slkey"));
    p.insert("code".into(), json!(code));
    p.insert("customField".into(), json!(nonce));
    p.insert("handle".into(), json!(handle));
    p.insert("timestamp".into(), json!("1700000000000"));
    let joined: Vec<String> = p
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
        .collect();
    p.insert("sign".into(), json!(hmac_hex(secret, &joined.join("&"))));
    Value::Object(p)
}

fn shopline_verify(req: &Value, now: i64) {
    let hdr = |n: &str| {
        req["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == n)
            .map(|h| h[1].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(hdr("appkey"), "slkey");
    assert_eq!(hdr("timestamp"), now.to_string());
    let body = req["body"].as_str().unwrap();
    assert_eq!(
        hdr("sign"),
        hmac_hex("shopline-app-secret", &format!("{body}{now}"))
    );
}

#[test]
fn shopline_create_and_refresh() {
    let mut h = Host::new();
    ok(&h.register("sl", "shopline"));
    let r = h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "sl", "auth_type": "URL", "seller_id": "MyShop"}));
    let url = r["data"]["auth_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("https://myshop.myshopline.com/admin/oauth-web/#/oauth/authorize?appKey=slkey&responseType=code&scope=read_orders&redirectUri=https%3A%2F%2Fhost.example%2Fcb%2Fshopline&customField="));
    let nonce = url.rsplit("customField=").next().unwrap().to_owned();
    // A bad signature, another handle, and a right one.
    let mut forged = shopline_redirect_params("wrong-secret", "c", &nonce, "myshop");
    assert_eq!(
        code(&h.send(
            json!({"type": "oauth_redirect", "platform": "shopline", "params": forged.take()})
        )),
        900007
    );
    let other = shopline_redirect_params("shopline-app-secret", "c", &nonce, "othershop");
    assert_eq!(
        code(&h.send(json!({"type": "oauth_redirect", "platform": "shopline", "params": other}))),
        900007
    );
    let good = shopline_redirect_params("shopline-app-secret", "slcode", &nonce, "myshop");
    ok(&h.send(json!({"type": "oauth_redirect", "platform": "shopline", "params": good})));
    let req = h.request("token_create");
    assert_eq!(
        req["url"],
        "https://myshop.myshopline.com/admin/oauth/token/create"
    );
    assert_eq!(req["body"], r#"{"code":"slcode"}"#);
    shopline_verify(&req, h.now);
    let expire = chrono::DateTime::from_timestamp_millis(h.now + 10 * 3_600_000).unwrap();
    let body = json!({"code": 200, "message": null, "data": {"accessToken": "SLT", "expireTime": expire.format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string(), "scope": "read_orders"}});
    ok(&h.respond(&req, 200, &body.to_string()));
    assert_eq!(h.state("sl"), "authorized");
    assert_eq!(
        h.engine.poll_timeout_ms(),
        Some(h.now + 10 * 3_600_000 - 1_800_000)
    );
    h.jump();
    let rf = h.request("token_refresh");
    assert_eq!(
        rf["url"],
        "https://myshop.myshopline.com/admin/oauth/token/refresh"
    );
    assert_eq!(rf["body"], "");
    shopline_verify(&rf, h.now);
    let expire2 = chrono::DateTime::from_timestamp_millis(h.now + 10 * 3_600_000).unwrap();
    let body =
        json!({"code": 200, "data": {"accessToken": "SLT2", "expireTime": expire2.to_rfc3339()}});
    ok(&h.respond(&rf, 200, &body.to_string()));
    let c = h.send(json!({"type": "credentials", "client_id": "c1", "store_id": "sl"}));
    assert_eq!(c["data"]["access_token"], "SLT2");
    assert_eq!(c["data"]["seller_ids"], json!(["MyShop"]));
}

#[test]
fn shopline_key_token_is_authorized_at_once() {
    let mut h = Host::new();
    ok(&h.register("slk", "shopline"));
    ok(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "slk", "auth_type": "KEY", "seller_id": "shop2", "auth_info": {"token": "private-app-token"}})));
    assert_eq!(h.state("slk"), "authorized");
    assert_eq!(
        h.send(json!({"type": "credentials", "client_id": "c1", "store_id": "slk"}))["data"],
        json!({"token": "private-app-token"})
    );
}

#[test]
fn mix_up_defence_token_requests_go_to_the_issuing_platform() {
    let mut h = Host::new();
    ok(&h.register("tw", "taobao_tw"));
    let r = h.send(
        json!({"type": "authorize", "client_id": "c1", "store_id": "tw", "auth_type": "URL"}),
    );
    let st = param(r["data"]["auth_url"].as_str().unwrap(), "state").unwrap();
    for p in ["lazada", "myshop", "shopline"] {
        let r = h.send(json!({"type": "oauth_redirect", "platform": p, "query": format!("code=x&state={st}&customField={st}")}));
        assert!(code(&r) == 900007 || code(&r) == 900002, "{p}: {r}");
    }
    ok(&h.send(json!({"type": "oauth_redirect", "platform": "taobao_tw", "query": format!("code=x&state={st}")})));
    assert!(
        h.request("token_create")["url"]
            .as_str()
            .unwrap()
            .starts_with("https://auth.taobao.tw/rest/")
    );
}
