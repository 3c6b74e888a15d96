//! Scenarios for the built-in `shopee` platform (Shopee Open Platform v2)
//! against a simulated Shopee that checks every link and request the way
//! Shopee would: it recomputes each signature with its own HMAC code
//! (`partner_id + path + timestamp`, keyed by the partner key), refuses a
//! link more than 5 minutes old, hands out single-use refresh tokens (a
//! spent or unknown one is refused) and answers with Shopee's fields.

mod common;
use common::*;
use hmac::Mac;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

const PARTNER_ID: &str = "2001887";
const PARTNER_KEY: &str = "shopee-partner-key-0123456789";
const CALLBACK: &str = "https://host.example/cb/shopee";
const DAY_MS: i64 = 86_400_000;

fn config_with(extra: Value) -> Value {
    let mut c = config();
    let mut entry =
        json!({"app_key": PARTNER_ID, "app_secret": PARTNER_KEY, "redirect_uri": CALLBACK});
    entry
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    c["apps"]["shopee"] = entry;
    c
}

fn host() -> Host {
    Host::with(config_with(json!({})))
}

fn hmac_hex(key: &str, data: &str) -> String {
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    m.update(data.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// The simulated Shopee.
struct Shopee {
    /// Codes handed out: code → shop.
    codes: BTreeMap<String, String>,
    /// Codes already exchanged.
    used_codes: HashSet<String>,
    /// Per shop, the one refresh token that is good now.
    live_refresh: BTreeMap<String, String>,
    /// Every refresh token ever spent.
    spent: HashSet<String>,
    serial: u32,
    /// Successful refreshes.
    refreshes: u32,
}

impl Shopee {
    fn new() -> Shopee {
        Shopee {
            codes: BTreeMap::new(),
            used_codes: HashSet::new(),
            live_refresh: BTreeMap::new(),
            spent: HashSet::new(),
            serial: 0,
            refreshes: 0,
        }
    }

    /// Checks the query of a signed call to `path` made at `now` (ms).
    fn check_signed(url: &str, path: &str, now: i64) -> Result<(), &'static str> {
        let (base, _) = url.split_once('?').ok_or("no query")?;
        if !base.ends_with(path) {
            return Err("wrong path");
        }
        if param(url, "partner_id").as_deref() != Some(PARTNER_ID) {
            return Err("error_partner");
        }
        let ts = param(url, "timestamp").ok_or("error_param")?;
        let ts_s: i64 = ts.parse().map_err(|_| "error_param")?;
        if (now / 1000 - ts_s).abs() > 300 {
            return Err("error_auth: timestamp expired");
        }
        let expected = hmac_hex(PARTNER_KEY, &format!("{PARTNER_ID}{path}{ts}"));
        if param(url, "sign").as_deref() != Some(expected.as_str()) {
            return Err("error_sign");
        }
        Ok(())
    }

    /// The seller opens the link at `now` and approves for `shop`: the
    /// callback's query (state, code, shop_id), or why Shopee refuses.
    fn visit(&mut self, link: &str, now: i64, shop: &str) -> Result<String, &'static str> {
        assert!(
            link.starts_with("https://partner.shopeemobile.com/api/v2/shop/auth_partner?"),
            "{link}"
        );
        Self::check_signed(link, "/api/v2/shop/auth_partner", now)?;
        let redirect = param(link, "redirect").ok_or("no redirect")?;
        let state = param(&redirect, "state").ok_or("no state in redirect")?;
        assert!(redirect.starts_with(&format!("{CALLBACK}?state=")));
        self.serial += 1;
        let code = format!("shopee-code-{}", self.serial);
        self.codes.insert(code.clone(), shop.to_owned());
        Ok(format!("state={state}&code={code}&shop_id={shop}"))
    }

    fn error(error: &str, message: &str) -> (u16, String) {
        (
            200,
            json!({"error": error, "message": message, "request_id": "r1"}).to_string(),
        )
    }

    fn tokens(&mut self, shop: &str) -> (u16, String) {
        self.serial += 1;
        let access = format!("shopee-access-{}", self.serial);
        let refresh = format!("shopee-refresh-{}", self.serial);
        if let Some(old) = self.live_refresh.insert(shop.to_owned(), refresh.clone()) {
            self.spent.insert(old);
        }
        (
            200,
            json!({"access_token": access, "refresh_token": refresh, "expire_in": 14400,
                   "request_id": "r2", "error": "", "message": ""})
            .to_string(),
        )
    }

    /// Answers a token request at `now`.
    fn answer(&mut self, req: &Value, now: i64) -> (u16, String) {
        assert_eq!(req["method"], "POST");
        assert!(
            req["headers"]
                .as_array()
                .unwrap()
                .contains(&json!(["Content-Type", "application/json"]))
        );
        let url = req["url"].as_str().unwrap();
        let body: Value = serde_json::from_str(req["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            body["partner_id"],
            json!(PARTNER_ID.parse::<u64>().unwrap())
        );
        let shop = body["shop_id"]
            .as_u64()
            .expect("shop_id is a number")
            .to_string();
        match req["purpose"].as_str().unwrap() {
            "token_create" => {
                if let Err(e) = Self::check_signed(url, "/api/v2/auth/token/get", now) {
                    return Self::error(e, "the signature or partner is wrong");
                }
                let code = body["code"].as_str().unwrap().to_owned();
                match self.codes.get(&code) {
                    Some(s) if *s == shop && self.used_codes.insert(code) => self.tokens(&shop),
                    _ => Self::error("invalid_code", "Invalid code"),
                }
            }
            "token_refresh" => {
                if let Err(e) = Self::check_signed(url, "/api/v2/auth/access_token/get", now) {
                    return Self::error(e, "the signature or partner is wrong");
                }
                let rt = body["refresh_token"].as_str().unwrap();
                if self.live_refresh.get(&shop).map(String::as_str) == Some(rt) {
                    self.refreshes += 1;
                    self.tokens(&shop)
                } else {
                    assert!(
                        self.spent.contains(rt),
                        "the engine sent a refresh token Shopee never issued"
                    );
                    Self::error("error_param", "Invalid refresh_token.")
                }
            }
            p => panic!("unexpected purpose {p}"),
        }
    }
}

fn redirect(h: &mut Host, query: &str) -> Value {
    h.send(json!({"type": "oauth_redirect", "platform": "shopee", "query": query}))
}

/// Registers, authorizes, comes back as `shop` and answers the exchange.
fn authorized(h: &mut Host, sim: &mut Shopee, store: &str, shop: &str) {
    ok(&h.register(store, "shopee"));
    let url = link_of(h, store, None);
    let q = sim.visit(&url, h.now, shop).unwrap();
    ok(&redirect(h, &q));
    let req = h.request("token_create");
    let (status, body) = sim.answer(&req, h.now);
    ok(&h.respond(&req, status, &body));
    assert_eq!(h.state(store), "authorized");
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[test]
fn create_then_rotating_refreshes_each_with_a_fresh_30_days() {
    let mut h = host();
    let mut sim = Shopee::new();
    ok(&h.register("s1", "shopee"));
    let url = link_of(&mut h, "s1", None);
    assert!(url.contains(&format!(
        "partner_id={PARTNER_ID}&timestamp={}&sign=",
        h.now / 1000
    )));
    let q = sim.visit(&url, h.now, "1001").unwrap();
    ok(&redirect(&mut h, &q));
    assert_eq!(h.state("s1"), "pending");
    // The shop is claimed when the seller comes back.
    let v = h.query("s1");
    assert_eq!(
        v["claims"],
        json!([{"kind": "seller", "platform": "shopee", "seller_id": "1001"}])
    );
    let req = h.request("token_create");
    let body: Value = serde_json::from_str(req["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["shop_id"], json!(1001));
    let (status, text) = sim.answer(&req, h.now);
    ok(&h.respond(&req, status, &text));
    let v = h.query("s1");
    assert_eq!(v["state"], "authorized");
    assert_eq!(v["seller_ids"], json!(["1001"]));
    assert_eq!(v["refresh_expires_at"], json!(rfc3339(h.now + 30 * DAY_MS)));
    let c = h.send(json!({"type": "credentials", "client_id": "c1", "store_id": "s1"}));
    assert_eq!(c["data"]["seller_ids"], json!(["1001"]));
    let redirects = h.take_kind("redirect");
    assert!(
        redirects[0]["location"]
            .as_str()
            .unwrap()
            .contains("seller_id=1001&auth_status=SUCCESS")
    );

    // Refresh repeatedly: each answer brings a new single-use token and a
    // new 30-day window from that refresh.
    for i in 1..=6 {
        assert!(h.jump());
        let req = h.request("token_refresh");
        let (status, text) = sim.answer(&req, h.now);
        assert_eq!(status, 200);
        assert!(!text.contains("error\":\"e"), "{text}");
        ok(&h.respond(&req, status, &text));
        let v = h.query("s1");
        assert_eq!(v["state"], "authorized", "refresh {i}");
        assert_eq!(v["refresh_expires_at"], json!(rfc3339(h.now + 30 * DAY_MS)));
        assert!(v["last_error"].is_null());
    }
    assert_eq!(sim.refreshes, 6);

    // Single use: an engine restored from a snapshot taken while a refresh
    // was in flight re-sends it with the token that refresh spent; Shopee
    // refuses it and the store needs re-authorization.
    assert!(h.jump());
    let req = h.request("token_refresh");
    let snap = h.engine.snapshot();
    let (status, text) = sim.answer(&req, h.now);
    ok(&h.respond(&req, status, &text));
    assert_eq!(h.state("s1"), "authorized");
    let mut twin = Host::with(config_with(json!({})));
    twin.now = h.now;
    twin.engine.restore(&snap).expect("restores");
    twin.tick(1);
    let resent = twin.request("token_refresh");
    let (status, text) = sim.answer(&resent, twin.now);
    assert!(text.contains("Invalid refresh_token"), "{text}");
    ok(&twin.respond(&resent, status, &text));
    let v = twin.query("s1");
    assert_eq!(v["state"], "expired");
    assert_eq!(v["last_error"]["reason"], "refresh_rejected");
}

#[test]
fn the_refresh_window_ends_the_authorization() {
    // A refresh token that lives 1 h cannot outlive a 4 h access token: no
    // refresh is attempted after its window, and the store expires.
    let mut h = Host::with(config_with(json!({"refresh_ttl_s": 3600})));
    let mut sim = Shopee::new();
    authorized(&mut h, &mut sim, "s1", "1001");
    let start = h.now;
    assert_eq!(
        h.query("s1")["refresh_expires_at"],
        json!(rfc3339(start + 3_600_000))
    );
    while h.jump() && h.state("s1") == "authorized" {
        assert!(
            !h.outputs
                .iter()
                .any(|o| o["type"] == "http_request" && o["purpose"] == "token_refresh"),
            "a refresh after the refresh token's window"
        );
    }
    let v = h.query("s1");
    assert_eq!(v["state"], "expired");
    assert_eq!(v["last_error"]["reason"], "token_expired");
    assert_eq!(h.now, start + 14_400_000);
    assert_eq!(sim.refreshes, 0);
}

#[test]
fn a_repeated_authorize_answers_a_freshly_signed_link_with_the_same_nonce() {
    let mut h = host();
    let mut sim = Shopee::new();
    ok(&h.register("s1", "shopee"));
    let first = link_of(&mut h, "s1", None);
    h.tick(6 * 60_000);
    // Shopee refuses a link more than 5 minutes old …
    assert_eq!(
        sim.visit(&first, h.now, "1001"),
        Err("error_auth: timestamp expired")
    );
    // … so the host asks again: same attempt, same nonce, signed now.
    let again = link_of(&mut h, "s1", None);
    assert_ne!(again, first);
    let state = |u: &str| param(&param(u, "redirect").unwrap(), "state").unwrap();
    assert_eq!(state(&again), state(&first));
    assert_eq!(h.query("s1")["attempt"], 1);
    assert_eq!(h.query("s1")["auth_url"], json!(again));
    assert!(h.transitions().iter().all(|t| t.2 != "failed"));
    let q = sim.visit(&again, h.now, "1001").unwrap();
    ok(&redirect(&mut h, &q));
    assert_eq!(h.state("s1"), "pending");
}

#[test]
fn forged_missing_and_incomplete_callbacks_are_invalid_state() {
    let mut h = host();
    let mut sim = Shopee::new();
    ok(&h.register("s1", "shopee"));
    let url = link_of(&mut h, "s1", None);
    let good = sim.visit(&url, h.now, "1001").unwrap();
    let state = param(&format!("x?{good}"), "state").unwrap();
    // No state.
    let r = redirect(&mut h, "code=c&shop_id=1001");
    assert_eq!(r["kind"], "invalid_state");
    // A forged state.
    let mut forged = state.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let r = redirect(&mut h, &format!("state={forged}&code=c&shop_id=1001"));
    assert_eq!(r["kind"], "invalid_state");
    // No shop_id, a shop_id that is not a number, a main-account login.
    for q in [
        format!("state={state}&code=c"),
        format!("state={state}&code=c&shop_id=abc"),
        format!("state={state}&code=c&main_account_id=77"),
    ] {
        let r = redirect(&mut h, &q);
        assert_eq!(r["code"], 900007, "{q}");
    }
    // Neither code nor error.
    let r = redirect(&mut h, &format!("state={state}&shop_id=1001"));
    assert_eq!(r["code"], 900002);
    // The nonce stayed valid through all of it.
    assert_eq!(h.state("s1"), "requested");
    ok(&redirect(&mut h, &good));
    assert_eq!(h.state("s1"), "pending");
    // Used once.
    assert_eq!(redirect(&mut h, &good)["kind"], "invalid_state");
    // A nonce of another platform's store.
    ok(&h.register("m1", "myshop"));
    let m = link_of(&mut h, "m1", None);
    let mstate = param(&m, "state").unwrap();
    let r = redirect(&mut h, &format!("state={mstate}&code=c&shop_id=1"));
    assert_eq!(r["kind"], "invalid_state");
}

#[test]
fn seller_conflicts() {
    let mut h = host();
    let mut sim = Shopee::new();
    authorized(&mut h, &mut sim, "s1", "1001");
    // Another store asking for the shop by name: refused at authorize.
    ok(&h.register("s2", "shopee"));
    let r = authorize_url_of(&mut h, "s2", Some("1001"));
    assert_eq!(r["code"], 900003);
    assert_eq!(r["kind"], "seller_id_taken");
    // A requested seller_id must be a shop id.
    let r = authorize_url_of(&mut h, "s2", Some("shop-one"));
    assert_eq!(r["kind"], "illegal_param");
    // Another store whose seller comes back as the same shop: failed.
    let url = link_of(&mut h, "s2", None);
    let q = sim.visit(&url, h.now, "1001").unwrap();
    ok(&redirect(&mut h, &q));
    let v = h.query("s2");
    assert_eq!(v["state"], "failed");
    assert_eq!(v["last_error"]["reason"], "seller_id_taken");
    assert_eq!(v["claims"], json!([]));
    assert!(
        !h.outputs
            .iter()
            .any(|o| o["type"] == "http_request" && o["store_id"] == "s2")
    );
    // A requested seller_id the callback does not name: seller_mismatch.
    ok(&h.register("s3", "shopee"));
    let url = link_of(&mut h, "s3", Some("2002"));
    let q = sim.visit(&url, h.now, "3003").unwrap();
    ok(&redirect(&mut h, &q));
    let v = h.query("s3");
    assert_eq!(v["state"], "failed");
    assert_eq!(v["last_error"]["reason"], "seller_mismatch");
    // And the one it does name: authorized.
    let url = link_of(&mut h, "s3", Some("2002"));
    let q = sim.visit(&url, h.now, "2002").unwrap();
    ok(&redirect(&mut h, &q));
    let req = h.request("token_create");
    let (status, body) = sim.answer(&req, h.now);
    ok(&h.respond(&req, status, &body));
    assert_eq!(h.query("s3")["seller_ids"], json!(["2002"]));
    // s1 still holds its shop.
    assert_eq!(h.state("s1"), "authorized");
}

/// A store in `pending` with its token_create request.
fn pending(h: &mut Host, sim: &mut Shopee, store: &str, shop: &str) -> Value {
    ok(&h.register(store, "shopee"));
    let url = link_of(h, store, None);
    let q = sim.visit(&url, h.now, shop).unwrap();
    ok(&redirect(h, &q));
    h.request("token_create")
}

#[test]
fn token_create_error_classes() {
    let mut h = host();
    let mut sim = Shopee::new();
    // Retried: 429, 5xx, error_busy, not JSON, transport.
    let req = pending(&mut h, &mut sim, "r1", "1");
    ok(&h.respond(&req, 429, "{}"));
    h.jump();
    let req = h.request("token_create");
    ok(&h.respond(&req, 503, "upstream down"));
    h.jump();
    let req = h.request("token_create");
    let (s, b) = Shopee::error("error_busy", "busy");
    ok(&h.respond(&req, s, &b));
    h.jump();
    let req = h.request("token_create");
    ok(&h.respond(&req, 200, "<html>"));
    h.jump();
    let req = h.request("token_create");
    ok(&h.fail_transport(&req));
    h.jump();
    let req = h.request("token_create");
    let (s, b) = sim.answer(&req, h.now);
    ok(&h.respond(&req, s, &b));
    assert_eq!(h.state("r1"), "authorized");

    // invalid_code: platform_rejected.
    let req = pending(&mut h, &mut sim, "r2", "2");
    let (s, b) = Shopee::error("invalid_code", "Invalid code");
    ok(&h.respond(&req, s, &b));
    let v = h.query("r2");
    assert_eq!(v["state"], "failed");
    assert_eq!(v["last_error"]["reason"], "platform_rejected");

    // error_sign / error_auth / error_param / error_partner: system_error,
    // never a store failure by itself — retried until the code expires.
    let req = pending(&mut h, &mut sim, "r3", "3");
    let start = h.now;
    let mut req = req;
    for e in ["error_sign", "error_auth", "error_param", "error_partner"] {
        let (s, b) = Shopee::error(e, &format!("wrong key {PARTNER_KEY}"));
        ok(&h.respond(&req, s, &b));
        let v = h.query("r3");
        assert_eq!(v["state"], "pending", "{e}");
        assert_eq!(v["last_error"]["reason"], "system_error");
        let msg = v["last_error"]["message"].as_str().unwrap();
        assert!(
            !msg.contains(PARTNER_KEY) && msg.contains("[redacted]"),
            "{msg}"
        );
        h.jump();
        req = h.request("token_create");
    }
    let (s, b) = Shopee::error("error_sign", "sign");
    ok(&h.respond(&req, s, &b));
    while h.state("r3") == "pending" {
        assert!(h.jump());
        if let Some(i) = h
            .outputs
            .iter()
            .position(|o| o["type"] == "http_request" && o["store_id"] == "r3")
        {
            let req = h.outputs.remove(i);
            let (s, b) = Shopee::error("error_sign", "sign");
            ok(&h.respond(&req, s, &b));
        }
    }
    let v = h.query("r3");
    assert_eq!(v["state"], "failed");
    assert_eq!(v["last_error"]["reason"], "code_expired");
    assert_eq!(h.now, start + 600_000);
}

#[test]
fn token_refresh_error_classes() {
    let mut h = host();
    let mut sim = Shopee::new();
    authorized(&mut h, &mut sim, "s1", "1001");
    // 429 / 5xx / error_server: retried, still authorized.
    h.jump();
    let req = h.request("token_refresh");
    ok(&h.respond(&req, 500, ""));
    h.jump();
    let req = h.request("token_refresh");
    let (s, b) = Shopee::error("error_server", "try later");
    ok(&h.respond(&req, s, &b));
    assert_eq!(h.state("s1"), "authorized");
    // error_auth: system_error noted, retried, still authorized.
    h.jump();
    let req = h.request("token_refresh");
    let (s, b) = Shopee::error("error_auth", "no permission");
    ok(&h.respond(&req, s, &b));
    let v = h.query("s1");
    assert_eq!(v["state"], "authorized");
    assert_eq!(v["last_error"]["reason"], "system_error");
    // A good answer afterwards.
    h.jump();
    let req = h.request("token_refresh");
    let (s, b) = sim.answer(&req, h.now);
    ok(&h.respond(&req, s, &b));
    assert_eq!(sim.refreshes, 1);
    // The refresh token is refused: expired, refresh_rejected.
    for (error, message) in [
        ("invalid_refresh_token", ""),
        ("refresh_token_expired", ""),
        ("error_param", "Invalid refresh_token."),
    ] {
        let mut h = host();
        let mut sim = Shopee::new();
        authorized(&mut h, &mut sim, "s1", "1001");
        h.jump();
        let req = h.request("token_refresh");
        let (s, b) = Shopee::error(error, message);
        ok(&h.respond(&req, s, &b));
        let v = h.query("s1");
        assert_eq!(v["state"], "expired", "{error}");
        assert_eq!(v["last_error"]["reason"], "refresh_rejected");
        // Claims kept for re-authorization.
        assert_eq!(v["claims"].as_array().unwrap().len(), 1);
    }
    // token_rejected refreshes at once.
    let mut h = host();
    let mut sim = Shopee::new();
    authorized(&mut h, &mut sim, "s1", "1001");
    ok(&h.send(json!({"type": "token_rejected", "client_id": "c1", "store_id": "s1"})));
    let req = h.request("token_refresh");
    let (s, b) = sim.answer(&req, h.now);
    ok(&h.respond(&req, s, &b));
    assert_eq!(sim.refreshes, 1);
}

#[test]
fn the_partner_key_never_leaves_the_engine() {
    let mut h = host();
    let mut sim = Shopee::new();
    authorized(&mut h, &mut sim, "s1", "1001");
    h.jump();
    let req = h.request("token_refresh");
    let (s, b) = sim.answer(&req, h.now);
    ok(&h.respond(&req, s, &b));
    let all = serde_json::to_string(&h.take()).unwrap();
    assert!(!all.contains(PARTNER_KEY));
    let q = serde_json::to_string(&h.query("s1")).unwrap();
    assert!(!q.contains(PARTNER_KEY) && !q.contains("shopee-refresh"));
    assert!(!h.engine.snapshot().contains(PARTNER_KEY));
}
