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

// ---------------------------------------------------------------- issue 9

/// Like `refused` (nothing changes), for any input; the message names
/// `field` and contains `rule`, and never `hidden`.
fn refused_input(h: &mut Host, input: Value, field: &str, rule: &str, hidden: &str) {
    h.take();
    let before = h.engine.snapshot();
    let r = h.send(input.clone());
    assert_eq!(r["code"], 900002, "{input} → {r}");
    assert_eq!(r["kind"], "illegal_param");
    let msg = r["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!("illegal param: {field} ")),
        "{msg} should name {field}"
    );
    assert!(msg.contains(rule), "{msg} should say {rule}");
    if !hidden.is_empty() {
        assert!(!msg.contains(hidden), "{msg} echoes the value");
    }
    assert!(h.take().is_empty(), "a refused input produced outputs");
    assert_eq!(h.engine.snapshot(), before, "a refused input changed state");
}

fn authorize_input(fields: Value) -> Value {
    let mut a =
        json!({"type": "authorize", "client_id": "c1", "store_id": "s1", "auth_type": "URL"});
    for (k, v) in fields.as_object().unwrap() {
        a[k] = v.clone();
    }
    a
}

/// Leading or trailing white space: ASCII and non-ASCII `White_Space`
/// (U+00A0 no-break space, U+3000 ideographic space, U+2028, U+0085).
const SPACED: [&str; 8] = [
    " s1",
    "s1 ",
    "\ts1",
    "s1\n",
    "\u{a0}s1",
    "s1\u{3000}",
    "\u{2028}s1",
    "s1\u{85}",
];

/// Control characters inside an id, at each boundary of both ranges.
const CONTROLS: [char; 6] = ['\u{0}', '\u{1f}', '\u{7f}', '\u{80}', '\u{9f}', '\r'];

#[test]
fn shape_ids_no_leading_or_trailing_white_space() {
    let mut h = host();
    for v in SPACED {
        for field in ["client_id", "store_id", "seller_id"] {
            refused_input(
                &mut h,
                authorize_input(json!({ field: v })),
                field,
                "white space",
                "",
            );
        }
    }
    // White space inside an id is allowed (here on a URL platform that
    // takes any seller id).
    ok(&authorize(&mut h, json!({"seller_id": "my shop\u{3000}1"})));
}

#[test]
fn shape_ids_no_control_characters() {
    let mut h = host();
    for c in CONTROLS {
        let v = format!("a{c}b");
        for field in ["client_id", "store_id", "seller_id"] {
            refused_input(
                &mut h,
                authorize_input(json!({ field: v })),
                field,
                "control characters",
                "",
            );
        }
    }
    // Just outside the ranges: U+0020, U+007E, U+00A0, U+00A1 inside are fine.
    for (i, c) in [' ', '~', '\u{a0}', '\u{a1}'].into_iter().enumerate() {
        let store = format!("x{i}");
        ok(&h.register(&store, "myshop"));
        ok(&authorize(
            &mut h,
            json!({"store_id": store, "seller_id": format!("a{c}b")}),
        ));
    }
}

#[test]
fn a_seller_with_trailing_space_is_not_claimed_apart() {
    let mut h = host();
    ok(&h.register("s2", "myshop"));
    ok(&authorize(&mut h, json!({"seller_id": "S"})));
    h.take();
    // Before the fix "S " was a second seller, claimed by s2 beside s1's "S".
    refused(
        &mut h,
        json!({"store_id": "s2", "seller_id": "S "}),
        900002,
        "seller_id",
    );
    let r = authorize(&mut h, json!({"store_id": "s2", "seller_id": "S"}));
    assert_eq!(r["kind"], "seller_id_taken");
    assert_eq!(h.query("s2")["claims"], json!([]));
}

#[test]
fn register_store_id_rules() {
    let mut h = host();
    let reg = |client: &str, store: &str| json!({"type": "register_store", "client_id": client, "store_id": store, "platform": "myshop"});
    for v in SPACED {
        refused_input(&mut h, reg(v, "n1"), "client_id", "white space", "");
        refused_input(&mut h, reg("c1", v), "store_id", "white space", "");
    }
    for c in CONTROLS {
        let v = format!("n{c}1");
        refused_input(&mut h, reg(&v, "n1"), "client_id", "control characters", "");
        refused_input(&mut h, reg("c1", &v), "store_id", "control characters", "");
    }
    // Lengths still answer first, as in authorize.
    refused_input(
        &mut h,
        reg(" c1", &"n".repeat(65)),
        "store_id",
        "at most 64",
        "",
    );
    ok(&h.send(reg("c1", "n 1")));
}

#[test]
fn store_references_follow_the_id_rule() {
    let mut h = host();
    for t in [
        "query",
        "credentials",
        "revoke",
        "remove_store",
        "token_rejected",
    ] {
        refused_input(
            &mut h,
            json!({"type": t, "client_id": "c1", "store_id": "s1 "}),
            "store_id",
            "white space",
            "",
        );
        refused_input(
            &mut h,
            json!({"type": t, "client_id": "c1\u{7f}", "store_id": "s1"}),
            "client_id",
            "control characters",
            "",
        );
    }
    // The store itself is untouched and still reachable by its real id.
    assert_eq!(h.state("s1"), "unauthorized");
}

#[test]
fn auth_info_values_no_control_characters() {
    let mut h = host_with_vkey();
    let key = |store: &str, info: Value| {
        authorize_input(json!({"store_id": store, "auth_type": "KEY", "auth_info": info}))
    };
    for bad in [
        "t\r\nX-Injected: 1",
        "t\n",
        "\rt",
        "t\u{0}",
        "t\u{7f}",
        "t\u{9f}",
    ] {
        refused_input(
            &mut h,
            key("k1", json!({ "token": bad })),
            "auth_info.token",
            "control characters",
            "X-Injected",
        );
        // vkey sends api_secret in a header of its verify request.
        refused_input(
            &mut h,
            key("vk", json!({"api_key": "k", "api_secret": bad})),
            "auth_info.api_secret",
            "control characters",
            "X-Injected",
        );
        refused_input(
            &mut h,
            key("vk", json!({"api_key": bad, "api_secret": "s"})),
            "auth_info.api_key",
            "control characters",
            "X-Injected",
        );
    }
    // The control rule comes before the form rule (exactly one of …).
    refused_input(
        &mut h,
        key("k1", json!({"token": "t", "api_key": "k\r\n"})),
        "auth_info.api_key",
        "control characters",
        "",
    );
    // Tabs inside are control characters too; plain text is fine.
    refused_input(
        &mut h,
        key("k1", json!({"token": "a\tb"})),
        "auth_info.token",
        "control characters",
        "",
    );
    ok(&h.send(key(
        "vk",
        json!({"api_key": "k k", "api_secret": "s\u{a0}s"}),
    )));
    let req = h.request("key_verify");
    assert_eq!(req["headers"], json!([["X-Secret", "s\u{a0}s"]]));
}

fn host_with_vkey() -> Host {
    let mut h = host();
    ok(&h.register("vk", "vkey"));
    h.take();
    h
}

#[test]
fn auth_info_control_rule_on_the_verifying_platform() {
    // Same as above, on a host that also has a verifying KEY store: no
    // verify request is ever built from a refused credential.
    let mut h = host_with_vkey();
    refused_input(
        &mut h,
        authorize_input(
            json!({"store_id": "vk", "auth_type": "KEY", "auth_info": {"api_key": "k", "api_secret": "s\r\nHost: evil"}}),
        ),
        "auth_info.api_secret",
        "control characters",
        "evil",
    );
    assert_eq!(h.state("vk"), "unauthorized");
}

#[test]
fn wrong_typed_auth_info_on_key_names_the_field_not_the_value() {
    let mut h = host();
    let key = |info: Value| {
        authorize_input(json!({"store_id": "k1", "auth_type": "KEY", "auth_info": info}))
    };
    for info in [
        json!("987654321"),
        json!(987654321),
        json!([987654321]),
        json!(true),
    ] {
        refused_input(
            &mut h,
            key(info),
            "auth_info",
            "must be an object",
            "987654321",
        );
    }
    refused_input(
        &mut h,
        key(json!({"token": 987654321})),
        "auth_info.token",
        "wrong type",
        "987654321",
    );
    refused_input(
        &mut h,
        key(json!({"api_key": "k", "api_secret": {"x": "987654321"}})),
        "auth_info.api_secret",
        "wrong type",
        "987654321",
    );
    // null is absent.
    refused_input(&mut h, key(Value::Null), "auth_info", "is required", "");
}

#[test]
fn ignored_auth_info_of_any_type_on_url_is_neither_stored_nor_claimed() {
    let mut h = host();
    for (i, info) in [
        json!("IGNORED-1"),
        json!(424242424242_i64),
        json!(["IGNORED-3"]),
        json!(true),
        json!({"token": 5, "api_key": ["IGNORED-5"]}),
        json!({"token": "IGNORED-6\r\n"}),
        json!({"token": "IGNORED-7", "api_key": "IGNORED-7k", "api_secret": "IGNORED-7s"}),
    ]
    .into_iter()
    .enumerate()
    {
        let store = format!("u{i}");
        ok(&h.register(&store, "myshop"));
        let r = h.send(authorize_input(
            json!({"store_id": store, "auth_info": info}),
        ));
        ok(&r);
        assert!(r["data"]["auth_url"].is_string());
        let view = h.query(&store);
        assert_eq!(view["state"], "requested");
        assert_eq!(view["claims"], json!([]), "{store}");
    }
    let snap = h.engine.snapshot();
    assert!(!snap.contains("IGNORED") && !snap.contains("424242424242"));
    // A URL store whose auth_info was ignored does not hold the credentials:
    // a KEY store may claim the same ones.
    ok(&h.send(authorize_input(
        json!({"store_id": "k1", "auth_type": "KEY", "auth_info": {"token": "IGNORED-7"}}),
    )));
    assert_eq!(h.query("k1")["claims"].as_array().unwrap().len(), 1);
}

#[test]
fn ignored_redirect_url_of_any_type_on_key() {
    let mut h = host();
    for (i, url) in [
        json!(5),
        json!({"href": "https://IGNORED.example/"}),
        json!(["https://IGNORED.example/"]),
        json!(false),
        json!("not a url IGNORED"),
        json!("https://IGNORED.example/ok"),
    ]
    .into_iter()
    .enumerate()
    {
        let store = format!("k{}", i + 10);
        ok(&h.register(&store, "mykey"));
        ok(&h.send(authorize_input(json!({
            "store_id": store, "auth_type": "KEY",
            "auth_info": {"token": format!("tok-{i}")}, "redirect_url": url
        }))));
        assert_eq!(h.state(&store), "authorized");
    }
    assert!(!h.engine.snapshot().contains("IGNORED"));
    // On URL it applies, and its type is checked there.
    refused_input(
        &mut h,
        authorize_input(json!({"redirect_url": 987654321})),
        "redirect_url",
        "wrong type",
        "987654321",
    );
    refused_input(
        &mut h,
        authorize_input(json!({"redirect_url": {"u": "https://x.example/"}})),
        "redirect_url",
        "wrong type",
        "x.example",
    );
}

#[test]
fn check_order_with_the_new_rows() {
    let mut h = host();
    // auth_type (row 3) before the id characters (row 5)
    refused_input(
        &mut h,
        authorize_input(json!({"client_id": "c1 ", "auth_type": "BAD"})),
        "auth_type",
        "URL or KEY",
        "",
    );
    // seller_id length (row 4) before the id characters of client_id (row 5)
    refused_input(
        &mut h,
        authorize_input(json!({"client_id": " c1", "seller_id": "x".repeat(65)})),
        "seller_id",
        "at most 64",
        "",
    );
    // within row 5: client_id, store_id, seller_id
    refused_input(
        &mut h,
        authorize_input(json!({"client_id": "c1\u{0}", "store_id": " s1", "seller_id": "x "})),
        "client_id",
        "control",
        "",
    );
    refused_input(
        &mut h,
        authorize_input(json!({"store_id": " s1", "seller_id": "x "})),
        "store_id",
        "white space",
        "",
    );
    // id characters (row 5) before auth_info values (row 6)
    refused_input(
        &mut h,
        authorize_input(
            json!({"store_id": "k1", "seller_id": "x\u{1}y", "auth_type": "KEY", "auth_info": {"token": "t\n"}}),
        ),
        "seller_id",
        "control",
        "",
    );
    // auth_info values (row 6) before auth_info form (row 7)
    refused_input(
        &mut h,
        authorize_input(
            json!({"store_id": "k1", "auth_type": "KEY", "auth_info": {"token": 1, "api_secret": "s\r"}}),
        ),
        "auth_info.api_secret",
        "control",
        "",
    );
    // seller_id characters (row 5) before redirect_url (row 8), on URL
    refused_input(
        &mut h,
        authorize_input(json!({"seller_id": "x ", "redirect_url": 5})),
        "seller_id",
        "white space",
        "",
    );
    // all shape rows before existence: an unknown store with a bad id
    refused_input(
        &mut h,
        authorize_input(json!({"store_id": "nope\u{3000}"})),
        "store_id",
        "white space",
        "",
    );
    // a wrong-typed auth_info on KEY is a shape error: before existence
    refused_input(
        &mut h,
        authorize_input(json!({"store_id": "nope", "auth_type": "KEY", "auth_info": "x"})),
        "auth_info",
        "object",
        "",
    );
    // and the ignored auth_info of a URL authorize does not stop existence
    let r = h.send(authorize_input(
        json!({"store_id": "nope", "auth_info": "x"}),
    ));
    assert_eq!(r["code"], 940002);
}
