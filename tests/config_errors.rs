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

/// `config()` with the field at `path` set to `value` (`Value::Null`
/// removes it; a missing parent object is created).
fn edited(path: &[&str], value: Value) -> String {
    let mut c = config();
    let mut at = &mut c;
    for p in &path[..path.len() - 1] {
        if at.get(*p).is_none() {
            at[*p] = json!({});
        }
        at = &mut at[*p];
    }
    let last = path[path.len() - 1];
    match value {
        Value::Null => {
            at.as_object_mut().expect("an object").remove(last);
        }
        v => at[last] = v,
    }
    c.to_string()
}

/// Every rule of the configuration validator (`Config::validate` and each
/// kind's reader of its entry) refuses a configuration that breaks it,
/// naming the path and the rule.
#[test]
fn every_validation_rule_refuses_its_field() {
    let long = "p".repeat(65);
    let oauth2 = json!({"kind": "oauth2", "authorize_url": "https://as.example/a", "token_url": "https://as.example/t"});
    let cases: Vec<(Vec<&str>, Value, &str, &str)> = vec![
        // Common rules (config.rs).
        (
            vec!["secret"],
            json!("zz"),
            "secret",
            "must be hex digits (an even number of them)",
        ),
        (
            vec!["secret"],
            json!("00ff"),
            "secret",
            "must be at least 64 hex digits (32 bytes)",
        ),
        (
            vec!["timing", "request_ttl_s"],
            json!(0),
            "timing.request_ttl_s",
            "must be between 1 and 31622400 seconds",
        ),
        (
            vec!["timing", "request_ttl_s"],
            json!(31_622_401),
            "timing.request_ttl_s",
            "must be between 1 and 31622400 seconds",
        ),
        (
            vec!["timing", "request_timeout_s"],
            json!(0),
            "timing.request_timeout_s",
            "must be between 1 and 31622400 seconds",
        ),
        (
            vec!["timing", "refresh_lead_s"],
            json!(31_622_401),
            "timing.refresh_lead_s",
            "must be at most 31622400 seconds",
        ),
        (
            vec!["apps", "nowhere"],
            json!({}),
            "apps.nowhere",
            "names no platform (built in: taobao_tw, lazada, shopline, taobao",
        ),
        (
            vec!["apps", "mykey"],
            json!({}),
            "apps.mykey",
            "a key platform takes no apps entry",
        ),
        (
            vec!["platforms", "lazada"],
            json!({"kind": "key", "credential": "token"}),
            "platforms.lazada",
            "is the name of a built-in platform",
        ),
        (
            vec!["platforms", &long],
            json!({"kind": "key", "credential": "token"}),
            "",
            "a platform name has 1-64 characters",
        ),
        (
            vec!["platforms", ""],
            json!({"kind": "key", "credential": "token"}),
            "platforms.",
            "a platform name has 1-64 characters",
        ),
        (
            vec!["platforms", "other"],
            oauth2,
            "apps.other",
            "is required for an oauth2 platform",
        ),
        (
            vec!["apps", "taobao_tw", "zzz"],
            json!("v"),
            "apps.taobao_tw.zzz",
            "is not a known field",
        ),
        (
            vec!["apps", "taobao_tw", "checker"],
            json!("vvtool"),
            "apps.taobao_tw.checker",
            "does not apply to this platform's kind",
        ),
        // Shared field rules, through IOP.
        (
            vec!["apps", "taobao_tw", "app_key"],
            json!(""),
            "apps.taobao_tw.app_key",
            "is required (non-empty)",
        ),
        (
            vec!["apps", "taobao_tw", "app_key"],
            Value::Null,
            "apps.taobao_tw.app_key",
            "is required (non-empty)",
        ),
        (
            vec!["apps", "taobao_tw", "app_secret"],
            json!(""),
            "apps.taobao_tw.app_secret",
            "is required (non-empty)",
        ),
        (
            vec!["apps", "taobao_tw", "redirect_uri"],
            Value::Null,
            "apps.taobao_tw.redirect_uri",
            "is required",
        ),
        (
            vec!["apps", "taobao_tw", "redirect_uri"],
            json!("not a url"),
            "apps.taobao_tw.redirect_uri",
            "must be an absolute URL",
        ),
        (
            vec!["apps", "taobao_tw", "redirect_uri"],
            json!("ftp://host.example/cb"),
            "apps.taobao_tw.redirect_uri",
            "must be an http or https URL",
        ),
        (
            vec!["apps", "taobao_tw", "redirect_uri"],
            json!("https://u:p@host.example/cb"),
            "apps.taobao_tw.redirect_uri",
            "must not carry user info",
        ),
        (
            vec!["apps", "taobao_tw", "redirect_uri"],
            json!("https://host.example/cb\r\nX: y"),
            "apps.taobao_tw.redirect_uri",
            "must not contain control characters",
        ),
        (
            vec!["apps", "taobao_tw", "authorize_url"],
            json!("//auth.example"),
            "apps.taobao_tw.authorize_url",
            "must be an absolute URL",
        ),
        (
            vec!["apps", "lazada", "api_url"],
            json!("mailto:x@y.example"),
            "apps.lazada.api_url",
            "must be an http or https URL",
        ),
        (
            vec!["apps", "taobao_tw", "rate_limit_per_s"],
            json!(0),
            "apps.taobao_tw.rate_limit_per_s",
            "must be at least 1",
        ),
        (
            vec!["apps", "taobao_tw", "rate_limit_per_s"],
            json!(-1),
            "apps.taobao_tw.rate_limit_per_s",
            "",
        ),
        // Shopline.
        (
            vec!["apps", "shopline", "shop_url"],
            json!("https://shop.example"),
            "apps.shopline.shop_url",
            "must contain {seller_id}",
        ),
        (
            vec!["apps", "shopline", "shop_url"],
            json!("ftp://{seller_id}.example"),
            "apps.shopline.shop_url",
            "must be an http or https URL",
        ),
        (
            vec!["apps", "shopline", "app_secret"],
            Value::Null,
            "apps.shopline.app_secret",
            "is required (non-empty)",
        ),
        // Checker.
        (
            vec!["apps", "taobao", "checker"],
            json!("other"),
            "apps.taobao.checker",
            "must be \"damaijia\" or \"vvtool\"",
        ),
        (
            vec!["apps", "taobao", "checker"],
            Value::Null,
            "apps.taobao.checker",
            "is required (\"damaijia\" or \"vvtool\")",
        ),
        (
            vec!["apps", "taobao", "auth_page_url"],
            Value::Null,
            "apps.taobao.auth_page_url",
            "is required",
        ),
        (
            vec!["apps", "taobao", "auth_page_url"],
            json!("auth.example/{seller_id}"),
            "apps.taobao.auth_page_url",
            "must be an absolute URL",
        ),
        (
            vec!["apps", "taobao", "recheck_interval_s"],
            json!(0),
            "apps.taobao.recheck_interval_s",
            "must be at least 1",
        ),
        (
            vec!["apps", "taobao", "access_token"],
            json!(""),
            "apps.taobao.access_token",
            "is required (non-empty)",
        ),
        (
            vec!["apps", "taobao", "base_url"],
            json!("api.example"),
            "apps.taobao.base_url",
            "must be an absolute URL",
        ),
        (
            vec!["apps", "taobao", "rate_limit_per_s"],
            json!(0),
            "apps.taobao.rate_limit_per_s",
            "must be at least 1",
        ),
        // KEY platforms.
        (
            vec!["platforms", "vkey", "verify", "url"],
            json!("api.example/{api_key}"),
            "platforms.vkey.verify.url",
            "must be an absolute URL",
        ),
        (
            vec!["platforms", "vkey", "verify", "headers"],
            json!([["", "v"]]),
            "platforms.vkey.verify.headers[0][0]",
            "must be an HTTP header name (RFC 9110 token characters)",
        ),
        (
            vec!["platforms", "vkey", "verify", "headers"],
            json!([["X-A", "v\nw"]]),
            "platforms.vkey.verify.headers[0][1]",
            "must not contain control characters (they would split the header)",
        ),
        (
            vec!["platforms", "vkey", "verify", "valid_statuses"],
            json!([]),
            "platforms.vkey.verify.valid_statuses",
            "must list at least one status",
        ),
        (
            vec!["platforms", "vkey", "verify", "method"],
            json!("OPTIONS"),
            "platforms.vkey.verify.method",
            "must be one of",
        ),
        (
            vec!["platforms", "vkey", "rate_limit_per_s"],
            json!(0),
            "platforms.vkey.rate_limit_per_s",
            "must be at least 1",
        ),
        (
            vec!["platforms", "mykey", "credential"],
            json!("password"),
            "platforms.mykey.credential",
            "must be one of",
        ),
        // oauth2 platforms.
        (
            vec!["platforms", "myshop", "authorize_url"],
            json!("as.example/a"),
            "platforms.myshop.authorize_url",
            "must be an absolute URL",
        ),
        (
            vec!["platforms", "myshop", "token_url"],
            json!("http://u@as.example/t"),
            "platforms.myshop.token_url",
            "must not carry user info",
        ),
        (
            vec!["platforms", "myshop", "code_ttl_s"],
            json!(0),
            "platforms.myshop.code_ttl_s",
            "must be at least 1",
        ),
        (
            vec!["platforms", "myshop", "rate_limit_per_s"],
            json!(0),
            "platforms.myshop.rate_limit_per_s",
            "must be at least 1",
        ),
        (
            vec!["platforms", "myshop", "client_auth"],
            json!("private_key_jwt"),
            "platforms.myshop.client_auth",
            "must be one of",
        ),
        (
            vec!["apps", "myshop", "app_key"],
            json!(""),
            "apps.myshop.app_key",
            "is required (non-empty)",
        ),
        (
            vec!["apps", "myshop", "redirect_uri"],
            json!("https://"),
            "apps.myshop.redirect_uri",
            "must be an absolute URL",
        ),
    ];
    for (at, value, path, rule) in cases {
        let text = edited(&at, value);
        let e = Config::from_json(&text)
            .and_then(Engine::new)
            .err()
            .unwrap_or_else(|| panic!("accepted with {at:?} changed"));
        let path = if path.is_empty() {
            format!("platforms.{long}")
        } else {
            path.to_owned()
        };
        assert_eq!(e.path, path, "{at:?}: {e}");
        assert!(e.rule.starts_with(rule), "{at:?}: {e}");
    }
}
