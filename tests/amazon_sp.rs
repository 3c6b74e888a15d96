//! Scenarios for the built-in `amazon_sp` platform (Selling Partner API
//! through Login with Amazon) against a simulated Seller Central + LWA that
//! checks what Amazon checks: the consent link's application id and
//! registered redirect_uri (else MD5101), the code's 300 s validity and
//! single use, the client credentials, and the seller's authorization that
//! ends 365 days after consent (then `invalid_grant`). The refresh token
//! never changes.

mod common;
use common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const CLIENT_ID: &str = "amzn1.application-oa2-client.demo";
const CLIENT_SECRET: &str = "amzn1.oa2-cs.v1.lwa-client-secret";
const APP_ID: &str = "amzn1.sp.solution.demo-app";
const CALLBACK: &str = "https://host.example/cb/amazon_sp";
const DAY_MS: i64 = 86_400_000;
const YEAR_MS: i64 = 365 * DAY_MS;

fn config_with(extra: Value) -> Value {
    let mut c = config();
    let mut entry = json!({"app_key": CLIENT_ID, "app_secret": CLIENT_SECRET,
                           "application_id": APP_ID, "redirect_uri": CALLBACK});
    entry
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    c["apps"]["amazon_sp"] = entry;
    c
}

fn host() -> Host {
    Host::with(config_with(json!({})))
}

struct Grant {
    seller: String,
    consent_at: i64,
}

/// The simulated Seller Central and LWA.
struct Amazon {
    /// code → (seller, issued at, used)
    codes: BTreeMap<String, (String, i64, bool)>,
    /// refresh token → its grant
    grants: BTreeMap<String, Grant>,
    /// Access lifetime the simulator hands out (s).
    expires_in: i64,
    serial: u32,
    refreshes: u32,
}

impl Amazon {
    fn new(expires_in: i64) -> Amazon {
        Amazon {
            codes: BTreeMap::new(),
            grants: BTreeMap::new(),
            expires_in,
            serial: 0,
            refreshes: 0,
        }
    }

    /// The seller consents on the link at `now`: the callback's query.
    fn consent(&mut self, link: &str, now: i64, seller: &str) -> Result<String, &'static str> {
        assert!(
            link.starts_with("https://sellercentral.amazon.com/apps/authorize/consent?"),
            "{link}"
        );
        if param(link, "application_id").as_deref() != Some(APP_ID) {
            return Err("unknown application");
        }
        if param(link, "redirect_uri").as_deref() != Some(CALLBACK) {
            return Err("MD5101");
        }
        let state = param(link, "state").ok_or("no state")?;
        self.serial += 1;
        let code = format!("ANspapi{}", self.serial);
        self.codes
            .insert(code.clone(), (seller.to_owned(), now, false));
        Ok(format!(
            "state={state}&selling_partner_id={seller}&mws_auth_token=x&spapi_oauth_code={code}"
        ))
    }

    fn error(status: u16, error: &str) -> (u16, String) {
        (
            status,
            json!({"error": error, "error_description": "described"}).to_string(),
        )
    }

    fn access(&mut self, refresh: Option<&str>) -> (u16, String) {
        self.serial += 1;
        let mut o = json!({"access_token": format!("Atza|access-{}", self.serial),
                           "token_type": "bearer", "expires_in": self.expires_in});
        if let Some(r) = refresh {
            o["refresh_token"] = json!(r);
        }
        (200, o.to_string())
    }

    fn answer(&mut self, req: &Value, now: i64) -> (u16, String) {
        assert_eq!(req["method"], "POST");
        assert_eq!(req["url"], "https://api.amazon.com/auth/o2/token");
        let f: BTreeMap<String, String> = form(req["body"].as_str().unwrap()).into_iter().collect();
        if f.get("client_id").map(String::as_str) != Some(CLIENT_ID)
            || f.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
        {
            return Self::error(401, "invalid_client");
        }
        match f["grant_type"].as_str() {
            "authorization_code" => {
                assert_eq!(req["purpose"], "token_create");
                assert_eq!(f["redirect_uri"], CALLBACK);
                let Some((seller, at, used)) = self.codes.get_mut(&f["code"]) else {
                    return Self::error(400, "invalid_grant");
                };
                if *used || now > *at + 300_000 {
                    return Self::error(400, "invalid_grant");
                }
                *used = true;
                let (seller, at) = (seller.clone(), *at);
                let rt = format!("Atzr|refresh-{seller}-{at}");
                self.grants.insert(
                    rt.clone(),
                    Grant {
                        seller,
                        consent_at: at,
                    },
                );
                self.access(Some(&rt))
            }
            "refresh_token" => {
                assert_eq!(req["purpose"], "token_refresh");
                let rt = f["refresh_token"].clone();
                match self.grants.get(&rt) {
                    Some(g) if now < g.consent_at + YEAR_MS => {
                        assert!(!g.seller.is_empty());
                        self.refreshes += 1;
                        // LWA repeats the same refresh token.
                        self.access(Some(&rt))
                    }
                    _ => Self::error(400, "invalid_grant"),
                }
            }
            g => panic!("grant {g}"),
        }
    }
}

fn redirect(h: &mut Host, query: &str) -> Value {
    h.send(json!({"type": "oauth_redirect", "platform": "amazon_sp", "query": query}))
}

fn pending(h: &mut Host, sim: &mut Amazon, store: &str, seller: &str) -> Value {
    ok(&h.register(store, "amazon_sp"));
    let url = link_of(h, store, None);
    let q = sim.consent(&url, h.now, seller).unwrap();
    ok(&redirect(h, &q));
    h.request("token_create")
}

fn authorized(h: &mut Host, sim: &mut Amazon, store: &str, seller: &str) {
    let req = pending(h, sim, store, seller);
    let (s, b) = sim.answer(&req, h.now);
    ok(&h.respond(&req, s, &b));
    assert_eq!(h.state(store), "authorized");
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[test]
fn create_and_hourly_refreshes_keep_the_refresh_token_and_the_end_date() {
    let mut h = host();
    let mut sim = Amazon::new(3600);
    ok(&h.register("a1", "amazon_sp"));
    let url = link_of(&mut h, "a1", None);
    assert!(url.starts_with(&format!(
        "https://sellercentral.amazon.com/apps/authorize/consent?application_id={APP_ID}&state="
    )));
    assert_eq!(param(&url, "version"), None);
    let q = sim.consent(&url, h.now, "A3SELLER1").unwrap();
    ok(&redirect(&mut h, &q));
    let v = h.query("a1");
    assert_eq!(v["state"], "pending");
    assert_eq!(
        v["claims"],
        json!([{"kind": "seller", "platform": "amazon_sp", "seller_id": "A3SELLER1"}])
    );
    let req = h.request("token_create");
    let f: BTreeMap<String, String> = form(req["body"].as_str().unwrap()).into_iter().collect();
    assert_eq!(f["grant_type"], "authorization_code");
    let (s, b) = sim.answer(&req, h.now);
    ok(&h.respond(&req, s, &b));
    let consent = h.now;
    let v = h.query("a1");
    assert_eq!(v["state"], "authorized");
    assert_eq!(v["seller_ids"], json!(["A3SELLER1"]));
    assert_eq!(v["access_expires_at"], json!(rfc3339(consent + 3_600_000)));
    assert_eq!(v["refresh_expires_at"], json!(rfc3339(consent + YEAR_MS)));
    let first_refresh = {
        let c = h.send(json!({"type": "credentials", "client_id": "c1", "store_id": "a1"}));
        assert_eq!(c["data"]["seller_ids"], json!(["A3SELLER1"]));
        c
    };
    assert!(
        first_refresh["data"]["access_token"]
            .as_str()
            .unwrap()
            .starts_with("Atza|")
    );
    for _ in 0..5 {
        assert!(h.jump());
        let req = h.request("token_refresh");
        let f: BTreeMap<String, String> = form(req["body"].as_str().unwrap()).into_iter().collect();
        assert_eq!(
            f["refresh_token"],
            "Atzr|refresh-A3SELLER1-".to_owned() + &consent.to_string()
        );
        let (s, b) = sim.answer(&req, h.now);
        ok(&h.respond(&req, s, &b));
        let v = h.query("a1");
        assert_eq!(v["state"], "authorized");
        assert_eq!(v["refresh_expires_at"], json!(rfc3339(consent + YEAR_MS)));
        assert_eq!(v["access_expires_at"], json!(rfc3339(h.now + 3_600_000)));
    }
    assert_eq!(sim.refreshes, 5);
}

#[test]
fn the_authorization_ends_365_days_after_consent() {
    // Daily access tokens, so a year is a few hundred refreshes.
    let mut h = host();
    let mut sim = Amazon::new(86_400);
    authorized(&mut h, &mut sim, "a1", "A3SELLER1");
    let consent = h.now;
    while h.jump() {
        if let Some(i) = h
            .outputs
            .iter()
            .position(|o| o["type"] == "http_request" && o["purpose"] == "token_refresh")
        {
            let req = h.outputs.remove(i);
            let (s, b) = sim.answer(&req, h.now);
            assert_eq!(s, 200, "the engine refreshed after the authorization ended");
            ok(&h.respond(&req, s, &b));
        }
        if h.state("a1") != "authorized" {
            break;
        }
    }
    let v = h.query("a1");
    assert_eq!(v["state"], "expired");
    assert_eq!(v["last_error"]["reason"], "token_expired");
    // The last access token ran out within a day after the year.
    assert!(h.now >= consent + YEAR_MS && h.now <= consent + YEAR_MS + DAY_MS);
    assert!(sim.refreshes >= 365, "{}", sim.refreshes);
    // Re-authorization starts over (claims were kept meanwhile).
    assert_eq!(v["claims"].as_array().unwrap().len(), 1);
    let url = link_of(&mut h, "a1", None);
    let q = sim.consent(&url, h.now, "A3SELLER1").unwrap();
    ok(&redirect(&mut h, &q));
    let req = h.request("token_create");
    let (s, b) = sim.answer(&req, h.now);
    ok(&h.respond(&req, s, &b));
    assert_eq!(
        h.query("a1")["refresh_expires_at"],
        json!(rfc3339(h.now + YEAR_MS))
    );
}

#[test]
fn a_refresh_refused_with_invalid_grant_expires_the_store() {
    // The seller withdrew the app in Seller Central before the year ended.
    let mut h = host();
    let mut sim = Amazon::new(3600);
    authorized(&mut h, &mut sim, "a1", "A3SELLER1");
    sim.grants.clear();
    h.jump();
    let req = h.request("token_refresh");
    let (s, b) = sim.answer(&req, h.now);
    assert_eq!(s, 400);
    ok(&h.respond(&req, s, &b));
    let v = h.query("a1");
    assert_eq!(v["state"], "expired");
    assert_eq!(v["last_error"]["reason"], "refresh_rejected");
}

#[test]
fn token_create_error_classes() {
    let mut h = host();
    let mut sim = Amazon::new(3600);
    // Retried: 429, 5xx, server_error, temporarily_unavailable, not JSON.
    let mut req = pending(&mut h, &mut sim, "a1", "A1");
    for (status, body) in [
        (429, "{}".to_owned()),
        (500, String::new()),
        Amazon::error(400, "server_error"),
        Amazon::error(503, "temporarily_unavailable"),
        (200, "<html>".to_owned()),
    ] {
        ok(&h.respond(&req, status, &body));
        assert_eq!(h.state("a1"), "pending");
        h.jump();
        req = h.request("token_create");
    }
    let (s, b) = sim.answer(&req, h.now);
    ok(&h.respond(&req, s, &b));
    assert_eq!(h.state("a1"), "authorized");
    // invalid_grant (a used or unknown code): platform_rejected.
    let req = pending(&mut h, &mut sim, "a2", "A2");
    let (s, b) = Amazon::error(400, "invalid_grant");
    ok(&h.respond(&req, s, &b));
    let v = h.query("a2");
    assert_eq!(v["state"], "failed");
    assert_eq!(v["last_error"]["reason"], "platform_rejected");
    // invalid_client (the app's credentials): system_error.
    let req = pending(&mut h, &mut sim, "a3", "A3");
    let (s, b) = Amazon::error(401, "invalid_client");
    ok(&h.respond(&req, s, &b));
    let v = h.query("a3");
    assert_eq!(v["state"], "failed");
    assert_eq!(v["last_error"]["reason"], "system_error");
    // The code is good for 300 s: retries stop there.
    let req = pending(&mut h, &mut sim, "a4", "A4");
    let start = h.now;
    ok(&h.fail_transport(&req));
    while h.state("a4") == "pending" {
        assert!(h.jump());
        if let Some(i) = h
            .outputs
            .iter()
            .position(|o| o["type"] == "http_request" && o["store_id"] == "a4")
        {
            let req = h.outputs.remove(i);
            ok(&h.respond(&req, 503, ""));
        }
    }
    let v = h.query("a4");
    assert_eq!(v["last_error"]["reason"], "code_expired");
    assert_eq!(h.now, start + 300_000);
}

#[test]
fn token_refresh_error_classes() {
    let mut h = host();
    let mut sim = Amazon::new(3600);
    authorized(&mut h, &mut sim, "a1", "A1");
    h.jump();
    let req = h.request("token_refresh");
    ok(&h.respond(&req, 429, ""));
    h.jump();
    let req = h.request("token_refresh");
    let (s, b) = Amazon::error(401, "invalid_client");
    ok(&h.respond(&req, s, &b));
    let v = h.query("a1");
    assert_eq!(v["state"], "authorized");
    assert_eq!(v["last_error"]["reason"], "system_error");
    h.jump();
    let req = h.request("token_refresh");
    let (s, b) = sim.answer(&req, h.now);
    ok(&h.respond(&req, s, &b));
    assert_eq!(sim.refreshes, 1);
    assert_eq!(h.state("a1"), "authorized");
    h.jump();
    let req = h.request("token_refresh");
    let (s, b) = Amazon::error(400, "invalid_grant");
    ok(&h.respond(&req, s, &b));
    let v = h.query("a1");
    assert_eq!(v["state"], "expired");
    assert_eq!(v["last_error"]["reason"], "refresh_rejected");
}

#[test]
fn seller_conflicts_and_callback_checks() {
    let mut h = host();
    let mut sim = Amazon::new(3600);
    authorized(&mut h, &mut sim, "a1", "A3SELLER1");
    ok(&h.register("a2", "amazon_sp"));
    assert_eq!(
        authorize_url_of(&mut h, "a2", Some("A3SELLER1"))["kind"],
        "seller_id_taken"
    );
    assert_eq!(
        authorize_url_of(&mut h, "a2", Some("not an id"))["kind"],
        "illegal_param"
    );
    // The same selling partner comes back for another store.
    let url = link_of(&mut h, "a2", None);
    let q = sim.consent(&url, h.now, "A3SELLER1").unwrap();
    ok(&redirect(&mut h, &q));
    let v = h.query("a2");
    assert_eq!(v["state"], "failed");
    assert_eq!(v["last_error"]["reason"], "seller_id_taken");
    // A requested seller_id the callback does not name.
    let url = link_of(&mut h, "a2", Some("A9WANTED"));
    let q = sim.consent(&url, h.now, "A9OTHER").unwrap();
    ok(&redirect(&mut h, &q));
    assert_eq!(h.query("a2")["last_error"]["reason"], "seller_mismatch");
    // Callback checks: no state, forged state, no selling_partner_id, the
    // code under the generic name.
    let url = link_of(&mut h, "a2", None);
    let q = sim.consent(&url, h.now, "A9OTHER").unwrap();
    let p: BTreeMap<String, String> = form(&q).into_iter().collect();
    let state = p["state"].clone();
    let code = p["spapi_oauth_code"].clone();
    for (query, code_expected) in [
        (
            format!("selling_partner_id=A9OTHER&spapi_oauth_code={code}"),
            900007,
        ),
        (
            format!("state={state}x&selling_partner_id=A9OTHER&spapi_oauth_code={code}"),
            900007,
        ),
        (format!("state={state}&spapi_oauth_code={code}"), 900007),
        (
            format!("state={state}&selling_partner_id=A9%20X&spapi_oauth_code={code}"),
            900007,
        ),
        (
            format!("state={state}&selling_partner_id=A9OTHER&code={code}"),
            900002,
        ),
    ] {
        assert_eq!(redirect(&mut h, &query)["code"], code_expected, "{query}");
    }
    assert_eq!(h.state("a2"), "requested");
    // A denial.
    ok(&redirect(
        &mut h,
        &format!("state={state}&error=access_denied"),
    ));
    assert_eq!(h.query("a2")["last_error"]["reason"], "denied");
}

#[test]
fn draft_apps_and_regions() {
    let mut h = Host::with(config_with(json!({
        "draft": true, "seller_central_url": "https://sellercentral-europe.amazon.com"})));
    ok(&h.register("a1", "amazon_sp"));
    let url = link_of(&mut h, "a1", None);
    assert!(url.starts_with(
        "https://sellercentral-europe.amazon.com/apps/authorize/consent?application_id="
    ));
    assert_eq!(param(&url, "version").as_deref(), Some("beta"));
    assert_eq!(param(&url, "redirect_uri").as_deref(), Some(CALLBACK));
    // A repeat answers the same link (Amazon's does not expire).
    assert_eq!(link_of(&mut h, "a1", None), url);
}

#[test]
fn the_client_secret_never_leaves_but_in_the_token_request() {
    let mut h = host();
    let mut sim = Amazon::new(3600);
    authorized(&mut h, &mut sim, "a1", "A1");
    let outs = h.take();
    for o in &outs {
        let text = o.to_string();
        if o["type"] == "http_request" && o["purpose"] != "notify" {
            continue;
        }
        assert!(!text.contains(CLIENT_SECRET), "{text}");
    }
    h.jump();
    let req = h.request("token_refresh");
    ok(&h.respond(
        &req,
        400,
        &json!({"error": "invalid_client", "error_description": format!("bad secret {CLIENT_SECRET}")}).to_string(),
    ));
    let q = h.query("a1").to_string();
    assert!(
        !q.contains(CLIENT_SECRET) && q.contains("[redacted]"),
        "{q}"
    );
    assert!(!h.engine.snapshot().contains(CLIENT_SECRET));
}
