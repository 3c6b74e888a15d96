//! The structured target: a sequence of inputs built from a small set of
//! kinds with fuzzer-chosen fields, driven through the C ABI. The driver
//! remembers what the engine handed out (state nonces from auth URLs, open
//! request ids) so that redirects and HTTP answers reach deep states, and
//! checks on top of the shared invariants:
//!
//! - request ids never repeat, not even across a restore;
//! - an answer to a request already answered, or open before a restore, is
//!   `unknown_request`;
//! - transitions of a store are numbered 1, 2, 3, … and each starts where
//!   the previous one ended;
//! - after `handle_timeout(now)` nothing is due at or before `now`;
//! - two runs of the same sequence give the same transcript (determinism).

use crate::{Engine, T0, pct};
use arbitrary::Arbitrary;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use shopauth::ffi::shopauth_status::{self, *};
use std::collections::{BTreeMap, BTreeSet};

/// (client, store): four stores of two clients, and one pair whose client
/// does not own the store.
const STORE_REFS: &[(&str, &str)] = &[
    ("c1", "s1"),
    ("c2", "s2"),
    ("c1", "s3"),
    ("c2", "s4"),
    ("c2", "s1"),
];
const PLATFORMS: &[&str] = &[
    "myshop",
    "basicshop",
    "mykey",
    "apikey",
    "taobao_tw",
    "lazada",
    "shopline",
    "taobao",
    "nope",
];
const SELLERS: &[&str] = &[
    "seller1", "seller2", "SELLER1", "shop-a", "1001", "2001", "-bad-", "",
];
const TOKENS: &[&str] = &["SECRET-tok-1", "SECRET-tok-2", "SECRET-tok-3"];
const REDIRECT_URLS: &[&str] = &[
    "https://biz.example/done",
    "https://biz.example/done?x=1&y=2",
    "https://biz.example/done#top",
    "http://biz.example/",
    "ftp://biz.example/",
    "https://user:pw@biz.example/",
    "not a url",
];
const STATUSES: &[u16] = &[
    200, 200, 200, 201, 204, 302, 400, 401, 403, 404, 429, 500, 502, 503,
];
const OAUTH_ERRORS: &[&str] = &[
    "invalid_grant",
    "invalid_request",
    "invalid_client",
    "temporarily_unavailable",
    "slow_down",
];
const IOP_ERRORS: &[&str] = &[
    "InvalidCode",
    "IllegalRefreshToken",
    "AUTH_TYPE_UNSUPPORTED",
    "ApiCallLimit",
    "IncompleteSignature",
    "ISP.Error",
];
const SHOPLINE_CODES: &[i64] = &[200, 400, 401, 429, 500];
const VV_CODES: &[i64] = &[
    0, 100, 101, 103, 200, 202, 203, 204, 302, 303, 401, 404, 999,
];
const DMJ_CODES: &[i64] = &[0, 132, 422, 200, 2011, 2010, 7];
const REDIRECT_ERRORS: &[&str] = &["access_denied", "server_error", "invalid_scope"];

/// Where a redirect's parameters come from.
#[derive(Arbitrary, Debug, Clone)]
pub enum Outcome {
    /// `code` and the nonce.
    Code(u8),
    /// `error` and the nonce.
    Error(u8),
    /// Only the nonce: `illegal_param`, the nonce stays valid.
    Neither,
}

/// An HTTP answer body.
#[derive(Arbitrary, Debug, Clone)]
pub enum Body {
    /// The one a well-behaved platform would give for this request.
    Plausible,
    OAuth2Ok {
        expires_in: u32,
        as_string: bool,
        refresh: bool,
    },
    OAuth2Error(u8),
    IopOk {
        expires_in: u32,
        refresh_expires_in: u32,
        sellers: Vec<u8>,
        country: bool,
    },
    IopError(u8),
    ShoplineOk {
        lifetime_s: u32,
    },
    ShoplineError(u8),
    VvTool {
        code: u8,
        authorized: bool,
        money: u16,
        top_level: bool,
    },
    Damaijia {
        code: u8,
        authorized: bool,
        money: u16,
    },
    Empty,
    Text(String),
}

/// One step of a sequence.
#[derive(Arbitrary, Debug, Clone)]
pub enum Step {
    Register {
        store: u8,
        platform: u8,
        notify: bool,
        notify_secret: bool,
    },
    Remove {
        store: u8,
    },
    Authorize {
        store: u8,
        good: bool,
        url: bool,
        seller: Option<u8>,
        token: Option<u8>,
        api_pair: Option<(u8, u8)>,
        redirect: Option<u8>,
    },
    Redirect {
        nonce: u8,
        platform: Option<u8>,
        outcome: Outcome,
        as_params: bool,
        bad_sign: bool,
    },
    Respond {
        request: u8,
        status: u8,
        raw_status: u16,
        body: Body,
    },
    Fail {
        request: u8,
    },
    AnswerAll,
    Stale {
        index: u8,
    },
    UnknownId {
        n: u16,
    },
    TokenRejected {
        store: u8,
    },
    Revoke {
        store: u8,
    },
    Query {
        store: u8,
    },
    Credentials {
        store: u8,
    },
    Advance {
        ms: u32,
    },
    AdvanceHours {
        hours: u8,
    },
    ToNextTimeout,
    Backwards {
        ms: u32,
    },
    SnapshotRestore {
        fresh: bool,
    },
    /// Register (when needed), authorize well, come back with a code and
    /// answer every request plausibly: reaches `authorized` in one step.
    Happy {
        store: u8,
        platform: u8,
        notify: bool,
        redirect: u8,
    },
}

/// A whole case.
#[derive(Arbitrary, Debug, Clone)]
pub struct Case {
    pub steps: Vec<Step>,
}

fn pick<'a>(pool: &[&'a str], i: u8) -> &'a str {
    pool[i as usize % pool.len()]
}

#[derive(Debug, Clone)]
struct Req {
    id: String,
    purpose: String,
    url: String,
    store: (String, String),
}

#[derive(Debug, Clone)]
struct Nonce {
    platform: String,
    nonce: String,
    /// The Shopline handle the auth URL was built for.
    handle: Option<String>,
}

/// Runs a case; returns its transcript.
pub struct Driver {
    engine: Engine,
    now: i64,
    /// Store (client, store) → platform it was registered on.
    platforms: BTreeMap<(String, String), String>,
    nonces: Vec<Nonce>,
    open: Vec<Req>,
    /// Answered, failed or pre-restore request ids.
    done: Vec<String>,
    ids: BTreeSet<String>,
    /// Store → (last seq, last to).
    seqs: BTreeMap<(String, String), (u64, String)>,
    n: u64,
    trace: bool,
    pub transcript: Vec<String>,
}

impl Default for Driver {
    fn default() -> Self {
        Driver::new()
    }
}

impl Driver {
    pub fn new() -> Driver {
        Driver {
            engine: Engine::fresh(),
            now: T0,
            platforms: BTreeMap::new(),
            nonces: Vec::new(),
            open: Vec::new(),
            done: Vec::new(),
            ids: BTreeSet::new(),
            seqs: BTreeMap::new(),
            n: 0,
            trace: std::env::var_os("SHOPAUTH_FUZZ_TRACE").is_some(),
            transcript: Vec::new(),
        }
    }

    /// Adds a line to the transcript (and prints it with SHOPAUTH_FUZZ_TRACE=1,
    /// to follow a case up to the step that fails).
    fn log(&mut self, line: String) {
        if self.trace {
            eprintln!("{line}");
        }
        self.transcript.push(line);
    }

    fn input(&mut self, v: &Value) -> (shopauth_status, Value) {
        let text = v.to_string();
        self.input_text(&text)
    }

    fn input_text(&mut self, text: &str) -> (shopauth_status, Value) {
        let (s, reply) = self.engine.handle(text.as_bytes(), self.now);
        self.log(format!("> {text}\n< {s:?} {reply}"));
        let is_credentials = serde_json::from_str::<Value>(text)
            .ok()
            .is_some_and(|v| v.get("type").and_then(Value::as_str) == Some("credentials"));
        if !is_credentials || s != SHOPAUTH_OK {
            assert!(
                !reply.to_string().contains("SECRET"),
                "a secret in a reply to {text}: {reply}"
            );
        }
        self.learn_nonce(&reply);
        self.pump();
        (s, reply)
    }

    fn learn_nonce(&mut self, reply: &Value) {
        let Some(url) = reply.pointer("/data/auth_url").and_then(Value::as_str) else {
            return;
        };
        let nonce = ["state=", "customField="].iter().find_map(|k| {
            let at = url
                .find(&format!("?{k}"))
                .or_else(|| url.find(&format!("&{k}")))?;
            let rest = &url[at + 1 + k.len()..];
            Some(rest.split(['&', '#']).next().unwrap_or("").to_owned())
        });
        let Some(nonce) = nonce.filter(|n| !n.is_empty()) else {
            return;
        };
        let platform = reply
            .pointer("/data/platform")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| platform_of_url(url))
            .unwrap_or_default();
        let handle = url
            .strip_prefix("https://")
            .and_then(|r| r.split_once(".myshopline.com"))
            .map(|(h, _)| h.to_owned());
        if !self.nonces.iter().any(|n| n.nonce == nonce) {
            self.nonces.push(Nonce {
                platform,
                nonce,
                handle,
            });
        }
    }

    /// Drains outputs and checks them against what came before.
    fn pump(&mut self) {
        for o in self.engine.drain() {
            self.log(format!("= {o}"));
            let key = || {
                (
                    o["client_id"].as_str().unwrap_or("").to_owned(),
                    o["store_id"].as_str().unwrap_or("").to_owned(),
                )
            };
            match o["type"].as_str().unwrap_or("") {
                "http_request" => {
                    let id = o["request_id"].as_str().unwrap_or("").to_owned();
                    assert!(
                        self.ids.insert(id.clone()),
                        "request id {id} issued twice: {o}"
                    );
                    self.open.push(Req {
                        id,
                        purpose: o["purpose"].as_str().unwrap_or("").to_owned(),
                        url: o["url"].as_str().unwrap_or("").to_owned(),
                        store: key(),
                    });
                }
                "transition" => {
                    let k = key();
                    let seq = o["seq"].as_u64().unwrap_or(0);
                    let from = o["from"].as_str().unwrap_or("").to_owned();
                    let to = o["to"].as_str().unwrap_or("").to_owned();
                    if let Some((last, last_to)) = self.seqs.get(&k) {
                        assert_eq!(seq, last + 1, "transition seq of {k:?} after {last}: {o}");
                        assert_eq!(
                            &from, last_to,
                            "transition of {k:?} does not start where the last ended: {o}"
                        );
                    } else {
                        assert_eq!(seq, 1, "first transition of {k:?}: {o}");
                    }
                    if to == "removed" {
                        self.seqs.remove(&k);
                    } else {
                        self.seqs.insert(k, (seq, to));
                    }
                }
                _ => {}
            }
        }
    }

    fn fire(&mut self, now: i64) {
        self.now = self.now.max(now);
        self.engine.handle_timeout(self.now);
        self.pump();
        if let Some(t) = self.engine.poll_timeout() {
            assert!(
                t > self.now,
                "after handle_timeout({}) poll_timeout is {t}: something due was not fired",
                self.now
            );
        }
        self.log(format!(
            "@ {} next {:?}",
            self.now,
            self.engine.poll_timeout()
        ));
    }

    fn store_ref(&self, store: u8) -> (String, String) {
        let (c, s) = STORE_REFS[store as usize % STORE_REFS.len()];
        (c.to_owned(), s.to_owned())
    }

    fn respond(&mut self, req: Req, status: u16, body: &str) {
        let v = json!({"type": "http_response", "request_id": req.id, "status": status,
                       "headers": [["Content-Type", "application/json"]], "body": body});
        let (s, reply) = self.input(&v);
        // Every open request the driver knows of is either still open (OK) or
        // was closed by the engine meanwhile (timed out, superseded): then
        // unknown_request.
        if s != SHOPAUTH_OK {
            assert_eq!(
                reply["kind"], "unknown_request",
                "answer to {}: {reply}",
                req.id
            );
        }
        self.done.push(req.id);
    }

    fn plausible(&mut self, req: &Req) -> (u16, String) {
        self.n += 1;
        let n = self.n;
        let platform = self
            .platforms
            .get(&req.store)
            .cloned()
            .or_else(|| platform_of_url(&req.url))
            .unwrap_or_default();
        match req.purpose.as_str() {
            "token_create" | "token_refresh" => match platform.as_str() {
                "taobao_tw" | "lazada" => (200, iop_ok(n, 3600, 7200, &["1001".into()], false)),
                "shopline" => (200, shopline_ok(self.now, n, 7200)),
                _ => (200, oauth2_ok(n, 3600, false, true)),
            },
            "status_check" => (
                200,
                json!({"code": 0, "data": {"status": "subAuthorize", "withholding_money": 1}})
                    .to_string(),
            ),
            "key_verify" => (200, String::new()),
            _ => (204, String::new()),
        }
    }

    fn body(&mut self, req: &Req, body: &Body) -> Option<String> {
        self.n += 1;
        let n = self.n;
        Some(match body {
            Body::Plausible => return None,
            Body::OAuth2Ok { expires_in, as_string, refresh } => oauth2_ok(n, *expires_in as u64 % 200_000, *as_string, *refresh),
            Body::OAuth2Error(i) => json!({"error": pick(OAUTH_ERRORS, *i), "error_description": "nope"}).to_string(),
            Body::IopOk { expires_in, refresh_expires_in, sellers, country } => {
                let s: Vec<String> = sellers.iter().take(3).map(|&i| pick(SELLERS, i).to_owned()).collect();
                iop_ok(n, *expires_in as u64 % 200_000, *refresh_expires_in as u64 % 400_000, &s, *country)
            }
            Body::IopError(i) => json!({"code": pick(IOP_ERRORS, *i), "type": "ISV", "message": "m", "request_id": "r"}).to_string(),
            Body::ShoplineOk { lifetime_s } => shopline_ok(self.now, n, *lifetime_s as i64 % 200_000 - 1000),
            Body::ShoplineError(i) => json!({"code": SHOPLINE_CODES[*i as usize % SHOPLINE_CODES.len()], "message": "m"}).to_string(),
            Body::VvTool { code, authorized, money, top_level } => {
                let c = VV_CODES[*code as usize % VV_CODES.len()];
                let st = if *authorized { "subAuthorize" } else { "unAuthorize" };
                if *top_level {
                    json!({"code": c, "status": st, "withholding_money": money, "url": "https://vv.example/auth/x"}).to_string()
                } else {
                    json!({"code": c, "msg": "m", "data": {"status": st, "withholding_money": money, "url": "https://vv.example/auth/y"}}).to_string()
                }
            }
            Body::Damaijia { code, authorized, money } => {
                let c = DMJ_CODES[*code as usize % DMJ_CODES.len()];
                let st = if *authorized { "subAuthorize" } else { "unAuthorize" };
                json!({"status": c, "message": "m", "data": {"status": st, "deduct_money": money}}).to_string()
            }
            Body::Empty => String::new(),
            Body::Text(t) => {
                let _ = req;
                t.replace("SECRET", "secret")
            }
        })
    }

    fn redirect(
        &mut self,
        nonce: u8,
        platform: Option<u8>,
        outcome: &Outcome,
        as_params: bool,
        bad_sign: bool,
    ) {
        let (nonce, own_platform, handle) = if self.nonces.is_empty() || nonce == 255 {
            ("0_bogus".to_owned(), "myshop".to_owned(), None)
        } else {
            let n = &self.nonces[nonce as usize % self.nonces.len()];
            (n.nonce.clone(), n.platform.clone(), n.handle.clone())
        };
        let platform = platform.map_or(own_platform, |p| pick(PLATFORMS, p).to_owned());
        self.n += 1;
        let mut params: Vec<(String, String)> = Vec::new();
        match outcome {
            Outcome::Code(c) => params.push(("code".into(), format!("code-{c}-{}", self.n))),
            Outcome::Error(e) => params.push(("error".into(), pick(REDIRECT_ERRORS, *e).into())),
            Outcome::Neither => {}
        }
        if platform == "shopline" {
            params.push(("customField".into(), nonce));
            params.push(("appkey".into(), "slkey".into()));
            params.push(("handle".into(), handle.unwrap_or_else(|| "shop-a".into())));
            params.push(("timestamp".into(), self.now.to_string()));
            params.sort();
            let joined = params
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&");
            let key: &[u8] = if bad_sign { b"wrong" } else { b"CFGSECRET-sl" };
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("hmac key");
            mac.update(joined.as_bytes());
            params.push(("sign".into(), hex::encode(mac.finalize().into_bytes())));
        } else {
            params.push(("state".into(), nonce));
        }
        let v = if as_params {
            let obj: serde_json::Map<String, Value> = params
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            json!({"type": "oauth_redirect", "platform": platform, "params": obj})
        } else {
            let q = params
                .iter()
                .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
                .collect::<Vec<_>>()
                .join("&");
            json!({"type": "oauth_redirect", "platform": platform, "query": q})
        };
        self.input(&v);
    }

    /// A valid `authorize` for the store's platform.
    fn good_authorize(&mut self, store: u8, redirect: Option<u8>) {
        let (c, s) = self.store_ref(store);
        let platform = self
            .platforms
            .get(&(c.clone(), s.clone()))
            .cloned()
            .unwrap_or_default();
        self.n += 1;
        let mut v = json!({"type": "authorize", "client_id": c, "store_id": s, "auth_type": "URL"});
        match platform.as_str() {
            "mykey" => {
                v["auth_type"] = json!("KEY");
                v["auth_info"] = json!({"token": format!("SECRET-tok-{}", self.n)});
            }
            "apikey" => {
                v["auth_type"] = json!("KEY");
                v["auth_info"] =
                    json!({"api_key": format!("key-{}", self.n), "api_secret": "SECRET-as"});
            }
            "shopline" => v["seller_id"] = json!(format!("shop-{}", self.n % 3)),
            "taobao" | "basicshop" => v["seller_id"] = json!(format!("{}", 1000 + self.n % 3)),
            _ => {}
        }
        if let Some(r) = redirect {
            v["redirect_url"] = json!(pick(REDIRECT_URLS, r % 3));
        }
        self.input(&v);
    }

    /// One step.
    pub fn step(&mut self, step: &Step) {
        match step {
            Step::Register {
                store,
                platform,
                notify,
                notify_secret,
            } => {
                let (c, s) = self.store_ref(*store);
                let p = pick(PLATFORMS, *platform);
                let mut v =
                    json!({"type": "register_store", "client_id": c, "store_id": s, "platform": p});
                if *notify {
                    v["notify_url"] = json!("https://biz.example/notify?store=1");
                }
                if *notify_secret {
                    v["notify_secret"] = json!("SECRET-notify");
                }
                let (st, _) = self.input(&v);
                if st == SHOPAUTH_OK {
                    self.platforms.insert((c, s), p.to_owned());
                }
            }
            Step::Remove { store } => {
                let (c, s) = self.store_ref(*store);
                let (st, _) =
                    self.input(&json!({"type": "remove_store", "client_id": c, "store_id": s}));
                if st == SHOPAUTH_OK {
                    self.platforms.remove(&(c, s));
                }
            }
            Step::Authorize {
                store,
                good: true,
                redirect,
                ..
            } => {
                self.good_authorize(*store, *redirect);
            }
            Step::Authorize {
                store,
                good: false,
                url,
                seller,
                token,
                api_pair,
                redirect,
            } => {
                let (c, s) = self.store_ref(*store);
                let mut v = json!({"type": "authorize", "client_id": c, "store_id": s,
                                   "auth_type": if *url { "URL" } else { "KEY" }});
                if let Some(i) = seller {
                    v["seller_id"] = json!(pick(SELLERS, *i));
                }
                let mut info = serde_json::Map::new();
                if let Some(t) = token {
                    info.insert("token".into(), json!(pick(TOKENS, *t)));
                }
                if let Some((k, sec)) = api_pair {
                    info.insert("api_key".into(), json!(format!("key-{}", k % 3)));
                    info.insert("api_secret".into(), json!(format!("SECRET-as-{}", sec % 3)));
                }
                if !info.is_empty() {
                    v["auth_info"] = Value::Object(info);
                }
                if let Some(r) = redirect {
                    v["redirect_url"] = json!(pick(REDIRECT_URLS, *r));
                }
                self.input(&v);
            }
            Step::Redirect {
                nonce,
                platform,
                outcome,
                as_params,
                bad_sign,
            } => {
                self.redirect(*nonce, *platform, outcome, *as_params, *bad_sign);
            }
            Step::Respond {
                request,
                status,
                raw_status,
                body,
            } => {
                if self.open.is_empty() {
                    return;
                }
                let req = self.open.remove(*request as usize % self.open.len());
                let (plausible_status, plausible_body) = self.plausible(&req);
                let (status, body) = match self.body(&req, body) {
                    None => (plausible_status, plausible_body),
                    Some(b) => {
                        let st = if *status == 255 {
                            *raw_status
                        } else {
                            STATUSES[*status as usize % STATUSES.len()]
                        };
                        (st, b)
                    }
                };
                self.respond(req, status, &body);
            }
            Step::Fail { request } => {
                if self.open.is_empty() {
                    return;
                }
                let req = self.open.remove(*request as usize % self.open.len());
                let (s, reply) = self.input(&json!({"type": "http_failure", "request_id": req.id, "error": "connection refused"}));
                if s != SHOPAUTH_OK {
                    assert_eq!(
                        reply["kind"], "unknown_request",
                        "failure of {}: {reply}",
                        req.id
                    );
                }
                self.done.push(req.id);
            }
            Step::AnswerAll => {
                let open = std::mem::take(&mut self.open);
                for req in open {
                    let (status, body) = self.plausible(&req);
                    self.respond(req, status, &body);
                }
            }
            Step::Stale { index } => {
                if self.done.is_empty() {
                    return;
                }
                let id = self.done[*index as usize % self.done.len()].clone();
                let (s, reply) = self.input(&json!({"type": "http_response", "request_id": id, "status": 200, "body": "{}"}));
                assert_eq!(
                    s, SHOPAUTH_REJECTED,
                    "a closed request {id} was answered again: {reply}"
                );
                assert_eq!(reply["kind"], "unknown_request", "{reply}");
            }
            Step::UnknownId { n } => {
                let (s, reply) = self.input(&json!({"type": "http_failure", "request_id": format!("bogus-{n}"), "error": "x"}));
                assert_eq!(s, SHOPAUTH_REJECTED, "{reply}");
                assert_eq!(reply["kind"], "unknown_request", "{reply}");
            }
            Step::TokenRejected { store } => {
                let (c, s) = self.store_ref(*store);
                self.input(&json!({"type": "token_rejected", "client_id": c, "store_id": s}));
            }
            Step::Revoke { store } => {
                let (c, s) = self.store_ref(*store);
                self.input(&json!({"type": "revoke", "client_id": c, "store_id": s}));
            }
            Step::Query { store } => {
                let (c, s) = self.store_ref(*store);
                let (st, reply) =
                    self.input(&json!({"type": "query", "client_id": c, "store_id": s}));
                if st == SHOPAUTH_OK {
                    let d = &reply["data"];
                    let state = d["state"].as_str().unwrap_or("");
                    let status = d["status"].as_str().unwrap_or("");
                    assert_eq!(
                        status == "subAuthorize",
                        state == "authorized",
                        "status vs state: {reply}"
                    );
                }
            }
            Step::Credentials { store } => {
                let (c, s) = self.store_ref(*store);
                let (st, reply) =
                    self.input(&json!({"type": "credentials", "client_id": c, "store_id": s}));
                if st != SHOPAUTH_OK {
                    let k = reply["kind"].as_str().unwrap_or("");
                    assert!(
                        k == "not_authorized" || k == "store_not_exist",
                        "credentials refused with {reply}"
                    );
                }
            }
            Step::Advance { ms } => self.fire(self.now + *ms as i64),
            Step::AdvanceHours { hours } => self.fire(self.now + (*hours as i64 % 50) * 3_600_000),
            Step::ToNextTimeout => {
                if let Some(t) = self.engine.poll_timeout() {
                    self.fire(t);
                }
            }
            Step::Backwards { ms } => {
                let earlier = self.now - *ms as i64;
                let (s, reply) = self.engine.handle(
                    br#"{"type":"query","client_id":"c1","store_id":"s1"}"#,
                    earlier,
                );
                self.log(format!("< {s:?} {reply}"));
                self.pump();
            }
            Step::SnapshotRestore { fresh } => {
                let snap = self.engine.snapshot();
                self.log(format!("snapshot {snap}"));
                if *fresh {
                    self.engine = Engine::fresh();
                }
                let (s, err) = self.engine.restore(snap.as_bytes());
                assert_eq!(s, SHOPAUTH_OK, "own snapshot refused: {err:?}");
                // Requests open before are sent again under new ids; the old
                // ids are answered unknown_request from now on.
                let open = std::mem::take(&mut self.open);
                self.done.extend(open.into_iter().map(|r| r.id));
            }
            Step::Happy {
                store,
                platform,
                notify,
                redirect,
            } => {
                let key = self.store_ref(*store);
                if !self.platforms.contains_key(&key) {
                    self.step(&Step::Register {
                        store: *store,
                        platform: *platform,
                        notify: *notify,
                        notify_secret: *notify,
                    });
                }
                let before = self.nonces.len();
                self.good_authorize(*store, Some(*redirect));
                if self.nonces.len() > before {
                    let i = (self.nonces.len() - 1) as u8;
                    self.redirect(i, None, &Outcome::Code(1), false, false);
                }
                self.step(&Step::AnswerAll);
            }
        }
    }

    /// Runs a case to its end: every step, then time far ahead, a final
    /// snapshot that must restore into a fresh engine.
    pub fn run(case: &Case, max_steps: usize) -> Vec<String> {
        let mut d = Driver::new();
        for step in case.steps.iter().take(max_steps) {
            d.log(format!("# {step:?}"));
            d.step(step);
        }
        d.fire(d.now + 3 * 86_400_000);
        let snap = d.engine.snapshot();
        let mut fresh = Engine::fresh();
        let (s, err) = fresh.restore(snap.as_bytes());
        assert_eq!(s, SHOPAUTH_OK, "final snapshot refused: {err:?}");
        d.log(format!("final {snap}"));
        d.transcript
    }
}

fn platform_of_url(url: &str) -> Option<String> {
    let p = if url.starts_with("https://as.example/") {
        "myshop"
    } else if url.starts_with("https://basic.example/") {
        "basicshop"
    } else if url.starts_with("https://auth.taobao.tw/") {
        "taobao_tw"
    } else if url.starts_with("https://auth.lazada.com/") {
        "lazada"
    } else if url.contains(".myshopline.com/") {
        "shopline"
    } else {
        return None;
    };
    Some(p.to_owned())
}

fn oauth2_ok(n: u64, expires_in: u64, as_string: bool, refresh: bool) -> String {
    let mut v =
        json!({"access_token": format!("SECRET-AT-{n}"), "token_type": "bearer", "scope": "read"});
    v["expires_in"] = if as_string {
        json!(expires_in.to_string())
    } else {
        json!(expires_in)
    };
    if refresh {
        v["refresh_token"] = json!(format!("SECRET-RT-{n}"));
    }
    v.to_string()
}

fn iop_ok(
    n: u64,
    expires_in: u64,
    refresh_expires_in: u64,
    sellers: &[String],
    country: bool,
) -> String {
    let list: Vec<Value> = sellers
        .iter()
        .map(|s| json!({"seller_id": s, "user_id": 1, "country": "tw"}))
        .collect();
    let mut v = json!({"access_token": format!("SECRET-AT-{n}"), "refresh_token": format!("SECRET-RT-{n}"),
                       "expires_in": expires_in, "refresh_expires_in": refresh_expires_in.to_string(),
                       "account": "a@example.com", "account_platform": "seller_center", "code": "0", "request_id": "r"});
    v[if country {
        "country_user_info"
    } else {
        "user_info"
    }] = Value::Array(list);
    v.to_string()
}

fn shopline_ok(now_ms: i64, n: u64, lifetime_s: i64) -> String {
    let at = chrono_like(now_ms + lifetime_s * 1000);
    json!({"code": 200, "message": null, "data": {"accessToken": format!("SECRET-AT-{n}"), "expireTime": at, "scope": "read_orders"}})
        .to_string()
}

/// RFC 3339 with milliseconds and an offset, without a date library.
fn chrono_like(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}+00:00",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
