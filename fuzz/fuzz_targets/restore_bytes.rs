//! Raw bytes into `shopauth_engine_restore`, on an engine with state.
//! A refused snapshot (INVALID_ARGUMENT / REJECTED) must leave the engine
//! unchanged; an accepted one must leave an engine that works: it takes
//! inputs, fires timers, drains, and its own snapshot restores again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shopauth::ffi::shopauth_status::*;
use shopauth_fuzz::{Engine, defuse, prelude};

const PROBES: &[&str] = &[
    r#"{"type":"query","client_id":"c1","store_id":"s1"}"#,
    r#"{"type":"credentials","client_id":"c1","store_id":"s1"}"#,
    r#"{"type":"query","client_id":"c2","store_id":"s4"}"#,
    r#"{"type":"register_store","client_id":"c1","store_id":"new","platform":"mykey"}"#,
    r#"{"type":"authorize","client_id":"c1","store_id":"new","auth_type":"KEY","auth_info":{"token":"SECRET-tok-9"}}"#,
    r#"{"type":"authorize","client_id":"c1","store_id":"s2","auth_type":"URL"}"#,
    r#"{"type":"token_rejected","client_id":"c1","store_id":"s1"}"#,
    r#"{"type":"revoke","client_id":"c2","store_id":"s5"}"#,
    r#"{"type":"remove_store","client_id":"c1","store_id":"s3"}"#,
];

fuzz_target!(|data: &[u8]| {
    let (mut engine, now) = prelude();
    let before = engine.snapshot();
    let (status, err) = engine.restore(&defuse(data));
    if status != SHOPAUTH_OK {
        let after = engine.snapshot();
        assert_eq!(
            before, after,
            "a refused snapshot ({status:?}, {err:?}) changed the engine"
        );
        return;
    }
    // An accepted snapshot: the engine must keep working. What it sends is
    // made of what the snapshot said, so only its shape is checked.
    engine.trusted = false;
    let mut t = now + 1;
    engine.handle_timeout(t);
    engine.drain();
    for probe in PROBES {
        t += 1000;
        engine.handle(probe.as_bytes(), t);
        engine.drain();
    }
    if let Some(next) = engine.poll_timeout() {
        engine.handle_timeout(next);
        engine.drain();
    }
    engine.handle_timeout(t + 40 * 86_400_000);
    engine.drain();
    let snap = engine.snapshot();
    let mut fresh = Engine::fresh();
    let (status, err) = fresh.restore(snap.as_bytes());
    assert_eq!(
        status, SHOPAUTH_OK,
        "the snapshot of a restored engine is refused: {err:?}"
    );
});
