//! Configuration errors name the path and the rule, never the value found
//! there (spec §1): wrong-typed secrets of every JSON type, wrong values,
//! unknown names, broken JSON, in `ConfigError`'s `Display` and `Debug` and
//! through the C ABI's `shopauth_engine_new` error_out. Also the store's
//! notify secret, which comes in `register_store`.

mod common;
use common::*;
use serde_json::{Value, json};
use shopauth::ffi::shopauth_status::*;
use shopauth::ffi::*;
use shopauth::{Config, Engine};
use std::ffi::CStr;
use std::ptr::null_mut;

/// The JSON types a secret can wrongly have, with the text that must not
/// show: each carries a marker.
fn wrong_types() -> Vec<(Value, &'static str)> {
    vec![
        (json!(987654321012_i64), "987654321012"),
        (json!(-987654321012_i64), "987654321012"),
        (json!(9876.54321), "9876"),
        (json!(["SECRET-IN-ARRAY"]), "SECRET-IN-ARRAY"),
        (json!({"k": "SECRET-IN-OBJECT"}), "SECRET-IN-OBJECT"),
        (json!({"SECRET-AS-KEY": 1}), "SECRET-AS-KEY"),
        (json!(true), "true"),
        (json!(false), "false"),
    ]
}

/// The error of `config`, by every route: `Config::from_json`,
/// `Engine::from_config_json` and the C ABI. Asserts they agree, that
/// `path` is named, and that `hidden` never shows.
fn refused(config: &str, path: &str, hidden: &str) -> String {
    let e = Config::from_json(config)
        .and_then(Engine::new)
        .err()
        .unwrap_or_else(|| panic!("accepted: {config}"));
    let via_engine = Engine::from_config_json(config).err().unwrap();
    assert_eq!(e, via_engine);
    assert_eq!(e.path, path, "{e}");
    let display = e.to_string();
    let debug = format!("{e:?}");
    assert!(
        display.starts_with(&format!("invalid configuration at {path}: ")),
        "{display}"
    );
    for text in [&display, &debug, &e.rule] {
        assert!(!text.contains(hidden), "{text:?} echoes {hidden:?}");
    }
    let ffi = ffi_error(config);
    assert_eq!(ffi, display);
    display
}

/// `shopauth_engine_new`'s status and error_out for `config`.
fn ffi_error(config: &str) -> String {
    let mut engine = null_mut();
    let mut err = null_mut();
    let status =
        unsafe { shopauth_engine_new(config.as_ptr().cast(), config.len(), &mut engine, &mut err) };
    assert_eq!(status, SHOPAUTH_REJECTED);
    assert!(engine.is_null());
    assert!(!err.is_null());
    let text = unsafe { CStr::from_ptr(err) }.to_str().unwrap().to_owned();
    unsafe { shopauth_string_free(err) };
    text
}

fn with(path: &[&str], value: Value) -> String {
    let mut c = config();
    let mut at = &mut c;
    for p in &path[..path.len() - 1] {
        at = &mut at[*p];
    }
    at[path[path.len() - 1]] = value;
    c.to_string()
}

#[test]
fn wrong_typed_app_secret() {
    for app in ["myshop", "taobao_tw", "lazada", "shopline"] {
        for (v, hidden) in wrong_types() {
            let msg = refused(
                &with(&["apps", app, "app_secret"], v),
                &format!("apps.{app}.app_secret"),
                hidden,
            );
            assert!(msg.contains("wrong type"), "{msg}");
            assert!(msg.contains("expected a string"), "{msg}");
        }
    }
}

#[test]
fn wrong_typed_engine_secret() {
    for (v, hidden) in wrong_types() {
        let msg = refused(&with(&["secret"], v), "secret", hidden);
        assert!(msg.contains("wrong type"), "{msg}");
    }
    // A string of the wrong form: the rule, not the text.
    for bad in ["SECRETNOTHEX", "abc", "00ff"] {
        refused(&with(&["secret"], json!(bad)), "secret", bad);
    }
    let mut c = config();
    c.as_object_mut().unwrap().remove("secret");
    let msg = refused(&c.to_string(), "secret", SECRET);
    assert!(msg.ends_with("is required"), "{msg}");
}

#[test]
fn wrong_typed_checker_access_token() {
    for (v, hidden) in wrong_types() {
        refused(
            &with(&["apps", "taobao", "access_token"], v),
            "apps.taobao.access_token",
            hidden,
        );
    }
    refused(
        &with(&["apps", "taobao", "access_token"], json!("")),
        "apps.taobao.access_token",
        "checker-access-token",
    );
}

#[test]
fn wrong_values_and_names_are_not_echoed() {
    // Out of range, negative, unknown variant, unknown kind.
    refused(
        &with(&["apps", "taobao", "edition"], json!(-987654321)),
        "apps.taobao.edition",
        "987654321",
    );
    let msg = refused(
        &with(&["apps", "myshop", "app_key"], json!(98765432109_i64)),
        "apps.myshop.app_key",
        "98765432109",
    );
    assert!(msg.contains("wrong type"), "{msg}");
    let msg = refused(
        &with(
            &["platforms", "mykey", "rate_limit_per_s"],
            json!(98765432109_i64),
        ),
        "platforms.mykey.rate_limit_per_s",
        "98765432109",
    );
    assert!(msg.contains("invalid value"), "{msg}");
    let msg = refused(
        &with(&["apps", "taobao", "checker"], json!("SECRET-CHECKER")),
        "apps.taobao.checker",
        "SECRET-CHECKER",
    );
    assert!(msg.contains("damaijia"), "{msg}");
}

#[test]
fn platform_entries_name_the_field_inside() {
    let cases: Vec<(&[&str], Value, &str, &str, &str)> = vec![
        (
            &["platforms", "mykey", "credential"],
            json!("SECRET-VARIANT"),
            "platforms.mykey.credential",
            "must be one of \"token\", \"api_key_secret\"",
            "SECRET-VARIANT",
        ),
        (
            &["platforms", "mykey", "kind"],
            json!("SECRET-KIND"),
            "platforms.mykey.kind",
            "must be one of \"oauth2\", \"key\"",
            "SECRET-KIND",
        ),
        (
            &["platforms", "mykey", "kind"],
            json!(987654321),
            "platforms.mykey.kind",
            "must be one of",
            "987654321",
        ),
        (
            &["platforms", "vkey", "verify", "url"],
            json!(987654321),
            "platforms.vkey.verify.url",
            "wrong type",
            "987654321",
        ),
        (
            &["platforms", "vkey", "verify", "headers"],
            json!([["X-Secret", 987654321]]),
            "platforms.vkey.verify.headers[0][1]",
            "wrong type",
            "987654321",
        ),
        (
            &["platforms", "vkey", "verify", "method"],
            json!("OPTIONS"),
            "platforms.vkey.verify.method",
            "must be one of \"GET\", \"POST\", \"PUT\", \"HEAD\", \"PATCH\", \"DELETE\"",
            "OPTIONS",
        ),
        (
            &["platforms", "vkey", "verify", "method"],
            json!("get"),
            "platforms.vkey.verify.method",
            "must be one of",
            "\"get\"",
        ),
        (
            &["platforms", "myshop", "extra_authorize_params"],
            json!({"p": ["SECRET-PARAM"]}),
            "platforms.myshop.extra_authorize_params.p",
            "wrong type",
            "SECRET-PARAM",
        ),
        (
            &["platforms", "myshop", "pkce"],
            json!("SECRET-BOOL"),
            "platforms.myshop.pkce",
            "expected a boolean",
            "SECRET-BOOL",
        ),
        (
            &["platforms", "myshop", "client_auth"],
            json!("SECRET-AUTH"),
            "platforms.myshop.client_auth",
            "must be one of",
            "SECRET-AUTH",
        ),
    ];
    for (at, v, path, rule, hidden) in cases {
        let msg = refused(&with(at, v), path, hidden);
        assert!(msg.contains(rule), "{msg}");
    }
    // An unknown field is named by its key (that is its path).
    let msg = refused(
        &with(&["apps", "myshop", "app_secrett"], json!("SECRET-TYPO")),
        "apps.myshop.app_secrett",
        "SECRET-TYPO",
    );
    assert!(msg.ends_with("is not a known field"), "{msg}");
    refused(
        &with(&["platforms", "mykey", "zzz"], json!("SECRET-EXTRA")),
        "platforms.mykey.zzz",
        "SECRET-EXTRA",
    );
    // A field of another kind's `apps` entry is refused at its path.
    for (at, path) in [
        (&["apps", "taobao_tw", "scope"][..], "apps.taobao_tw.scope"),
        (&["apps", "shopline", "uuid"][..], "apps.shopline.uuid"),
        (
            &["apps", "taobao", "app_secret"][..],
            "apps.taobao.app_secret",
        ),
        (&["apps", "myshop", "shop_url"][..], "apps.myshop.shop_url"),
    ] {
        let msg = refused(
            &with(at, json!("SECRET-MISPLACED")),
            path,
            "SECRET-MISPLACED",
        );
        assert!(
            msg.ends_with("does not apply to this platform's kind"),
            "{msg}"
        );
    }
    // A missing field inside a platform entry.
    let mut c = config();
    c["platforms"]["myshop"]
        .as_object_mut()
        .unwrap()
        .remove("token_url");
    let msg = refused(&c.to_string(), "platforms.myshop.token_url", "as.example");
    assert!(msg.ends_with("is required"), "{msg}");
}

#[test]
fn verify_header_templates_cannot_split_headers() {
    let msg = refused(
        &with(
            &["platforms", "vkey", "verify", "headers"],
            json!([["X-Secret", "{api_secret}\r\nX-Injected: SECRET-HDR"]]),
        ),
        "platforms.vkey.verify.headers[0][1]",
        "SECRET-HDR",
    );
    assert!(msg.contains("control characters"), "{msg}");
    let msg = refused(
        &with(
            &["platforms", "vkey", "verify", "headers"],
            json!([["X Secret: SECRET-NAME", "v"]]),
        ),
        "platforms.vkey.verify.headers[0][0]",
        "SECRET-NAME",
    );
    assert!(msg.contains("header name"), "{msg}");
    let msg = refused(
        &with(
            &["platforms", "vkey", "verify", "url"],
            json!("https://api.example/v?k={api_key}\r\nSECRET-URL"),
        ),
        "platforms.vkey.verify.url",
        "SECRET-URL",
    );
    assert!(msg.contains("control characters"), "{msg}");
}

#[test]
fn broken_json_is_not_echoed() {
    let full = config().to_string();
    let secret_at = full.find("oauth2-app-secret").unwrap();
    // Cut inside the app secret, and garbage after a whole config.
    let cut = &full[..secret_at + 6];
    let msg = refused(cut, "apps.myshop.app_secret", "oauth2");
    assert!(msg.contains("not valid JSON"), "{msg}");
    refused(&format!("{full} SECRET-TAIL"), "(root)", "SECRET-TAIL");
    refused("", "(root)", "SECRET");
    let msg = refused("\"SECRET-STRING\"", "(root)", "SECRET-STRING");
    assert!(msg.contains("wrong type"), "{msg}");
    // A duplicate field: neither value shows.
    let dup = full.replacen("\"secret\":", "\"secret\":\"SECRET-FIRST\",\"secret\":", 1);
    refused(&dup, "(root)", "SECRET-FIRST");
}

#[test]
fn wrong_typed_notify_secret_is_refused_naming_the_field() {
    let mut h = Host::new();
    // Only the clock advances on a refused input: set it first.
    h.send(json!({"type": "query", "client_id": "c1", "store_id": "none"}));
    for (v, hidden) in wrong_types() {
        let before = h.engine.snapshot();
        let r = h.send(
            json!({"type": "register_store", "client_id": "c1", "store_id": "n1",
                              "platform": "myshop", "notify_url": "https://biz.example/n",
                              "notify_secret": v}),
        );
        assert_eq!(r["code"], 900002, "{r}");
        let msg = r["message"].as_str().unwrap();
        assert!(
            msg.starts_with("illegal param: notify_secret has the wrong type"),
            "{msg}"
        );
        assert!(!msg.contains(hidden), "{msg}");
        assert_eq!(h.engine.snapshot(), before);
    }
}
