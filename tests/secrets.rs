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
