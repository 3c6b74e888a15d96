//! Secrets never reach a reply, a transition, a redirect, a notification
//! body, a `Debug` string or an error message; configuration secrets never
//! reach a snapshot. Flows run with recognisable secret values and every
//! such text is scanned for them.

mod common;
use common::*;
use serde_json::{Value, json};
use shopauth::{Engine, Input};

const ENGINE_SECRET: &str = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef";
const CONFIG_SECRETS: [&str; 5] = [
    "APPSECRET-oauth2",
    "APPSECRET-iop",
    "APPSECRET-shopline",
    "CHECKERTOKEN-x",
    "deadbeefdeadbeef",
];
const STORE_SECRETS: [&str; 7] = [
    "NOTIFYSECRET-n",
    "KEYTOKEN-k",
    "APISECRET-p",
    "ACCESSTOKEN-a",
    "REFRESHTOKEN-r",
    "AUTHCODE-c",
    "APIKEY-p",
];

fn secret_config() -> Value {
    json!({
        "secret": ENGINE_SECRET,
        "apps": {
            "myshop": {"app_key": "cid", "app_secret": "APPSECRET-oauth2", "redirect_uri": "https://host.example/cb"},
            "taobao_tw": {"app_key": "123", "app_secret": "APPSECRET-iop", "redirect_uri": "https://host.example/cb/tw"},
            "shopline": {"app_key": "sl", "app_secret": "APPSECRET-shopline", "redirect_uri": "https://host.example/cb/sl"},
            "taobao": {"checker": "vvtool", "access_token": "CHECKERTOKEN-x", "auth_page_url": "https://auth.example/p"}
        },
        "platforms": {
            "myshop": {"kind": "oauth2", "authorize_url": "https://as.example/a", "token_url": "https://as.example/t"},
            "mykey": {"kind": "key", "credential": "token"},
            "vkey": {"kind": "key", "credential": "api_key_secret", "verify": {"url": "https://api.example/v?k={api_key}", "headers": [["X-S", "{api_secret}"]]}}
        }
    })
}

fn assert_clean(what: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "{what} leaks {s}: {text}");
    }
}

#[test]
fn no_secret_in_replies_transitions_redirects_notifications_debug_or_errors() {
    let all: Vec<&str> = CONFIG_SECRETS
        .iter()
        .chain(STORE_SECRETS.iter())
        .copied()
        .collect();
    let mut h = Host::with(secret_config());
    let mut replies = Vec::new();
    let mut send = |h: &mut Host, v: Value| {
        if let Ok(input) = serde_json::from_value::<Input>(v.clone()) {
            assert_clean("input Debug", &format!("{input:?}"), &all);
        }
        let r = h.send(v);
        replies.push(r.clone());
        r
    };
    for (s, p) in [
        ("o", "myshop"),
        ("k", "mykey"),
        ("v", "vkey"),
        ("t", "taobao_tw"),
        ("l", "shopline"),
        ("c", "taobao"),
    ] {
        send(
            &mut h,
            json!({"type": "register_store", "client_id": "c1", "store_id": s, "platform": p,
            "notify_url": "https://biz.example/n", "notify_secret": "NOTIFYSECRET-n"}),
        );
    }
    send(
        &mut h,
        json!({"type": "authorize", "client_id": "c1", "store_id": "k", "auth_type": "KEY", "auth_info": {"token": "KEYTOKEN-k"}}),
    );
    send(
        &mut h,
        json!({"type": "authorize", "client_id": "c1", "store_id": "v", "auth_type": "KEY", "auth_info": {"api_key": "APIKEY-p", "api_secret": "APISECRET-p"}}),
    );
    // Refusals that carry secrets in their input.
    send(
        &mut h,
        json!({"type": "authorize", "client_id": "c1", "store_id": "o", "auth_type": "KEY", "auth_info": {"token": "KEYTOKEN-k"}}),
    );
    send(
        &mut h,
        json!({"type": "authorize", "client_id": "c1", "store_id": "k", "auth_type": "KEY", "auth_info": {"token": 12345, "api_secret": "APISECRET-p"}}),
    );
    let r = send(
        &mut h,
        json!({"type": "authorize", "client_id": "c1", "store_id": "o", "auth_type": "URL", "redirect_url": "https://biz.example/r"}),
    );
    let st = param(r["data"]["auth_url"].as_str().unwrap(), "state").unwrap();
    send(
        &mut h,
        json!({"type": "oauth_redirect", "platform": "myshop", "query": format!("code=AUTHCODE-c&state={st}")}),
    );
    let r = send(
        &mut h,
        json!({"type": "authorize", "client_id": "c1", "store_id": "t", "auth_type": "URL", "redirect_url": "https://biz.example/r"}),
    );
    let st = param(r["data"]["auth_url"].as_str().unwrap(), "state").unwrap();
    send(
        &mut h,
        json!({"type": "oauth_redirect", "platform": "taobao_tw", "query": format!("code=AUTHCODE-c&state={st}")}),
    );
    send(
        &mut h,
        json!({"type": "authorize", "client_id": "c1", "store_id": "c", "auth_type": "URL", "seller_id": "99"}),
    );
    send(
        &mut h,
        json!({"type": "authorize", "client_id": "c1", "store_id": "l", "auth_type": "KEY", "seller_id": "shop", "auth_info": {"token": "KEYTOKEN-l"}}),
    );
    // Answer every platform request with tokens carrying secrets; acknowledge notifications.
    let mut http = Vec::new();
    for _ in 0..6 {
        for req in h.take_kind("http_request") {
            http.push(req.clone());
            let body = match req["purpose"].as_str().unwrap() {
                "token_create" | "token_refresh" => {
                    r#"{"access_token":"ACCESSTOKEN-a","refresh_token":"REFRESHTOKEN-r","expires_in":100,"refresh_expires_in":1000}"#
                }
                "status_check" => {
                    r#"{"code":0,"data":{"status":"subAuthorize","withholding_money":1}}"#
                }
                _ => "{}",
            };
            send(
                &mut h,
                json!({"type": "http_response", "request_id": req["request_id"], "status": 200, "body": body}),
            );
        }
        h.jump();
    }
    // Everything non-HTTP that came out, every reply, every Debug.
    for o in h.take() {
        if o["type"] != "http_request" {
            assert_clean("output", &o.to_string(), &all);
        }
    }
    for r in &replies {
        assert_clean("reply", &r.to_string(), &all);
    }
    for req in &http {
        let parsed: shopauth::Output = serde_json::from_value(req.clone()).unwrap();
        assert_clean("http_request Debug", &format!("{parsed:?}"), &all);
        if req["purpose"] == "notify" {
            assert_clean("notification body", req["body"].as_str().unwrap(), &all);
        }
    }
    assert!(
        http.iter().any(|r| r["purpose"] == "token_refresh"),
        "a refresh should have happened"
    );
    for s in ["o", "k", "v", "t", "l", "c"] {
        let q = h.send(json!({"type": "query", "client_id": "c1", "store_id": s}));
        assert_clean("query", &q.to_string(), &all);
    }
    assert_clean("engine Debug", &format!("{:?}", h.engine), &all);
    // Snapshots carry store credentials (the host needs them back) but no configuration secret.
    let snap = h.engine.snapshot();
    assert_clean("snapshot", &snap, &CONFIG_SECRETS);
    assert!(snap.contains("ACCESSTOKEN-a") && snap.contains("KEYTOKEN-k"));
    // Credentials replies do carry them: that is their job.
    let c = h.send(json!({"type": "credentials", "client_id": "c1", "store_id": "k"}));
    assert_eq!(c["data"]["token"], "KEYTOKEN-k");
    let view = shopauth::message::CredentialsView::KeyToken {
        token: "KEYTOKEN-k".into(),
    };
    let reply: shopauth::Reply = Ok(shopauth::ReplyData::Credentials(view));
    assert_clean("credentials Debug", &format!("{reply:?}"), &all);
}

#[test]
fn configuration_errors_never_echo_secrets() {
    let mut c = secret_config();
    c["apps"]["myshop"]["redirect_uri"] = json!("not a url APPSECRET-oauth2");
    let e = Engine::from_config_json(&c.to_string()).unwrap_err();
    assert_eq!(e.path, "apps.myshop.redirect_uri");
    assert_clean("config error", &e.to_string(), &CONFIG_SECRETS);
    let mut c = secret_config();
    c["secret"] = json!("deadbeefdeadbeefZZ");
    let e = Engine::from_config_json(&c.to_string()).unwrap_err();
    assert_clean("config error", &e.to_string(), &CONFIG_SECRETS);
    assert_clean(
        "config Debug",
        &format!(
            "{:?}",
            shopauth::Config::from_json(&secret_config().to_string()).unwrap()
        ),
        &CONFIG_SECRETS,
    );
}

// ------------------------------------------------------------ platforms that echo secrets

/// Secrets of the echo configuration: distinctive, so that any fragment of
/// eight characters is recognisable in a message.
const E_ENGINE: &str = "5ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2";
const E_OAUTH2_APP: &str = "fsZTJMwAXjfrFXnsxC";
const E_IOP_APP: &str = "zaLyezdLLRDHJjqE4x";
const E_SHOPLINE_APP: &str = "a52GUPwQz5cF4TPbTX";
const E_CHECKER: &str = "6CNyAcDa9hJBRd29Hr";
const E_NOTIFY: &str = "AH3qN9NXAFJmBjFphm";
const E_CODE: &str = "NcEbNt3FxqKMrzCDTn";
const E_ACCESS: &str = "wr9K2T2pCHybRLsjC2";
const E_REFRESH: &str = "Z9wkqp4xFYHqZePbNp";
const E_API_KEY: &str = "2Ba6rXAdHPQeTW7FVt";
const E_API_SECRET: &str = "UGk5DBa4n6dhYy4Rp2";
const E_ALL: [&str; 11] = [
    E_ENGINE,
    E_OAUTH2_APP,
    E_IOP_APP,
    E_SHOPLINE_APP,
    E_CHECKER,
    E_NOTIFY,
    E_CODE,
    E_ACCESS,
    E_REFRESH,
    E_API_KEY,
    E_API_SECRET,
];
const REDACTED: &str = "[redacted]";

fn echo_config() -> Value {
    json!({
        "secret": E_ENGINE,
        "apps": {
            "myshop": {"app_key": "cid", "app_secret": E_OAUTH2_APP, "redirect_uri": "https://host.example/cb"},
            "taobao_tw": {"app_key": "123", "app_secret": E_IOP_APP, "redirect_uri": "https://host.example/cb/tw"},
            "shopline": {"app_key": "sl", "app_secret": E_SHOPLINE_APP, "redirect_uri": "https://host.example/cb/sl", "scope": "read_orders"},
            "taobao": {"checker": "vvtool", "access_token": E_CHECKER, "auth_page_url": "https://auth.example/p?shop={seller_id}"}
        },
        "platforms": {
            "myshop": {"kind": "oauth2", "authorize_url": "https://as.example/a", "token_url": "https://as.example/t"},
            "vkey": {"kind": "key", "credential": "api_key_secret", "verify": {"url": "https://api.example/v?k={api_key}", "headers": [["X-S", "{api_secret}"]]}}
        }
    })
}

/// Every 8-character window of every secret.
fn fragments(secrets: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for s in secrets {
        let c: Vec<char> = s.chars().collect();
        for w in c.windows(8) {
            out.push(w.iter().collect());
        }
    }
    out
}

fn assert_no_secret(what: &str, text: &str) {
    for s in E_ALL {
        assert!(!text.contains(s), "{what} leaks {s}: {text}");
    }
    for f in fragments(&E_ALL) {
        assert!(!text.contains(&f), "{what} leaks the fragment {f}: {text}");
    }
}

fn register(h: &mut Host, store: &str, platform: &str) {
    ok(&h.send(
        json!({"type": "register_store", "client_id": "c1", "store_id": store, "platform": platform,
        "notify_url": "https://biz.example/n", "notify_secret": E_NOTIFY}),
    ));
}

/// The one open platform request of `store` (notifications acknowledged on the way).
fn platform_request(h: &mut Host, store: &str) -> Value {
    for n in h.take_kind("http_request") {
        if n["purpose"] == "notify" {
            ok(&h.respond(&n, 204, ""));
        } else {
            h.outputs.push(n);
        }
    }
    let pos = h
        .outputs
        .iter()
        .position(|o| o["type"] == "http_request" && o["store_id"] == store)
        .unwrap_or_else(|| panic!("no request of {store} in {:#?}", h.outputs));
    h.outputs.remove(pos)
}

fn url_authorize(h: &mut Host, store: &str, platform: &str, seller: Option<&str>) -> String {
    register(h, store, platform);
    let mut a = json!({"type": "authorize", "client_id": "c1", "store_id": store, "auth_type": "URL", "redirect_url": "https://biz.example/r"});
    if let Some(s) = seller {
        a["seller_id"] = json!(s);
    }
    let r = h.send(a);
    ok(&r);
    r["data"]["auth_url"].as_str().unwrap().to_owned()
}

fn shopline_signed(params: &[(&str, &str)]) -> Value {
    use hmac::Mac;
    let mut sorted: Vec<(&str, &str)> = params.to_vec();
    sorted.sort();
    let joined: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(E_SHOPLINE_APP.as_bytes()).unwrap();
    m.update(joined.join("&").as_bytes());
    let mut obj = serde_json::Map::new();
    for (k, v) in params {
        obj.insert(k.to_string(), json!(v));
    }
    obj.insert("sign".into(), json!(hex::encode(m.finalize().into_bytes())));
    Value::Object(obj)
}

/// The seller comes back: with the code, or (when `error` is given) with an error.
fn come_back(h: &mut Host, store: &str, platform: &str, url: &str, error: Option<&str>) {
    let params = if platform == "shopline" {
        let st = param(url, "customField").unwrap();
        let handle = format!("h{store}");
        let mut p = vec![
            ("appkey", "sl"),
            ("customField", st.as_str()),
            ("handle", handle.as_str()),
            ("timestamp", "1700000000000"),
        ];
        match error {
            Some(e) => p.push(("error", e)),
            None => p.push(("code", E_CODE)),
        }
        shopline_signed(&p)
    } else {
        let st = param(url, "state").unwrap();
        match error {
            Some(e) => json!({"state": st, "error": e}),
            None => json!({"state": st, "code": E_CODE}),
        }
    };
    ok(&h.send(json!({"type": "oauth_redirect", "platform": platform, "params": params})));
}

fn seller_for(platform: &str, store: &str) -> Option<String> {
    match platform {
        "shopline" => Some(format!("h{store}")),
        "taobao" => Some(format!("shop{store}")),
        _ => None,
    }
}

/// A URL store with the code exchanged for tokens (access + refresh where the platform has one).
fn authorized(h: &mut Host, store: &str, platform: &str) {
    let seller = seller_for(platform, store);
    let url = url_authorize(h, store, platform, seller.as_deref());
    come_back(h, store, platform, &url, None);
    let req = platform_request(h, store);
    let body = match platform {
        "taobao_tw" => json!({"code": "0", "access_token": E_ACCESS, "refresh_token": E_REFRESH,
                              "expires_in": 86400, "refresh_expires_in": 864000}),
        "shopline" => {
            json!({"code": 200, "data": {"accessToken": E_ACCESS, "expireTime": "2030-01-01T00:00:00Z"}})
        }
        _ => json!({"access_token": E_ACCESS, "refresh_token": E_REFRESH, "expires_in": 86400}),
    };
    ok(&h.respond(&req, 200, &body.to_string()));
    assert_eq!(h.state(store), "authorized");
}

/// One way for a platform's text to reach `last_error`.
struct EchoPath {
    name: &'static str,
    /// The secrets the engine holds for the store and its app at that moment
    /// (all of them may be echoed).
    held: Vec<&'static str>,
    /// Drives a fresh store to the answer and gives `text` as the platform's message.
    run: fn(&mut Host, &str, &str),
    /// `last_error.reason` and state afterwards.
    reason: &'static str,
    state: &'static str,
    /// Whether the platform's text reaches `last_error` at all.
    echoes: bool,
}

fn echo_paths() -> Vec<EchoPath> {
    vec![
        EchoPath {
            name: "iop create: InvalidCode (Rejected)",
            held: vec![E_IOP_APP, E_CODE, E_NOTIFY],
            run: |h, s, t| {
                let url = url_authorize(h, s, "taobao_tw", None);
                come_back(h, s, "taobao_tw", &url, None);
                let req = platform_request(h, s);
                let body =
                    json!({"code": "InvalidCode", "type": "ISV", "message": t, "request_id": "r1"});
                ok(&h.respond(&req, 200, &body.to_string()));
            },
            reason: "platform_rejected",
            state: "failed",
            echoes: true,
        },
        EchoPath {
            name: "iop create: InvalidSignature (OurBug)",
            held: vec![E_IOP_APP, E_CODE, E_NOTIFY],
            run: |h, s, t| {
                let url = url_authorize(h, s, "taobao_tw", None);
                come_back(h, s, "taobao_tw", &url, None);
                let req = platform_request(h, s);
                let body = json!({"code": "InvalidSignature", "type": "ISV", "message": t});
                ok(&h.respond(&req, 400, &body.to_string()));
            },
            reason: "system_error",
            state: "failed",
            echoes: true,
        },
        EchoPath {
            name: "iop create: the error code itself echoes",
            held: vec![E_IOP_APP, E_CODE, E_NOTIFY],
            run: |h, s, t| {
                let url = url_authorize(h, s, "taobao_tw", None);
                come_back(h, s, "taobao_tw", &url, None);
                let req = platform_request(h, s);
                let body = json!({"code": t, "type": "ISV", "message": "m"});
                ok(&h.respond(&req, 200, &body.to_string()));
            },
            reason: "platform_rejected",
            state: "failed",
            echoes: true,
        },
        EchoPath {
            name: "iop refresh: IllegalRefreshToken (Rejected)",
            held: vec![E_IOP_APP, E_ACCESS, E_REFRESH, E_NOTIFY],
            run: |h, s, t| {
                authorized(h, s, "taobao_tw");
                ok(&h.send(json!({"type": "token_rejected", "client_id": "c1", "store_id": s})));
                let req = platform_request(h, s);
                assert_eq!(req["purpose"], "token_refresh");
                let body = json!({"code": "IllegalRefreshToken", "type": "ISV", "message": t});
                ok(&h.respond(&req, 200, &body.to_string()));
            },
            reason: "refresh_rejected",
            state: "expired",
            echoes: true,
        },
        EchoPath {
            name: "iop refresh: InvalidAppKey (OurBug, noted)",
            held: vec![E_IOP_APP, E_ACCESS, E_REFRESH, E_NOTIFY],
            run: |h, s, t| {
                authorized(h, s, "taobao_tw");
                ok(&h.send(json!({"type": "token_rejected", "client_id": "c1", "store_id": s})));
                let req = platform_request(h, s);
                let body = json!({"code": "InvalidAppKey", "type": "ISV", "message": t});
                ok(&h.respond(&req, 200, &body.to_string()));
            },
            reason: "system_error",
            state: "authorized",
            echoes: true,
        },
        EchoPath {
            name: "iop redirect: error parameter",
            held: vec![E_IOP_APP, E_NOTIFY],
            run: |h, s, t| {
                let url = url_authorize(h, s, "taobao_tw", None);
                come_back(h, s, "taobao_tw", &url, Some(t));
            },
            reason: "denied",
            state: "failed",
            echoes: true,
        },
        EchoPath {
            name: "shopline create: 401 (Rejected)",
            held: vec![E_SHOPLINE_APP, E_CODE, E_NOTIFY],
            run: |h, s, t| {
                let url = url_authorize(h, s, "shopline", Some(&format!("h{s}")));
                come_back(h, s, "shopline", &url, None);
                let req = platform_request(h, s);
                let body = json!({"code": 401, "message": t});
                ok(&h.respond(&req, 200, &body.to_string()));
            },
            reason: "platform_rejected",
            state: "failed",
            echoes: true,
        },
        EchoPath {
            name: "shopline create: 400 (OurBug)",
            held: vec![E_SHOPLINE_APP, E_CODE, E_NOTIFY],
            run: |h, s, t| {
                let url = url_authorize(h, s, "shopline", Some(&format!("h{s}")));
                come_back(h, s, "shopline", &url, None);
                let req = platform_request(h, s);
                let body = json!({"code": "400", "message": t});
                ok(&h.respond(&req, 400, &body.to_string()));
            },
            reason: "system_error",
            state: "failed",
            echoes: true,
        },
        EchoPath {
            name: "shopline refresh: 403 (Rejected)",
            held: vec![E_SHOPLINE_APP, E_ACCESS, E_NOTIFY],
            run: |h, s, t| {
                authorized(h, s, "shopline");
                ok(&h.send(json!({"type": "token_rejected", "client_id": "c1", "store_id": s})));
                let req = platform_request(h, s);
                assert_eq!(req["purpose"], "token_refresh");
                let body = json!({"code": "403", "message": t});
                ok(&h.respond(&req, 200, &body.to_string()));
            },
            reason: "refresh_rejected",
            state: "expired",
            echoes: true,
        },
        EchoPath {
            name: "shopline refresh: 412 (OurBug, noted)",
            held: vec![E_SHOPLINE_APP, E_ACCESS, E_NOTIFY],
            run: |h, s, t| {
                authorized(h, s, "shopline");
                ok(&h.send(json!({"type": "token_rejected", "client_id": "c1", "store_id": s})));
                let req = platform_request(h, s);
                let body = json!({"code": "412", "message": t});
                ok(&h.respond(&req, 200, &body.to_string()));
            },
            reason: "system_error",
            state: "authorized",
            echoes: true,
        },
        EchoPath {
            name: "shopline redirect: error parameter (signed)",
            held: vec![E_SHOPLINE_APP, E_NOTIFY],
            run: |h, s, t| {
                let url = url_authorize(h, s, "shopline", Some(&format!("h{s}")));
                come_back(h, s, "shopline", &url, Some(t));
            },
            reason: "denied",
            state: "failed",
            echoes: true,
        },
        EchoPath {
            name: "oauth2 create: unknown error code (OurBug)",
            held: vec![E_OAUTH2_APP, E_CODE, E_NOTIFY],
            run: |h, s, t| {
                let url = url_authorize(h, s, "myshop", None);
                come_back(h, s, "myshop", &url, None);
                let req = platform_request(h, s);
                let body = json!({"error": t, "error_description": t});
                ok(&h.respond(&req, 400, &body.to_string()));
            },
            reason: "system_error",
            state: "failed",
            echoes: true,
        },
        EchoPath {
            name: "oauth2 refresh: unknown error code (OurBug, noted)",
            held: vec![E_OAUTH2_APP, E_ACCESS, E_REFRESH, E_NOTIFY],
            run: |h, s, t| {
                authorized(h, s, "myshop");
                ok(&h.send(json!({"type": "token_rejected", "client_id": "c1", "store_id": s})));
                let req = platform_request(h, s);
                assert_eq!(req["purpose"], "token_refresh");
                let body = json!({"error": t, "error_description": t});
                ok(&h.respond(&req, 401, &body.to_string()));
            },
            reason: "system_error",
            state: "authorized",
            echoes: true,
        },
        EchoPath {
            name: "oauth2 redirect: error parameter",
            held: vec![E_OAUTH2_APP, E_NOTIFY],
            run: |h, s, t| {
                let url = url_authorize(h, s, "myshop", None);
                come_back(h, s, "myshop", &url, Some(t));
            },
            reason: "denied",
            state: "failed",
            echoes: true,
        },
        EchoPath {
            name: "checker first check: 200 (HostBroken, noted)",
            held: vec![E_CHECKER, E_NOTIFY],
            run: |h, s, t| {
                url_authorize(h, s, "taobao", Some(&format!("shop{s}")));
                let req = platform_request(h, s);
                ok(&h.respond(&req, 200, &json!({"code": 200, "msg": t}).to_string()));
            },
            reason: "system_error",
            state: "requested",
            echoes: true,
        },
        EchoPath {
            name: "checker first check: 100 (BadParam, failed)",
            held: vec![E_CHECKER, E_NOTIFY],
            run: |h, s, t| {
                url_authorize(h, s, "taobao", Some(&format!("shop{s}")));
                let req = platform_request(h, s);
                ok(&h.respond(&req, 200, &json!({"code": 100, "message": t}).to_string()));
            },
            reason: "platform_rejected",
            state: "failed",
            echoes: true,
        },
        EchoPath {
            name: "checker re-check: 401 (HostBroken, noted)",
            held: vec![E_CHECKER, E_NOTIFY],
            run: |h, s, t| {
                url_authorize(h, s, "taobao", Some(&format!("shop{s}")));
                let req = platform_request(h, s);
                ok(&h.respond(&req, 200, r#"{"code":0,"data":{"status":"subAuthorize"}}"#));
                ok(&h.send(json!({"type": "token_rejected", "client_id": "c1", "store_id": s})));
                let req = platform_request(h, s);
                ok(&h.respond(&req, 200, &json!({"code": 401, "err": t}).to_string()));
            },
            reason: "system_error",
            state: "authorized",
            echoes: true,
        },
        EchoPath {
            name: "checker re-check: 103 (BadParam, noted)",
            held: vec![E_CHECKER, E_NOTIFY],
            run: |h, s, t| {
                url_authorize(h, s, "taobao", Some(&format!("shop{s}")));
                let req = platform_request(h, s);
                ok(&h.respond(&req, 200, r#"{"code":0,"data":{"status":"subAuthorize"}}"#));
                ok(&h.send(json!({"type": "token_rejected", "client_id": "c1", "store_id": s})));
                let req = platform_request(h, s);
                ok(&h.respond(&req, 200, &json!({"code": 103, "msg": t}).to_string()));
            },
            reason: "system_error",
            state: "authorized",
            echoes: true,
        },
        EchoPath {
            name: "key verify: 401 with the secrets in its body",
            held: vec![E_API_KEY, E_API_SECRET, E_NOTIFY],
            run: |h, s, t| {
                register(h, s, "vkey");
                ok(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": s, "auth_type": "KEY",
                    "auth_info": {"api_key": E_API_KEY, "api_secret": E_API_SECRET}})));
                let req = platform_request(h, s);
                ok(&h.respond(&req, 401, &json!({"message": t}).to_string()));
            },
            reason: "platform_rejected",
            state: "failed",
            echoes: false,
        },
        EchoPath {
            name: "key verify: five 503s with the secrets in their bodies",
            held: vec![E_API_KEY, E_API_SECRET, E_NOTIFY],
            run: |h, s, t| {
                register(h, s, "vkey");
                ok(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": s, "auth_type": "KEY",
                    "auth_info": {"api_key": E_API_KEY, "api_secret": E_API_SECRET}})));
                for _ in 0..5 {
                    let req = platform_request(h, s);
                    ok(&h.respond(&req, 503, t));
                    h.jump();
                }
            },
            reason: "verify_failed",
            state: "failed",
            echoes: false,
        },
    ]
}

/// One platform text tried: `(form, text, where the first secret starts in
/// the final message if it is placed at a position)`.
type EchoText = (String, String, Option<usize>);

/// The platform texts tried on every path.
fn echo_texts(held: &[&str], prefix: usize, cap: usize) -> Vec<EchoText> {
    let mut out = vec![
        (
            "plain".to_owned(),
            format!("refused: {}", held.join(" ; ")),
            None,
        ),
        (
            "repeated".to_owned(),
            held.iter()
                .map(|s| format!("{s}{s} {s}"))
                .collect::<Vec<_>>()
                .join(" "),
            None,
        ),
        ("adjacent".to_owned(), held.concat(), None),
    ];
    // Each secret in turn at positions where a cut before redaction would
    // leave a fragment of it: near 256, where the whole message is cut, and
    // near `cap`, the longest message the path gives (a path may cut the
    // platform's text shorter).
    let mut positions = vec![240usize, 244, 248, 250, 252, 255];
    positions.extend([cap - 10, cap - 8, cap - 5, cap - 1]);
    positions.sort();
    positions.dedup();
    for (i, first) in held.iter().enumerate() {
        let rest: Vec<&str> = held
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, s)| *s)
            .collect();
        for &at in &positions {
            let Some(pad) = at.checked_sub(prefix) else {
                continue;
            };
            out.push((
                format!("{first} at {at}"),
                format!("{}{first} {}", "p".repeat(pad), rest.join(" ")),
                Some(at),
            ));
        }
    }
    out
}

fn last_error(h: &mut Host, store: &str) -> (String, String) {
    let q = h.query(store);
    let e = &q["last_error"];
    assert!(e.is_object(), "{store}: no last_error in {q}");
    (
        e["reason"].as_str().unwrap().to_owned(),
        e["message"].as_str().unwrap().to_owned(),
    )
}

/// Platforms that echo every secret back in their error texts: IOP,
/// Shopline, oauth2, the vv-tool checker and a KEY verify platform, on
/// every path by which a platform's text can reach `last_error`. The
/// message never carries a secret or an 8-character fragment of one, is at
/// most 256 characters, and says `[redacted]` where the secret was; no
/// reply, transition, redirect or notification body carries a secret.
#[test]
fn platforms_that_echo_every_secret_never_get_it_into_last_error() {
    for path in echo_paths() {
        // Where the platform's text starts in the message.
        let mut h = Host::with(echo_config());
        (path.run)(&mut h, "probe", "PROBEMARK");
        let (reason, probe) = last_error(&mut h, "probe");
        assert_eq!(reason, path.reason, "{}: {probe}", path.name);
        assert_eq!(h.state("probe"), path.state, "{}", path.name);
        let prefix = probe.find("PROBEMARK").map(|b| probe[..b].chars().count());
        assert_eq!(prefix.is_some(), path.echoes, "{}: {probe}", path.name);
        // The longest message the path gives.
        let mut h = Host::with(echo_config());
        (path.run)(&mut h, "probe", &"q".repeat(400));
        let cap = last_error(&mut h, "probe").1.chars().count();
        assert!(cap <= 256, "{}: {cap}", path.name);
        let texts = echo_texts(&path.held, prefix.unwrap_or(0), cap.max(10));
        for (n, (form, text, placed)) in texts.into_iter().enumerate() {
            let what = format!("{} / {form}", path.name);
            let mut h = Host::with(echo_config());
            let store = format!("s{n}");
            (path.run)(&mut h, &store, &text);
            assert_eq!(h.state(&store), path.state, "{what}");
            let (reason, msg) = last_error(&mut h, &store);
            assert_eq!(reason, path.reason, "{what}");
            assert_no_secret(&format!("{what}: last_error"), &msg);
            assert!(
                msg.chars().count() <= 256,
                "{what}: {} chars",
                msg.chars().count()
            );
            if path.echoes {
                match placed {
                    None => {
                        let fits = prefix.unwrap() + text.chars().count() <= cap;
                        assert!(msg.contains(REDACTED), "{what}: {msg}");
                        if form == "plain" && fits {
                            assert_eq!(
                                msg.matches(REDACTED).count(),
                                path.held.len(),
                                "{what}: {msg}"
                            );
                        }
                        if form == "repeated" {
                            assert!(msg.matches(REDACTED).count() >= 3, "{what}: {msg}");
                        }
                    }
                    Some(at) => {
                        // The secret's place holds (a cut prefix of) [redacted].
                        let tail: String = msg.chars().skip(at).collect();
                        let want: String = REDACTED.chars().take(cap.saturating_sub(at)).collect();
                        assert!(
                            tail.starts_with(&want),
                            "{what}: {msg:?} has {tail:?} where the secret was"
                        );
                    }
                }
            }
            // Nothing else that comes out carries a secret either.
            for o in h.take() {
                if o["type"] == "http_request" {
                    if o["purpose"] == "notify" {
                        assert_no_secret(&what, o["body"].as_str().unwrap());
                    }
                } else {
                    assert_no_secret(&format!("{what}: {}", o["type"]), &o.to_string());
                }
            }
            let q = h.send(json!({"type": "query", "client_id": "c1", "store_id": store}));
            assert_no_secret(&format!("{what}: query"), &q.to_string());
        }
    }
}

/// A vv-tool 302 ("not authorized yet") whose link echoes the service's
/// access token: the link would become the store's `auth_url`, which
/// `query` shows, so it must not be taken.
#[test]
fn a_checker_link_that_carries_a_secret_is_not_shown() {
    let mut h = Host::with(echo_config());
    url_authorize(&mut h, "c", "taobao", Some("shop1"));
    let req = platform_request(&mut h, "c");
    let link = format!("https://vv.example/auth?token={E_CHECKER}&n={E_NOTIFY}");
    ok(&h.respond(
        &req,
        200,
        &json!({"code": 302, "msg": "authorize first", "data": {"url": link}}).to_string(),
    ));
    assert_eq!(h.state("c"), "requested");
    let q = h.send(json!({"type": "query", "client_id": "c1", "store_id": "c"}));
    assert_no_secret("query", &q.to_string());
    // A link without a secret is taken as before.
    h.jump();
    let req = platform_request(&mut h, "c");
    ok(&h.respond(
        &req,
        200,
        r#"{"code":302,"msg":"authorize first","data":{"url":"https://vv.example/auth?shop=1"}}"#,
    ));
    assert_eq!(h.query("c")["auth_url"], "https://vv.example/auth?shop=1");
}
