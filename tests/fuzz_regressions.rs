//! Findings of the fuzz targets (`fuzz/`, `scripts/fuzz.sh`), each kept as a
//! regression test that drives the C ABI the way the fuzz harness did.

use shopauth::ffi::{self, shopauth_engine, shopauth_status, shopauth_status::*};
use std::ffi::{CStr, c_char};
use std::ptr;

const T0: i64 = 1_700_000_000_000;

struct Engine(*mut shopauth_engine);

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: from shopauth_engine_new, freed once.
        unsafe { ffi::shopauth_engine_free(self.0) };
    }
}

fn take(p: *mut c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated string handed out by the library.
    let s = unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned();
    // SAFETY: freed once with the library's function.
    unsafe { ffi::shopauth_string_free(p) };
    Some(s)
}

impl Engine {
    fn new(config: &str) -> Engine {
        let mut e = ptr::null_mut();
        let mut err = ptr::null_mut();
        // SAFETY: valid pointer + length and out pointers.
        let s = unsafe {
            ffi::shopauth_engine_new(config.as_ptr().cast(), config.len(), &mut e, &mut err)
        };
        assert_eq!(s, SHOPAUTH_OK, "{:?}", take(err));
        Engine(e)
    }
    fn handle(&mut self, input: &str, now: i64) -> (shopauth_status, String) {
        let mut r = ptr::null_mut();
        // SAFETY: valid pointer + length and out pointer.
        let s = unsafe {
            ffi::shopauth_engine_handle(self.0, input.as_ptr().cast(), input.len(), now, &mut r)
        };
        (s, take(r).unwrap_or_default())
    }
    fn snapshot(&self) -> String {
        let mut r = ptr::null_mut();
        // SAFETY: a live engine and a valid out pointer.
        let s = unsafe { ffi::shopauth_engine_snapshot(self.0, &mut r) };
        assert_eq!(s, SHOPAUTH_OK);
        take(r).unwrap()
    }
    fn poll_outputs(&mut self) -> String {
        let mut r = ptr::null_mut();
        // SAFETY: a live engine and a valid out pointer.
        let s = unsafe { ffi::shopauth_engine_poll_outputs(self.0, &mut r) };
        assert_eq!(s, SHOPAUTH_OK);
        take(r).unwrap()
    }
}

/// Finding 1 (handle_bytes / restore_bytes, first input): an `http_request`
/// that carries a configuration secret (the status-check service's
/// `access_token` in `Authorization`, an oauth2 `client_secret` in the
/// form body) and is not drained yet is written into the snapshot as is.
/// Spec §3: the snapshot holds undrained outputs, but never a configuration
/// secret (§1: configuration secrets never appear in a snapshot).
#[test]
fn snapshot_with_undrained_requests_holds_no_configuration_secret() {
    let config = r#"{"secret":"5ec5e75ec5e75ec5e75ec5e75ec5e75ec5e75ec5e75ec5e75ec5e75ec5e75ec5",
        "apps":{"taobao":{"checker":"vvtool","access_token":"CFGSECRET-vv","auth_page_url":"https://vv.example/auth"},
                "myshop":{"app_key":"cid","app_secret":"CFGSECRET-oauth","redirect_uri":"https://host.example/cb"}},
        "platforms":{"myshop":{"kind":"oauth2","authorize_url":"https://as.example/authorize","token_url":"https://as.example/token"}}}"#;
    let mut e = Engine::new(config);
    for input in [
        r#"{"type":"register_store","client_id":"c2","store_id":"s4","platform":"taobao"}"#,
        r#"{"type":"authorize","client_id":"c2","store_id":"s4","auth_type":"URL","seller_id":"1001"}"#,
        r#"{"type":"register_store","client_id":"c1","store_id":"s2","platform":"myshop"}"#,
    ] {
        assert_eq!(e.handle(input, T0).0, SHOPAUTH_OK, "{input}");
    }
    let (s, reply) = e.handle(
        r#"{"type":"authorize","client_id":"c1","store_id":"s2","auth_type":"URL"}"#,
        T0,
    );
    assert_eq!(s, SHOPAUTH_OK);
    let url: serde_json::Value = serde_json::from_str(&reply).unwrap();
    let url = url["data"]["auth_url"].as_str().unwrap().to_owned();
    let state = url
        .split("state=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let redirect = format!(
        r#"{{"type":"oauth_redirect","platform":"myshop","query":"code=abc&state={state}"}}"#
    );
    assert_eq!(e.handle(&redirect, T0 + 1000).0, SHOPAUTH_OK);

    // The status_check and token_create requests are queued, not yet drained.
    let snap = e.snapshot();
    assert!(
        !snap.contains("CFGSECRET"),
        "a configuration secret in the snapshot: {snap}"
    );

    // Draining still hands the host the requests with their secrets.
    let outs = e.poll_outputs();
    assert!(outs.contains("Bearer CFGSECRET-vv"), "{outs}");
    assert!(outs.contains("CFGSECRET-oauth"), "{outs}");
}
