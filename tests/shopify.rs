//! Scenarios for `shopify` against a simulated Shopify: it signs every
//! callback with its own HMAC code (parameters sorted by name, serialized
//! the way shopify-api-js's `URLSearchParams` does — `url`'s
//! form-urlencoded serializer with a space as `%20` —, extra parameters
//! that need escaping included), reads every token request (JSON body,
//! client id and secret, single-use codes), and rotates refresh tokens:
//! each is good once, and reusing an old one is refused (`invalid_grant`).
//! Covered: create, refreshes with fresh windows until the grant ends,
//! rotation after a restore from an old snapshot, non-expiring tokens that
//! never refresh, the callback checks (bad hmac, wrong shop, stale or
//! future timestamp — `invalid_state`, nonce still valid), handle case,
//! and every error class.

mod common;
use common::*;
use hmac::Mac;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const CLIENT_ID: &str = "shpka_client";
const CLIENT_SECRET: &str = "shopify-app-secret-QQ";

fn config(expiring: bool) -> Value {
    let mut c = common::config();
    c["apps"]["shopify"] = json!({
        "app_key": CLIENT_ID, "app_secret": CLIENT_SECRET,
        "redirect_uri": "https://host.example/cb/shopify",
        "scope": "read_orders,write_products", "expiring": expiring
    });
    c
}

/// The simulator's own serialization of a name or value.
fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The simulator's own HMAC of callback parameters.
fn sign(params: &BTreeMap<String, String>) -> String {
    let mut names: Vec<&String> = params
        .keys()
        .filter(|k| *k != "hmac" && *k != "signature")
        .collect();
    names.sort();
    let msg = names
        .iter()
        .map(|k| format!("{}={}", encode(k), encode(&params[*k])))
        .collect::<Vec<_>>()
        .join("&");
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(CLIENT_SECRET.as_bytes()).unwrap();
    m.update(msg.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// One install of the app on a shop.
struct Grant {
    shop: String,
    /// The one live refresh token (single use).
    refresh_token: String,
    used: Vec<String>,
    alive: bool,
}

/// A simulated Shopify.
struct Shopify {
    codes: BTreeMap<String, String>,
    grants: Vec<Grant>,
    issued: u32,
    access_life_s: i64,
    refresh_life_s: i64,
}

impl Shopify {
    fn new() -> Shopify {
        Shopify {
            codes: BTreeMap::new(),
            grants: Vec::new(),
            issued: 0,
            access_life_s: 3600,
            refresh_life_s: 7200,
        }
    }

    /// The merchant installs on `shop` (`{handle}.myshopify.com`): the
    /// signed callback parameters for `state`, at `now_ms`.
    fn callback(&mut self, shop: &str, state: &str, now_ms: i64) -> BTreeMap<String, String> {
        self.issued += 1;
        let code = format!("{:032x}", self.issued);
        self.codes.insert(code.clone(), shop.to_ascii_lowercase());
        let host = base64_host(shop);
        let mut p: BTreeMap<String, String> = [
            ("code", code.as_str()),
            ("host", host.as_str()),
            ("shop", shop),
            ("state", state),
            ("timestamp", &(now_ms / 1000).to_string()),
            // An extra parameter that needs escaping, as apps may see.
            ("x_note", "a+b c/é~*"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let h = sign(&p);
        p.insert("hmac".into(), h);
        p
    }

    /// Reads a token request: POST JSON to the shop's endpoint with the
    /// app's credentials. Returns the body and the shop.
    fn verify(req: &Value) -> (Value, String) {
        assert_eq!(req["method"], "POST");
        let url = req["url"].as_str().unwrap();
        let shop = url
            .strip_prefix("https://")
            .and_then(|u| u.strip_suffix("/admin/oauth/access_token"))
            .expect("the shop's token endpoint")
            .to_owned();
        let headers = req["headers"].as_array().unwrap();
        assert!(headers.contains(&json!(["Content-Type", "application/json"])));
        let body: Value = serde_json::from_str(req["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["client_id"], CLIENT_ID);
        assert_eq!(body["client_secret"], CLIENT_SECRET);
        (body, shop)
    }

    fn tokens(&mut self, g: usize, expiring: bool) -> String {
        self.issued += 1;
        if !expiring {
            return json!({"access_token": format!("shpat_{}", self.issued), "scope": "read_orders,write_products"}).to_string();
        }
        let rt = format!("shprt_{}", self.issued);
        self.grants[g].refresh_token = rt.clone();
        json!({"access_token": format!("shpat_{}", self.issued), "scope": "read_orders,write_products",
               "expires_in": self.access_life_s, "refresh_token": rt,
               "refresh_token_expires_in": self.refresh_life_s})
        .to_string()
    }

    fn grant_error() -> String {
        json!({"error": "invalid_grant", "error_description": "The refresh token is invalid or expired"}).to_string()
    }

    /// Answers a request to the token endpoint: (status, body).
    fn answer(&mut self, req: &Value) -> (u16, String) {
        let (body, shop) = Shopify::verify(req);
        if body["grant_type"] == "refresh_token" {
            let rt = body["refresh_token"].as_str().unwrap();
            let Some(g) = self
                .grants
                .iter()
                .position(|g| g.shop == shop && g.refresh_token == rt && g.alive)
            else {
                // Unknown, or reused after rotation.
                return (400, Shopify::grant_error());
            };
            self.grants[g].used.push(rt.to_owned());
            return (200, self.tokens(g, true));
        }
        let code = body["code"].as_str().unwrap();
        match self.codes.remove(code) {
            Some(s) if s == shop => {
                self.grants.push(Grant {
                    shop,
                    refresh_token: String::new(),
                    used: Vec::new(),
                    alive: true,
                });
                let expiring = body["expiring"] == "1";
                let g = self.grants.len() - 1;
                (200, self.tokens(g, expiring))
            }
            _ => (
                400,
                json!({"error": "invalid_grant", "error_description": "authorization code was not found or was already used"}).to_string(),
            ),
        }
    }
}

fn base64_host(shop: &str) -> String {
    use base64::Engine as _;
    let handle = shop.split('.').next().unwrap();
    base64::engine::general_purpose::STANDARD.encode(format!("admin.shopify.com/store/{handle}"))
}

fn ms(t: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t.as_str().unwrap())
        .unwrap()
        .timestamp_millis()
}

fn start(h: &mut Host, store: &str, handle: &str) -> String {
    ok(&h.register(store, "shopify"));
    let r = h.send(json!({"type": "authorize", "client_id": "c1", "store_id": store, "auth_type": "URL", "seller_id": handle, "redirect_url": "https://biz.example/r"}));
    ok(&r);
    r["data"]["auth_url"].as_str().unwrap().to_owned()
}

fn redirect(h: &mut Host, params: &BTreeMap<String, String>) -> Value {
    h.send(json!({"type": "oauth_redirect", "platform": "shopify", "params": params}))
}

/// As a browser brings it: the raw query string.
fn redirect_query(h: &mut Host, params: &BTreeMap<String, String>) -> Value {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish();
    h.send(json!({"type": "oauth_redirect", "platform": "shopify", "query": q}))
}

fn install(h: &mut Host, sim: &mut Shopify, store: &str, handle: &str) {
    let url = start(h, store, handle);
    let state = param(&url, "state").unwrap();
    let p = sim.callback(&format!("{handle}.myshopify.com"), &state, h.now);
    ok(&redirect(h, &p));
    let req = h.request("token_create");
    let (status, body) = sim.answer(&req);
    ok(&h.respond(&req, status, &body));
    assert_eq!(h.state(store), "authorized");
}

#[test]
fn install_then_refresh_with_fresh_windows_until_the_grant_ends() {
    let mut h = Host::with(config(true));
    let mut sim = Shopify::new();
    let url = start(&mut h, "s1", "Cool-Shop");
    assert!(
        url.starts_with("https://cool-shop.myshopify.com/admin/oauth/authorize?client_id=shpka_client&scope=read_orders%2Cwrite_products&redirect_uri=https%3A%2F%2Fhost.example%2Fcb%2Fshopify&state="),
        "{url}"
    );
    assert!(url.ends_with("&grant_options%5B%5D="), "{url}");
    let state = param(&url, "state").unwrap();
    let p = sim.callback("cool-shop.myshopify.com", &state, h.now);
    // As a raw query string (escaping both ways).
    ok(&redirect_query(&mut h, &p));
    let req = h.request("token_create");
    let (body, shop) = Shopify::verify(&req);
    assert_eq!(shop, "cool-shop.myshopify.com");
    assert_eq!(body["expiring"], "1");
    assert_eq!(body["code"], p["code"]);
    let (status, answer) = sim.answer(&req);
    ok(&h.respond(&req, status, &answer));
    let v = h.query("s1");
    assert_eq!(v["state"], "authorized");
    // As requested; claimed lower-cased.
    assert_eq!(v["seller_ids"], json!(["Cool-Shop"]));
    assert_eq!(
        v["claims"],
        json!([{"kind": "seller", "platform": "shopify", "seller_id": "cool-shop"}])
    );
    assert_eq!(ms(&v["access_expires_at"]), h.now + 3_600_000);
    let mut refresh_exp = ms(&v["refresh_expires_at"]);
    assert_eq!(refresh_exp, h.now + 7_200_000);
    h.take_kind("redirect");
    let mut refreshes = 0;
    let mut presented: Vec<String> = Vec::new();
    loop {
        assert!(h.jump());
        if let Some(pos) = h
            .outputs
            .iter()
            .position(|o| o["purpose"] == "token_refresh")
        {
            let rf = h.outputs.remove(pos);
            let (body, _) = Shopify::verify(&rf);
            let rt = body["refresh_token"].as_str().unwrap().to_owned();
            assert_eq!(body["grant_type"], "refresh_token");
            assert!(
                !presented.contains(&rt),
                "a refresh token is presented once"
            );
            presented.push(rt);
            if refreshes == 5 {
                // The merchant uninstalls: the grant ends.
                sim.grants[0].alive = false;
            }
            let (status, answer) = sim.answer(&rf);
            ok(&h.respond(&rf, status, &answer));
            if status == 200 {
                refreshes += 1;
                let v = h.query("s1");
                // Rotation: a fresh window from each answer, not IOP's min.
                let new_exp = ms(&v["refresh_expires_at"]);
                assert_eq!(new_exp, h.now + 7_200_000);
                assert!(new_exp > refresh_exp);
                refresh_exp = new_exp;
            }
        }
        if h.state("s1") != "authorized" {
            break;
        }
    }
    assert_eq!(refreshes, 5);
    let v = h.query("s1");
    assert_eq!(v["state"], "expired");
    assert_eq!(v["last_error"]["reason"], "refresh_rejected");
    assert_eq!(sim.grants[0].used.len(), 5);
}

#[test]
fn a_refresh_token_used_once_is_refused_after_a_rollback() {
    let mut h = Host::with(config(true));
    let mut sim = Shopify::new();
    install(&mut h, &mut sim, "s1", "myshop");
    let old = h.engine.snapshot();
    ok(&h.send(json!({"type": "token_rejected", "client_id": "c1", "store_id": "s1"})));
    let rf = h.request("token_refresh");
    let (status, answer) = sim.answer(&rf);
    assert_eq!(status, 200);
    ok(&h.respond(&rf, status, &answer));
    // The host lost what it did after `old` and restores it: the engine
    // holds the refresh token the simulator already rotated away.
    h.engine.restore(&old).unwrap();
    ok(&h.send(json!({"type": "token_rejected", "client_id": "c1", "store_id": "s1"})));
    let rf = h.request("token_refresh");
    let (status, answer) = sim.answer(&rf);
    assert_eq!(status, 400);
    ok(&h.respond(&rf, status, &answer));
    let v = h.query("s1");
    assert_eq!(v["state"], "expired");
    assert_eq!(v["last_error"]["reason"], "refresh_rejected");
}

#[test]
fn non_expiring_tokens_never_refresh() {
    let mut h = Host::with(config(false));
    let mut sim = Shopify::new();
    let url = start(&mut h, "s1", "myshop");
    let state = param(&url, "state").unwrap();
    let p = sim.callback("myshop.myshopify.com", &state, h.now);
    ok(&redirect(&mut h, &p));
    let req = h.request("token_create");
    let (body, _) = Shopify::verify(&req);
    assert_eq!(body["expiring"], "0");
    let (status, answer) = sim.answer(&req);
    ok(&h.respond(&req, status, &answer));
    let v = h.query("s1");
    assert_eq!(v["state"], "authorized");
    assert_eq!(v["access_expires_at"], Value::Null);
    assert_eq!(v["refresh_expires_at"], Value::Null);
    assert_eq!(h.engine.poll_timeout_ms(), None, "nothing to do, ever");
    h.tick(400 * 86_400_000);
    assert_eq!(h.state("s1"), "authorized");
    assert!(!h.outputs.iter().any(|o| o["type"] == "http_request"));
    // Rejected by Shopify later (uninstalled): no refresh possible.
    ok(&h.send(json!({"type": "token_rejected", "client_id": "c1", "store_id": "s1"})));
    let v = h.query("s1");
    assert_eq!(v["state"], "expired");
    assert_eq!(v["last_error"]["reason"], "token_rejected");
}

#[test]
fn callbacks_that_fail_a_check_are_invalid_state_and_keep_the_nonce() {
    let mut h = Host::with(config(true));
    let mut sim = Shopify::new();
    let url = start(&mut h, "s1", "myshop");
    let state = param(&url, "state").unwrap();
    h.take_kind("transition");
    let good = sim.callback("myshop.myshopify.com", &state, h.now);
    let mut bad_hmac = good.clone();
    bad_hmac.insert("code".into(), "tampered".into());
    let mut upper_hmac = good.clone();
    upper_hmac.insert("hmac".into(), good["hmac"].to_ascii_uppercase());
    let mut no_hmac = good.clone();
    no_hmac.remove("hmac");
    let wrong_shop = sim.callback("othershop.myshopify.com", &state, h.now);
    let stale = sim.callback("myshop.myshopify.com", &state, h.now - 91_000);
    let future = sim.callback("myshop.myshopify.com", &state, h.now + 92_000);
    let lookalike = sim.callback("myshop.myshopify.com.evil.example", &state, h.now);
    for (what, p) in [
        ("bad hmac", &bad_hmac),
        ("upper-case hmac", &upper_hmac),
        ("no hmac", &no_hmac),
        ("wrong shop", &wrong_shop),
        ("stale timestamp", &stale),
        ("future timestamp", &future),
        ("look-alike shop", &lookalike),
    ] {
        let r = redirect(&mut h, p);
        assert_eq!(r["code"], 900007, "{what}: {r}");
        assert_eq!(r["kind"], "invalid_state", "{what}");
        assert_eq!(h.state("s1"), "requested", "{what}");
    }
    assert!(h.take_kind("transition").is_empty());
    // Still inside the window (90 s): the nonce is still good.
    h.tick(60_000);
    let ok_late = sim.callback("MYSHOP.myshopify.com", &state, h.now - 89_000);
    ok(&redirect(&mut h, &ok_late));
    assert_eq!(h.state("s1"), "pending");
    // Spent now.
    let r = redirect(&mut h, &good);
    assert_eq!(r["code"], 900007);
    // An unsigned error redirect is no proof either.
    let url = start(&mut h, "s2", "second");
    let state = param(&url, "state").unwrap();
    let r = h.send(json!({"type": "oauth_redirect", "platform": "shopify", "params": {"error": "access_denied", "state": state}}));
    assert_eq!(r["code"], 900007);
    assert_eq!(h.state("s2"), "requested");
}

#[test]
fn handles_compare_case_insensitively() {
    let mut h = Host::with(config(true));
    let mut sim = Shopify::new();
    install(&mut h, &mut sim, "a", "MyShop");
    assert_eq!(
        h.query("a")["claims"],
        json!([{"kind": "seller", "platform": "shopify", "seller_id": "myshop"}])
    );
    ok(&h.register("b", "shopify"));
    for handle in ["myshop", "MYSHOP", "MyShop"] {
        let r = h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "b", "auth_type": "URL", "seller_id": handle}));
        assert_eq!(r["code"], 900003, "{handle}");
    }
    // Not a host label: refused by shape.
    for bad in ["my_shop", "-shop", "shop.myshopify.com", &"x".repeat(64)] {
        let r = h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "b", "auth_type": "URL", "seller_id": bad}));
        assert_eq!(r["code"], 900002, "{bad}");
    }
    // Required.
    let r = h
        .send(json!({"type": "authorize", "client_id": "c1", "store_id": "b", "auth_type": "URL"}));
    assert_eq!(r["code"], 900002);
    // KEY is not taken.
    let r = h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "b", "auth_type": "KEY", "seller_id": "b", "auth_info": {"token": "t"}}));
    assert_eq!(r["code"], 900002);
    // After `a` is revoked the handle is free again, in any case.
    ok(&h.send(json!({"type": "revoke", "client_id": "c1", "store_id": "a"})));
    ok(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "b", "auth_type": "URL", "seller_id": "MYSHOP"})));
}

#[test]
fn create_errors_by_class() {
    let mut h = Host::with(config(true));
    let mut sim = Shopify::new();
    let cases: [(u16, &str, &str, Option<&str>); 4] = [
        (
            400,
            r#"{"error":"invalid_grant","error_description":"code used"}"#,
            "failed",
            Some("platform_rejected"),
        ),
        (
            401,
            r#"{"error":"invalid_client","error_description":"bad secret"}"#,
            "failed",
            Some("system_error"),
        ),
        (
            400,
            r#"{"error":"invalid_request"}"#,
            "failed",
            Some("system_error"),
        ),
        (
            200,
            r#"{"scope":"read_orders"}"#,
            "failed",
            Some("system_error"),
        ),
    ];
    for (i, (status, body, state, reason)) in cases.into_iter().enumerate() {
        let store = format!("e{i}");
        let url = start(&mut h, &store, &format!("shop{i}"));
        let st = param(&url, "state").unwrap();
        let p = sim.callback(&format!("shop{i}.myshopify.com"), &st, h.now);
        ok(&redirect(&mut h, &p));
        let req = h.request("token_create");
        ok(&h.respond(&req, status, body));
        let v = h.query(&store);
        assert_eq!(v["state"], state, "{body}");
        assert_eq!(v["last_error"]["reason"].as_str(), reason, "{body}");
    }
    // A code presented twice (the simulator's own refusal).
    let url = start(&mut h, "twice", "twice");
    let st = param(&url, "state").unwrap();
    let p = sim.callback("twice.myshopify.com", &st, h.now);
    sim.codes.clear();
    ok(&redirect(&mut h, &p));
    let req = h.request("token_create");
    let (status, body) = sim.answer(&req);
    ok(&h.respond(&req, status, &body));
    assert_eq!(
        h.query("twice")["last_error"]["reason"],
        "platform_rejected"
    );
    // Retried: 429, 5xx, not JSON, the transport.
    let url = start(&mut h, "r", "retry");
    let st = param(&url, "state").unwrap();
    let p = sim.callback("retry.myshopify.com", &st, h.now);
    ok(&redirect(&mut h, &p));
    let mut req = h.request("token_create");
    for (status, body) in [(429, ""), (500, "{}"), (503, "<html>"), (200, "not json")] {
        ok(&h.respond(&req, status, body));
        assert_eq!(h.state("r"), "pending");
        assert!(h.jump());
        req = h.request("token_create");
    }
    ok(&h.fail_transport(&req));
    assert!(h.jump());
    let req = h.request("token_create");
    let (status, body) = sim.answer(&req);
    ok(&h.respond(&req, status, &body));
    assert_eq!(h.state("r"), "authorized");
}

#[test]
fn refresh_errors_by_class() {
    let mut h = Host::with(config(true));
    let mut sim = Shopify::new();
    install(&mut h, &mut sim, "s1", "myshop");
    ok(&h.send(json!({"type": "token_rejected", "client_id": "c1", "store_id": "s1"})));
    // invalid_client: our setup; noted, retried, still authorized.
    let rf = h.request("token_refresh");
    ok(&h.respond(&rf, 401, r#"{"error":"invalid_client"}"#));
    let v = h.query("s1");
    assert_eq!(v["state"], "authorized");
    assert_eq!(v["last_error"]["reason"], "system_error");
    // 429 / 5xx: retried.
    for status in [429, 502] {
        assert!(h.jump());
        let rf = h.request("token_refresh");
        ok(&h.respond(&rf, status, ""));
        assert_eq!(h.state("s1"), "authorized");
    }
    assert!(h.jump());
    let rf = h.request("token_refresh");
    let (status, body) = sim.answer(&rf);
    ok(&h.respond(&rf, status, &body));
    let v = h.query("s1");
    assert_eq!(v["state"], "authorized");
    // invalid_grant: re-authorization needed.
    ok(&h.send(json!({"type": "token_rejected", "client_id": "c1", "store_id": "s1"})));
    let rf = h.request("token_refresh");
    ok(&h.respond(&rf, 400, &Shopify::grant_error()));
    let v = h.query("s1");
    assert_eq!(v["state"], "expired");
    assert_eq!(v["last_error"]["reason"], "refresh_rejected");
    // Re-authorization works and gets a new grant.
    let r = h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "s1", "auth_type": "URL", "seller_id": "myshop"}));
    ok(&r);
    let st = param(r["data"]["auth_url"].as_str().unwrap(), "state").unwrap();
    let p = sim.callback("myshop.myshopify.com", &st, h.now);
    ok(&redirect(&mut h, &p));
    let req = h.request("token_create");
    let (status, body) = sim.answer(&req);
    ok(&h.respond(&req, status, &body));
    assert_eq!(h.state("s1"), "authorized");
}

#[test]
fn the_client_secret_stays_in_the_request() {
    let mut h = Host::with(config(true));
    let mut sim = Shopify::new();
    let url = start(&mut h, "s1", "myshop");
    let st = param(&url, "state").unwrap();
    let p = sim.callback("myshop.myshopify.com", &st, h.now);
    ok(&redirect(&mut h, &p));
    let req = h.request("token_create");
    let echo = json!({"error": "invalid_client", "error_description": format!("bad client_secret {CLIENT_SECRET}")});
    ok(&h.respond(&req, 401, &echo.to_string()));
    let v = h.query("s1");
    assert!(!v.to_string().contains(CLIENT_SECRET));
    for o in h.take() {
        assert!(!o.to_string().contains(CLIENT_SECRET), "{o}");
    }
    let e = shopauth::Engine::from_config_json(
        &{
            let mut c = config(true);
            c["apps"]["shopify"]["expiring"] = json!("yes");
            c
        }
        .to_string(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("apps.shopify.expiring"), "{e}");
    assert!(!e.to_string().contains(CLIENT_SECRET));
}
