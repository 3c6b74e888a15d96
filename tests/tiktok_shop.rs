//! Scenarios for `tiktok_shop` (TikTok Shop Partner API) against a
//! simulated TikTok: it reads every token request the way TikTok does (a
//! GET whose query carries `app_key`, `app_secret` and the code or refresh
//! token, checked against its own records; codes single-use), answers
//! with TikTok's absolute expiries (Unix seconds) and `open_id`, and
//! refuses with TikTok's codes. Covered: create, refresh until the refresh
//! token's absolute expiry passes, century-ahead expiries, the regional
//! authorize forms, every error class, seller conflicts on `open_id`, and
//! the app secret in the URL never reaching Debug or `last_error`.

mod common;
use common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const APP_KEY: &str = "6abc123";
const APP_SECRET: &str = "tiktok-app-secret-XYZ";
const SERVICE_ID: &str = "7584563551361271565";
const WEEK_S: i64 = 604_800;
const DAY_S: i64 = 86_400;

fn config() -> Value {
    let mut c = common::config();
    c["apps"]["tiktok_shop"] = json!({
        "app_key": APP_KEY, "app_secret": APP_SECRET, "service_id": SERVICE_ID,
        "redirect_uri": "https://host.example/cb/tiktok_shop"
    });
    c
}

/// What TikTok holds of one authorization.
struct Grant {
    open_id: String,
    refresh_token: String,
    /// Absolute (s): fixed at authorization, never extended.
    refresh_expires_s: i64,
    alive: bool,
}

/// A simulated TikTok Shop token API.
struct TikTok {
    /// Issued, unused codes → open_id.
    codes: BTreeMap<String, String>,
    grants: Vec<Grant>,
    issued: u32,
    /// Refresh token lifetime given at authorization (s).
    refresh_life_s: i64,
}

impl TikTok {
    fn new() -> TikTok {
        TikTok {
            codes: BTreeMap::new(),
            grants: Vec::new(),
            issued: 0,
            refresh_life_s: 30 * DAY_S,
        }
    }

    /// The seller consents: a code for `open_id`.
    fn consent(&mut self, open_id: &str) -> String {
        self.issued += 1;
        let code = format!("TTP_code+{}/{open_id}", self.issued);
        self.codes.insert(code.clone(), open_id.to_owned());
        code
    }

    /// Reads a request as TikTok does: GET, the path, the app's key and
    /// secret in the query. Returns the query's parameters.
    fn verify(req: &Value, path: &str) -> BTreeMap<String, String> {
        assert_eq!(req["method"], "GET");
        assert_eq!(req["body"], Value::Null);
        let url = req["url"].as_str().unwrap();
        let (base, query) = url.split_once('?').expect("a query");
        assert_eq!(base, format!("https://auth.tiktok-shops.com{path}"));
        let p: BTreeMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(p.get("app_key").map(String::as_str), Some(APP_KEY));
        assert_eq!(p.get("app_secret").map(String::as_str), Some(APP_SECRET));
        p
    }

    fn ok(&self, now_ms: i64, g: &Grant, access_life_s: i64) -> String {
        let now_s = now_ms / 1000;
        json!({"code": 0, "message": "success", "request_id": "202311141400",
               "data": {"access_token": format!("ROW_at_{}", self.issued),
                        "access_token_expire_in": now_s + access_life_s,
                        "refresh_token": g.refresh_token,
                        "refresh_token_expire_in": g.refresh_expires_s,
                        "open_id": g.open_id, "seller_name": "Shop",
                        "seller_base_region": "ID", "user_type": 0}})
        .to_string()
    }

    fn error(code: i64, message: &str) -> String {
        json!({"code": code, "message": message, "request_id": "202311141400"}).to_string()
    }

    /// Answers a token create.
    fn create(&mut self, req: &Value, now_ms: i64) -> String {
        let p = TikTok::verify(req, "/api/v2/token/get");
        assert_eq!(p["grant_type"], "authorized_code");
        let Some(open_id) = self.codes.remove(&p["auth_code"]) else {
            return TikTok::error(36004004, "invalid auth code");
        };
        self.issued += 1;
        let g = Grant {
            open_id,
            refresh_token: format!("ROW_rt_{}", self.issued),
            refresh_expires_s: now_ms / 1000 + self.refresh_life_s,
            alive: true,
        };
        let body = self.ok(now_ms, &g, WEEK_S);
        self.grants.push(g);
        body
    }

    /// Answers a refresh: the refresh token rotates, its absolute expiry
    /// stays that of the authorization.
    fn refresh(&mut self, req: &Value, now_ms: i64) -> String {
        let p = TikTok::verify(req, "/api/v2/token/refresh");
        assert_eq!(p["grant_type"], "refresh_token");
        let Some(i) = self
            .grants
            .iter()
            .position(|g| g.refresh_token == p["refresh_token"])
        else {
            return TikTok::error(36004005, "no such authorization");
        };
        if !self.grants[i].alive {
            return TikTok::error(36004005, "authorization cancelled");
        }
        if self.grants[i].refresh_expires_s <= now_ms / 1000 {
            return TikTok::error(36004001, "refresh token expired");
        }
        self.issued += 1;
        self.grants[i].refresh_token = format!("ROW_rt_{}", self.issued);
        let g = &self.grants[i];
        self.ok(now_ms, g, WEEK_S)
    }
}

fn ms(t: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

/// Registers and authorizes `store`; returns the auth_url.
fn start(h: &mut Host, store: &str, seller: Option<&str>) -> String {
    ok(&h.register(store, "tiktok_shop"));
    let mut a = json!({"type": "authorize", "client_id": "c1", "store_id": store, "auth_type": "URL", "redirect_url": "https://biz.example/r"});
    if let Some(s) = seller {
        a["seller_id"] = json!(s);
    }
    let r = h.send(a);
    ok(&r);
    r["data"]["auth_url"].as_str().unwrap().to_owned()
}

/// The seller comes back from TikTok with `code` and `state` (and the
/// other parameters TikTok appends).
fn come_back(h: &mut Host, url: &str, code: &str) -> Value {
    let state = param(url, "state").unwrap();
    h.send(json!({"type": "oauth_redirect", "platform": "tiktok_shop",
                  "params": {"app_key": APP_KEY, "code": code, "locale": "en", "shop_region": "ID", "state": state}}))
}

fn authorized(h: &mut Host, tt: &mut TikTok, store: &str, open_id: &str) {
    let url = start(h, store, None);
    let code = tt.consent(open_id);
    ok(&come_back(h, &url, &code));
    let req = h.request("token_create");
    let body = tt.create(&req, h.now);
    ok(&h.respond(&req, 200, &body));
    assert_eq!(h.state(store), "authorized");
}

#[test]
fn create_then_refresh_until_the_refresh_token_expires() {
    let mut h = Host::with(config());
    let mut tt = TikTok::new();
    let url = start(&mut h, "t1", None);
    assert!(
        url.starts_with(&format!(
            "https://services.tiktokshop.com/open/authorize?service_id={SERVICE_ID}&state="
        )),
        "{url}"
    );
    let code = tt.consent("7010736057180325637");
    ok(&come_back(&mut h, &url, &code));
    assert_eq!(h.state("t1"), "pending");
    let req = h.request("token_create");
    let body = tt.create(&req, h.now);
    ok(&h.respond(&req, 200, &body));
    let v = h.query("t1");
    assert_eq!(v["state"], "authorized");
    assert_eq!(v["seller_ids"], json!(["7010736057180325637"]));
    assert_eq!(ms(&v["access_expires_at"]), h.now + WEEK_S * 1000);
    let refresh_dies = h.now + 30 * DAY_S * 1000;
    assert_eq!(ms(&v["refresh_expires_at"]), refresh_dies);
    let c = h.send(json!({"type": "credentials", "client_id": "c1", "store_id": "t1"}));
    assert_eq!(c["data"]["seller_ids"], json!(["7010736057180325637"]));
    let redirect = h.take_kind("redirect");
    assert!(
        redirect[0]["location"]
            .as_str()
            .unwrap()
            .contains("seller_id=7010736057180325637&auth_status=SUCCESS")
    );

    let mut refreshes = 0;
    let mut last_rt = String::new();
    loop {
        assert!(h.jump(), "a timer is always set while authorized");
        if let Some(pos) = h
            .outputs
            .iter()
            .position(|o| o["purpose"] == "token_refresh")
        {
            let rf = h.outputs.remove(pos);
            let p = TikTok::verify(&rf, "/api/v2/token/refresh");
            assert_ne!(
                p["refresh_token"], last_rt,
                "the latest refresh token is sent"
            );
            last_rt = p["refresh_token"].clone();
            let before = ms(&h.query("t1")["access_expires_at"]);
            assert_eq!(before - h.now, 1_800_000, "due 30 min before expiry");
            let body = tt.refresh(&rf, h.now);
            ok(&h.respond(&rf, 200, &body));
            refreshes += 1;
            let v = h.query("t1");
            assert_eq!(v["state"], "authorized");
            // Absolute expiries as answered: the refresh token's never moves.
            assert_eq!(ms(&v["refresh_expires_at"]), refresh_dies);
            assert_eq!(ms(&v["access_expires_at"]), h.now + WEEK_S * 1000);
        }
        if h.state("t1") != "authorized" {
            break;
        }
    }
    // Refreshes at about 7, 14, 21 and 28 days; none after day 30; the
    // last access token ends about day 35.
    assert_eq!(refreshes, 4);
    let v = h.query("t1");
    assert_eq!(v["state"], "expired");
    assert_eq!(v["last_error"]["reason"], "token_expired");
    assert!(h.now > refresh_dies);
    assert!(
        !h.outputs.iter().any(|o| o["purpose"] == "token_refresh"),
        "no refresh once the refresh token is dead"
    );
}

#[test]
fn a_century_ahead_refresh_expiry_is_cut_to_ten_years() {
    let mut h = Host::with(config());
    let url = start(&mut h, "t1", None);
    ok(&come_back(&mut h, &url, "code1"));
    let req = h.request("token_create");
    let body = json!({"code": 0, "message": "success", "request_id": "r",
        "data": {"access_token": "AT", "access_token_expire_in": h.now / 1000 + 3600,
                 "refresh_token": "RT", "refresh_token_expire_in": 4_903_858_076_i64,
                 "open_id": "o1", "seller_name": "s", "seller_base_region": "US"}});
    ok(&h.respond(&req, 200, &body.to_string()));
    let v = h.query("t1");
    assert_eq!(ms(&v["refresh_expires_at"]), h.now + 315_360_000_000);
    assert_eq!(ms(&v["access_expires_at"]), h.now + 3_600_000);
    // A lifetime (below 10^9) is read as seconds from the answer.
    let url = start(&mut h, "t2", None);
    ok(&come_back(&mut h, &url, "code2"));
    let req = h.request("token_create");
    let body = json!({"code": 0, "data": {"access_token": "AT2", "access_token_expire_in": 7200,
                 "refresh_token": "RT2", "refresh_token_expire_in": "2592000", "open_id": "o2"}});
    ok(&h.respond(&req, 200, &body.to_string()));
    let v = h.query("t2");
    assert_eq!(ms(&v["access_expires_at"]), h.now + 7_200_000);
    assert_eq!(ms(&v["refresh_expires_at"]), h.now + 2_592_000_000);
}

#[test]
fn us_sellers_use_the_us_authorize_page() {
    let mut c = config();
    c["apps"]["tiktok_shop"]["authorize_url"] =
        json!("https://services.us.tiktokshop.com/open/authorize");
    let mut h = Host::with(c);
    let url = start(&mut h, "t1", None);
    assert!(
        url.starts_with(&format!(
            "https://services.us.tiktokshop.com/open/authorize?service_id={SERVICE_ID}&state="
        )),
        "{url}"
    );
    // And the repeat on `requested` answers the same link.
    let again = h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "t1", "auth_type": "URL", "redirect_url": "https://biz.example/r"}));
    assert_eq!(again["data"]["auth_url"], url);
}

#[test]
fn create_errors_fail_or_retry_by_class() {
    let mut h = Host::with(config());
    let mut tt = TikTok::new();
    // A code TikTok does not know (36004004): platform_rejected.
    let url = start(&mut h, "bad", None);
    ok(&come_back(&mut h, &url, "never-issued"));
    let req = h.request("token_create");
    let body = tt.create(&req, h.now);
    ok(&h.respond(&req, 200, &body));
    let v = h.query("bad");
    assert_eq!(v["state"], "failed");
    assert_eq!(v["last_error"]["reason"], "platform_rejected");
    // Any other code on create: platform_rejected too.
    let url = start(&mut h, "other", None);
    ok(&come_back(&mut h, &url, "c"));
    let req = h.request("token_create");
    ok(&h.respond(&req, 200, &TikTok::error(36004002, "app not authorized")));
    assert_eq!(
        h.query("other")["last_error"]["reason"],
        "platform_rejected"
    );
    // A body TikTok never sends (no code): system_error.
    let url = start(&mut h, "broken", None);
    ok(&come_back(&mut h, &url, "c"));
    let req = h.request("token_create");
    ok(&h.respond(&req, 200, "{}"));
    let v = h.query("broken");
    assert_eq!(v["state"], "failed");
    assert_eq!(v["last_error"]["reason"], "system_error");
    // Retried: 429, 5xx, the rate-limit and internal-error codes, a proxy
    // page, the transport; then the code still works.
    let url = start(&mut h, "t1", None);
    let code = tt.consent("o-retry");
    ok(&come_back(&mut h, &url, &code));
    let mut req = h.request("token_create");
    let answers: [(u16, String); 5] = [
        (429, String::new()),
        (503, "upstream".into()),
        (200, TikTok::error(36009002, "too many requests")),
        (
            200,
            TikTok::error(36009003, "internal error, retry request"),
        ),
        (502, "<html>bad gateway</html>".into()),
    ];
    for (status, body) in answers {
        ok(&h.respond(&req, status, &body));
        assert_eq!(h.state("t1"), "pending", "{status} {body}");
        assert!(h.jump());
        req = h.request("token_create");
    }
    ok(&h.fail_transport(&req));
    assert!(h.jump());
    let req = h.request("token_create");
    let body = tt.create(&req, h.now);
    ok(&h.respond(&req, 200, &body));
    assert_eq!(h.state("t1"), "authorized");
}

#[test]
fn refresh_errors_expire_note_or_retry_by_class() {
    for (code, expect_state, expect_reason) in [
        (36004001, "expired", Some("refresh_rejected")),
        (36004005, "expired", Some("refresh_rejected")),
        (36009004, "authorized", Some("system_error")),
        (36009002, "authorized", None),
        (36009003, "authorized", None),
    ] {
        let mut h = Host::with(config());
        let mut tt = TikTok::new();
        authorized(&mut h, &mut tt, "t1", "o1");
        ok(&h.send(json!({"type": "token_rejected", "client_id": "c1", "store_id": "t1"})));
        let rf = h.request("token_refresh");
        ok(&h.respond(&rf, 200, &TikTok::error(code, "m")));
        let v = h.query("t1");
        assert_eq!(v["state"], expect_state, "{code}");
        assert_eq!(v["last_error"]["reason"].as_str(), expect_reason, "{code}");
        if expect_state == "authorized" {
            // Retried later; the simulator then refreshes.
            assert!(h.jump());
            let rf = h.request("token_refresh");
            let body = tt.refresh(&rf, h.now);
            ok(&h.respond(&rf, 200, &body));
            assert_eq!(h.state("t1"), "authorized");
        }
    }
    // A cancelled authorization: the simulator's own refusal.
    let mut h = Host::with(config());
    let mut tt = TikTok::new();
    authorized(&mut h, &mut tt, "t1", "o1");
    tt.grants[0].alive = false;
    ok(&h.send(json!({"type": "token_rejected", "client_id": "c1", "store_id": "t1"})));
    let rf = h.request("token_refresh");
    let body = tt.refresh(&rf, h.now);
    ok(&h.respond(&rf, 200, &body));
    let v = h.query("t1");
    assert_eq!(v["state"], "expired");
    assert_eq!(v["last_error"]["reason"], "refresh_rejected");
    // 429 / 5xx on refresh: retried, the store stays authorized.
    let mut h = Host::with(config());
    let mut tt = TikTok::new();
    authorized(&mut h, &mut tt, "t1", "o1");
    ok(&h.send(json!({"type": "token_rejected", "client_id": "c1", "store_id": "t1"})));
    for status in [429, 500, 503] {
        let rf = h.request("token_refresh");
        ok(&h.respond(&rf, status, ""));
        assert_eq!(h.state("t1"), "authorized");
        assert!(h.jump());
    }
    let rf = h.request("token_refresh");
    let body = tt.refresh(&rf, h.now);
    ok(&h.respond(&rf, 200, &body));
    assert_eq!(h.query("t1")["last_error"], Value::Null);
}

#[test]
fn one_open_id_binds_one_store() {
    let mut h = Host::with(config());
    let mut tt = TikTok::new();
    authorized(&mut h, &mut tt, "a", "7010736057180325637");
    // The same seller authorizes a second store: seller_id_taken, and the
    // tokens just obtained are discarded.
    let url = start(&mut h, "b", None);
    let code = tt.consent("7010736057180325637");
    ok(&come_back(&mut h, &url, &code));
    let req = h.request("token_create");
    let body = tt.create(&req, h.now);
    ok(&h.respond(&req, 200, &body));
    let v = h.query("b");
    assert_eq!(v["state"], "failed");
    assert_eq!(v["last_error"]["reason"], "seller_id_taken");
    assert_eq!(v["claims"], json!([]));
    let c = h.send(json!({"type": "credentials", "client_id": "c1", "store_id": "b"}));
    assert_eq!(c["code"], 900010);
    // Naming the seller up front: refused at authorize.
    ok(&h.register("c", "tiktok_shop"));
    let r = h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "c", "auth_type": "URL", "seller_id": "7010736057180325637"}));
    assert_eq!(r["code"], 900003);
    // A requested seller the token does not name: seller_mismatch.
    let url = start(&mut h, "d", Some("someone-else"));
    let code = tt.consent("o-d");
    ok(&come_back(&mut h, &url, &code));
    let req = h.request("token_create");
    let body = tt.create(&req, h.now);
    ok(&h.respond(&req, 200, &body));
    assert_eq!(h.query("d")["last_error"]["reason"], "seller_mismatch");
    // The first store keeps its seller.
    assert_eq!(h.query("a")["seller_ids"], json!(["7010736057180325637"]));
}

#[test]
fn the_app_secret_in_the_url_never_reaches_debug_or_last_error() {
    let mut h = Host::with(config());
    let url = start(&mut h, "t1", None);
    ok(&come_back(&mut h, &url, "code-1"));
    // Drain through poll_output to see the typed output's Debug.
    let mut e = Engine::from_config_json(&config().to_string()).unwrap();
    e.handle_timeout_ms(T0);
    let reg = json!({"type": "register_store", "client_id": "c1", "store_id": "t1", "platform": "tiktok_shop"});
    e.handle_json(&reg.to_string(), T0);
    let (_, r) = e.handle_json(
        &json!({"type": "authorize", "client_id": "c1", "store_id": "t1", "auth_type": "URL"})
            .to_string(),
        T0,
    );
    let r: Value = serde_json::from_str(&r).unwrap();
    let state = param(r["data"]["auth_url"].as_str().unwrap(), "state").unwrap();
    e.handle_json(
        &json!({"type": "oauth_redirect", "platform": "tiktok_shop", "params": {"code": "c", "state": state}})
            .to_string(),
        T0,
    );
    let mut saw_request = false;
    while let Some(o) = e.poll_output() {
        let dbg = format!("{o:?}");
        assert!(!dbg.contains(APP_SECRET), "{dbg}");
        if let shopauth::Output::HttpRequest(req) = &o {
            assert!(
                req.url.contains(APP_SECRET),
                "the request itself carries it"
            );
            saw_request = true;
        }
    }
    assert!(saw_request);
    // A transport error quoting the URL: not in the input's Debug.
    let failure = json!({"type": "http_failure", "request_id": "x",
        "error": format!("MaxRetryError: url: /api/v2/token/get?app_key={APP_KEY}&app_secret={APP_SECRET}")});
    let input: shopauth::Input = serde_json::from_value(failure).unwrap();
    assert!(!format!("{input:?}").contains(APP_SECRET));
    // TikTok echoing the URL in its message: redacted in last_error.
    let req = h.request("token_create");
    let echo = TikTok::error(
        36004004,
        &format!("invalid auth code for {}", req["url"].as_str().unwrap()),
    );
    ok(&h.respond(&req, 200, &echo));
    let v = h.query("t1");
    let msg = v["last_error"]["message"].as_str().unwrap();
    assert!(!msg.contains(APP_SECRET), "{msg}");
    assert!(msg.contains("[redacted]"), "{msg}");
    for o in h.take() {
        if o["type"] != "http_request" {
            assert!(!o.to_string().contains(APP_SECRET), "{o}");
        }
    }
}

#[test]
fn configuration_names_the_missing_field() {
    let mut c = config();
    c["apps"]["tiktok_shop"]
        .as_object_mut()
        .unwrap()
        .remove("service_id");
    let e = shopauth::Engine::from_config_json(&c.to_string()).unwrap_err();
    assert!(e.to_string().contains("apps.tiktok_shop.service_id"), "{e}");
    let mut c = config();
    c["apps"]["tiktok_shop"]["scope"] = json!("x");
    let e = shopauth::Engine::from_config_json(&c.to_string()).unwrap_err();
    assert!(e.to_string().contains("apps.tiktok_shop.scope"), "{e}");
    assert!(!e.to_string().contains(APP_SECRET));
}

use shopauth::Engine;
