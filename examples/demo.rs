//! End-to-end demo of the lifecycle: a host loop on a virtual clock drives
//! an oauth2 authorization, a KEY authorization, Taobao Taiwan (IOP),
//! Shopline, TikTok Shop, Shopify, Taobao through a status-check service,
//! Shopee (Open Platform v2) and Amazon (SP-API through Login with Amazon)
//! against platforms simulated inside this example, and prints every
//! transition, redirect and request as it happens (request URLs without
//! their query: TikTok Shop's token URLs carry the app secret).
//!
//! Run: `cargo run --example demo`

use serde_json::{Value, json};
use shopauth::Engine;

const CONFIG: &str = r#"{
  "secret": "6a1f3c9e2b7d4a8f0c5e1b3d7f9a2c4e6b8d0f1a3c5e7b9d2f4a6c8e0b1d3f5a",
  "apps": {
    "myshop":    {"app_key": "demo-client", "app_secret": "demo-oauth2-secret", "redirect_uri": "https://erp.example/cb/myshop"},
    "taobao_tw": {"app_key": "123456", "app_secret": "demo-iop-secret", "redirect_uri": "https://erp.example/cb/taobao_tw"},
    "shopline":  {"app_key": "demo-sl-key", "app_secret": "demo-sl-secret", "redirect_uri": "https://erp.example/cb/shopline", "scope": "read_orders"},
    "taobao":    {"checker": "vvtool", "access_token": "demo-vv-token", "auth_page_url": "https://vv.example/authorize?shop={seller_id}"},
    "shopee":    {"app_key": "2001887", "app_secret": "demo-shopee-partner-key", "redirect_uri": "https://erp.example/cb/shopee"},
    "amazon_sp": {"app_key": "amzn1.application-oa2-client.demo", "app_secret": "demo-lwa-secret", "application_id": "amzn1.sp.solution.demo", "redirect_uri": "https://erp.example/cb/amazon_sp"},
    "tiktok_shop": {"app_key": "demo-tt-key", "app_secret": "demo-tt-secret", "service_id": "7000000000000000001", "redirect_uri": "https://erp.example/cb/tiktok_shop"},
    "shopify":   {"app_key": "demo-shopify-client", "app_secret": "demo-shopify-secret", "redirect_uri": "https://erp.example/cb/shopify", "scope": "read_orders", "expiring": true}
  },
  "platforms": {
    "myshop": {"kind": "oauth2", "authorize_url": "https://id.myshop.example/oauth/authorize", "token_url": "https://id.myshop.example/oauth/token"},
    "mykey":  {"kind": "key", "credential": "api_key_secret"}
  }
}"#;

/// The host: owns the clock and the transport.
struct Host {
    engine: Engine,
    now: i64,
    /// Status checks answered so far per store (the simulated seller authorizes on the 3rd).
    checks: std::collections::BTreeMap<String, u32>,
    /// Token refreshes answered so far per platform host.
    refreshes: std::collections::BTreeMap<&'static str, u32>,
    /// The one Shopee refresh token that is good now (single use).
    shopee_refresh: Option<String>,
    /// Tokens issued so far by the simulated TikTok Shop and Shopify.
    tiktok_rt: u32,
    shopify_rt: u32,
}

impl Host {
    fn input(&mut self, v: Value) -> Value {
        let (_, reply) = self.engine.handle_json(&v.to_string(), self.now);
        let reply: Value = serde_json::from_str(&reply).unwrap();
        println!(
            "{:>9}  → {:<15} {}",
            clock(self.now),
            v["type"].as_str().unwrap(),
            short(&reply)
        );
        self.pump();
        reply
    }

    /// The store view (a `query`), without printing it.
    fn state(&mut self, store: &str) -> Value {
        let q = json!({"type": "query", "client_id": "erp-1", "store_id": store});
        let (_, reply) = self.engine.handle_json(&q.to_string(), self.now);
        self.pump();
        serde_json::from_str::<Value>(&reply).unwrap()["data"].clone()
    }

    /// Drains outputs; performs each HTTP request against the simulated platforms.
    fn pump(&mut self) {
        while let Some(out) = self.engine.poll_output() {
            let o: Value = serde_json::to_value(&out).unwrap();
            match o["type"].as_str().unwrap() {
                "transition" => println!(
                    "{:>9}    transition {:<6} {:>12} → {:<10} {}",
                    clock(self.now),
                    o["store_id"].as_str().unwrap(),
                    o["from"].as_str().unwrap(),
                    o["to"].as_str().unwrap(),
                    o["reason"].as_str().unwrap_or("")
                ),
                "redirect" => println!(
                    "{:>9}    redirect   {}",
                    clock(self.now),
                    o["location"].as_str().unwrap()
                ),
                _ => {
                    // Never print a request URL's query: it may carry a secret.
                    let url = o["url"].as_str().unwrap();
                    println!(
                        "{:>9}    http       {:<13} {} {}",
                        clock(self.now),
                        o["purpose"].as_str().unwrap(),
                        o["method"].as_str().unwrap(),
                        url.split_once('?').map_or(url, |(base, _)| base)
                    );
                    let (status, body) = self.platform(&o);
                    let answer = json!({"type": "http_response", "request_id": o["request_id"], "status": status, "body": body});
                    let (_, reply) = self.engine.handle_json(&answer.to_string(), self.now);
                    assert!(reply.starts_with(r#"{"code":200"#), "{reply}");
                }
            }
        }
    }

    /// The simulated platforms.
    fn platform(&mut self, req: &Value) -> (u16, String) {
        let url = req["url"].as_str().unwrap();
        let purpose = req["purpose"].as_str().unwrap();
        if purpose == "notify" {
            return (204, String::new());
        }
        if url.contains("myshop.example") {
            return (200, json!({"access_token": "myshop-at", "refresh_token": "myshop-rt", "expires_in": 7200, "token_type": "Bearer"}).to_string());
        }
        if url.contains("taobao.tw") {
            return (200, json!({"access_token": "tw-at", "refresh_token": "tw-rt", "expires_in": 259200, "refresh_expires_in": 2592000,
                "account": "seller@example.com", "account_platform": "seller_center", "user_info": [{"seller_id": "1001", "user_id": 10101}]}).to_string());
        }
        if url.contains("shopeemobile.com") {
            return self.shopee(req);
        }
        if url == "https://api.amazon.com/auth/o2/token" {
            if purpose == "token_refresh" {
                *self.refreshes.entry("amazon_sp").or_default() += 1;
            }
            // LWA: the refresh token stays the same on every refresh.
            return (200, json!({"access_token": format!("Atza|demo-{}", self.now), "refresh_token": "Atzr|demo-refresh",
                "token_type": "bearer", "expires_in": 3600}).to_string());
        }
        if url.starts_with("https://auth.tiktok-shops.com/api/v2/token/") {
            // TikTok Shop: absolute expiries in Unix seconds; the seller is open_id.
            let q = url.split_once('?').map_or("", |(_, q)| q);
            let p: std::collections::BTreeMap<String, String> =
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect();
            assert_eq!(p["app_secret"], "demo-tt-secret");
            let s = self.now / 1000;
            self.tiktok_rt += 1;
            return (200, json!({"code": 0, "message": "success", "request_id": "demo",
                "data": {"access_token": format!("tt-at-{}", self.tiktok_rt), "access_token_expire_in": s + 7 * 86_400,
                         "refresh_token": format!("tt-rt-{}", self.tiktok_rt), "refresh_token_expire_in": 4_903_858_076_i64,
                         "open_id": "7010736057180325637", "seller_name": "Demo TikTok shop", "seller_base_region": "ID"}}).to_string());
        }
        if url.ends_with(".myshopify.com/admin/oauth/access_token") {
            // Shopify: expiring offline tokens; each refresh token is good once.
            let body: Value = serde_json::from_str(req["body"].as_str().unwrap()).unwrap();
            if body["grant_type"] == "refresh_token" {
                assert_eq!(body["refresh_token"], format!("shprt-{}", self.shopify_rt));
            }
            self.shopify_rt += 1;
            return (200, json!({"access_token": format!("shpat-{}", self.shopify_rt), "scope": "read_orders",
                "expires_in": 86_400, "refresh_token": format!("shprt-{}", self.shopify_rt),
                "refresh_token_expires_in": 7_776_000}).to_string());
        }
        if url.contains("myshopline.com") {
            let expire =
                chrono::DateTime::from_timestamp_millis(self.now + 7 * 86_400_000).unwrap();
            return (200, json!({"code": 200, "message": null, "data": {"accessToken": "sl-at", "expireTime": expire.to_rfc3339(), "scope": "read_orders"}}).to_string());
        }
        // vv-tool: the seller authorizes on the third check.
        let n = self
            .checks
            .entry(req["store_id"].as_str().unwrap().to_owned())
            .or_default();
        *n += 1;
        let status = if *n >= 3 {
            "subAuthorize"
        } else {
            "unAuthorize"
        };
        (200, json!({"code": 0, "msg": "success", "data": {"status": status, "withholding_money": 1}}).to_string())
    }

    /// Simulated Shopee: recomputes the signature (`partner_id + path +
    /// timestamp`, keyed by the partner key) and hands out single-use
    /// refresh tokens.
    fn shopee(&mut self, req: &Value) -> (u16, String) {
        let url = req["url"].as_str().unwrap();
        let path = url
            .split_once('?')
            .unwrap()
            .0
            .trim_start_matches("https://partner.shopeemobile.com");
        let ts = query_param(url, "timestamp");
        let expected = hmac_hex("demo-shopee-partner-key", &format!("2001887{path}{ts}"));
        if query_param(url, "sign") != expected {
            return (
                200,
                json!({"error": "error_sign", "message": "Wrong sign.", "request_id": "r"})
                    .to_string(),
            );
        }
        let body: Value = serde_json::from_str(req["body"].as_str().unwrap()).unwrap();
        if req["purpose"] == "token_refresh" {
            if body["refresh_token"].as_str() != self.shopee_refresh.as_deref() {
                return (200, json!({"error": "error_param", "message": "Invalid refresh_token.", "request_id": "r"}).to_string());
            }
            *self.refreshes.entry("shopee").or_default() += 1;
        }
        let rt = format!("shopee-rt-{}", self.now);
        self.shopee_refresh = Some(rt.clone());
        (200, json!({"access_token": format!("shopee-at-{}", self.now), "refresh_token": rt, "expire_in": 14400,
            "error": "", "message": "", "request_id": "r"}).to_string())
    }

    /// Advances the virtual clock to the next deadline.
    fn wait(&mut self) {
        if let Some(t) = self.engine.poll_timeout_ms() {
            self.now = self.now.max(t);
            println!("{:>9}  (timer)", clock(self.now));
            self.engine.handle_timeout_ms(self.now);
            self.pump();
        }
    }
}

fn clock(now: i64) -> String {
    let s = (now - T0) / 1000;
    format!("+{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn short(reply: &Value) -> String {
    match reply["code"].as_i64() {
        Some(200) => format!("200 {}", reply["data"]),
        _ => format!(
            "{} {}",
            reply["code"],
            reply["message"].as_str().unwrap_or("")
        ),
    }
}

const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn main() {
    let mut h = Host {
        engine: Engine::from_config_json(CONFIG).expect("demo configuration is valid"),
        now: T0,
        checks: Default::default(),
        refreshes: Default::default(),
        shopee_refresh: None,
        tiktok_rt: 0,
        shopify_rt: 0,
    };
    let reg = |h: &mut Host, s: &str, p: &str| {
        h.input(json!({"type": "register_store", "client_id": "erp-1", "store_id": s, "platform": p, "notify_url": "https://erp.example/notify", "notify_secret": "demo-notify-secret"}))
    };

    println!("== oauth2: a host-defined platform, code flow with PKCE");
    reg(&mut h, "shop-a", "myshop");
    let r = h.input(json!({"type": "authorize", "client_id": "erp-1", "store_id": "shop-a", "auth_type": "URL", "redirect_url": "https://erp.example/done"}));
    let state = query_param(r["data"]["auth_url"].as_str().unwrap(), "state");
    h.now += 20_000; // the seller logs in and approves
    h.input(json!({"type": "oauth_redirect", "platform": "myshop", "query": format!("code=demo-code&state={state}")}));

    println!("\n== KEY: credentials handed in, refused on a second store");
    reg(&mut h, "shop-b", "mykey");
    reg(&mut h, "shop-c", "mykey");
    h.input(json!({"type": "authorize", "client_id": "erp-1", "store_id": "shop-b", "auth_type": "KEY", "auth_info": {"api_key": "k-1", "api_secret": "s-1"}}));
    h.input(json!({"type": "authorize", "client_id": "erp-1", "store_id": "shop-c", "auth_type": "KEY", "auth_info": {"api_key": "k-1", "api_secret": "s-1"}}));

    println!("\n== Taobao Taiwan (IOP): signed token exchange, sellers learned from user_info");
    reg(&mut h, "shop-d", "taobao_tw");
    let r = h.input(json!({"type": "authorize", "client_id": "erp-1", "store_id": "shop-d", "auth_type": "URL", "seller_id": "1001"}));
    let state = query_param(r["data"]["auth_url"].as_str().unwrap(), "state");
    h.input(json!({"type": "oauth_redirect", "platform": "taobao_tw", "query": format!("code=0_demo&state={state}")}));

    println!("\n== Shopline KEY (private-app token)");
    reg(&mut h, "shop-e", "shopline");
    h.input(json!({"type": "authorize", "client_id": "erp-1", "store_id": "shop-e", "auth_type": "KEY", "seller_id": "demo-store", "auth_info": {"token": "private-app-token"}}));

    println!(
        "\n== Shopline URL: the seller's store signs the redirect, the token exchange is signed"
    );
    reg(&mut h, "shop-g", "shopline");
    let r = h.input(json!({"type": "authorize", "client_id": "erp-1", "store_id": "shop-g", "auth_type": "URL", "seller_id": "demo-shop2"}));
    let nonce = r["data"]["auth_url"]
        .as_str()
        .unwrap()
        .rsplit("customField=")
        .next()
        .unwrap()
        .to_owned();
    let params = shopline_redirect(
        "demo-sl-secret",
        &[
            ("appkey", "demo-sl-key"),
            ("code", "sl-demo-code"),
            ("customField", &nonce),
            ("handle", "demo-shop2"),
            ("timestamp", &T0.to_string()),
        ],
    );
    h.input(json!({"type": "oauth_redirect", "platform": "shopline", "params": params}));

    println!("\n== TikTok Shop: service_id link, GET token exchange, the seller is open_id");
    reg(&mut h, "shop-t", "tiktok_shop");
    let r = h.input(json!({"type": "authorize", "client_id": "erp-1", "store_id": "shop-t", "auth_type": "URL", "redirect_url": "https://erp.example/done"}));
    let state = query_param(r["data"]["auth_url"].as_str().unwrap(), "state");
    h.input(json!({"type": "oauth_redirect", "platform": "tiktok_shop", "query": format!("app_key=demo-tt-key&code=TTP_demo&locale=en&shop_region=ID&state={state}")}));

    println!("\n== Shopify: the shop signs the callback (hmac), expiring offline token");
    reg(&mut h, "shop-s", "shopify");
    let r = h.input(json!({"type": "authorize", "client_id": "erp-1", "store_id": "shop-s", "auth_type": "URL", "seller_id": "demo-shopify"}));
    let state = query_param(r["data"]["auth_url"].as_str().unwrap(), "state");
    let params = shopify_callback(
        "demo-shopify-secret",
        &[
            ("code", "0907a61c0c8d55e99db179b68161bc00"),
            ("host", "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvZGVtby1zaG9waWZ5"),
            ("shop", "demo-shopify.myshopify.com"),
            ("state", &state),
            ("timestamp", &(h.now / 1000).to_string()),
        ],
    );
    h.input(json!({"type": "oauth_redirect", "platform": "shopify", "params": params}));

    println!("\n== Taobao through vv-tool: polled until the seller authorizes");
    reg(&mut h, "shop-f", "taobao");
    h.input(json!({"type": "authorize", "client_id": "erp-1", "store_id": "shop-f", "auth_type": "URL", "seller_id": "256465161"}));
    while h.state("shop-f")["state"] == "requested" {
        h.wait();
    }

    println!(
        "\n== Shopee: a signed link; the nonce rides inside `redirect`, the shop comes back as shop_id"
    );
    reg(&mut h, "shop-h", "shopee");
    let r = h.input(json!({"type": "authorize", "client_id": "erp-1", "store_id": "shop-h", "auth_type": "URL"}));
    let link = r["data"]["auth_url"].as_str().unwrap().to_owned();
    h.now += 60_000;
    // The link is good for 5 minutes: a host asks again rather than caching it.
    let again = h.input(json!({"type": "authorize", "client_id": "erp-1", "store_id": "shop-h", "auth_type": "URL"}));
    let again = again["data"]["auth_url"].as_str().unwrap().to_owned();
    assert_ne!(again, link);
    let state = query_param(&query_param(&again, "redirect"), "state");
    h.now += 30_000; // the seller logs in and approves shop 220011
    h.input(json!({"type": "oauth_redirect", "platform": "shopee", "query": format!("state={state}&code=shopee-demo-code&shop_id=220011")}));

    println!(
        "\n== Amazon SP-API: Seller Central consent, selling_partner_id and spapi_oauth_code come back"
    );
    reg(&mut h, "shop-i", "amazon_sp");
    let r = h.input(json!({"type": "authorize", "client_id": "erp-1", "store_id": "shop-i", "auth_type": "URL", "redirect_url": "https://erp.example/done"}));
    let state = query_param(r["data"]["auth_url"].as_str().unwrap(), "state");
    h.now += 20_000;
    h.input(json!({"type": "oauth_redirect", "platform": "amazon_sp", "query": format!("state={state}&selling_partner_id=A3DEMOSELLER&mws_auth_token=x&spapi_oauth_code=ANdemo")}));

    println!(
        "\n== Time passes: refreshes fall due (oauth2, Amazon every 30 min, Shopee's rotating token)"
    );
    for _ in 0..3 {
        h.wait();
    }
    let mut waits = 0;
    while h.refreshes.get("shopee").is_none_or(|n| *n < 2) && waits < 100 {
        h.wait();
        waits += 1;
    }
    assert!(h.refreshes["amazon_sp"] >= 1 && h.refreshes["shopee"] >= 2);
    println!("\n== Time passes: refreshes fall due, the oauth2 token is refreshed");
    for _ in 0..6 {
        h.wait();
    }
    println!(
        "\n== Refreshes of TikTok Shop (absolute expiries) and Shopify (rotating refresh tokens)"
    );
    for s in ["shop-t", "shop-s"] {
        h.input(json!({"type": "token_rejected", "client_id": "erp-1", "store_id": s}));
    }
    println!("\n== The seller uninstalls the app: revoke");
    h.input(json!({"type": "revoke", "client_id": "erp-1", "store_id": "shop-a"}));

    println!("\n== Final states");
    for s in [
        "shop-a", "shop-b", "shop-c", "shop-d", "shop-e", "shop-g", "shop-t", "shop-s", "shop-f",
        "shop-h", "shop-i",
    ] {
        let v = h.state(s);
        println!(
            "  {s}  {:<12} {:<12} attempt {}  sellers {}  access until {}  cost {}",
            v["platform"].as_str().unwrap(),
            v["state"].as_str().unwrap(),
            v["attempt"],
            v["seller_ids"],
            v["access_expires_at"].as_str().unwrap_or("-"),
            v["cost_total"]
        );
    }
    let snapshot = h.engine.snapshot();
    println!(
        "\nsnapshot: {} bytes; next timer at {:?}",
        snapshot.len(),
        h.engine.poll_timeout()
    );
}

/// What Shopline appends to the callback: the parameters plus `sign`, the
/// lower-case hex HMAC-SHA256 (app secret) of the others sorted as `k=v&k=v`.
fn shopline_redirect(app_secret: &str, params: &[(&str, &str)]) -> Value {
    use hmac::Mac;
    let mut sorted = params.to_vec();
    sorted.sort();
    let joined: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(app_secret.as_bytes()).unwrap();
    mac.update(joined.join("&").as_bytes());
    let mut out: serde_json::Map<String, Value> = params
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    out.insert(
        "sign".into(),
        json!(hex::encode(mac.finalize().into_bytes())),
    );
    Value::Object(out)
}

fn hmac_hex(key: &str, data: &str) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// What Shopify appends to the callback: the parameters plus `hmac`, the
/// lower-case hex HMAC-SHA256 (app secret) of the others sorted by name,
/// each name and value form-encoded (a space as `%20`), joined `k=v&k=v`.
fn shopify_callback(app_secret: &str, params: &[(&str, &str)]) -> Value {
    use hmac::Mac;
    let enc = |s: &str| {
        url::form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    let mut sorted = params.to_vec();
    sorted.sort();
    let joined: Vec<String> = sorted
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(app_secret.as_bytes()).unwrap();
    mac.update(joined.join("&").as_bytes());
    let mut out: serde_json::Map<String, Value> = params
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    out.insert(
        "hmac".into(),
        json!(hex::encode(mac.finalize().into_bytes())),
    );
    Value::Object(out)
}

fn query_param(url: &str, name: &str) -> String {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}
