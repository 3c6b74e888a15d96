//! One test per authorize validation rule of spec §4, with its exact code,
//! plus the order of the checks and the promise that a refused input
//! changes nothing.

mod common;
use common::*;
use serde_json::{Value, json};

fn authorize(h: &mut Host, fields: Value) -> Value {
    let mut a =
        json!({"type": "authorize", "client_id": "c1", "store_id": "s1", "auth_type": "URL"});
    for (k, v) in fields.as_object().unwrap() {
        if v.is_null() {
            a.as_object_mut().unwrap().remove(k);
        } else {
            a[k] = v.clone();
        }
    }
    h.send(a)
}

fn host() -> Host {
    let mut h = Host::new();
    for (s, p) in [
        ("s1", "myshop"),
        ("k1", "mykey"),
        ("p1", "pairkey"),
        ("sl", "shopline"),
        ("tb", "taobao"),
    ] {
        ok(&h.register(s, p));
    }
    h.take();
    h
}

fn refused(h: &mut Host, fields: Value, code: i64, field: &str) {
    h.take();
    let before = h.engine.snapshot();
    let r = authorize(h, fields.clone());
    assert_eq!(r["code"], code, "{fields} → {r}");
    assert_eq!(r["data"], Value::Null);
    if code == 900002 {
        assert_eq!(r["kind"], "illegal_param");
        let msg = r["message"].as_str().unwrap();
        assert!(msg.starts_with("illegal param: "), "{msg}");
        assert!(msg.contains(field), "{msg} should name {field}");
    }
    assert!(h.take().is_empty(), "a refused input produced outputs");
    assert_eq!(h.engine.snapshot(), before, "a refused input changed state");
}

#[test]
fn shape_client_id() {
    let mut h = host();
    refused(&mut h, json!({"client_id": null}), 900002, "client_id");
    refused(&mut h, json!({"client_id": ""}), 900002, "client_id");
    refused(
        &mut h,
        json!({"client_id": "c".repeat(65)}),
        900002,
        "client_id",
    );
    refused(&mut h, json!({"client_id": 5}), 900002, "client_id");
}

#[test]
fn shape_store_id() {
    let mut h = host();
    refused(&mut h, json!({"store_id": null}), 900002, "store_id");
    refused(
        &mut h,
        json!({"store_id": "店".repeat(65)}),
        900002,
        "store_id",
    );
}

#[test]
fn shape_auth_type() {
    let mut h = host();
    refused(&mut h, json!({"auth_type": null}), 900002, "auth_type");
    refused(&mut h, json!({"auth_type": "url"}), 900002, "auth_type");
    refused(&mut h, json!({"auth_type": "OAUTH"}), 900002, "auth_type");
}

#[test]
fn shape_seller_id() {
    let mut h = host();
    refused(&mut h, json!({"seller_id": ""}), 900002, "seller_id");
    refused(
        &mut h,
        json!({"seller_id": "x".repeat(65)}),
        900002,
        "seller_id",
    );
    ok(&authorize(&mut h, json!({"seller_id": "x".repeat(64)})));
}

#[test]
fn shape_auth_info_for_key() {
    let mut h = host();
    let key = |info: Value| json!({"store_id": "k1", "auth_type": "KEY", "auth_info": info});
    refused(
        &mut h,
        json!({"store_id": "k1", "auth_type": "KEY"}),
        900002,
        "auth_info",
    );
    refused(&mut h, key(json!({})), 900002, "auth_info");
    refused(
        &mut h,
        key(json!({"token": "t", "api_key": "k", "api_secret": "s"})),
        900002,
        "auth_info",
    );
    refused(&mut h, key(json!({"api_key": "k"})), 900002, "api_secret");
    refused(&mut h, key(json!({"api_secret": "s"})), 900002, "api_key");
    refused(&mut h, key(json!({"token": ""})), 900002, "auth_info.token");
    refused(
        &mut h,
        key(json!({"token": "t".repeat(2049)})),
        900002,
        "auth_info.token",
    );
    ok(&authorize(&mut h, key(json!({"token": "t".repeat(2048)}))));
}

#[test]
fn shape_redirect_url_for_url() {
    let mut h = host();
    let long = format!("https://biz.example/{}", "a".repeat(236));
    assert_eq!(long.chars().count(), 256);
    refused(
        &mut h,
        json!({"redirect_url": long}),
        900002,
        "redirect_url",
    );
    refused(
        &mut h,
        json!({"redirect_url": "/relative/path"}),
        900002,
        "redirect_url",
    );
    refused(
        &mut h,
        json!({"redirect_url": "ftp://biz.example/x"}),
        900002,
        "redirect_url",
    );
    refused(
        &mut h,
        json!({"redirect_url": "https://user:pw@biz.example/x"}),
        900002,
        "redirect_url",
    );
    ok(&authorize(
        &mut h,
        json!({"redirect_url": format!("https://biz.example/{}", "a".repeat(235))}),
    ));
}

#[test]
fn ignored_fields_are_neither_stored_nor_claimed() {
    let mut h = host();
    // KEY ignores redirect_url, even a bad one.
    ok(&authorize(
        &mut h,
        json!({"store_id": "k1", "auth_type": "KEY", "auth_info": {"token": "t1"}, "redirect_url": "not a url"}),
    ));
    // URL ignores auth_info, even a malformed one, and claims nothing from it.
    ok(&authorize(
        &mut h,
        json!({"auth_info": {"token": "t1", "api_key": "x"}}),
    ));
    let claims = h.query("s1")["claims"].clone();
    assert_eq!(claims, json!([]));
    assert!(!h.engine.snapshot().contains("api_key"));
}

#[test]
fn existence_and_ownership() {
    let mut h = host();
    let r = authorize(&mut h, json!({"store_id": "nope"}));
    assert_eq!(r["code"], 940002);
    assert_eq!(r["kind"], "store_not_exist");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("store not exist")
    );
    // Another client's store looks exactly like an unknown one.
    let r2 = authorize(&mut h, json!({"client_id": "c2"}));
    assert_eq!(r2["code"], 940002);
    assert_eq!(r2["message"], r["message"]);
    for t in [
        "query",
        "credentials",
        "revoke",
        "remove_store",
        "token_rejected",
    ] {
        let r = h.send(json!({"type": t, "client_id": "c2", "store_id": "s1"}));
        assert_eq!(r["code"], 940002, "{t}");
    }
}

#[test]
fn platform_auth_type() {
    let mut h = host();
    refused(
        &mut h,
        json!({"auth_type": "KEY", "auth_info": {"token": "t"}}),
        900002,
        "auth_type",
    );
    refused(&mut h, json!({"store_id": "k1"}), 900002, "auth_type");
    refused(
        &mut h,
        json!({"store_id": "tb", "seller_id": "1", "auth_type": "KEY", "auth_info": {"token": "t"}}),
        900002,
        "auth_type",
    );
}

#[test]
fn platform_auth_info_form() {
    let mut h = host();
    refused(
        &mut h,
        json!({"store_id": "k1", "auth_type": "KEY", "auth_info": {"api_key": "k", "api_secret": "s"}}),
        900002,
        "auth_info",
    );
    refused(
        &mut h,
        json!({"store_id": "p1", "auth_type": "KEY", "auth_info": {"token": "t"}}),
        900002,
        "auth_info",
    );
    refused(
        &mut h,
        json!({"store_id": "sl", "seller_id": "shop", "auth_type": "KEY", "auth_info": {"api_key": "k", "api_secret": "s"}}),
        900002,
        "auth_info",
    );
}

#[test]
fn platform_seller_id_required_and_shopline_handle() {
    let mut h = host();
    refused(&mut h, json!({"store_id": "sl"}), 900002, "seller_id");
    refused(&mut h, json!({"store_id": "tb"}), 900002, "seller_id");
    refused(
        &mut h,
        json!({"store_id": "sl", "seller_id": "-shop"}),
        900002,
        "seller_id",
    );
    refused(
        &mut h,
        json!({"store_id": "sl", "seller_id": "shop-"}),
        900002,
        "seller_id",
    );
    refused(
        &mut h,
        json!({"store_id": "sl", "seller_id": "my.shop"}),
        900002,
        "seller_id",
    );
    refused(
        &mut h,
        json!({"store_id": "sl", "seller_id": "a".repeat(64)}),
        900002,
        "seller_id",
    );
    ok(&authorize(
        &mut h,
        json!({"store_id": "sl", "seller_id": "My-Shop1"}),
    ));
}

#[test]
fn state_authorized_and_pending() {
    let mut h = host();
    ok(&authorize(
        &mut h,
        json!({"store_id": "k1", "auth_type": "KEY", "auth_info": {"token": "t"}}),
    ));
    refused(
        &mut h,
        json!({"store_id": "k1", "auth_type": "KEY", "auth_info": {"token": "t"}}),
        900004,
        "",
    );
    let r = authorize(
        &mut h,
        json!({"store_id": "k1", "auth_type": "KEY", "auth_info": {"token": "t"}}),
    );
    assert_eq!(r["kind"], "repeat_authorized");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .starts_with("repeat authorized")
    );
    let url = authorize(&mut h, json!({}))["data"]["auth_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let st = param(&url, "state").unwrap();
    ok(&h.send(json!({"type": "oauth_redirect", "platform": "myshop", "query": format!("code=c&state={st}")})));
    h.take();
    refused(&mut h, json!({}), 900006, "");
    assert_eq!(authorize(&mut h, json!({}))["kind"], "in_progress");
}

#[test]
fn claims_seller_then_credentials() {
    let mut h = host();
    ok(&h.register("k2", "mykey"));
    ok(&authorize(
        &mut h,
        json!({"store_id": "k1", "seller_id": "S", "auth_type": "KEY", "auth_info": {"token": "t"}}),
    ));
    h.take();
    // Both conflicts: the seller rule answers first.
    refused(
        &mut h,
        json!({"store_id": "k2", "seller_id": "S", "auth_type": "KEY", "auth_info": {"token": "t"}}),
        900003,
        "",
    );
    let r = authorize(
        &mut h,
        json!({"store_id": "k2", "seller_id": "S", "auth_type": "KEY", "auth_info": {"token": "t"}}),
    );
    assert_eq!(r["kind"], "seller_id_taken");
    refused(
        &mut h,
        json!({"store_id": "k2", "seller_id": "T", "auth_type": "KEY", "auth_info": {"token": "t"}}),
        900005,
        "",
    );
    // Sellers are per platform; credentials across platforms.
    ok(&authorize(
        &mut h,
        json!({"store_id": "s1", "seller_id": "S"}),
    ));
    ok(&h.register("k3", "pairkey"));
    ok(&authorize(
        &mut h,
        json!({"store_id": "k3", "auth_type": "KEY", "auth_info": {"api_key": "t", "api_secret": "u"}}),
    ));
}

#[test]
fn shopline_handles_compare_case_insensitively() {
    let mut h = host();
    ok(&h.register("sl2", "shopline"));
    ok(&authorize(
        &mut h,
        json!({"store_id": "sl", "seller_id": "MyShop"}),
    ));
    refused(
        &mut h,
        json!({"store_id": "sl2", "seller_id": "myshop"}),
        900003,
        "",
    );
}

#[test]
fn check_order_is_fixed() {
    let mut h = host();
    // shape before existence
    refused(
        &mut h,
        json!({"store_id": "nope", "auth_type": "BAD"}),
        900002,
        "auth_type",
    );
    // existence before platform
    refused(
        &mut h,
        json!({"store_id": "nope", "auth_type": "KEY", "auth_info": {"token": "t"}}),
        940002,
        "",
    );
    // platform before state
    ok(&authorize(
        &mut h,
        json!({"store_id": "k1", "auth_type": "KEY", "auth_info": {"token": "t"}}),
    ));
    h.take();
    refused(
        &mut h,
        json!({"store_id": "k1", "auth_type": "URL"}),
        900002,
        "auth_type",
    );
    // state before claims
    ok(&h.register("k2", "mykey"));
    ok(&authorize(
        &mut h,
        json!({"store_id": "k2", "auth_type": "KEY", "auth_info": {"token": "u"}}),
    ));
    h.take();
    refused(
        &mut h,
        json!({"store_id": "k2", "auth_type": "KEY", "auth_info": {"token": "t"}}),
        900004,
        "",
    );
}

#[test]
fn register_store_rules() {
    let mut h = host();
    let reg = |h: &mut Host, v: Value| h.send(v);
    assert_eq!(
        reg(
            &mut h,
            json!({"type": "register_store", "client_id": "c1", "store_id": "s1", "platform": "myshop"})
        )["code"],
        900009
    );
    assert_eq!(
        reg(
            &mut h,
            json!({"type": "register_store", "client_id": "c1", "store_id": "x", "platform": "nowhere"})
        )["code"],
        900002
    );
    assert_eq!(
        reg(
            &mut h,
            json!({"type": "register_store", "client_id": "c1", "store_id": "x", "platform": "myshop", "notify_url": "mailto:x"})
        )["code"],
        900002
    );
    assert_eq!(
        reg(
            &mut h,
            json!({"type": "register_store", "client_id": "", "store_id": "x", "platform": "myshop"})
        )["code"],
        900002
    );
    // Unknown request type, not JSON, not an object: INVALID_ARGUMENT with a 900002 envelope.
    for bad in [
        json!({"type": "nope"}),
        json!([1]),
        json!("x"),
        json!({"no_type": 1}),
    ] {
        let (status, r) = h.send_status(bad);
        assert_eq!(status, shopauth::HandleStatus::InvalidArgument);
        assert_eq!(r["code"], 900002);
    }
}
