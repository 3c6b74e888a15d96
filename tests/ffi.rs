//! The C ABI from Rust: every exported function with NULL in every pointer
//! position, bad UTF-8, oversized inputs, statuses per spec §6, strings
//! freed, threads sharing one engine, and (with the `fault-injection`
//! feature) the panic boundary and poisoning.

use shopauth::ffi::shopauth_status::{self, *};
use shopauth::ffi::*;
use std::ffi::{CStr, c_char};
use std::ptr::{null, null_mut};

const CONFIG: &str = r#"{"secret":"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f","platforms":{"mykey":{"kind":"key","credential":"token"}}}"#;

fn new_engine() -> *mut shopauth_engine {
    let mut e = null_mut();
    let s =
        unsafe { shopauth_engine_new(CONFIG.as_ptr().cast(), CONFIG.len(), &mut e, null_mut()) };
    assert_eq!(s, SHOPAUTH_OK);
    assert!(!e.is_null());
    e
}

fn take(s: *mut c_char) -> String {
    assert!(!s.is_null());
    let t = unsafe { CStr::from_ptr(s) }.to_str().unwrap().to_owned();
    unsafe { shopauth_string_free(s) };
    t
}

fn handle(e: *mut shopauth_engine, input: &[u8], now: i64) -> (shopauth_status, Option<String>) {
    let mut out = null_mut();
    let s = unsafe { shopauth_engine_handle(e, input.as_ptr().cast(), input.len(), now, &mut out) };
    (s, (!out.is_null()).then(|| take(out)))
}

#[test]
fn version_is_static() {
    let v = unsafe { CStr::from_ptr(shopauth_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn null_in_every_pointer_position() {
    unsafe {
        let mut e = null_mut();
        let mut err = null_mut();
        // new
        assert_eq!(
            shopauth_engine_new(null(), 0, &mut e, &mut err),
            SHOPAUTH_INVALID_ARGUMENT
        );
        assert!(e.is_null());
        take(err);
        assert_eq!(
            shopauth_engine_new(CONFIG.as_ptr().cast(), CONFIG.len(), null_mut(), null_mut()),
            SHOPAUTH_INVALID_ARGUMENT
        );
        assert_eq!(
            shopauth_engine_new(null(), 0, null_mut(), null_mut()),
            SHOPAUTH_INVALID_ARGUMENT
        );
        // free / string_free accept NULL
        shopauth_engine_free(null_mut());
        shopauth_string_free(null_mut());
        let e = new_engine();
        let input = br#"{"type":"query","client_id":"c","store_id":"s"}"#;
        let mut out = null_mut();
        // handle
        assert_eq!(
            shopauth_engine_handle(null_mut(), input.as_ptr().cast(), input.len(), 0, &mut out),
            SHOPAUTH_INVALID_ARGUMENT
        );
        assert!(take(out).contains("900002"));
        assert_eq!(
            shopauth_engine_handle(e, null(), 0, 0, &mut out),
            SHOPAUTH_INVALID_ARGUMENT
        );
        assert!(take(out).contains("900002"));
        assert_eq!(
            shopauth_engine_handle(e, input.as_ptr().cast(), input.len(), 0, null_mut()),
            SHOPAUTH_INVALID_ARGUMENT
        );
        assert_eq!(
            shopauth_engine_handle(null_mut(), null(), 0, 0, null_mut()),
            SHOPAUTH_INVALID_ARGUMENT
        );
        // handle_timeout
        assert_eq!(
            shopauth_engine_handle_timeout(null_mut(), 0),
            SHOPAUTH_INVALID_ARGUMENT
        );
        // poll_output(s)
        assert_eq!(
            shopauth_engine_poll_output(null_mut(), &mut out),
            SHOPAUTH_INVALID_ARGUMENT
        );
        assert!(out.is_null());
        assert_eq!(
            shopauth_engine_poll_output(e, null_mut()),
            SHOPAUTH_INVALID_ARGUMENT
        );
        assert_eq!(
            shopauth_engine_poll_outputs(null_mut(), &mut out),
            SHOPAUTH_INVALID_ARGUMENT
        );
        assert_eq!(
            shopauth_engine_poll_outputs(e, null_mut()),
            SHOPAUTH_INVALID_ARGUMENT
        );
        // poll_timeout
        assert_eq!(shopauth_engine_poll_timeout(null()), -1);
        // snapshot
        assert_eq!(
            shopauth_engine_snapshot(null(), &mut out),
            SHOPAUTH_INVALID_ARGUMENT
        );
        assert_eq!(
            shopauth_engine_snapshot(e, null_mut()),
            SHOPAUTH_INVALID_ARGUMENT
        );
        // restore
        let snap = b"{}";
        assert_eq!(
            shopauth_engine_restore(null_mut(), snap.as_ptr().cast(), 2, &mut err),
            SHOPAUTH_INVALID_ARGUMENT
        );
        take(err);
        assert_eq!(
            shopauth_engine_restore(e, null(), 0, &mut err),
            SHOPAUTH_INVALID_ARGUMENT
        );
        take(err);
        assert_eq!(
            shopauth_engine_restore(e, null(), 0, null_mut()),
            SHOPAUTH_INVALID_ARGUMENT
        );
        shopauth_engine_free(e);
    }
}

#[test]
fn statuses_for_every_kind_of_input() {
    let e = new_engine();
    let reg = br#"{"type":"register_store","client_id":"c","store_id":"s","platform":"mykey"}"#;
    assert_eq!(handle(e, reg, 1).0, SHOPAUTH_OK);
    let (s, r) = handle(e, reg, 1);
    assert_eq!(s, SHOPAUTH_REJECTED);
    assert!(r.unwrap().contains(r#""code":900009"#));
    for bad in [
        &b"\xff\xfe"[..],
        b"not json",
        b"[]",
        b"{}",
        br#"{"type":"nope"}"#,
        b"",
    ] {
        let (s, r) = handle(e, bad, 1);
        assert_eq!(s, SHOPAUTH_INVALID_ARGUMENT, "{bad:?}");
        assert!(r.unwrap().contains(r#""code":900002"#));
    }
    // Wrong-typed field: REJECTED with 900002.
    let (s, r) = handle(e, br#"{"type":"query","client_id":1,"store_id":"s"}"#, 1);
    assert_eq!(s, SHOPAUTH_REJECTED);
    assert!(r.unwrap().contains("client_id"));
    // Over 16 MiB: refused without being read as JSON.
    let big = vec![b' '; MAX_INPUT_BYTES + 1];
    assert_eq!(handle(e, &big, 1).0, SHOPAUTH_INVALID_ARGUMENT);
    // Outputs one by one and all at once.
    let auth = br#"{"type":"authorize","client_id":"c","store_id":"s","auth_type":"KEY","auth_info":{"token":"t"}}"#;
    assert_eq!(handle(e, auth, 2).0, SHOPAUTH_OK);
    let mut out = null_mut();
    unsafe {
        assert_eq!(shopauth_engine_poll_output(e, &mut out), SHOPAUTH_OK);
        assert!(take(out).contains(r#""type":"transition""#));
        assert_eq!(shopauth_engine_poll_output(e, &mut out), SHOPAUTH_EMPTY);
        assert!(out.is_null());
        assert_eq!(shopauth_engine_poll_outputs(e, &mut out), SHOPAUTH_OK);
        assert_eq!(take(out), "[]");
        assert_eq!(shopauth_engine_poll_timeout(e), -1);
        // Snapshot round trip; garbage and foreign snapshots.
        assert_eq!(shopauth_engine_snapshot(e, &mut out), SHOPAUTH_OK);
        let snap = take(out);
        let mut err = null_mut();
        assert_eq!(
            shopauth_engine_restore(e, snap.as_ptr().cast(), snap.len(), &mut err),
            SHOPAUTH_OK
        );
        assert!(err.is_null());
        assert_eq!(
            shopauth_engine_restore(e, b"xx".as_ptr().cast(), 2, &mut err),
            SHOPAUTH_INVALID_ARGUMENT
        );
        take(err);
        let foreign = snap.replace(r#""version":"2.0""#, r#""version":"9.0""#);
        assert_eq!(
            shopauth_engine_restore(e, foreign.as_ptr().cast(), foreign.len(), &mut err),
            SHOPAUTH_REJECTED
        );
        assert!(take(err).contains("version"));
        // Bad configuration: REJECTED with the path.
        let mut e2 = null_mut();
        let bad = r#"{"secret":"00"}"#;
        assert_eq!(
            shopauth_engine_new(bad.as_ptr().cast(), bad.len(), &mut e2, &mut err),
            SHOPAUTH_REJECTED
        );
        assert!(take(err).contains("secret"));
        assert!(e2.is_null());
        shopauth_engine_free(e);
    }
}

#[test]
fn threads_share_one_engine() {
    struct Ptr(*mut shopauth_engine);
    unsafe impl Send for Ptr {}
    unsafe impl Sync for Ptr {}
    let e = std::sync::Arc::new(Ptr(new_engine()));
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let e = e.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    let reg = format!(r#"{{"type":"register_store","client_id":"c","store_id":"t{t}-{i}","platform":"mykey"}}"#);
                    assert_eq!(handle(e.0, reg.as_bytes(), i).0, SHOPAUTH_OK);
                    let mut out = null_mut();
                    assert_eq!(unsafe { shopauth_engine_poll_outputs(e.0, &mut out) }, SHOPAUTH_OK);
                    take(out);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut out = null_mut();
    unsafe {
        shopauth_engine_snapshot(e.0, &mut out);
        assert_eq!(take(out).matches(r#""platform":"mykey""#).count(), 800);
        shopauth_engine_free(e.0);
    }
}

#[cfg(feature = "fault-injection")]
#[test]
fn a_panic_is_caught_and_poisons_the_engine() {
    let e = new_engine();
    let (s, r) = handle(e, br#"{"type":"__panic__"}"#, 1);
    assert_eq!(s, SHOPAUTH_PANIC);
    assert_eq!(r, None);
    let (s, r) = handle(e, br#"{"type":"query","client_id":"c","store_id":"s"}"#, 1);
    assert_eq!(s, SHOPAUTH_POISONED);
    assert_eq!(r, None);
    unsafe {
        assert_eq!(shopauth_engine_poll_timeout(e), -1);
        assert_eq!(shopauth_engine_handle_timeout(e, 5), SHOPAUTH_POISONED);
        let mut out = null_mut();
        assert_eq!(shopauth_engine_snapshot(e, &mut out), SHOPAUTH_POISONED);
        assert_eq!(shopauth_engine_poll_outputs(e, &mut out), SHOPAUTH_POISONED);
        assert!(out.is_null());
        let text = b"{}";
        let mut err = null_mut();
        assert_eq!(
            shopauth_engine_load(e, text.as_ptr().cast(), 2, &mut err),
            SHOPAUTH_POISONED
        );
        assert_eq!(
            shopauth_engine_unload(e, text.as_ptr().cast(), 2, &mut err),
            SHOPAUTH_POISONED
        );
        assert!(err.is_null());
        assert_eq!(
            shopauth_engine_route(e, text.as_ptr().cast(), 2, &mut out),
            SHOPAUTH_POISONED
        );
        assert!(out.is_null());
        shopauth_engine_free(e);
    }
}

fn load_call(
    e: *mut shopauth_engine,
    text: &[u8],
    unload: bool,
) -> (shopauth_status, Option<String>) {
    let mut err = null_mut();
    let s = unsafe {
        if unload {
            shopauth_engine_unload(e, text.as_ptr().cast(), text.len(), &mut err)
        } else {
            shopauth_engine_load(e, text.as_ptr().cast(), text.len(), &mut err)
        }
    };
    (s, (!err.is_null()).then(|| take(err)))
}

fn route_call(e: *const shopauth_engine, input: &[u8]) -> (shopauth_status, Option<String>) {
    let mut out = null_mut();
    let s = unsafe { shopauth_engine_route(e, input.as_ptr().cast(), input.len(), &mut out) };
    (s, (!out.is_null()).then(|| take(out)))
}

/// Spec §6 and §11: `shopauth_engine_load`, `_unload` and `_route` — NULL in
/// every pointer position, bad bytes, refusals, and a store moved from one
/// engine to another.
#[test]
fn load_unload_and_route() {
    let a = new_engine();
    let reg = br#"{"type":"register_store","client_id":"c","store_id":"s","platform":"mykey"}"#;
    let auth = br#"{"type":"authorize","client_id":"c","store_id":"s","auth_type":"KEY","auth_info":{"token":"tok-ffi"}}"#;
    assert_eq!(handle(a, reg, 1).0, SHOPAUTH_OK);
    assert_eq!(handle(a, auth, 1).0, SHOPAUTH_OK);
    let changes = unsafe {
        let mut out = null_mut();
        assert_eq!(shopauth_engine_take_changes(a, &mut out), SHOPAUTH_OK);
        take(out)
    };
    let changes: serde_json::Value = serde_json::from_str(&changes).unwrap();
    let entry = &changes["stores"][0];
    let load = serde_json::json!({"stores": [entry["record"]]}).to_string();
    let b = new_engine();
    unsafe {
        // NULL pointers
        let mut err = null_mut();
        assert_eq!(
            shopauth_engine_load(null_mut(), load.as_ptr().cast(), load.len(), &mut err),
            SHOPAUTH_INVALID_ARGUMENT
        );
        assert!(take(err).contains("NULL"));
        assert_eq!(
            shopauth_engine_load(b, null(), 0, &mut err),
            SHOPAUTH_INVALID_ARGUMENT
        );
        take(err);
        assert_eq!(
            shopauth_engine_load(b, null(), 0, null_mut()),
            SHOPAUTH_INVALID_ARGUMENT
        );
        assert_eq!(
            shopauth_engine_unload(null_mut(), null(), 0, null_mut()),
            SHOPAUTH_INVALID_ARGUMENT
        );
        assert_eq!(
            shopauth_engine_unload(b, null(), 0, &mut err),
            SHOPAUTH_INVALID_ARGUMENT
        );
        take(err);
        let q = br#"{"type":"query","client_id":"c","store_id":"s"}"#;
        let mut out = null_mut();
        assert_eq!(
            shopauth_engine_route(b, q.as_ptr().cast(), q.len(), null_mut()),
            SHOPAUTH_INVALID_ARGUMENT
        );
        assert_eq!(
            shopauth_engine_route(null(), q.as_ptr().cast(), q.len(), &mut out),
            SHOPAUTH_INVALID_ARGUMENT
        );
        assert_eq!(take(out), r#"{"ref":null,"store_id":null}"#);
        assert_eq!(
            shopauth_engine_route(b, null(), 0, &mut out),
            SHOPAUTH_INVALID_ARGUMENT
        );
        assert_eq!(take(out), r#"{"ref":null,"store_id":null}"#);
    }
    // Bad bytes, not JSON, not of the shape: INVALID_ARGUMENT, nothing changed.
    let before = unsafe {
        let mut out = null_mut();
        shopauth_engine_snapshot(b, &mut out);
        take(out)
    };
    for bad in [&b"\xff\xfe"[..], b"", b"nope", b"[]", br#"{"stores": 5}"#] {
        let (s, err) = load_call(b, bad, false);
        assert_eq!(s, SHOPAUTH_INVALID_ARGUMENT, "{bad:?}");
        assert!(err.is_some());
        assert_eq!(
            load_call(b, bad, true).0,
            SHOPAUTH_INVALID_ARGUMENT,
            "{bad:?}"
        );
    }
    assert_eq!(route_call(b, b"\xff").0, SHOPAUTH_INVALID_ARGUMENT);
    assert_eq!(
        route_call(b, b"{\"type\":"),
        (
            SHOPAUTH_INVALID_ARGUMENT,
            Some(r#"{"ref":null,"store_id":null}"#.into())
        )
    );
    // JSON that names no store: OK, nowhere.
    assert_eq!(
        route_call(b, b"[1]"),
        (SHOPAUTH_OK, Some(r#"{"ref":null,"store_id":null}"#.into()))
    );
    // Over 16 MiB: unload and route refuse, load (like restore) does not.
    let mut big = vec![b' '; MAX_INPUT_BYTES];
    big.extend_from_slice(b"{}");
    assert_eq!(load_call(b, &big, true).0, SHOPAUTH_INVALID_ARGUMENT);
    assert_eq!(route_call(b, &big).0, SHOPAUTH_INVALID_ARGUMENT);
    assert_eq!(load_call(b, &big, false), (SHOPAUTH_OK, None));
    let after = unsafe {
        let mut out = null_mut();
        shopauth_engine_snapshot(b, &mut out);
        take(out)
    };
    assert_eq!(before, after);
    // The happy path: b takes the store over.
    assert_eq!(load_call(b, load.as_bytes(), false), (SHOPAUTH_OK, None));
    let (s, route) = route_call(b, br#"{"type":"query","client_id":"c","store_id":"s"}"#);
    assert_eq!(s, SHOPAUTH_OK);
    let route: serde_json::Value = serde_json::from_str(&route.unwrap()).unwrap();
    assert_eq!(route["ref"], entry["ref"]);
    assert_eq!(route["store_id"], "s");
    let (s, r) = handle(
        b,
        br#"{"type":"credentials","client_id":"c","store_id":"s"}"#,
        2,
    );
    assert_eq!(s, SHOPAUTH_OK);
    assert!(r.unwrap().contains("tok-ffi"));
    // Loaded twice: REJECTED, with the rule and no value.
    let (s, err) = load_call(b, load.as_bytes(), false);
    assert_eq!(s, SHOPAUTH_REJECTED);
    let err = err.unwrap();
    assert!(err.contains("already_loaded"), "{err}");
    assert!(!err.contains("tok-ffi"), "{err}");
    // A malformed foreign claim in an unload: REJECTED.
    let (s, err) = load_call(
        b,
        br#"{"foreign_claims":[{"kind":"seller","platform":"mykey","seller_id":"","store_id":"x"}]}"#,
        true,
    );
    assert_eq!(s, SHOPAUTH_REJECTED);
    assert!(err.unwrap().contains("invalid_claim"));
    // Unloaded (twice: the second is a no-op).
    for _ in 0..2 {
        assert_eq!(
            load_call(b, br#"{"store_ids":["s"]}"#, true),
            (SHOPAUTH_OK, None)
        );
    }
    let (_, r) = handle(b, br#"{"type":"query","client_id":"c","store_id":"s"}"#, 3);
    assert!(r.unwrap().contains("940002"));
    unsafe {
        shopauth_engine_free(a);
        shopauth_engine_free(b);
    }
}

/// `shopauth_engine_handle_drain`: status, text and length.
fn handle_drain(
    e: *mut shopauth_engine,
    input: &[u8],
    now: i64,
) -> (shopauth_status, Option<String>) {
    let mut out = null_mut();
    let mut len = usize::MAX;
    let s = unsafe {
        shopauth_engine_handle_drain(
            e,
            input.as_ptr().cast(),
            input.len(),
            now,
            &mut out,
            &mut len,
        )
    };
    let text = (!out.is_null()).then(|| take(out));
    assert_eq!(
        len,
        text.as_ref().map_or(0, String::len),
        "out_len is the text's length"
    );
    (s, text)
}

#[test]
fn handle_drain_is_handle_then_poll_outputs_in_one_text() {
    // Two engines fed the same inputs: one through handle + poll_outputs,
    // the other through handle_drain; status, reply and outputs agree
    // byte for byte.
    let (a, b) = (new_engine(), new_engine());
    let inputs: [&[u8]; 9] = [
        br#"{"type":"register_store","client_id":"c","store_id":"s","platform":"mykey"}"#,
        br#"{"type":"register_store","client_id":"c","store_id":"s","platform":"mykey"}"#,
        br#"{"type":"authorize","client_id":"c","store_id":"s","auth_type":"KEY","auth_info":{"token":"t"}}"#,
        br#"{"type":"query","client_id":"c","store_id":"s"}"#,
        br#"{"type":"query","client_id":1,"store_id":"s"}"#,
        b"not json",
        b"\xff\xfe",
        br#"{"type":"revoke","client_id":"c","store_id":"s"}"#,
        br#"{"type":"remove_store","client_id":"c","store_id":"s"}"#,
    ];
    for (i, input) in inputs.iter().enumerate() {
        let now = 1_700_000_000_000 + i as i64;
        let (s1, reply) = handle(a, input, now);
        let mut out = null_mut();
        assert_eq!(
            unsafe { shopauth_engine_poll_outputs(a, &mut out) },
            SHOPAUTH_OK
        );
        let outputs = take(out);
        let (s2, both) = handle_drain(b, input, now);
        assert_eq!(s1, s2, "{input:?}");
        let reply = reply.expect("handle writes a reply");
        assert_eq!(
            both.as_deref(),
            Some(format!(r#"{{"reply":{reply},"outputs":{outputs}}}"#).as_str()),
            "{input:?}"
        );
        let v: serde_json::Value = serde_json::from_str(&both.unwrap()).unwrap();
        assert!(v["outputs"].is_array());
    }
    unsafe {
        let (mut sa, mut sb) = (null_mut(), null_mut());
        shopauth_engine_snapshot(a, &mut sa);
        shopauth_engine_snapshot(b, &mut sb);
        assert_eq!(take(sa), take(sb));
        shopauth_engine_free(a);
        shopauth_engine_free(b);
    }
}

#[test]
fn handle_drain_with_null_pointers() {
    let e = new_engine();
    let input = br#"{"type":"register_store","client_id":"c","store_id":"s","platform":"mykey"}"#;
    unsafe {
        // NULL out: nothing applied, nothing drained.
        let mut len = 7;
        assert_eq!(
            shopauth_engine_handle_drain(
                e,
                input.as_ptr().cast(),
                input.len(),
                0,
                null_mut(),
                &mut len
            ),
            SHOPAUTH_INVALID_ARGUMENT
        );
        assert_eq!(len, 7);
        assert_eq!(
            shopauth_engine_handle_drain(null_mut(), null(), 0, 0, null_mut(), null_mut()),
            SHOPAUTH_INVALID_ARGUMENT
        );
        // NULL engine: the 900002 envelope and no outputs.
        let (s, t) = handle_drain(null_mut(), input, 0);
        assert_eq!(s, SHOPAUTH_INVALID_ARGUMENT);
        let t = t.unwrap();
        assert!(
            t.starts_with(r#"{"reply":{"code":900002"#) && t.ends_with(r#","outputs":[]}"#),
            "{t}"
        );
        // NULL input on a live engine: 900002, and what was queued is drained.
        assert_eq!(handle(e, input, 1).0, SHOPAUTH_OK);
        let auth = br#"{"type":"authorize","client_id":"c","store_id":"s","auth_type":"KEY","auth_info":{"token":"t"}}"#;
        assert_eq!(handle(e, auth, 1).0, SHOPAUTH_OK);
        let mut out = null_mut();
        assert_eq!(
            shopauth_engine_handle_drain(e, null(), 0, 1, &mut out, null_mut()),
            SHOPAUTH_INVALID_ARGUMENT
        );
        let v: serde_json::Value = serde_json::from_str(&take(out)).unwrap();
        assert_eq!(v["reply"]["code"], 900002);
        assert_eq!(v["outputs"][0]["type"], "transition");
        // A NULL out_len is allowed.
        let q = br#"{"type":"query","client_id":"c","store_id":"s"}"#;
        assert_eq!(
            shopauth_engine_handle_drain(e, q.as_ptr().cast(), q.len(), 1, &mut out, null_mut()),
            SHOPAUTH_OK
        );
        assert!(take(out).ends_with(r#","outputs":[]}"#));
        shopauth_engine_free(e);
    }
}

#[cfg(feature = "fault-injection")]
#[test]
fn handle_drain_catches_a_panic_and_then_answers_poisoned() {
    let e = new_engine();
    let (s, t) = handle_drain(e, br#"{"type":"__panic__"}"#, 1);
    assert_eq!((s, t), (SHOPAUTH_PANIC, None));
    let (s, t) = handle_drain(e, br#"{"type":"query","client_id":"c","store_id":"s"}"#, 1);
    assert_eq!((s, t), (SHOPAUTH_POISONED, None));
    let (s, t) = handle_drain(e, b"\xff", 1);
    assert_eq!((s, t), (SHOPAUTH_POISONED, None));
    unsafe { shopauth_engine_free(e) };
}
