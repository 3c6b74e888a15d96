//! Persistence by changes (spec §10): what `take_changes` hands out, and
//! that a snapshot the host assembles from its rows restores, of any size
//! and in any order, through the C ABI too. The model test
//! (`tests/model.rs`) mirrors every take at every step; these are the
//! edge cases by name.

mod common;
use common::*;
use serde_json::{Value, json};
use shopauth::ffi::*;
use std::collections::BTreeMap;

fn changes(h: &mut Host) -> Value {
    serde_json::from_str(&h.engine.take_changes()).unwrap()
}

fn ids(c: &Value) -> Vec<String> {
    c["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["store_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn changed_stores_once_each_sorted_by_bytes_with_header() {
    let mut h = Host::new();
    // "Z" < "a" < "é" in UTF-8 byte order.
    for s in ["é", "a", "Z"] {
        h.register(s, "mykey");
    }
    h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "a", "auth_type": "KEY", "seller_id": "S1", "auth_info": {"token": "tok"}}));
    let c = changes(&mut h);
    assert_eq!(c["version"], "2.0");
    assert_eq!(ids(&c), ["Z", "a", "é"]);
    let a = &c["stores"][1];
    assert_eq!(a["client_id"], "c1");
    assert_eq!(a["platform"], "mykey");
    assert_eq!(a["ref"].as_str().unwrap().len(), 22);
    assert_eq!(a["record"]["state"], "authorized");
    assert_eq!(a["claims"], h.query("a")["claims"]);
    assert_eq!(a["due_at"], Value::Null);
    assert!(c["engine"]["secret"].is_string());
    assert!(c["engine"]["counters"].is_object());
    // Nothing changed since: no store, the header still.
    let c = changes(&mut h);
    assert_eq!(c["stores"], json!([]));
    assert!(c["engine"]["now"].is_number());
    // A query changes nothing.
    h.query("a");
    assert_eq!(changes(&mut h)["stores"], json!([]));
}

#[test]
fn removed_stores_have_a_null_record_and_re_registered_ones_their_new_record() {
    let mut h = Host::new();
    h.register("s1", "mykey");
    h.register("s2", "mykey");
    changes(&mut h);
    h.send(json!({"type": "remove_store", "client_id": "c1", "store_id": "s1"}));
    h.send(json!({"type": "remove_store", "client_id": "c1", "store_id": "s2"}));
    h.register("s2", "myshop");
    let c = changes(&mut h);
    assert_eq!(ids(&c), ["s1", "s2"]);
    assert_eq!(c["stores"][0]["record"], Value::Null);
    assert_eq!(c["stores"][1]["record"]["platform"], "myshop");
    // registered and removed between two takes: reported as removed
    h.register("s3", "mykey");
    h.send(json!({"type": "remove_store", "client_id": "c1", "store_id": "s3"}));
    let c = changes(&mut h);
    assert_eq!(ids(&c), ["s3"]);
    assert_eq!(c["stores"][0]["record"], Value::Null);
}

#[test]
fn due_at_is_the_earliest_timer_or_when_a_request_began_to_wait() {
    let mut h = Host::new();
    h.register("o1", "myshop");
    h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "o1", "auth_type": "URL"}));
    let c = changes(&mut h);
    // requested: the request TTL (3600 s)
    assert_eq!(
        c["stores"][0]["due_at"],
        shopauth::message::rfc3339(
            chrono::DateTime::from_timestamp_millis(T0 + 3_600_000).unwrap()
        )
    );
    // 11 checker stores at one instant: the 11th waits for a rate slot from now
    for i in 0..11 {
        let s = format!("t{i:02}");
        h.register(&s, "taobao");
        h.send(json!({"type": "authorize", "client_id": "c1", "store_id": s, "auth_type": "URL", "seller_id": format!("shop{i}")}));
    }
    let c = changes(&mut h);
    let last = c["stores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["store_id"] == "t10")
        .unwrap();
    assert!(last["record"]["request"]["queued"].is_object(), "{last}");
    assert_eq!(
        last["due_at"],
        shopauth::message::rfc3339(chrono::DateTime::from_timestamp_millis(T0).unwrap())
    );
}

/// Rows assembled in any order, with the latest header, restore to exactly
/// what `snapshot()` restores to; through the C ABI, past 16 MiB.
#[test]
fn rows_past_16_mib_restore_through_the_c_abi() {
    let mut h = Host::new();
    let mut rows: BTreeMap<String, Value> = BTreeMap::new();
    let mut header = Value::Null;
    let n = 60_000;
    let absorb = |h: &mut Host, rows: &mut BTreeMap<String, Value>, header: &mut Value| {
        let c = changes(h);
        *header = c["engine"].clone();
        for e in c["stores"].as_array().unwrap() {
            rows.insert(
                e["store_id"].as_str().unwrap().to_owned(),
                e["record"].clone(),
            );
        }
    };
    for i in 0..n {
        let s = format!("store-{i:06}");
        h.engine.handle_json(
            &json!({"type": "register_store", "client_id": "c1", "store_id": s, "platform": "mykey"}).to_string(),
            h.now,
        );
        h.engine.handle_json(
            &json!({"type": "authorize", "client_id": "c1", "store_id": s, "auth_type": "KEY", "auth_info": {"token": format!("token-{i:06}-{}", "x".repeat(100))}}).to_string(),
            h.now,
        );
        h.engine.drain_outputs_json();
        if i % 20_000 == 0 {
            absorb(&mut h, &mut rows, &mut header);
        }
    }
    absorb(&mut h, &mut rows, &mut header);
    assert_eq!(rows.len(), n);
    let mut stores: Vec<Value> = rows.into_values().collect();
    stores.reverse();
    let text = json!({"version": "2.0", "engine": header, "stores": stores}).to_string();
    assert!(text.len() > 16 * 1024 * 1024, "{} bytes", text.len());
    let want = h.engine.snapshot();
    let config = config().to_string();
    // SAFETY: valid pointers and lengths; the engine is freed once.
    unsafe {
        let mut e = std::ptr::null_mut();
        assert_eq!(
            shopauth_engine_new(
                config.as_ptr().cast(),
                config.len(),
                &mut e,
                std::ptr::null_mut()
            ),
            shopauth_status::SHOPAUTH_OK
        );
        let mut err = std::ptr::null_mut();
        assert_eq!(
            shopauth_engine_restore(e, text.as_ptr().cast(), text.len(), &mut err),
            shopauth_status::SHOPAUTH_OK
        );
        assert!(err.is_null());
        let mut out = std::ptr::null_mut();
        assert_eq!(
            shopauth_engine_snapshot(e, &mut out),
            shopauth_status::SHOPAUTH_OK
        );
        let got = std::ffi::CStr::from_ptr(out).to_str().unwrap().to_owned();
        shopauth_string_free(out);
        shopauth_engine_free(e);
        assert!(got == want, "restored from rows differs from the snapshot");
    }
}
