//! Lifetimes at their extremes, on every platform that has them (oauth2,
//! IOP `taobao_tw` and `lazada`, Shopline), and the times the engine writes
//! (SPEC §5 "Lifetimes"): a lifetime is a whole number of seconds, cut to
//! exactly ten years; an absolute expiry is cut to ten years ahead; a
//! malformed one is retried until the code's validity (create) or the access
//! token's expiry (refresh) runs out; every time written is RFC 3339 UTC
//! with a four-digit year, also at a `now` near year 9999.
//!
//! Everything runs on the virtual clock of `common::Host` (no wall clock).

mod common;
use common::*;
use hmac::Mac;
use serde_json::{Value, json};
use shopauth::engine::MAX_TIME_MS;

/// Ten years, in ms.
const TEN_YEARS_MS: i64 = 315_360_000_000;

/// What a lifetime value must lead to.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// Accepted, cut to exactly ten years from the answer.
    TenYears,
    /// Accepted as given (seconds).
    Exactly(i64),
    /// Accepted as "no expiry" (oauth2 `expires_in` only).
    NoExpiry,
    /// The answer is malformed: retried.
    Malformed,
}
use Expect::*;

/// A lifetime field's value: `None` leaves the field out.
type Field = Option<Value>;

/// The extreme values of a lifetime in seconds, with what they mean for an
/// access lifetime where a missing one is malformed (IOP).
fn access_cases() -> Vec<(Field, Expect)> {
    vec![
        (Some(json!(1e16)), TenYears),
        (Some(json!(1e308)), TenYears),
        (Some(json!(i64::MAX)), TenYears),
        (Some(json!(u64::MAX)), TenYears),
        (Some(json!("10000000000000000")), TenYears),
        (Some(json!(i64::MAX.to_string())), TenYears),
        (Some(json!(u64::MAX.to_string())), TenYears),
        (Some(json!("1e+16")), TenYears),
        (Some(json!("1e308")), TenYears),
        (Some(json!(315_360_001)), TenYears),
        (Some(json!(315_360_000)), TenYears),
        (Some(json!("315360000")), TenYears),
        (Some(json!(7200)), Exactly(7200)),
        (Some(json!("7200")), Exactly(7200)),
        (Some(json!(7.2e3)), Exactly(7200)),
        (Some(json!(-5)), Malformed),
        (Some(json!("-5")), Malformed),
        (Some(json!(0)), Malformed),
        (Some(json!("0")), Malformed),
        (Some(json!(0.5)), Malformed),
        (Some(json!("0.5")), Malformed),
        (Some(json!("NaN")), Malformed),
        (Some(json!(true)), Malformed),
        (Some(json!({"s": 7200})), Malformed),
        (Some(Value::Null), Malformed),
        (None, Malformed),
    ]
}

/// The same for oauth2 `expires_in`, where a missing one means no expiry.
fn oauth2_access_cases() -> Vec<(Field, Expect)> {
    access_cases()
        .into_iter()
        .map(|(v, e)| match v {
            None | Some(Value::Null) => (v, NoExpiry),
            _ => (v, e),
        })
        .collect()
}

fn with(mut body: Value, field: &str, v: &Field) -> String {
    if let Some(v) = v {
        body[field] = v.clone();
    }
    body.to_string()
}

fn ms_of(t: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t.as_str().unwrap_or_else(|| panic!("not a time: {t}")))
        .unwrap()
        .timestamp_millis()
}

fn last_transition(h: &mut Host) -> (String, Option<String>) {
    let t = h.transitions();
    let (_, _, to, reason) = t.last().expect("a transition").clone();
    (to, reason)
}

// ------------------------------------------------------------ flows

#[derive(Clone, Copy, Debug, PartialEq)]
enum Plat {
    Oauth2,
    TaobaoTw,
    Lazada,
    Shopline,
}

impl Plat {
    fn name(self) -> &'static str {
        match self {
            Plat::Oauth2 => "myshop",
            Plat::TaobaoTw => "taobao_tw",
            Plat::Lazada => "lazada",
            Plat::Shopline => "shopline",
        }
    }
    /// The code's validity (`code_ttl_s`), in ms.
    fn code_ttl_ms(self) -> i64 {
        match self {
            Plat::TaobaoTw | Plat::Lazada => 1_800_000,
            Plat::Oauth2 | Plat::Shopline => 600_000,
        }
    }
}

fn hmac_hex(key: &str, data: &str) -> String {
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    m.update(data.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// Registers and authorizes `store`, brings the seller back with a code and
/// returns the token_create request (the store is `pending`).
fn start(h: &mut Host, store: &str, p: Plat) -> Value {
    ok(&h.register(store, p.name()));
    let mut a =
        json!({"type": "authorize", "client_id": "c1", "store_id": store, "auth_type": "URL"});
    if p == Plat::Shopline {
        a["seller_id"] = json!("myshop");
    }
    let r = h.send(a);
    ok(&r);
    let url = r["data"]["auth_url"].as_str().unwrap().to_owned();
    if p == Plat::Shopline {
        let nonce = url.rsplit("customField=").next().unwrap().to_owned();
        let mut params = serde_json::Map::new();
        params.insert("appkey".into(), json!("slkey"));
        params.insert("code".into(), json!("slcode"));
        params.insert("customField".into(), json!(nonce));
        params.insert("handle".into(), json!("myshop"));
        params.insert("timestamp".into(), json!("1700000000000"));
        let joined: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
            .collect();
        params.insert(
            "sign".into(),
            json!(hmac_hex("shopline-app-secret", &joined.join("&"))),
        );
        ok(&h.send(json!({"type": "oauth_redirect", "platform": "shopline", "params": params})));
    } else {
        let st = param(&url, "state").unwrap();
        ok(&h.send(json!({"type": "oauth_redirect", "platform": p.name(), "query": format!("code=c-{store}&state={st}")})));
    }
    assert_eq!(h.state(store), "pending");
    h.take_kind("transition");
    h.request("token_create")
}

/// A good token answer of `p` with an access lifetime of `secs`.
fn good_body(h: &Host, p: Plat, secs: i64) -> Value {
    match p {
        Plat::Oauth2 => json!({"access_token": "A", "refresh_token": "R", "expires_in": secs}),
        Plat::TaobaoTw | Plat::Lazada => json!({"access_token": "A", "refresh_token": "R",
            "expires_in": secs, "refresh_expires_in": 72_000,
            "user_info": [{"seller_id": "1001", "user_id": 1}]}),
        Plat::Shopline => {
            let t = chrono::DateTime::from_timestamp_millis(h.now + secs * 1000).unwrap();
            json!({"code": 200, "data": {"accessToken": "A", "expireTime": t.to_rfc3339()}})
        }
    }
}

/// Answers `req` with `body`, and while the store keeps asking for the same
/// purpose, answers each new request (which must come after the backoff)
/// with `body` again, until the store leaves `while_state`. Returns how many
/// requests were answered and the store's final state and reason.
fn keep_answering(
    h: &mut Host,
    store: &str,
    mut req: Value,
    body: &str,
    while_state: &str,
) -> (usize, String, Option<String>) {
    let purpose = req["purpose"].as_str().unwrap().to_owned();
    let mut answered = 0;
    let mut backoff = 1000;
    loop {
        ok(&h.respond(&req, 200, body));
        answered += 1;
        assert_eq!(
            h.state(store),
            while_state,
            "a malformed answer changes nothing"
        );
        let answered_at = h.now;
        assert!(h.jump(), "the store must act again");
        let pos = h
            .outputs
            .iter()
            .position(|o| o["type"] == "http_request" && o["purpose"] == purpose.as_str());
        match pos {
            Some(pos) => {
                assert_eq!(h.now - answered_at, backoff, "retried after the backoff");
                backoff = (backoff * 2).min(300_000);
                req = h.outputs.remove(pos);
            }
            None => {
                let (to, reason) = last_transition(h);
                assert_eq!(h.state(store), to);
                return (answered, to, reason);
            }
        }
    }
}

/// Create: the answer `body` (built at the engine's now) leads to `want`.
fn check_create(p: Plat, ctx: &str, want: Expect, body: impl Fn(&Host) -> String) {
    let mut h = Host::new();
    let code_at = h.now;
    let req = start(&mut h, "s", p);
    let body = body(&h);
    let ctx = format!("{p:?} create {ctx}");
    match want {
        Malformed => {
            let (n, to, reason) = keep_answering(&mut h, "s", req, &body, "pending");
            assert!(n >= 5, "{ctx}: retried {n} times");
            assert_eq!(
                (to.as_str(), reason.as_deref()),
                ("failed", Some("code_expired")),
                "{ctx}"
            );
            assert_eq!(
                h.now - code_at,
                p.code_ttl_ms(),
                "{ctx}: at the code deadline"
            );
            let q = h.query("s");
            assert_eq!(q["last_error"]["reason"], "code_expired", "{ctx}");
            assert_eq!(q["access_expires_at"], Value::Null, "{ctx}");
        }
        _ => {
            ok(&h.respond(&req, 200, &body));
            let q = h.query("s");
            assert_eq!(q["state"], "authorized", "{ctx}: {q}");
            let exp = &q["access_expires_at"];
            match want {
                TenYears => assert_eq!(ms_of(exp), h.now + TEN_YEARS_MS, "{ctx}"),
                Exactly(s) => assert_eq!(ms_of(exp), h.now + s * 1000, "{ctx}"),
                NoExpiry => assert_eq!(*exp, Value::Null, "{ctx}"),
                Malformed => unreachable!(),
            }
        }
    }
}

/// Refresh: a good create (access 2 h), then the refresh answer `body`
/// leads to `want`; a malformed one is retried until the access token
/// expires.
fn check_refresh(p: Plat, ctx: &str, want: Expect, body: impl Fn(&Host) -> String) {
    let mut h = Host::new();
    let req = start(&mut h, "s", p);
    let first = good_body(&h, p, 7200).to_string();
    ok(&h.respond(&req, 200, &first));
    assert_eq!(h.state("s"), "authorized");
    h.take();
    let expires = h.now + 7_200_000;
    assert!(h.jump());
    let rf = h.request("token_refresh");
    assert_eq!(
        h.now,
        expires - 1_800_000,
        "refresh due 30 min before expiry"
    );
    let body = body(&h);
    let ctx = format!("{p:?} refresh {ctx}");
    match want {
        Malformed => {
            let (n, to, reason) = keep_answering(&mut h, "s", rf, &body, "authorized");
            assert!(n >= 5, "{ctx}: retried {n} times");
            assert_eq!(
                (to.as_str(), reason.as_deref()),
                ("expired", Some("token_expired")),
                "{ctx}"
            );
            assert_eq!(h.now, expires, "{ctx}: at the access token's expiry");
        }
        _ => {
            ok(&h.respond(&rf, 200, &body));
            let q = h.query("s");
            assert_eq!(q["state"], "authorized", "{ctx}");
            let exp = &q["access_expires_at"];
            match want {
                TenYears => assert_eq!(ms_of(exp), h.now + TEN_YEARS_MS, "{ctx}"),
                Exactly(s) => assert_eq!(ms_of(exp), h.now + s * 1000, "{ctx}"),
                NoExpiry => assert_eq!(*exp, Value::Null, "{ctx}"),
                Malformed => unreachable!(),
            }
        }
    }
}

// ------------------------------------------------------------ expires_in

#[test]
fn oauth2_expires_in_extremes_on_create_and_refresh() {
    for (v, want) in oauth2_access_cases() {
        let ctx = format!("expires_in={v:?}");
        check_create(Plat::Oauth2, &ctx, want, |_| {
            with(
                json!({"access_token": "A", "refresh_token": "R"}),
                "expires_in",
                &v,
            )
        });
        check_refresh(Plat::Oauth2, &ctx, want, |_| {
            with(json!({"access_token": "A2"}), "expires_in", &v)
        });
    }
}

#[test]
fn iop_expires_in_extremes_on_create_and_refresh() {
    for p in [Plat::TaobaoTw, Plat::Lazada] {
        for (v, want) in access_cases() {
            let ctx = format!("expires_in={v:?}");
            check_create(p, &ctx, want, |_| {
                let b = json!({"access_token": "A", "refresh_token": "R", "refresh_expires_in": 72_000,
                               "user_info": [{"seller_id": "1001", "user_id": 1}]});
                with(b, "expires_in", &v)
            });
            check_refresh(p, &ctx, want, |_| {
                let b = json!({"access_token": "A2", "refresh_token": "R2", "refresh_expires_in": 72_000});
                with(b, "expires_in", &v)
            });
        }
    }
}

// ------------------------------------------------------------ refresh_expires_in

/// What a `refresh_expires_in` leads to on create: Some(expected
/// refresh_expires_at offset in ms) / None (no refresh) / Err (malformed).
fn refresh_cases() -> Vec<(Field, Result<Option<i64>, ()>)> {
    vec![
        (Some(json!(1e16)), Ok(Some(TEN_YEARS_MS))),
        (Some(json!(1e308)), Ok(Some(TEN_YEARS_MS))),
        (Some(json!(i64::MAX)), Ok(Some(TEN_YEARS_MS))),
        (Some(json!(u64::MAX)), Ok(Some(TEN_YEARS_MS))),
        (Some(json!(u64::MAX.to_string())), Ok(Some(TEN_YEARS_MS))),
        (Some(json!("1e+16")), Ok(Some(TEN_YEARS_MS))),
        (Some(json!(315_360_001)), Ok(Some(TEN_YEARS_MS))),
        (Some(json!(259_200)), Ok(Some(259_200_000))),
        // Seed 003: 0 means no refresh.
        (Some(json!(0)), Ok(None)),
        (Some(json!("0")), Ok(None)),
        (Some(json!(-5)), Err(())),
        (Some(json!(0.5)), Err(())),
        (Some(json!("NaN")), Err(())),
        (Some(json!(true)), Err(())),
    ]
}

#[test]
fn refresh_expires_in_extremes_on_create() {
    for p in [Plat::TaobaoTw, Plat::Lazada, Plat::Oauth2] {
        for (v, want) in refresh_cases() {
            let ctx = format!("{p:?} refresh_expires_in={v:?}");
            let mut h = Host::new();
            let code_at = h.now;
            let req = start(&mut h, "s", p);
            let mut base = good_body(&h, p, 7200);
            base.as_object_mut().unwrap().remove("refresh_expires_in");
            let body = with(base, "refresh_expires_in", &v);
            match want {
                Err(()) => {
                    let (_, to, reason) = keep_answering(&mut h, "s", req, &body, "pending");
                    assert_eq!(
                        (to.as_str(), reason.as_deref()),
                        ("failed", Some("code_expired")),
                        "{ctx}"
                    );
                    assert_eq!(h.now - code_at, p.code_ttl_ms(), "{ctx}");
                }
                Ok(offset) => {
                    ok(&h.respond(&req, 200, &body));
                    let q = h.query("s");
                    assert_eq!(q["state"], "authorized", "{ctx}");
                    assert_eq!(ms_of(&q["access_expires_at"]), h.now + 7_200_000, "{ctx}");
                    match offset {
                        Some(o) => assert_eq!(ms_of(&q["refresh_expires_at"]), h.now + o, "{ctx}"),
                        None => {
                            assert_eq!(q["refresh_expires_at"], Value::Null, "{ctx}");
                            // No refresh: the store expires at the access expiry.
                            let exp = h.now + 7_200_000;
                            h.take();
                            assert!(h.jump());
                            assert!(h.take_kind("http_request").is_empty(), "{ctx}");
                            assert_eq!(h.now, exp, "{ctx}");
                            assert_eq!(h.state("s"), "expired", "{ctx}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn iop_refresh_answer_keeps_the_first_refresh_expiry_even_when_huge() {
    let mut h = Host::new();
    let req = start(&mut h, "s", Plat::TaobaoTw);
    let body = json!({"access_token": "A", "refresh_token": "R", "expires_in": 7200,
        "refresh_expires_in": "1e+16", "user_info": [{"seller_id": "1001"}]});
    ok(&h.respond(&req, 200, &body.to_string()));
    let first = ms_of(&h.query("s")["refresh_expires_at"]);
    assert_eq!(first, h.now + TEN_YEARS_MS);
    h.take();
    assert!(h.jump());
    let rf = h.request("token_refresh");
    let body =
        json!({"access_token": "A2", "expires_in": u64::MAX, "refresh_expires_in": u64::MAX});
    ok(&h.respond(&rf, 200, &body.to_string()));
    let q = h.query("s");
    assert_eq!(ms_of(&q["access_expires_at"]), h.now + TEN_YEARS_MS);
    assert_eq!(ms_of(&q["refresh_expires_at"]), first, "never moved later");
}

// ------------------------------------------------------------ Shopline expireTime

/// Shopline `expireTime` values (absolute), built from the answer's `now`.
fn shopline_cases(now: i64) -> Vec<(Field, Expect)> {
    let iso = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S%.3f+00:00")
            .to_string()
    };
    vec![
        (Some(json!(iso(now + 3_600_000))), Exactly(3600)),
        (Some(json!(now + 3_600_000)), Exactly(3600)),
        (Some(json!((now + 3_600_000).to_string())), Exactly(3600)),
        (Some(json!(iso(now + TEN_YEARS_MS))), TenYears),
        (Some(json!(iso(now + TEN_YEARS_MS + 1))), TenYears),
        (Some(json!("9999-12-31T23:59:59.999Z")), TenYears),
        (Some(json!("9999-12-31 23:59:59")), TenYears),
        (Some(json!("+10000-01-01T00:00:00.000Z")), TenYears),
        (Some(json!("10000-01-01T00:00:00Z")), TenYears),
        (Some(json!("+275760-09-13T00:00:00.000Z")), TenYears),
        (Some(json!("123456789012-06-30T12:00:00+08:00")), TenYears),
        (Some(json!(1e16)), TenYears),
        (Some(json!(1e308)), TenYears),
        (Some(json!(i64::MAX)), TenYears),
        (Some(json!(u64::MAX)), TenYears),
        (Some(json!(u64::MAX.to_string())), TenYears),
        (Some(json!("1e+16")), TenYears),
        // Not ahead of the answer, or no time at all.
        (Some(json!(iso(now))), Malformed),
        (Some(json!(iso(now - 1000))), Malformed),
        (Some(json!("+10001-02-29T00:00:00Z")), Malformed),
        (Some(json!(-5)), Malformed),
        (Some(json!(0)), Malformed),
        (Some(json!(0.5)), Malformed),
        (Some(json!("NaN")), Malformed),
        (Some(json!("tomorrow")), Malformed),
        (Some(json!(true)), Malformed),
        (Some(Value::Null), Malformed),
        (None, Malformed),
    ]
}

#[test]
fn shopline_expire_time_extremes_on_create_and_refresh() {
    let body = |f: &Field| {
        let mut b = json!({"code": 200, "data": {"accessToken": "SLT"}});
        if let Some(v) = f {
            b["data"]["expireTime"] = v.clone();
        }
        b.to_string()
    };
    // The cases are built from the engine's now at the answer: T0 on
    // create, T0 + 2 h − 30 min on refresh.
    let refresh_now = T0 + 7_200_000 - 1_800_000;
    let on_refresh = shopline_cases(refresh_now);
    for (i, (v, want)) in shopline_cases(T0).into_iter().enumerate() {
        check_create(Plat::Shopline, &format!("expireTime={v:?}"), want, |h| {
            assert_eq!(h.now, T0);
            body(&v)
        });
        let (v, want) = &on_refresh[i];
        check_refresh(Plat::Shopline, &format!("expireTime={v:?}"), *want, |h| {
            assert_eq!(h.now, refresh_now);
            body(v)
        });
    }
}

// ------------------------------------------------------------ times written

/// RFC 3339 UTC with milliseconds, `Z` and a four-digit year from 1970 to 9999.
fn assert_time(t: &str, what: &str) {
    let b = t.as_bytes();
    let shape = b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    assert!(
        shape,
        "{what}: {t} is not RFC 3339 UTC with a four-digit year"
    );
    let year: i32 = t[..4].parse().unwrap();
    assert!((1970..=9999).contains(&year), "{what}: {t}");
    chrono::DateTime::parse_from_rfc3339(t).unwrap_or_else(|_| panic!("{what}: {t}"));
}

/// Every string in `v` that looks like a date-time (digits or a sign, then
/// `-..-..T`) must be a valid time; integer times (`*_at`, timers) must lie
/// within 0..=MAX_TIME_MS.
fn check_times(v: &Value, what: &str) {
    match v {
        Value::String(s) => {
            let looks = s.find('T').is_some_and(|i| {
                i >= 10
                    && s[..i]
                        .bytes()
                        .all(|c| c.is_ascii_digit() || c == b'-' || c == b'+')
                    && s[..i].matches('-').count() >= 2
            });
            if looks {
                assert_time(s, what);
            } else if let Ok(inner) = serde_json::from_str::<Value>(s) {
                if inner.is_object() {
                    check_times(&inner, what);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| check_times(x, what)),
        Value::Object(o) => {
            for (k, x) in o {
                if k.ends_with("_at") || k == "now" {
                    if let Some(n) = x.as_i64() {
                        assert!((0..=MAX_TIME_MS).contains(&n), "{what}: {k} = {n}");
                    }
                }
                if k == "timers" {
                    for t in x.as_array().into_iter().flatten() {
                        let at = t[1].as_i64().unwrap();
                        assert!((0..=MAX_TIME_MS).contains(&at), "{what}: timer at {at}");
                    }
                }
                check_times(x, &format!("{what}.{k}"));
            }
        }
        _ => {}
    }
}

fn huge_config() -> Value {
    let mut c = config();
    c["timing"] = json!({"request_ttl_s": 31_622_400, "request_timeout_s": 31_622_400, "refresh_lead_s": 31_622_400});
    c["platforms"]["hugeshop"] = json!({"kind": "oauth2", "authorize_url": "https://as.example/authorize",
        "token_url": "https://as.example/token", "code_ttl_s": u64::MAX, "refresh_lead_s": u64::MAX});
    c["apps"]["hugeshop"] = json!({"app_key": "cid", "app_secret": "oauth2-app-secret", "redirect_uri": "https://host.example/cb/hugeshop"});
    c["apps"]["taobao"]["recheck_interval_s"] = json!(u64::MAX);
    c
}

/// Drives every kind of store of the huge configuration from `start`, with
/// extreme lifetimes, checking every output, query and snapshot.
fn drive_near_the_end_of_time(start: i64) {
    let mut h = Host::with(huge_config());
    h.now = start;
    let mut seen = Vec::new();
    let notify = |store: &str, platform: &str| {
        json!({"type": "register_store", "client_id": "c1", "store_id": store, "platform": platform,
               "notify_url": "https://biz.example/notify"})
    };
    for (store, platform) in [
        ("o", "hugeshop"),
        ("i", "taobao_tw"),
        ("c", "taobao"),
        ("k", "mykey"),
    ] {
        ok(&h.send(notify(store, platform)));
    }
    ok(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "k", "auth_type": "KEY", "auth_info": {"token": "tok"}})));
    for (store, platform) in [("o", "hugeshop"), ("i", "taobao_tw")] {
        let r = h.send(json!({"type": "authorize", "client_id": "c1", "store_id": store, "auth_type": "URL", "redirect_url": "https://biz.example/r"}));
        let st = param(r["data"]["auth_url"].as_str().unwrap(), "state").unwrap();
        ok(&h.send(json!({"type": "oauth_redirect", "platform": platform, "query": format!("code=c&state={st}")})));
    }
    ok(&h.send(json!({"type": "authorize", "client_id": "c1", "store_id": "c", "auth_type": "URL", "seller_id": "shop1"})));
    // Checks the outputs not yet seen; returns the requests among them.
    let check = |h: &mut Host, seen: &mut Vec<Value>| -> Vec<Value> {
        let mut requests = Vec::new();
        for o in h.take() {
            check_times(&o, "output");
            if o["type"] == "http_request" {
                requests.push(o.clone());
            }
            seen.push(o);
        }
        for s in ["o", "i", "c", "k"] {
            let q = h.query(s);
            check_times(&q, "query");
            for f in ["access_expires_at", "refresh_expires_at"] {
                if let Some(t) = q[f].as_str() {
                    assert_time(t, f);
                }
            }
        }
        let snap: Value = serde_json::from_str(&h.engine.snapshot()).unwrap();
        check_times(&snap, "snapshot");
        if let Some(t) = h.engine.poll_timeout_ms() {
            assert!(t <= MAX_TIME_MS, "poll_timeout {t}");
        }
        requests
    };
    let mut requests = check(&mut h, &mut seen);
    for _ in 0..60 {
        for r in std::mem::take(&mut requests) {
            let body = match r["purpose"].as_str().unwrap() {
                "token_create" | "token_refresh" if r["store_id"] == "o" => {
                    json!({"access_token": "OA", "refresh_token": "OR", "expires_in": 1e308, "refresh_expires_in": u64::MAX}).to_string()
                }
                "token_create" | "token_refresh" => json!({"access_token": "IA", "refresh_token": "IR",
                    "expires_in": "1e+16", "refresh_expires_in": i64::MAX, "user_info": [{"seller_id": "1001"}]}).to_string(),
                "status_check" => r#"{"code":0,"data":{"status":"subAuthorize","withholding_money":1}}"#.to_owned(),
                // Notifications fail, so they are retried until abandoned.
                _ => String::new(),
            };
            let status = if r["purpose"] == "notify" { 500 } else { 200 };
            // A request may have been cancelled meanwhile (its store expired).
            let reply = h.respond(&r, status, &body);
            assert!(matches!(code(&reply), 200 | 900008), "{reply}");
            requests.extend(check(&mut h, &mut seen));
        }
        if !h.jump() {
            break;
        }
        requests.extend(check(&mut h, &mut seen));
    }
    check(&mut h, &mut seen);
    let authorized: Vec<&Value> = seen
        .iter()
        .filter(|o| o["type"] == "transition" && o["to"] == "authorized")
        .collect();
    assert!(
        authorized.len() >= 4,
        "every store got authorized: {authorized:?}"
    );
    assert!(
        seen.iter().any(|o| o["purpose"] == "notify"),
        "notifications were sent"
    );
}

#[test]
fn every_time_written_near_year_9999_has_four_digits() {
    // Ten years, a day, an hour and a second before the end of year 9999.
    for before in [TEN_YEARS_MS, 86_400_000, 3_600_000, 1000] {
        drive_near_the_end_of_time(MAX_TIME_MS - before);
    }
    // And from an ordinary now, with the same huge lifetimes and settings.
    drive_near_the_end_of_time(T0);
}

#[test]
fn expiry_cut_at_year_9999_and_now_beyond_it_is_clamped() {
    let mut h = Host::new();
    h.now = MAX_TIME_MS - 60_000;
    let req = start(&mut h, "s", Plat::Oauth2);
    ok(&h.respond(&req, 200, r#"{"access_token":"A","expires_in":1e16}"#));
    let q = h.query("s");
    assert_eq!(q["access_expires_at"], "9999-12-31T23:59:59.999Z");
    // A host clock past 9999 is clamped: the token expires at the last
    // millisecond, and the transition is written with a four-digit year.
    h.take();
    h.tick(10 * TEN_YEARS_MS);
    assert_eq!(h.state("s"), "expired");
    let t = h.take_kind("transition");
    assert_eq!(t.last().unwrap()["at"], "9999-12-31T23:59:59.999Z");
}
