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

const KEY_AND_OAUTH2: &str = r#"{"secret":"5ec5e75ec5e75ec5e75ec5e75ec5e75ec5e75ec5e75ec5e75ec5e75ec5e75ec5",
    "apps":{"myshop":{"app_key":"cid","app_secret":"sec","redirect_uri":"https://host.example/cb"}},
    "platforms":{"mykey":{"kind":"key","credential":"token"},
                 "myshop":{"kind":"oauth2","authorize_url":"https://as.example/authorize","token_url":"https://as.example/token"}}}"#;

/// True for a URL an HTTP client takes as it is: absolute http(s), no
/// spaces, backslashes or non-ASCII, and already in the parser's form.
fn plain_url(u: &str) -> bool {
    (u.starts_with("https://") || u.starts_with("http://"))
        && u.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        && url::Url::parse(u).is_ok()
}

/// Finding 2 (handle_bytes, a mutated seed): `notify_url` is checked with
/// the lenient WHATWG parser but the raw text is kept, so
/// `"https:/ore/biz.example/n"` (which the parser reads as
/// `https://ore/biz.example/n`) comes out verbatim as the `url` of the
/// `notify` http_request, which ordinary HTTP clients refuse. Either refusing
/// such a notify_url (REJECTED, illegal_param) or sending the parsed,
/// normalized URL passes.
#[test]
fn notify_url_is_refused_or_sent_as_a_plain_absolute_url() {
    for (i, notify_url) in [
        "https:/ore/biz.example/n",
        "https:biz.example/n",
        "https://biz.example/a b",
        "http:\\\\biz.example\\n",
        "https://biz.example/\u{e9}",
    ]
    .into_iter()
    .enumerate()
    {
        let mut e = Engine::new(KEY_AND_OAUTH2);
        let store = format!("n{i}");
        let register =
            serde_json::json!({"type": "register_store", "client_id": "c1", "store_id": store,
                                          "platform": "mykey", "notify_url": notify_url})
            .to_string();
        let (s, reply) = e.handle(&register, T0);
        if s != SHOPAUTH_OK {
            assert_eq!(s, SHOPAUTH_REJECTED, "{reply}");
            assert!(reply.contains("illegal_param"), "{reply}");
            continue;
        }
        let authorize = serde_json::json!({"type": "authorize", "client_id": "c1", "store_id": store,
                                           "auth_type": "KEY", "auth_info": {"token": format!("t{i}")}})
        .to_string();
        assert_eq!(e.handle(&authorize, T0).0, SHOPAUTH_OK);
        let outs: serde_json::Value = serde_json::from_str(&e.poll_outputs()).unwrap();
        let url = outs
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["purpose"] == "notify")
            .and_then(|o| o["url"].as_str())
            .unwrap_or_else(|| panic!("no notification for {notify_url:?}: {outs}"))
            .to_owned();
        assert!(
            plain_url(&url),
            "notify_url {notify_url:?} was sent as {url:?}"
        );
    }
}

/// Finding 3 (the `sequence` target's redirect_url pool; also probed by
/// hand): the seed-000 redirect parameters are appended after a
/// `redirect_url`'s fragment, so they end up in the fragment
/// (`…/done#top&client_id=…&auth_status=FAIL…`) instead of the query, and a
/// non-normalized redirect_url is used verbatim. Spec §3: the parameters are
/// appended to the URL's query. Refusing such a redirect_url also passes.
#[test]
fn redirect_parameters_go_into_the_query() {
    for (i, redirect_url) in [
        "https://biz.example/done#top",
        "https://biz.example/done?x=1#top",
        "https:/ore/biz.example/done",
        "https://biz.example/a b",
    ]
    .into_iter()
    .enumerate()
    {
        let mut e = Engine::new(KEY_AND_OAUTH2);
        let store = format!("r{i}");
        let register = format!(
            r#"{{"type":"register_store","client_id":"c1","store_id":"{store}","platform":"myshop"}}"#
        );
        assert_eq!(e.handle(&register, T0).0, SHOPAUTH_OK);
        let authorize =
            serde_json::json!({"type": "authorize", "client_id": "c1", "store_id": store,
                                           "auth_type": "URL", "redirect_url": redirect_url})
            .to_string();
        let (s, reply) = e.handle(&authorize, T0);
        if s != SHOPAUTH_OK {
            assert_eq!(s, SHOPAUTH_REJECTED, "{reply}");
            assert!(reply.contains("illegal_param"), "{reply}");
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
        let auth_url = v["data"]["auth_url"].as_str().unwrap();
        let state = auth_url
            .split("state=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        let redirect = format!(
            r#"{{"type":"oauth_redirect","platform":"myshop","query":"error=access_denied&state={state}"}}"#
        );
        assert_eq!(e.handle(&redirect, T0 + 1).0, SHOPAUTH_OK);
        let outs: serde_json::Value = serde_json::from_str(&e.poll_outputs()).unwrap();
        let location = outs
            .as_array()
            .unwrap()
            .iter()
            .find_map(|o| o["location"].as_str())
            .unwrap_or_else(|| panic!("no redirect for {redirect_url:?}: {outs}"))
            .to_owned();
        assert!(
            plain_url(&location),
            "redirect_url {redirect_url:?} gave {location:?}"
        );
        let parsed = url::Url::parse(&location).unwrap();
        let query: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for (k, want) in [
            ("client_id", "c1"),
            ("store_id", store.as_str()),
            ("auth_status", "FAIL"),
            ("auth_fail_reason", "denied"),
        ] {
            assert!(
                query.iter().any(|(qk, qv)| qk == k && qv == want),
                "redirect_url {redirect_url:?} gave {location:?}: no {k}={want} in the query"
            );
        }
    }
}
