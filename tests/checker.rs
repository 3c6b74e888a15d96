//! Taobao through a status-check service (seeds 001 and 002): polling,
//! metering, classification, re-checks, and the rate limit under load,
//! against a simulated service.

mod common;
use common::*;
use serde_json::{Value, json};

fn host(checker: &str, extra: Value) -> Host {
    let mut c = config();
    let mut app = json!({"checker": checker, "access_token": "checker-access-token",
                         "auth_page_url": "https://auth.example/taobao?shop={seller_id}"});
    for (k, v) in extra.as_object().unwrap() {
        app[k] = v.clone();
    }
    c["apps"]["taobao"] = app;
    Host::with(c)
}

fn start(h: &mut Host, store: &str, shop: &str) -> Value {
    ok(&h.send(
        json!({"type": "register_store", "client_id": "c1", "store_id": store, "platform": "taobao",
                      "notify_url": "https://biz.example/n"}),
    ));
    let r = h.send(json!({"type": "authorize", "client_id": "c1", "store_id": store, "auth_type": "URL", "seller_id": shop}));
    ok(&r);
    r
}

/// Jumps from deadline to deadline, acknowledging notifications, until a status check goes out.
fn jump_to_checks(h: &mut Host) -> Vec<Value> {
    loop {
        assert!(h.jump());
        let c = checks(h);
        if !c.is_empty() {
            return c;
        }
    }
}

fn checks(h: &mut Host) -> Vec<Value> {
    for n in h.take_kind("http_request") {
        if n["purpose"] == "notify" {
            h.respond(&n, 204, "");
        } else {
            h.outputs.push(n);
        }
    }
    h.take_kind("http_request")
        .into_iter()
        .filter(|r| r["purpose"] == "status_check")
        .collect()
}

#[test]
fn damaijia_polls_with_backoff_and_meters() {
    let mut h = host("damaijia", json!({"edition": 2}));
    let r = start(&mut h, "t1", "256465161");
    assert_eq!(
        r["data"]["auth_url"],
        "https://auth.example/taobao?shop=256465161"
    );
    assert_eq!(h.state("t1"), "requested");
    assert_eq!(
        h.query("t1")["claims"],
        json!([{"kind": "seller", "platform": "taobao", "seller_id": "256465161"}])
    );
    let mut at = Vec::new();
    let t0 = h.now;
    for i in 0..5 {
        let c = checks(&mut h);
        assert_eq!(c.len(), 1, "round {i}");
        let c = &c[0];
        assert_eq!(
            c["url"],
            "http://www.damaijia168.com/vv/external/getShopAuthorize"
        );
        assert_eq!(
            c["headers"],
            json!([
                ["Authorization", "checker-access-token"],
                ["Content-Type", "application/json"]
            ])
        );
        assert_eq!(c["body"], r#"{"edition":"2","shopId":"256465161"}"#);
        at.push(h.now - t0);
        if i < 4 {
            h.respond(
                c,
                200,
                r#"{"data":{"status":"unAuthorize","deduct_money":1},"status":0}"#,
            );
            h.jump();
        } else {
            h.respond(
                c,
                200,
                r#"{"data":{"status":"subAuthorize","deduct_money":4},"status":0}"#,
            );
        }
    }
    assert_eq!(at, vec![0, 30_000, 90_000, 210_000, 450_000]);
    let t = h.take_kind("transition");
    let last = t.last().unwrap();
    assert_eq!(last["to"], "authorized");
    assert_eq!(last["cost"], 4);
    let v = h.query("t1");
    assert_eq!(v["cost_total"], 8);
    assert_eq!(v["access_expires_at"], Value::Null);
    assert_eq!(
        h.send(json!({"type": "credentials", "client_id": "c1", "store_id": "t1"}))["data"],
        json!({"seller_id": "256465161"})
    );
    let n = h.request("notify");
    assert!(
        n["body"]
            .as_str()
            .unwrap()
            .contains(r#""auth_status":"SUCCESS""#)
    );
}

#[test]
fn vvtool_request_and_302_link() {
    let mut h = host("vvtool", json!({}));
    start(&mut h, "t1", "256465161");
    let c = checks(&mut h).remove(0);
    assert_eq!(c["url"], "http://api.vv-tool.com/tool/erps/shop-authorize");
    assert_eq!(
        c["headers"][0],
        json!(["Authorization", "Bearer checker-access-token"])
    );
    assert_eq!(c["body"], "shop_id=256465161&vvtype=1");
    h.respond(&c, 200, r#"{"code":302,"msg":"Not authorized yet","data":{"url":"https://oauth.taobao.com/authorize?x=1"}}"#);
    assert_eq!(
        h.query("t1")["auth_url"],
        "https://oauth.taobao.com/authorize?x=1"
    );
    h.jump();
    let c = checks(&mut h).remove(0);
    h.respond(&c, 200, r#"{ "code": 0, "msg": "success", "msec": 1165, "time": 1617257597, "data": { "status":"subAuthorize", "withholding_money": 2 }}"#);
    assert_eq!(h.state("t1"), "authorized");
    assert_eq!(h.query("t1")["cost_total"], 2);
}

#[test]
fn never_authorized_times_out() {
    let mut h = host("vvtool", json!({}));
    start(&mut h, "t1", "1");
    let t0 = h.now;
    let mut n = 0;
    while h.state("t1") == "requested" {
        for c in checks(&mut h) {
            n += 1;
            h.respond(
                &c,
                200,
                r#"{"code":0,"data":{"status":"unAuthorize","withholding_money":0}}"#,
            );
        }
        assert!(h.jump());
    }
    assert_eq!(h.now - t0, 3_600_000);
    assert_eq!(h.query("t1")["last_error"]["reason"], "timeout");
    // 0, 30, 90, 210, 450 s, then every 300 s up to 3450 s
    assert_eq!(n, 15);
}

#[test]
fn broken_account_leaves_stores_untouched() {
    let mut h = host("vvtool", json!({}));
    start(&mut h, "t1", "1");
    start(&mut h, "t2", "2");
    h.take_kind("transition");
    let mut delays = Vec::new();
    let mut last = h.now;
    for _ in 0..6 {
        for c in checks(&mut h) {
            h.respond(
                &c,
                200,
                r#"{"code":401,"msg":"Invalid identity certificate"}"#,
            );
        }
        h.jump();
        delays.push(h.now - last);
        last = h.now;
    }
    assert!(h.take_kind("transition").is_empty());
    for s in ["t1", "t2"] {
        let v = h.query(s);
        assert_eq!(v["state"], "requested");
        assert_eq!(v["last_error"]["reason"], "system_error");
        assert!(v["last_error"]["message"].as_str().unwrap().contains("401"));
    }
    assert_eq!(delays[..5], [1000, 2000, 4000, 8000, 16000]);
}

#[test]
fn bad_parameter_fails_the_store() {
    let mut h = host("damaijia", json!({}));
    start(&mut h, "t1", "1");
    let c = checks(&mut h).remove(0);
    h.respond(&c, 200, r#"{"status":422,"err":"shopId invalid"}"#);
    assert_eq!(h.state("t1"), "failed");
    assert_eq!(h.query("t1")["claims"], json!([]));
    let mut h = host("vvtool", json!({}));
    start(&mut h, "t2", "2");
    let c = checks(&mut h).remove(0);
    h.respond(
        &c,
        200,
        r#"{"code":103,"msg":"Wangwang account does not exist"}"#,
    );
    assert_eq!(h.query("t2")["last_error"]["reason"], "platform_rejected");
}

#[test]
fn recheck_finds_revocation_and_token_rejected_rechecks_now() {
    let mut h = host("vvtool", json!({}));
    start(&mut h, "t1", "1");
    start(&mut h, "t2", "2");
    for c in checks(&mut h) {
        h.respond(
            &c,
            200,
            r#"{"code":0,"data":{"status":"subAuthorize","withholding_money":1}}"#,
        );
    }
    checks(&mut h);
    let authorized_at = h.now;
    // Re-checks are 24 h + a per-store offset under 1 h, different per store.
    let first = jump_to_checks(&mut h);
    assert_eq!(first.len(), 1);
    let d1 = h.now - authorized_at;
    assert!((86_400_000..86_400_000 + 3_600_000).contains(&d1), "{d1}");
    h.respond(
        &first[0],
        200,
        r#"{"code":0,"data":{"status":"subAuthorize","withholding_money":1}}"#,
    );
    let second = jump_to_checks(&mut h);
    assert_eq!(second.len(), 1);
    assert_ne!(second[0]["store_id"], first[0]["store_id"]);
    assert_ne!(h.now - authorized_at, d1);
    h.respond(
        &second[0],
        200,
        r#"{"code":0,"data":{"status":"unAuthorize","withholding_money":1}}"#,
    );
    let gone = second[0]["store_id"].as_str().unwrap().to_owned();
    let v = h.query(&gone);
    assert_eq!(v["state"], "expired");
    assert_eq!(v["last_error"]["reason"], "seller_unauthorized");
    let t = h.take_kind("transition");
    assert_eq!(t.last().unwrap()["cost"], 1);
    assert_eq!(t.last().unwrap()["to"], "expired");
    let n = h.request("notify");
    assert!(
        n["body"]
            .as_str()
            .unwrap()
            .contains(r#""auth_status":"EXPIRED","auth_fail_reason":"seller_unauthorized""#)
    );
    h.respond(&n, 200, "");
    // The other store: token_rejected → a re-check at once.
    let kept = first[0]["store_id"].as_str().unwrap().to_owned();
    ok(&h.send(json!({"type": "token_rejected", "client_id": "c1", "store_id": kept})));
    let c = checks(&mut h);
    assert_eq!(c.len(), 1);
    h.respond(
        &c[0],
        200,
        r#"{"code":0,"data":{"status":"subAuthorize","withholding_money":1}}"#,
    );
    assert_eq!(h.state(&kept), "authorized");
}

/// Sends of status checks at each engine time.
fn assert_rate(sends: &[i64], limit: usize) {
    for (i, &t) in sends.iter().enumerate() {
        let in_window = sends[i..].iter().take_while(|&&u| u < t + 1000).count();
        assert!(
            in_window <= limit,
            "{in_window} sends in [{t}, {})",
            t + 1000
        );
    }
}

#[test]
fn a_thousand_stores_never_exceed_ten_requests_per_second() {
    let mut h = host("vvtool", json!({}));
    let n = 1000;
    for i in 0..n {
        start(&mut h, &format!("s{i:04}"), &format!("{i}"));
    }
    let mut sends: Vec<i64> = Vec::new();
    let mut first_seen: Vec<String> = Vec::new();
    let mut polled = std::collections::BTreeSet::new();
    let end = h.now + 600_000;
    while h.now < end {
        for c in checks(&mut h) {
            sends.push(h.now);
            let s = c["store_id"].as_str().unwrap().to_owned();
            if !first_seen.contains(&s) {
                first_seen.push(s.clone());
            } else {
                polled.insert(s.clone());
            }
            let i: usize = s[1..].parse().unwrap();
            let status = if i % 3 == 0 && polled.contains(&s) {
                "subAuthorize"
            } else {
                "unAuthorize"
            };
            h.respond(
                &c,
                200,
                &json!({"code": 0, "data": {"status": status, "withholding_money": 0}}).to_string(),
            );
        }
        h.take();
        if !h.jump() {
            break;
        }
    }
    assert_rate(&sends, 10);
    // First checks are served in the order the stores asked, before any poll.
    let expected: Vec<String> = (0..n).map(|i| format!("s{i:04}")).collect();
    assert_eq!(first_seen, expected);
    assert!(sends.len() > n);
}

#[test]
fn snapshot_in_the_middle_of_a_rate_limited_queue_loses_nothing() {
    let mut h = host("vvtool", json!({}));
    for i in 0..40 {
        start(&mut h, &format!("s{i:02}"), &format!("{i}"));
    }
    let first = checks(&mut h);
    assert_eq!(first.len(), 10);
    let snap = h.engine.snapshot();
    let mut r = host("vvtool", json!({}));
    r.engine.restore(&snap).unwrap();
    r.now = h.now;
    // The ten open requests are sent again (new ids) from the next call on,
    // first in line but within the rate window the original had used, so
    // at its next slot; then the thirty waiting ones, in order.
    r.tick(0);
    assert!(checks(&mut r).is_empty());
    assert_eq!(r.engine.poll_timeout_ms(), Some(h.now + 1000));
    r.jump();
    let resent = checks(&mut r);
    assert_eq!(resent.len(), 10);
    for (a, b) in first.iter().zip(&resent) {
        assert_eq!(a["store_id"], b["store_id"]);
        assert_ne!(a["request_id"], b["request_id"]);
        assert_eq!(code(&r.respond(a, 200, "{}")), 900008);
    }
    let mut order: Vec<String> = Vec::new();
    let mut sends = Vec::new();
    for c in &resent {
        sends.push(r.now);
        r.respond(
            c,
            200,
            r#"{"code":0,"data":{"status":"unAuthorize","withholding_money":0}}"#,
        );
    }
    while order.len() < 30 {
        assert!(r.jump());
        for c in checks(&mut r) {
            sends.push(r.now);
            order.push(c["store_id"].as_str().unwrap().to_owned());
            r.respond(
                &c,
                200,
                r#"{"code":0,"data":{"status":"unAuthorize","withholding_money":0}}"#,
            );
        }
    }
    let expected: Vec<String> = (10..40).map(|i| format!("s{i:02}")).collect();
    assert_eq!(order, expected);
    assert_rate(&sends, 10);
}
