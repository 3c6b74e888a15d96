//! The system under test: a real [`Engine`] driven through its JSON entry
//! point, plus what the harness learned from its outputs (the request id of
//! each request the model named, the nonce of each serial, the auth_url of
//! each attempt, the fingerprint of each credential). After every step it
//! compares the reply, the outputs (per store, in order), `poll_timeout`
//! and every store's `query` view (and `credentials` when authorized) with
//! the reference model, and checks the invariants that do not need a model.
//!
//! A twin engine can shadow the SUT: the same calls to a second engine
//! (determinism), or the calls, with request ids translated, to an engine
//! restored from a snapshot of the SUT (snapshot equivalence).
//!
//! What does not live here: the model (`reference.rs`) and the generation
//! of transitions (`transition.rs`).

#![allow(dead_code)]

use crate::reference::*;
use crate::transition::{NOTIFY_SECRET, Transition};
use chrono::{DateTime, SecondsFormat};
use serde_json::{Value, json};
use shopauth::{Engine, HandleStatus};
use std::collections::{BTreeMap, BTreeSet};

pub const SECRET: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

pub const SHOPEE_PARTNER_ID: &str = "2001887";
pub const SHOPEE_PARTNER_KEY: &str = "shopee-model-partner-key";
pub const LWA_SECRET: &str = "lwa-model-client-secret";

/// Shopee's signature, computed here: hex HMAC-SHA256(partner key,
/// partner_id + path + timestamp).
fn shopee_sign(path: &str, ts: &str) -> String {
    hmac_hex(
        SHOPEE_PARTNER_KEY,
        &format!("{SHOPEE_PARTNER_ID}{path}{ts}"),
    )
}

/// Checks the `partner_id`, `timestamp` and `sign` of a Shopee URL signed
/// over `path`.
fn shopee_check(url: &str, path: &str) -> bool {
    let ts = url_param(url, "timestamp").unwrap_or_default();
    url_param(url, "partner_id").as_deref() == Some(SHOPEE_PARTNER_ID)
        && !ts.is_empty()
        && url_param(url, "sign") == Some(shopee_sign(path, &ts))
}

/// The nonce of an authorize URL: Shopee carries it inside `redirect`.
fn nonce_of(plat: Plat, url: &str) -> Option<String> {
    if plat == Plat::Shopee {
        let redirect = url_param(url, "redirect")?;
        let (_, n) = redirect.split_once("%3Fstate%3D")?;
        return Some(n.to_owned());
    }
    url_param(url, plat.nonce_param())
}

pub fn config() -> String {
    json!({
        "secret": SECRET,
        "apps": {
            "myshop": {"app_key": "cid", "app_secret": "oauth2-app-secret", "redirect_uri": "https://host.example/cb/myshop"},
            "taobao_tw": {"app_key": "123456", "app_secret": "iop-tw-secret", "redirect_uri": "https://host.example/cb/taobao_tw"},
            "shopline": {"app_key": "slkey", "app_secret": "shopline-app-secret", "redirect_uri": "https://host.example/cb/shopline", "scope": "read_orders"},
            "shopee": {"app_key": SHOPEE_PARTNER_ID, "app_secret": SHOPEE_PARTNER_KEY, "redirect_uri": "https://host.example/cb/shopee"},
            "amazon_sp": {"app_key": "amzn1.application-oa2-client.model", "app_secret": LWA_SECRET,
                          "application_id": "amzn1.sp.solution.model", "redirect_uri": "https://host.example/cb/amazon_sp"},
            "tiktok_shop": {"app_key": "ttkey", "app_secret": "tiktok-app-secret", "service_id": "7000000000000000001", "redirect_uri": "https://host.example/cb/tiktok_shop"},
            "shopify": {"app_key": "shpclient", "app_secret": "shopify-app-secret", "redirect_uri": "https://host.example/cb/shopify", "scope": "read_orders"}
        },
        "platforms": {
            "myshop": {"kind": "oauth2", "authorize_url": "https://as.example/authorize", "token_url": "https://as.example/token", "scope": "orders"},
            "mykey": {"kind": "key", "credential": "token"},
            "vkey": {"kind": "key", "credential": "api_key_secret",
                      "verify": {"method": "GET", "url": "https://api.example/verify?key={api_key}", "headers": [["X-Secret", "{api_secret}"]]}}
        },
        "timing": {"request_ttl_s": 3600, "refresh_lead_s": 1800, "request_timeout_s": 60}
    })
    .to_string()
}

/// An engine of the test configuration whose clock stands at [`T0`].
pub fn new_engine() -> Engine {
    let mut e = Engine::from_config_json(&config()).expect("the test configuration is valid");
    e.handle_timeout_ms(T0);
    e
}

pub fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .expect("time in range")
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn time_or_null(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, |t| Value::String(rfc3339(t)))
}

/// The value of `name` in a URL's query (or fragment query), undecoded.
pub fn url_param(url: &str, name: &str) -> Option<String> {
    url.split(['?', '&', '#'])
        .find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
        .map(str::to_owned)
}

fn form(body: &str) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn header<'a>(req: &'a Value, name: &str) -> Option<&'a str> {
    req["headers"]
        .as_array()?
        .iter()
        .find(|h| h[0].as_str() == Some(name))
        .and_then(|h| h[1].as_str())
}

fn hmac_hex(key: &str, msg: &str) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("any key");
    mac.update(msg.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn message_prefix(kind: &str) -> &'static str {
    match kind {
        "system_error" => "system error",
        "illegal_param" => "illegal param",
        "seller_id_taken" => "seller id already authorized",
        "repeat_authorized" => "repeat authorized",
        "store_not_exist" => "store not exist",
        "auth_info_taken" => "auth info already authorized",
        "in_progress" => "authorization in progress",
        "invalid_state" => "invalid state",
        "unknown_request" => "unknown request",
        "store_exists" => "store already exists",
        "not_authorized" => "not authorized",
        _ => "?",
    }
}

// ------------------------------------------------------------------ rendering

/// The text of `b` as the platform `plat` writes it at `now` (ms).
pub fn body_text_for(b: &Body, plat: Option<Plat>, now: i64) -> String {
    match (b, plat) {
        (Body::Token(t), Some(Plat::TikTok)) => {
            // Absolute expiries: Unix seconds `now_s + v`.
            let abs = |n: &Num| {
                let v = now / 1000 + n.v;
                if n.string {
                    json!(v.to_string())
                } else {
                    json!(v)
                }
            };
            let mut d = serde_json::Map::new();
            d.insert("access_token".into(), json!(t.access));
            if let Some(n) = &t.expires_in {
                d.insert("access_token_expire_in".into(), abs(n));
            }
            if let Some(r) = &t.refresh {
                d.insert("refresh_token".into(), json!(r));
            }
            if let Some(n) = &t.refresh_expires_in {
                d.insert("refresh_token_expire_in".into(), abs(n));
            }
            if let Some(x) = t.sellers.as_ref().and_then(|(_, v)| v.first()) {
                d.insert("open_id".into(), json!(x));
            }
            d.insert("seller_name".into(), json!("shop"));
            d.insert("seller_base_region".into(), json!("ID"));
            json!({"code": 0, "message": "success", "data": d, "request_id": "2023"}).to_string()
        }
        _ => body_text(b),
    }
}

pub fn body_text(b: &Body) -> String {
    match b {
        Body::Token(t) => {
            let mut o = serde_json::Map::new();
            o.insert("access_token".into(), json!(t.access));
            o.insert("token_type".into(), json!("Bearer"));
            if let Some(r) = &t.refresh {
                o.insert("refresh_token".into(), json!(r));
            }
            let num = |n: &Num| if n.string { json!(n.v.to_string()) } else { json!(n.v) };
            if let Some(n) = &t.expires_in {
                o.insert("expires_in".into(), num(n));
            }
            if let Some(n) = &t.refresh_expires_in {
                o.insert("refresh_expires_in".into(), num(n));
            }
            if let Some((country, list)) = &t.sellers {
                let items: Vec<Value> = list.iter().map(|s| json!({"seller_id": s, "user_id": 1})).collect();
                let key = if *country { "country_user_info" } else { "user_info" };
                o.insert(key.into(), Value::Array(items));
            }
            Value::Object(o).to_string()
        }
        Body::OauthErr(c) => json!({"error": c}).to_string(),
        Body::IopErr(c) => json!({"code": c, "type": "ISV", "message": "m", "request_id": "0ba2887315178178017221014"}).to_string(),
        Body::Shopee(t) => {
            let mut o = serde_json::Map::new();
            o.insert("access_token".into(), json!(t.access));
            if let Some(r) = &t.refresh {
                o.insert("refresh_token".into(), json!(r));
            }
            if let Some(n) = &t.expires_in {
                let v = if n.string { json!(n.v.to_string()) } else { json!(n.v) };
                o.insert("expire_in".into(), v);
            }
            o.insert("request_id".into(), json!("e3e3e7f3"));
            o.insert("error".into(), json!(""));
            o.insert("message".into(), json!(""));
            Value::Object(o).to_string()
        }
        Body::ShopeeErr(e, m) => json!({"error": e, "message": m, "request_id": "e3e3e7f4"}).to_string(),
        Body::TtErr(c) => json!({"code": c, "message": "m", "request_id": "2023"}).to_string(),
        Body::Garbage => "<html>502 Bad Gateway</html>".into(),
        Body::Empty => String::new(),
        Body::EmptyObj => "{}".into(),
    }
}

const NOT_INPUTS: [&str; 6] = [
    "",
    "[1,2]",
    "{}",
    r#"{"type":"nope"}"#,
    "nul",
    r#"{"type":5}"#,
];
const BAD_FIELDS: [&str; 4] = [
    r#"{"type":"query","client_id":5,"store_id":"s0"}"#,
    r#"{"type":"authorize","client_id":"c1","store_id":"s0","auth_type":"KEY","auth_info":{"token":7}}"#,
    r#"{"type":"http_response","request_id":"req-0-1","status":"200","body":""}"#,
    r#"{"type":"register_store","client_id":["c1"],"store_id":"s9","platform":"mykey"}"#,
];

// ------------------------------------------------------------------ coverage

/// `SHOPAUTH_MODEL_STATS=1`: count what the runs reached (replies by input
/// and code, transitions, requests by purpose, redirects, equivalence steps),
/// written to `$TMPDIR/shopauth-model-stats.txt` after every case.
pub static STATS: std::sync::Mutex<BTreeMap<String, u64>> = std::sync::Mutex::new(BTreeMap::new());

pub fn stat(key: String) {
    if std::env::var_os("SHOPAUTH_MODEL_STATS").is_some() {
        *STATS.lock().unwrap().entry(key).or_default() += 1;
    }
}

pub fn print_stats() {
    if std::env::var_os("SHOPAUTH_MODEL_STATS").is_some() {
        let s = STATS.lock().unwrap();
        let mut text = String::from("coverage:\n");
        for (k, v) in s.iter() {
            text.push_str(&format!("  {v:>7}  {k}\n"));
        }
        std::fs::write(std::env::temp_dir().join("shopauth-model-stats.txt"), text).ok();
    }
}

// ------------------------------------------------------------------ twins

/// A second engine shadowing the SUT.
pub enum Twin {
    /// Fed exactly the same calls: everything must be byte-identical.
    Same(Engine),
    /// Restored from a snapshot of the SUT at a fork point.
    Restored(Restored),
}

pub struct Restored {
    pub engine: Engine,
    /// SUT request id → twin request id.
    pub map: BTreeMap<String, String>,
    /// Requests open at the fork: (SUT id, store, purpose), to be re-sent by
    /// the twin at its first call.
    pub resend: Vec<(String, String, String)>,
    /// SUT ids open at the fork and their time-outs: once one of them could
    /// time out in the SUT (its twin copy was sent later), comparison stops.
    pub open_at_fork: BTreeMap<String, i64>,
    pub active: bool,
    /// The twin's own kept snapshot (taken when the SUT kept one).
    pub saved: Option<String>,
    pub steps: usize,
}

/// A host shadowing every engine call of the SUT (the fleet test's fleet,
/// `tests/fleet/equivalence.rs`): told each call, its time and what the
/// SUT's engine answered, and the engine after every step.
pub trait Shadow {
    /// `handle_json(text, t)` answered `status` / `reply`, then drained `outs`.
    fn handle(&mut self, text: &str, t: i64, status: HandleStatus, reply: &str, outs: &str);
    /// `handle_timeout(t)`, then drained `outs`.
    fn timeout(&mut self, t: i64, outs: &str);
    /// The step is over; `engine` is the SUT's.
    fn end_of_step(&mut self, engine: &Engine);
}

// ------------------------------------------------------------------ the SUT

pub struct Sut {
    pub engine: Engine,
    pub req_ids: BTreeMap<ReqRef, String>,
    pub seen_ids: BTreeSet<String>,
    /// Every event id seen → the change it reported (store, seq, from, to,
    /// attempt, at): an id names one change, and one change one id.
    pub events: BTreeMap<String, (String, u64, String, String, u64, String)>,
    pub nonces: BTreeMap<u64, String>,
    /// The host's rows: every record `take_changes` handed out, by store id.
    pub mirror: BTreeMap<String, Value>,
    pub mirror_header: Value,
    pub auth_urls: BTreeMap<u64, String>,
    fp_of: BTreeMap<Cred, String>,
    cred_of: BTreeMap<String, Cred>,
    saved: Option<(String, BTreeMap<String, u64>)>,
    last_seq: BTreeMap<String, u64>,
    pub twin: Option<Twin>,
    pub shadow: Option<Box<dyn Shadow>>,
    /// Steps applied (for messages).
    pub steps: usize,
}

impl Default for Sut {
    fn default() -> Self {
        Sut::new()
    }
}

impl Sut {
    pub fn new() -> Sut {
        Sut {
            engine: new_engine(),
            req_ids: BTreeMap::new(),
            seen_ids: BTreeSet::new(),
            events: BTreeMap::new(),
            nonces: BTreeMap::new(),
            mirror: BTreeMap::new(),
            mirror_header: Value::Null,
            auth_urls: BTreeMap::new(),
            fp_of: BTreeMap::new(),
            cred_of: BTreeMap::new(),
            saved: None,
            last_seq: BTreeMap::new(),
            twin: None,
            shadow: None,
            steps: 0,
        }
    }

    /// A SUT in the model's initial state (stores registered at `T0`).
    pub fn for_model(m: &Model) -> Sut {
        Sut::for_model_with(m, None)
    }

    /// The same, with a twin engine shadowing it from the start.
    pub fn for_model_with(m: &Model, twin: Option<Twin>) -> Sut {
        let mut sut = Sut::new();
        sut.twin = twin;
        sut.register_initial(m);
        sut
    }

    /// The same, with a host shadowing every call from the start.
    pub fn for_model_shadowed(m: &Model, shadow: Box<dyn Shadow>) -> Sut {
        let mut sut = Sut::new();
        sut.shadow = Some(shadow);
        sut.register_initial(m);
        sut
    }

    fn register_initial(&mut self, m: &Model) {
        let sut = self;
        for input in crate::transition::initial_registrations(m) {
            let text = sut.render(m, &input);
            let (status, reply, outs) = sut.handle(&text, T0);
            assert_eq!(
                status,
                HandleStatus::Ok,
                "initial registration refused: {reply}"
            );
            assert!(outs.is_empty());
        }
    }

    // -------------------------------------------------------------- engine calls

    fn drain(engine: &mut Engine) -> String {
        engine.drain_outputs_json()
    }

    /// `handle_json` on the SUT (and the twin); returns status, reply, outputs.
    fn handle(&mut self, text: &str, t: i64) -> (HandleStatus, Value, Vec<Value>) {
        let (status, reply) = self.engine.handle_json(text, t);
        let outs = Self::drain(&mut self.engine);
        self.shadow_handle(text, t, status, &reply, &outs);
        if let Some(s) = self.shadow.as_mut() {
            s.handle(text, t, status, &reply, &outs);
        }
        let v: Value = serde_json::from_str(&reply).expect("reply is JSON");
        let o: Vec<Value> = serde_json::from_str(&outs).expect("outputs are JSON");
        (status, v, o)
    }

    fn timeout(&mut self, t: i64) -> Vec<Value> {
        self.engine.handle_timeout_ms(t);
        let outs = Self::drain(&mut self.engine);
        self.shadow_timeout(t, &outs);
        if let Some(s) = self.shadow.as_mut() {
            s.timeout(t, &outs);
        }
        serde_json::from_str(&outs).expect("outputs are JSON")
    }

    fn restore_into(&mut self, snap: &str, fresh: bool) {
        if fresh {
            let mut e = new_engine();
            e.restore(snap)
                .expect("a snapshot of the same configuration restores");
            self.engine = e;
        } else {
            self.engine
                .restore(snap)
                .expect("a snapshot restores into its own engine");
        }
    }

    // -------------------------------------------------------------- steps

    pub fn apply(&mut self, m: &Model, tr: &Transition) {
        self.steps += 1;
        let step = m.step.clone();
        match tr {
            Transition::Input { input, .. } => {
                let t = step.call_time.expect("inputs have a time");
                let text = self.render(m, input);
                let (status, reply, outs) = self.handle(&text, t);
                let kind = text
                    .split("\"type\":\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or("junk")
                    .to_owned();
                stat(format!("reply {kind} {}", reply["code"]));
                self.check_reply(
                    m,
                    input,
                    step.reply.as_ref().expect("reply"),
                    status,
                    &reply,
                );
                self.check_outputs(&step.outs, &outs, "call");
            }
            Transition::Tick(_) | Transition::Past(_) | Transition::Jump => {
                let t = step.call_time.expect("ticks have a time");
                if matches!(tr, Transition::Jump) {
                    // the model's next deadline is the engine's
                    let want = self
                        .engine
                        .poll_timeout_ms()
                        .unwrap_or(self.engine.now().timestamp_millis());
                    assert_eq!(
                        want, t,
                        "jump target (poll_timeout) differs from the model's"
                    );
                }
                let outs = self.timeout(t);
                self.check_outputs(&step.outs, &outs, "timeout");
            }
            Transition::Jumps(_) => {
                let mut outs = Vec::new();
                for &t in &step.jumps {
                    assert_eq!(
                        self.engine.poll_timeout_ms(),
                        Some(t),
                        "jump target (poll_timeout) differs from the model's"
                    );
                    outs.extend(self.timeout(t));
                }
                self.check_outputs(&step.outs, &outs, "jumps");
            }
            Transition::SnapRestore { fresh } => {
                let snap = self.engine.snapshot();
                self.restore_into(&snap, *fresh);
                self.mirror_reset(&snap);
                self.shadow_admin(tr);
            }
            Transition::Save => {
                self.saved = Some((self.engine.snapshot(), self.last_seq.clone()));
                self.shadow_admin(tr);
            }
            Transition::Rollback => {
                let (snap, seqs) = self.saved.clone().expect("precondition: saved");
                self.restore_into(&snap, false);
                self.mirror_reset(&snap);
                self.last_seq = seqs;
                self.shadow_admin(tr);
            }
            Transition::Crash(_) => {
                let (snap, seqs) = self.saved.clone().expect("precondition: saved");
                self.restore_into(&snap, true);
                self.mirror_reset(&snap);
                self.last_seq = seqs;
                self.shadow_admin(tr);
                let t = step.call_time.expect("a crash has a restart time");
                let outs = self.timeout(t);
                self.check_outputs(&step.outs, &outs, "crash");
            }
            Transition::Fork => self.fork(m),
        }
        assert_eq!(
            self.engine.poll_timeout_ms(),
            step.poll,
            "poll_timeout after the step differs from the model's next deadline"
        );
        if step.settle {
            let outs = self.timeout(m.now());
            self.check_outputs(&step.post, &outs, "settle");
            self.check_stores(m);
        }
        self.shadow_end_of_step(m);
        self.check_changes();
        if let Some(s) = self.shadow.as_mut() {
            s.end_of_step(&self.engine);
        }
    }

    /// Spec §10: the host's mirror of every `take_changes` (one row per
    /// store, the header) is a snapshot: a fresh engine restored from the
    /// rows (in another order) equals one restored from `snapshot()`, and
    /// both go on alike.
    fn check_changes(&mut self) {
        let text = self.engine.take_changes();
        let ch: Value = serde_json::from_str(&text).expect("changes are JSON");
        assert_eq!(ch["version"], "2.0");
        self.mirror_header = ch["engine"].clone();
        let entries = ch["stores"].as_array().expect("stores");
        let ids: Vec<&str> = entries
            .iter()
            .map(|e| e["store_id"].as_str().expect("store_id"))
            .collect();
        assert!(
            ids.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()),
            "changes are sorted by store_id, once each: {ids:?}"
        );
        for e in entries {
            let id = e["store_id"].as_str().expect("store_id").to_owned();
            if e["record"].is_null() {
                self.mirror.remove(&id);
            } else {
                assert_eq!(
                    e["claims"], e["record"]["claims"],
                    "entry claims are the record's"
                );
                self.mirror.insert(id, e["record"].clone());
            }
        }
        let mut rows: Vec<Value> = self.mirror.values().cloned().collect();
        if !rows.is_empty() {
            let k = self.steps % rows.len();
            rows.rotate_left(k);
            rows.reverse();
        }
        let assembled = json!({"version": "2.0", "engine": self.mirror_header, "stores": rows});
        let mut a = new_engine();
        a.restore(&assembled.to_string())
            .expect("the host's rows restore");
        let mut b = new_engine();
        b.restore(&self.engine.snapshot())
            .expect("the snapshot restores");
        assert_eq!(
            a.snapshot(),
            b.snapshot(),
            "an engine restored from the mirrored changes differs from one restored from snapshot()"
        );
        let t = self.engine.now().timestamp_millis();
        a.handle_timeout_ms(t);
        b.handle_timeout_ms(t);
        assert_eq!(
            a.drain_outputs_json(),
            b.drain_outputs_json(),
            "restored from the rows vs from snapshot(): outputs differ"
        );
        assert_eq!(a.snapshot(), b.snapshot());
    }

    /// After a restore the host's rows are the snapshot it restored.
    fn mirror_reset(&mut self, snap: &str) {
        let v: Value = serde_json::from_str(snap).expect("snapshot is JSON");
        self.mirror_header = v["engine"].clone();
        self.mirror = v["stores"]
            .as_array()
            .expect("stores")
            .iter()
            .map(|r| (r["store_id"].as_str().expect("id").to_owned(), r.clone()))
            .collect();
    }

    // -------------------------------------------------------------- rendering

    fn render(&self, m: &Model, input: &Input) -> String {
        match input {
            Input::Register(r) => {
                let mut o = json!({"type": "register_store", "client_id": r.client, "store_id": r.store, "platform": r.platform});
                if let Some(u) = &r.notify_url {
                    o["notify_url"] = json!(u);
                }
                if let Some(s) = &r.notify_secret {
                    o["notify_secret"] = json!(s);
                }
                o.to_string()
            }
            Input::Remove { client, store } => {
                json!({"type": "remove_store", "client_id": client, "store_id": store}).to_string()
            }
            Input::TokenRejected { client, store } => {
                json!({"type": "token_rejected", "client_id": client, "store_id": store})
                    .to_string()
            }
            Input::Revoke { client, store } => {
                json!({"type": "revoke", "client_id": client, "store_id": store}).to_string()
            }
            Input::Query { client, store } => {
                json!({"type": "query", "client_id": client, "store_id": store}).to_string()
            }
            Input::Credentials { client, store } => {
                json!({"type": "credentials", "client_id": client, "store_id": store}).to_string()
            }
            Input::Authorize(a) => {
                let mut o =
                    json!({"type": "authorize", "client_id": a.client, "store_id": a.store});
                if let Some(t) = &a.auth_type {
                    o["auth_type"] = json!(t);
                }
                if let Some(s) = &a.seller {
                    o["seller_id"] = json!(s);
                }
                if let Some(i) = &a.info {
                    let mut info = json!({});
                    if let Some(v) = &i.token {
                        info["token"] = json!(v);
                    }
                    if let Some(v) = &i.api_key {
                        info["api_key"] = json!(v);
                    }
                    if let Some(v) = &i.api_secret {
                        info["api_secret"] = json!(v);
                    }
                    o["auth_info"] = info;
                }
                if let Some(u) = &a.redirect_url {
                    o["redirect_url"] = json!(u);
                }
                o.to_string()
            }
            Input::Redirect(r) => {
                let pname = m.redirect_platform(r);
                let target = Plat::from_name(&pname);
                let param = target.map_or("state", Plat::nonce_param);
                let mut params: Vec<(String, String)> = Vec::new();
                if let Some(c) = &r.code {
                    params.push((target.map_or("code", Plat::code_param).into(), c.clone()));
                }
                if let (Some(name), Some(x)) = (target.and_then(Plat::seller_param), &r.seller) {
                    params.push((name.into(), x.clone()));
                }
                if let Some(e) = &r.error {
                    params.push(("error".into(), e.clone()));
                }
                match &r.nonce {
                    NonceSel::Serial(s) => {
                        let n = self
                            .nonces
                            .get(s)
                            .unwrap_or_else(|| panic!("nonce {s} was never seen"));
                        params.push((param.into(), n.clone()));
                    }
                    NonceSel::Forged(s) => {
                        params.push((param.into(), format!("{s}_{}", "0".repeat(32))))
                    }
                    NonceSel::Missing => {}
                    NonceSel::Junk => params.push((param.into(), "not-a-nonce".into())),
                }
                if r.as_query {
                    let q: Vec<String> = params
                        .iter()
                        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
                        .collect();
                    json!({"type": "oauth_redirect", "platform": pname, "query": q.join("&")})
                        .to_string()
                } else {
                    let p: serde_json::Map<String, Value> =
                        params.into_iter().map(|(k, v)| (k, json!(v))).collect();
                    json!({"type": "oauth_redirect", "platform": pname, "params": p}).to_string()
                }
            }
            Input::Answer { req, answer } => {
                let id = self
                    .req_ids
                    .get(req)
                    .unwrap_or_else(|| panic!("request {req:?} was never seen"));
                match answer {
                    Answer::Failure => json!({"type": "http_failure", "request_id": id, "error": "connection refused"}).to_string(),
                    Answer::Response { status, body } => {
                        let plat = m.reg.issued.get(req).map(|(_, p)| *p);
                        json!({"type": "http_response", "request_id": id, "status": status, "headers": [["Content-Type", "application/json"]], "body": body_text_for(body, plat, m.live.now)}).to_string()
                    }
                }
            }
            Input::AnswerBogus { id } => {
                json!({"type": "http_failure", "request_id": id, "error": "timeout"}).to_string()
            }
            Input::Junk(k) => NOT_INPUTS[*k as usize % NOT_INPUTS.len()].to_owned(),
            Input::BadField(k) => BAD_FIELDS[*k as usize % BAD_FIELDS.len()].to_owned(),
        }
    }

    // -------------------------------------------------------------- replies

    fn check_reply(
        &mut self,
        m: &Model,
        input: &Input,
        want: &Reply,
        status: HandleStatus,
        got: &Value,
    ) {
        let ctx = || format!("input {input:?}\nreply {got}\nexpected {want:?}");
        match want {
            Reply::Invalid => {
                assert_eq!(status, HandleStatus::InvalidArgument, "{}", ctx());
                assert_eq!(got["code"], 900002, "{}", ctx());
                assert_eq!(got["kind"], "illegal_param", "{}", ctx());
            }
            Reply::Err(code, kind) => {
                assert_eq!(got["code"], *code, "wrong reply code\n{}", ctx());
                assert_eq!(got["kind"], *kind, "{}", ctx());
                assert_eq!(status, HandleStatus::Rejected, "{}", ctx());
                assert_eq!(got["data"], Value::Null, "{}", ctx());
                let msg = got["message"].as_str().unwrap_or("");
                assert!(
                    msg.starts_with(message_prefix(kind)),
                    "message {msg:?}\n{}",
                    ctx()
                );
            }
            Reply::Ok(data) => {
                assert_eq!(got["code"], 200, "expected success\n{}", ctx());
                assert_eq!(got["message"], "SUCCESS", "{}", ctx());
                assert_eq!(status, HandleStatus::Ok, "{}", ctx());
                let d = &got["data"];
                match data {
                    OkData::Empty => assert_eq!(d, &json!({}), "{}", ctx()),
                    OkData::AuthUrl { serial, new } => {
                        assert_eq!(d.as_object().map(|o| o.len()), Some(1), "{}", ctx());
                        let url = d["auth_url"]
                            .as_str()
                            .unwrap_or_else(|| panic!("no auth_url\n{}", ctx()));
                        let fresh = m.reg.nonces.get(serial).is_some_and(|p| p.fresh_url());
                        if *new {
                            self.record_auth_url(m, *serial, url);
                        } else if fresh {
                            // Shopee: a freshly signed link, the same nonce.
                            self.record_auth_url(m, *serial, url);
                        } else {
                            assert_eq!(
                                Some(url),
                                self.auth_urls.get(serial).map(String::as_str),
                                "the same parameters must give the same auth_url\n{}",
                                ctx()
                            );
                        }
                    }
                    OkData::Redirected {
                        client,
                        store,
                        attempt,
                    } => {
                        assert_eq!(
                            d,
                            &json!({"client_id": client, "store_id": store, "attempt": attempt}),
                            "{}",
                            ctx()
                        );
                    }
                    OkData::View(v) => self.check_view(v, d),
                    OkData::Creds(c) => Self::check_creds(c, d),
                }
            }
        }
    }

    fn record_auth_url(&mut self, m: &Model, serial: u64, url: &str) {
        let plat = m.reg.nonces[&serial];
        let nonce = nonce_of(plat, url).unwrap_or_else(|| panic!("no nonce in {url}"));
        match plat {
            Plat::MyShop => {
                assert!(url.starts_with("https://as.example/authorize?response_type=code&client_id=cid&redirect_uri=https%3A%2F%2Fhost.example%2Fcb%2Fmyshop&scope=orders&state="), "{url}");
                assert_eq!(url_param(url, "code_challenge_method").as_deref(), Some("S256"), "{url}");
            }
            Plat::TaobaoTw => assert!(url.starts_with("https://auth.taobao.tw/oauth/authorize?response_type=code&force_auth=true&redirect_uri=https%3A%2F%2Fhost.example%2Fcb%2Ftaobao_tw&client_id=123456&state="), "{url}"),
            Plat::Shopline => assert!(url.contains(".myshopline.com/admin/oauth-web/#/oauth/authorize?appKey=slkey&responseType=code"), "{url}"),
            Plat::Shopee => {
                assert!(url.starts_with("https://partner.shopeemobile.com/api/v2/shop/auth_partner?partner_id=2001887&timestamp="), "{url}");
                assert!(shopee_check(url, "/api/v2/shop/auth_partner"), "a Shopee link that does not verify: {url}");
                assert!(url.contains("&redirect=https%3A%2F%2Fhost.example%2Fcb%2Fshopee%3Fstate%3D"), "{url}");
            }
            Plat::AmazonSp => assert!(url.starts_with("https://sellercentral.amazon.com/apps/authorize/consent?application_id=amzn1.sp.solution.model&state="), "{url}"),
            Plat::TikTok => assert!(url.starts_with("https://services.tiktokshop.com/open/authorize?service_id=7000000000000000001&state="), "{url}"),
            Plat::Shopify => {
                assert!(url.contains(".myshopify.com/admin/oauth/authorize?client_id=shpclient&scope=read_orders&redirect_uri=https%3A%2F%2Fhost.example%2Fcb%2Fshopify&state="), "{url}");
                assert!(url.ends_with("&grant_options%5B%5D="), "{url}");
            }
            _ => panic!("auth_url on a KEY platform: {url}"),
        }
        assert!(id_shape_ok(&nonce), "nonce {nonce} is not a §9 id");
        if let Some(old) = self.nonces.get(&serial) {
            // the same serial again (an idempotent authorize): the same nonce
            assert_eq!(
                old, &nonce,
                "nonce serial {serial} printed twice differently"
            );
        }
        for (s, n) in &self.nonces {
            assert!(
                *s == serial || *n != nonce,
                "nonce {nonce} repeats (serials {s} and {serial})"
            );
        }
        self.nonces.insert(serial, nonce);
        self.auth_urls.insert(serial, url.to_owned());
    }

    fn check_view(&mut self, v: &View, d: &Value) {
        let ctx = || format!("store view {d}\nexpected {v:#?}");
        assert_eq!(d["client_id"], v.client.as_str(), "{}", ctx());
        assert_eq!(d["store_id"], v.store.as_str(), "{}", ctx());
        assert_eq!(d["platform"], v.platform.name(), "{}", ctx());
        assert_eq!(d["state"], v.state.name(), "state differs\n{}", ctx());
        assert_eq!(
            d["status"],
            if v.state == St::Authorized {
                "subAuthorize"
            } else {
                "unAuthorize"
            },
            "{}",
            ctx()
        );
        assert_eq!(d["attempt"], v.attempt, "attempt differs\n{}", ctx());
        assert_eq!(
            d["auth_type"],
            v.auth_type.map_or(Value::Null, |t| json!(t)),
            "{}",
            ctx()
        );
        assert_eq!(
            d["seller_ids"],
            json!(v.seller_ids),
            "seller_ids differ\n{}",
            ctx()
        );
        let url = v
            .auth_url
            .map(|s| self.auth_urls.get(&s).cloned().expect("auth_url seen"));
        assert_eq!(
            d["auth_url"],
            url.map_or(Value::Null, Value::String),
            "auth_url differs\n{}",
            ctx()
        );
        assert_eq!(
            d["access_expires_at"],
            time_or_null(v.access_expires_at),
            "access_expires_at differs\n{}",
            ctx()
        );
        assert_eq!(
            d["refresh_expires_at"],
            time_or_null(v.refresh_expires_at),
            "refresh_expires_at differs\n{}",
            ctx()
        );
        assert_eq!(d["cost_total"], 0, "{}", ctx());
        match v.last_error {
            None => assert_eq!(
                d["last_error"],
                Value::Null,
                "last_error differs\n{}",
                ctx()
            ),
            Some(r) => {
                assert_eq!(
                    d["last_error"]["reason"],
                    r,
                    "last_error differs\n{}",
                    ctx()
                );
                assert!(d["last_error"]["message"].is_string(), "{}", ctx());
            }
        }
        // claims
        let claims = d["claims"]
            .as_array()
            .unwrap_or_else(|| panic!("no claims\n{}", ctx()));
        let mut sellers: Vec<String> = Vec::new();
        let mut fps: Vec<String> = Vec::new();
        for c in claims {
            match c["kind"].as_str() {
                Some("seller") => {
                    assert_eq!(c["platform"], v.platform.name(), "{}", ctx());
                    sellers.push(c["seller_id"].as_str().expect("seller_id").to_owned());
                }
                Some("credential") => {
                    fps.push(c["fingerprint"].as_str().expect("fingerprint").to_owned())
                }
                _ => panic!("unknown claim {c}\n{}", ctx()),
            }
        }
        sellers.sort();
        assert_eq!(sellers, v.seller_claims, "seller claims differ\n{}", ctx());
        match &v.cred_claim {
            None => assert!(fps.is_empty(), "unexpected credential claim\n{}", ctx()),
            Some(c) => {
                assert_eq!(fps.len(), 1, "expected one credential claim\n{}", ctx());
                self.bind_fp(c, &fps[0]);
            }
        }
        let text = d.to_string();
        for secret in [
            "tok1",
            "tok2",
            "tok3",
            "x1\"",
            "x2\"",
            "AT",
            "RT",
            "oauth2-app-secret",
            "iop-tw-secret",
            SHOPEE_PARTNER_KEY,
            LWA_SECRET,
            NOTIFY_SECRET,
        ] {
            assert!(
                !text.contains(&format!("\"{secret}")),
                "a secret ({secret}) in a query reply: {text}"
            );
        }
    }

    fn bind_fp(&mut self, c: &Cred, fp: &str) {
        if let Some(old) = self.fp_of.get(c) {
            assert_eq!(old, fp, "the same credential {c:?} has two fingerprints");
        }
        if let Some(old) = self.cred_of.get(fp) {
            assert_eq!(old, c, "two credentials share fingerprint {fp}");
        }
        self.fp_of.insert(c.clone(), fp.to_owned());
        self.cred_of.insert(fp.to_owned(), c.clone());
    }

    fn check_creds(c: &CredView, d: &Value) {
        let want = match c {
            CredView::Token {
                access,
                access_expires_at,
                seller_ids,
            } => {
                json!({"access_token": access, "access_expires_at": time_or_null(*access_expires_at), "seller_ids": seller_ids})
            }
            CredView::Key(Cred::Token(t)) => json!({"token": t}),
            CredView::Key(Cred::Pair(k, x)) => json!({"api_key": k, "api_secret": x}),
        };
        assert_eq!(d, &want, "credentials differ");
    }

    // -------------------------------------------------------------- outputs

    /// Compares outputs per store, in order, in two streams: the lifecycle
    /// (transitions, work requests, redirects) and the notifications. (The
    /// order between a notification retry and a work retry due at the same
    /// instant is not specified.)
    fn check_outputs(&mut self, want: &[Out], got: &[Value], phase: &str) {
        let mut w: BTreeMap<(String, bool), Vec<&Out>> = BTreeMap::new();
        for o in want {
            let notify = matches!(
                o,
                Out::Request {
                    purpose: Purpose::Notify,
                    ..
                }
            );
            w.entry((o.store().to_owned(), notify)).or_default().push(o);
        }
        let mut g: BTreeMap<(String, bool), Vec<&Value>> = BTreeMap::new();
        for o in got {
            let store = o["store_id"]
                .as_str()
                .unwrap_or_else(|| panic!("output without store_id: {o}"));
            let notify = o["purpose"] == "notify";
            g.entry((store.to_owned(), notify)).or_default().push(o);
        }
        let dump = || {
            format!(
                "[{phase}] outputs differ\nexpected:\n{}\nactual:\n{}",
                want.iter()
                    .map(|o| format!("  {o:?}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                got.iter()
                    .map(|o| format!("  {o}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        };
        let keys: BTreeSet<(String, bool)> = w.keys().cloned().chain(g.keys().cloned()).collect();
        for key in keys {
            let ws = w.get(&key).cloned().unwrap_or_default();
            let gs = g.get(&key).cloned().unwrap_or_default();
            assert_eq!(
                ws.len(),
                gs.len(),
                "store {} ({}): {}",
                key.0,
                if key.1 { "notifications" } else { "lifecycle" },
                dump()
            );
            for (e, a) in ws.into_iter().zip(gs) {
                self.check_output(e, a, &dump);
            }
        }
    }

    fn check_output(&mut self, e: &Out, a: &Value, dump: &dyn Fn() -> String) {
        match e {
            Out::Transition {
                store,
                client,
                from,
                to,
                reason,
                attempt,
                seq,
                at,
            } => {
                assert_eq!(a["type"], "transition", "{}", dump());
                stat(format!(
                    "transition {}->{} {}",
                    from.name(),
                    to.name(),
                    reason.unwrap_or("")
                ));
                assert_eq!(a["client_id"], client.as_str(), "{}", dump());
                assert_eq!(a["from"], from.name(), "{}", dump());
                assert_eq!(a["to"], to.name(), "{}", dump());
                assert_eq!(
                    a["reason"],
                    reason.map_or(Value::Null, |r| json!(r)),
                    "{}",
                    dump()
                );
                assert_eq!(a["attempt"], *attempt, "{}", dump());
                assert_eq!(a["seq"], *seq, "{}", dump());
                assert_eq!(a["at"], rfc3339(*at), "{}", dump());
                assert!(a["event_id"].is_string(), "{}", dump());
                self.check_event_id(a, dump);
                // invariant: seq per store rises by one
                let got_seq = a["seq"].as_u64().expect("seq");
                let last = self.last_seq.get(store).copied().unwrap_or(0);
                assert_eq!(
                    got_seq,
                    last + 1,
                    "seq of {store} does not rise by one\n{}",
                    dump()
                );
                if *to == St::Removed {
                    self.last_seq.remove(store);
                } else {
                    self.last_seq.insert(store.clone(), got_seq);
                }
            }
            Out::Redirect {
                client,
                attempt,
                location,
                ..
            } => {
                assert_eq!(a["type"], "redirect", "{}", dump());
                stat("redirect".into());
                assert_eq!(a["client_id"], client.as_str(), "{}", dump());
                assert_eq!(a["attempt"], *attempt, "{}", dump());
                assert_eq!(a["location"], location.as_str(), "{}", dump());
            }
            Out::Request {
                client,
                r,
                purpose,
                detail,
                ..
            } => {
                assert_eq!(a["type"], "http_request", "{}", dump());
                stat(format!("request {}", purpose.name()));
                assert_eq!(a["client_id"], client.as_str(), "{}", dump());
                assert_eq!(a["purpose"], purpose.name(), "{}", dump());
                let id = a["request_id"].as_str().expect("request_id").to_owned();
                assert!(
                    id_shape_ok(&id),
                    "request id {id} is not a §9 id\n{}",
                    dump()
                );
                assert!(
                    self.seen_ids.insert(id.clone()),
                    "request id {id} was issued before (ids must never repeat, also across restores)\n{}",
                    dump()
                );
                assert!(
                    self.req_ids.insert(*r, id).is_none(),
                    "model request {r:?} seen twice"
                );
                self.check_request(detail, a, dump);
            }
        }
    }

    /// Spec §9: two transitions carry the same `event_id` only when they
    /// report the same change (the same change may get a new id when it is
    /// re-done after a restore), and every id is route-able (ids are at most
    /// 160 characters of `[A-Za-z0-9._~-]`).
    fn check_event_id(&mut self, a: &Value, dump: &dyn Fn() -> String) {
        let id = a["event_id"].as_str().expect("event_id").to_owned();
        assert!(id_shape_ok(&id), "event id {id} is not a §9 id\n{}", dump());
        let change = (
            a["store_id"].as_str().unwrap_or("").to_owned(),
            a["seq"].as_u64().unwrap_or(0),
            a["from"].as_str().unwrap_or("").to_owned(),
            a["to"].as_str().unwrap_or("").to_owned(),
            a["attempt"].as_u64().unwrap_or(0),
            a["at"].as_str().unwrap_or("").to_owned(),
        );
        if let Some(before) = self.events.get(&id) {
            assert_eq!(
                before,
                &change,
                "event id {id} reported two different changes\n{}",
                dump()
            );
        }
        self.events.insert(id, change);
    }

    fn check_request(&self, detail: &ReqDetail, a: &Value, dump: &dyn Fn() -> String) {
        let url = a["url"].as_str().unwrap_or("");
        let body = a["body"].as_str().unwrap_or("");
        match detail {
            ReqDetail::Create { plat, code }
            | ReqDetail::Refresh {
                plat,
                refresh_token: code,
            } => {
                let create = matches!(detail, ReqDetail::Create { .. });
                stat(format!(
                    "token request {plat:?} {}",
                    if create { "create" } else { "refresh" }
                ));
                if *plat == Plat::TikTok {
                    // A GET with the app's key and secret in the query.
                    assert_eq!(a["method"], "GET", "{}", dump());
                    let (base, q) = url.split_once('?').unwrap_or((url, ""));
                    let f = form(q);
                    assert_eq!(
                        f.get("app_key").map(String::as_str),
                        Some("ttkey"),
                        "{}",
                        dump()
                    );
                    assert_eq!(
                        f.get("app_secret").map(String::as_str),
                        Some("tiktok-app-secret"),
                        "{}",
                        dump()
                    );
                    if create {
                        assert_eq!(
                            base,
                            "https://auth.tiktok-shops.com/api/v2/token/get",
                            "{}",
                            dump()
                        );
                        assert_eq!(f.get("auth_code"), Some(code), "{}", dump());
                        assert_eq!(
                            f.get("grant_type").map(String::as_str),
                            Some("authorized_code"),
                            "{}",
                            dump()
                        );
                    } else {
                        assert_eq!(
                            base,
                            "https://auth.tiktok-shops.com/api/v2/token/refresh",
                            "{}",
                            dump()
                        );
                        assert_eq!(
                            f.get("refresh_token"),
                            Some(code),
                            "refresh with the wrong refresh token\n{}",
                            dump()
                        );
                        assert_eq!(
                            f.get("grant_type").map(String::as_str),
                            Some("refresh_token"),
                            "{}",
                            dump()
                        );
                    }
                    assert_eq!(a["body"], Value::Null, "{}", dump());
                    return;
                }
                assert_eq!(a["method"], "POST", "{}", dump());
                let f = form(body);
                match plat {
                    Plat::MyShop => {
                        assert_eq!(url, "https://as.example/token", "{}", dump());
                        if create {
                            assert_eq!(
                                f.get("grant_type").map(String::as_str),
                                Some("authorization_code"),
                                "{}",
                                dump()
                            );
                            assert_eq!(f.get("code"), Some(code), "{}", dump());
                            assert_eq!(
                                f.get("code_verifier").map(String::len),
                                Some(43),
                                "{}",
                                dump()
                            );
                        } else {
                            assert_eq!(
                                f.get("grant_type").map(String::as_str),
                                Some("refresh_token"),
                                "{}",
                                dump()
                            );
                            assert_eq!(
                                f.get("refresh_token"),
                                Some(code),
                                "refresh with the wrong refresh token\n{}",
                                dump()
                            );
                        }
                        assert_eq!(
                            f.get("client_secret").map(String::as_str),
                            Some("oauth2-app-secret"),
                            "{}",
                            dump()
                        );
                    }
                    Plat::TaobaoTw => {
                        if create {
                            assert_eq!(
                                url,
                                "https://auth.taobao.tw/rest/auth/token/create",
                                "{}",
                                dump()
                            );
                            assert_eq!(f.get("code"), Some(code), "{}", dump());
                            assert_eq!(
                                f.get("grantType").map(String::as_str),
                                Some("authorization_code"),
                                "{}",
                                dump()
                            );
                        } else {
                            assert_eq!(
                                url,
                                "https://auth.taobao.tw/rest/auth/token/refresh",
                                "{}",
                                dump()
                            );
                            assert_eq!(
                                f.get("refresh_token"),
                                Some(code),
                                "refresh with the wrong refresh token\n{}",
                                dump()
                            );
                        }
                        assert_eq!(
                            f.get("app_key").map(String::as_str),
                            Some("123456"),
                            "{}",
                            dump()
                        );
                        assert_eq!(
                            f.get("sign_method").map(String::as_str),
                            Some("sha256"),
                            "{}",
                            dump()
                        );
                        assert_eq!(f.get("sign").map(String::len), Some(64), "{}", dump());
                        assert!(f.contains_key("timestamp"), "{}", dump());
                    }
                    Plat::Shopee => {
                        let path = if create {
                            "/api/v2/auth/token/get"
                        } else {
                            "/api/v2/auth/access_token/get"
                        };
                        assert!(
                            url.starts_with(&format!("https://partner.shopeemobile.com{path}?partner_id=2001887&timestamp=")),
                            "{}",
                            dump()
                        );
                        assert!(
                            shopee_check(url, path),
                            "a Shopee request that does not verify\n{}",
                            dump()
                        );
                        let b: Value = serde_json::from_str(body).expect("Shopee bodies are JSON");
                        assert_eq!(b["partner_id"], json!(2001887), "{}", dump());
                        assert!(b["shop_id"].is_u64(), "{}", dump());
                        let (field, keys) = if create {
                            ("code", ["code", "partner_id", "shop_id"])
                        } else {
                            ("refresh_token", ["partner_id", "refresh_token", "shop_id"])
                        };
                        assert_eq!(b[field].as_str(), Some(code.as_str()), "{}", dump());
                        let got: Vec<&str> =
                            b.as_object().unwrap().keys().map(String::as_str).collect();
                        assert_eq!(got, keys, "{}", dump());
                    }
                    Plat::AmazonSp => {
                        assert_eq!(url, "https://api.amazon.com/auth/o2/token", "{}", dump());
                        let (grant, field) = if create {
                            ("authorization_code", "code")
                        } else {
                            ("refresh_token", "refresh_token")
                        };
                        assert_eq!(
                            f.get("grant_type").map(String::as_str),
                            Some(grant),
                            "{}",
                            dump()
                        );
                        assert_eq!(f.get(field), Some(code), "{}", dump());
                        assert_eq!(
                            f.get("client_secret").map(String::as_str),
                            Some(LWA_SECRET),
                            "{}",
                            dump()
                        );
                        assert_eq!(
                            f.get("client_id").map(String::as_str),
                            Some("amzn1.application-oa2-client.model"),
                            "{}",
                            dump()
                        );
                    }
                    _ => panic!("token request for {plat:?}"),
                }
            }
            ReqDetail::Verify {
                api_key,
                api_secret,
            } => {
                assert_eq!(a["method"], "GET", "{}", dump());
                assert_eq!(
                    url,
                    format!("https://api.example/verify?key={}", pct(api_key)),
                    "{}",
                    dump()
                );
                assert_eq!(
                    header(a, "X-Secret"),
                    Some(api_secret.as_str()),
                    "{}",
                    dump()
                );
            }
            ReqDetail::Notify { notice, signed } => {
                assert_eq!(a["method"], "POST", "{}", dump());
                assert_eq!(url, NOTIFY_URL, "{}", dump());
                let b: Value = serde_json::from_str(body).expect("notification body is JSON");
                assert_eq!(b["seq"], notice.seq, "notification differs\n{}", dump());
                assert_eq!(b["client_id"], a["client_id"], "{}", dump());
                assert_eq!(b["store_id"], a["store_id"], "{}", dump());
                assert_eq!(
                    b["seller_id"],
                    notice.seller.as_str(),
                    "notification seller differs\n{}",
                    dump()
                );
                assert_eq!(
                    b["auth_status"],
                    notice.status,
                    "notification differs\n{}",
                    dump()
                );
                assert_eq!(
                    b["auth_fail_reason"],
                    notice.reason.unwrap_or(""),
                    "notification differs\n{}",
                    dump()
                );
                assert_eq!(b["attempt"], notice.attempt, "{}", dump());
                assert_eq!(b["at"], rfc3339(notice.at), "{}", dump());
                assert!(b["event_id"].is_string(), "{}", dump());
                let want_sig = signed.then(|| hmac_hex(NOTIFY_SECRET, body));
                assert_eq!(
                    header(a, "X-Shopauth-Signature"),
                    want_sig.as_deref(),
                    "notification signature\n{}",
                    dump()
                );
            }
        }
    }

    // -------------------------------------------------------------- views

    /// Queries every store (and its credentials when authorized), compares
    /// with the model, and checks the claim invariants.
    fn check_stores(&mut self, m: &Model) {
        let now = m.now();
        let mut sellers: BTreeMap<(String, String), String> = BTreeMap::new();
        let mut creds: BTreeMap<String, String> = BTreeMap::new();
        for s in &m.live.stores {
            let q = json!({"type": "query", "client_id": s.client, "store_id": s.id}).to_string();
            let (status, reply, outs) = self.handle(&q, now);
            assert!(outs.is_empty(), "a query produced outputs: {outs:?}");
            assert_eq!(
                status,
                HandleStatus::Ok,
                "query of {} failed: {reply}",
                s.id
            );
            let d = &reply["data"];
            self.check_view(&s.view(), d);
            // invariants that need no model
            let state = d["state"].as_str().unwrap_or("");
            let holds = matches!(state, "requested" | "pending" | "authorized" | "expired");
            let claims = d["claims"].as_array().cloned().unwrap_or_default();
            assert!(
                holds || claims.is_empty(),
                "store {} holds claims in {state}",
                s.id
            );
            for c in claims {
                if c["kind"] == "seller" {
                    let key = (c["platform"].to_string(), c["seller_id"].to_string());
                    if let Some(other) = sellers.insert(key.clone(), s.id.clone()) {
                        panic!("seller {key:?} claimed by {other} and {}", s.id);
                    }
                } else if let Some(other) = creds.insert(c["fingerprint"].to_string(), s.id.clone())
                {
                    panic!("credential claimed by {other} and {}", s.id);
                }
            }
            if s.state == St::Authorized {
                let q = json!({"type": "credentials", "client_id": s.client, "store_id": s.id})
                    .to_string();
                let (_, reply, outs) = self.handle(&q, now);
                assert!(outs.is_empty());
                let want = match &s.tokens {
                    Some(t) => CredView::Token {
                        access: t.access.clone(),
                        access_expires_at: t.access_exp,
                        seller_ids: s.seller_ids(),
                    },
                    None => CredView::Key(s.key.clone().expect("authorized KEY store has its key")),
                };
                assert_eq!(reply["code"], 200, "credentials of {}: {reply}", s.id);
                Self::check_creds(&want, &reply["data"]);
            }
        }
    }

    // -------------------------------------------------------------- twins

    /// Starts a twin restored from a snapshot of the SUT (snapshot equivalence).
    fn fork(&mut self, m: &Model) {
        let snap = self.engine.snapshot();
        let mut engine = new_engine();
        engine.restore(&snap).expect("restore into a fresh engine");
        let mut resend: Vec<(u64, String, String, String)> = Vec::new();
        let mut open_at_fork = BTreeMap::new();
        for s in &m.live.stores {
            if let Some(w) = &s.work {
                let id = self.req_ids[&w.r].clone();
                open_at_fork.insert(id.clone(), w.timeout);
                resend.push((w.order, id, s.id.clone(), w.purpose.name().to_owned()));
            }
            if let Some(n) = &s.notify_req {
                let id = self.req_ids[&n.r].clone();
                open_at_fork.insert(id.clone(), n.timeout);
                resend.push((n.order, id, s.id.clone(), "notify".to_owned()));
            }
        }
        // Re-sends go in the order the engine issued the requests (their
        // serial, the id's second field); the model's own numbering orders
        // simultaneous timers of different stores in its own way.
        for r in &mut resend {
            r.0 =
                r.1.split('.')
                    .nth(1)
                    .and_then(|n| n.parse().ok())
                    .expect("serial");
        }
        resend.sort();
        stat(format!("equivalence: fork with {} open", resend.len()));
        self.twin = Some(Twin::Restored(Restored {
            engine,
            map: BTreeMap::new(),
            resend: resend.into_iter().map(|(_, a, b, c)| (a, b, c)).collect(),
            open_at_fork,
            active: true,
            saved: None,
            steps: 0,
        }));
    }

    fn shadow_handle(&mut self, text: &str, t: i64, status: HandleStatus, reply: &str, outs: &str) {
        match &mut self.twin {
            None => {}
            Some(Twin::Same(e)) => {
                let (s2, r2) = e.handle_json(text, t);
                let o2 = e.drain_outputs_json();
                assert_eq!(
                    (status, reply),
                    (s2, r2.as_str()),
                    "twin engines replied differently to {text}"
                );
                assert_eq!(
                    outs, o2,
                    "twin engines produced different outputs for {text}"
                );
                assert_eq!(
                    self.engine.poll_timeout_ms(),
                    e.poll_timeout_ms(),
                    "twin poll_timeout"
                );
            }
            Some(Twin::Restored(r)) => {
                if !r.active {
                    return;
                }
                let t_eff = t.max(r.engine.now().timestamp_millis());
                if r.open_at_fork.values().any(|to| *to <= t_eff) {
                    r.active = false;
                    return;
                }
                let mut input: Value = match serde_json::from_str(text) {
                    Ok(v) => v,
                    Err(_) => Value::String(text.to_owned()),
                };
                // An answer to a request open at the fork can only go to its
                // re-sent copy: let the twin re-send first (same time).
                let mut pre: Vec<Value> = Vec::new();
                let answers_fork_request = input
                    .get("request_id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| r.resend.iter().any(|(a, _, _)| a == id));
                if answers_fork_request {
                    r.engine.handle_timeout_ms(t);
                    let o: Vec<Value> =
                        serde_json::from_str(&r.engine.drain_outputs_json()).expect("JSON");
                    pre = Self::take_resends(r, o);
                }
                let translated = if let Some(id) = input
                    .get("request_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                {
                    if let Some(b) = r.map.get(&id) {
                        input["request_id"] = json!(b);
                    }
                    r.open_at_fork.remove(&id);
                    input.to_string()
                } else {
                    text.to_owned()
                };
                let (s2, r2) = r.engine.handle_json(&translated, t);
                let o2: Vec<Value> =
                    serde_json::from_str(&r.engine.drain_outputs_json()).expect("JSON");
                assert_eq!(
                    (status, reply),
                    (s2, r2.as_str()),
                    "restored twin replied differently to {text}"
                );
                pre.extend(o2);
                if status == HandleStatus::InvalidArgument {
                    // not an input: no call happened, nothing was re-sent
                    assert_eq!(outs, "[]");
                    assert!(pre.is_empty(), "twin: outputs for a non-input");
                } else {
                    Self::compare_restored(r, outs, &Value::Array(pre).to_string());
                }
            }
        }
    }

    fn shadow_timeout(&mut self, t: i64, outs: &str) {
        match &mut self.twin {
            None => {}
            Some(Twin::Same(e)) => {
                e.handle_timeout_ms(t);
                let o2 = e.drain_outputs_json();
                assert_eq!(outs, o2, "twin engines produced different outputs at {t}");
                assert_eq!(
                    self.engine.poll_timeout_ms(),
                    e.poll_timeout_ms(),
                    "twin poll_timeout"
                );
            }
            Some(Twin::Restored(r)) => {
                if !r.active {
                    return;
                }
                let t_eff = t.max(r.engine.now().timestamp_millis());
                if r.open_at_fork.values().any(|to| *to <= t_eff) {
                    r.active = false;
                    return;
                }
                r.engine.handle_timeout_ms(t);
                let o2 = r.engine.drain_outputs_json();
                Self::compare_restored(r, outs, &o2);
            }
        }
    }

    /// The restored twin's outputs: at its first call, the re-sent requests
    /// first; then the SUT's outputs with other request ids.
    /// Takes the twin's first-call re-sends off the front of its outputs
    /// (mapping the SUT's ids to theirs); returns the rest.
    fn take_resends(r: &mut Restored, mut b: Vec<Value>) -> Vec<Value> {
        if r.resend.is_empty() {
            return b;
        }
        assert!(
            b.len() >= r.resend.len(),
            "restored twin did not re-send the open requests: {b:?}"
        );
        let rest = b.split_off(r.resend.len());
        let listed = format!("expected re-sends {:?}, got {b:?}", r.resend);
        for ((a_id, store, purpose), out) in r.resend.drain(..).zip(b) {
            assert_eq!(
                out["type"], "http_request",
                "re-sent request expected, got {out}"
            );
            assert_eq!(out["store_id"], store.as_str(), "re-send order: {listed}");
            assert_eq!(out["purpose"], purpose.as_str(), "re-send order: {listed}");
            assert_ne!(
                out["request_id"],
                a_id.as_str(),
                "a re-sent request keeps its old id"
            );
            r.map
                .insert(a_id, out["request_id"].as_str().expect("id").to_owned());
        }
        rest
    }

    fn compare_restored(r: &mut Restored, outs: &str, o2: &str) {
        let a: Vec<Value> = serde_json::from_str(outs).expect("JSON");
        let b: Vec<Value> = serde_json::from_str(o2).expect("JSON");
        let b = Self::take_resends(r, b);
        assert_eq!(
            a.len(),
            b.len(),
            "restored twin: outputs differ\nSUT: {outs}\ntwin: {o2}"
        );
        for (x, mut y) in a.into_iter().zip(b) {
            if x["type"] == "http_request" {
                let (ia, ib) = (
                    x["request_id"].as_str().expect("id"),
                    y["request_id"].as_str().expect("id"),
                );
                r.map.insert(ia.to_owned(), ib.to_owned());
                y["request_id"] = x["request_id"].clone();
            }
            assert_eq!(x, y, "restored twin: outputs differ beyond request ids");
        }
    }

    fn shadow_admin(&mut self, tr: &Transition) {
        let sut_snap = self.engine.snapshot();
        match &mut self.twin {
            None => {}
            Some(Twin::Same(e)) => {
                match tr {
                    Transition::SnapRestore { .. } => {
                        let s = e.snapshot();
                        e.restore(&s).expect("restore");
                    }
                    Transition::Rollback => {
                        // the twin restores the SUT's kept snapshot: both must be equal anyway
                        let (s, _) = self.saved.clone().expect("saved");
                        e.restore(&s).expect("restore");
                    }
                    Transition::Crash(_) => {
                        let (s, _) = self.saved.clone().expect("saved");
                        let mut f = new_engine();
                        f.restore(&s).expect("restore");
                        *e = f;
                    }
                    _ => {}
                }
                assert_eq!(sut_snap, e.snapshot(), "twin snapshots differ after {tr:?}");
            }
            Some(Twin::Restored(r)) => {
                if !r.active {
                    return;
                }
                if !r.resend.is_empty() {
                    // the twin has not re-sent yet: a snapshot now would not hold those
                    r.active = false;
                    return;
                }
                match tr {
                    Transition::SnapRestore { .. } => {
                        let s = r.engine.snapshot();
                        r.engine.restore(&s).expect("restore");
                        // both re-send what is open at the next call, at the same time
                        r.open_at_fork.clear();
                    }
                    Transition::Save => r.saved = Some(r.engine.snapshot()),
                    Transition::Rollback => match &r.saved {
                        Some(s) => {
                            r.engine.restore(s).expect("restore");
                            r.open_at_fork.clear();
                        }
                        None => r.active = false,
                    },
                    Transition::Crash(_) => match &r.saved {
                        Some(s) => {
                            let mut f = new_engine();
                            f.restore(s).expect("restore");
                            r.engine = f;
                            r.open_at_fork.clear();
                        }
                        None => r.active = false,
                    },
                    _ => {}
                }
            }
        }
    }

    fn shadow_end_of_step(&mut self, m: &Model) {
        match &mut self.twin {
            None => {}
            Some(Twin::Same(e)) => {
                assert_eq!(
                    self.engine.snapshot(),
                    e.snapshot(),
                    "twin snapshots differ"
                );
            }
            Some(Twin::Restored(r)) => {
                r.steps += 1;
                stat(format!(
                    "equivalence: step {}",
                    if r.active { "compared" } else { "after stop" }
                ));
                if r.active && !r.resend.is_empty() {
                    stat("equivalence: twin re-send pending".into());
                }
                // forget fork-time requests that are no longer open in the SUT
                let open: BTreeSet<String> = m
                    .open_requests()
                    .iter()
                    .filter_map(|(rr, _, _)| self.req_ids.get(rr).cloned())
                    .collect();
                r.open_at_fork.retain(|id, _| open.contains(id));
            }
        }
    }
}

/// At most 160 characters of `[A-Za-z0-9._~-]` (spec §9).
pub fn id_shape_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 160
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
}
