//! The fleet equivalence property (spec §11: "the loser gets the same answer
//! as in one engine"): the model test's random workloads — registrations,
//! authorizations with colliding sellers and credentials, redirects, HTTP
//! answers, time — applied to one engine (checked against the reference
//! model by `model/sut.rs`, as in `tests/model.rs`) and, call by call, to a
//! fleet of 2–3 engines of the same configuration that hold no store
//! between calls.
//!
//! The fleet host keeps the rows (every `take_changes` entry, by store id,
//! with its ref) and, for every call, on the next engine round-robin:
//! - fires what is due first: loads every store whose `due_at` is reached
//!   (and, as foreign claims, the claims of every other store),
//!   `handle_timeout`, drains, takes the changes, unloads — as one engine
//!   fires everything due before it applies an input;
//! - then routes the input (`route`: its store_id, or the ref in its nonce
//!   or request id), loads that store's latest row and every other store's
//!   claims, applies the input, drains, takes the changes and unloads.
//!
//! After every call the status, the reply and each store's outputs (in
//! order) must be the one engine's; after every step the stores, their
//! claims, their records (up to what carries an engine's own counters) and
//! the next deadline. Ids that carry an engine's counters (request ids,
//! nonces and the PKCE values made from them, event ids and the
//! notification signatures over them) cannot be equal across engines: the
//! host maps the one engine's ids to the fleet's as they appear, and the
//! comparisons blank them.
//!
//! Snapshot and restore steps are left out (a fleet host restores nothing:
//! its rows are loaded store by store).

use crate::reference::{
    Answer, AuthReq, Body, Cred, Info, Input, Model, Num, Plat, Purpose, RegisterReq, Step, T0,
    TokenOk,
};
use crate::sut::{Shadow, Sut, new_engine, url_param};
use crate::transition::{self, Transition, When};
use proptest::prelude::*;
use proptest::test_runner::Config;
use proptest_state_machine::{ReferenceStateMachine, StateMachineTest, prop_state_machine};
use serde_json::{Value, json};
use shopauth::engine::MAX_TIME_MS;
use shopauth::{Engine, HandleStatus};
use std::collections::{BTreeMap, BTreeSet};

fn config() -> Config {
    let cases = std::env::var("SHOPAUTH_FLEET_CASES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(64);
    Config {
        cases,
        max_shrink_iters: 20_000,
        max_shrink_time: 15_000,
        failure_persistence: None,
        ..Config::default()
    }
}

/// The model test's transitions without snapshot steps, and inputs that
/// reach for what other stores hold (the model's own generator rarely
/// collides): authorizations with a seller claimed on the store's platform
/// (a Shopline handle in another case) or a token or key pair claimed by
/// any store, and IOP and TikTok Shop token answers naming a seller another
/// store of the same platform holds.
pub struct FleetMachine;

fn colliding_answer(m: &Model) -> Option<BoxedStrategy<Transition>> {
    let iop: Vec<_> = m
        .live
        .stores
        .iter()
        .filter(|s| matches!(s.plat, Plat::TaobaoTw | Plat::TikTok))
        .collect();
    // (an open token request of one IOP store, a seller another one holds)
    let mut pairs = Vec::new();
    for s in &iop {
        let Some(w) = s.work.as_ref() else { continue };
        if !matches!(w.purpose, Purpose::TokenCreate | Purpose::TokenRefresh) {
            continue;
        }
        for o in iop.iter().filter(|o| o.uid != s.uid && o.plat == s.plat) {
            for seller in o.view().seller_claims {
                pairs.push((w.r, seller));
            }
        }
    }
    if pairs.is_empty() {
        return None;
    }
    let strategy =
        (proptest::sample::select(pairs), any::<bool>()).prop_map(|((req, seller), first)| {
            let mut sellers = vec![seller];
            if first {
                sellers.insert(0, "S9".to_owned());
            }
            Transition::Input {
                when: When::Now,
                input: Input::Answer {
                    req,
                    answer: Answer::Response {
                        status: 200,
                        body: Body::Token(TokenOk {
                            access: "AT-c".into(),
                            refresh: Some("RT-c".into()),
                            expires_in: Some(Num {
                                v: 3600,
                                string: false,
                            }),
                            refresh_expires_in: Some(Num {
                                v: 7200,
                                string: false,
                            }),
                            sellers: Some((false, sellers)),
                        }),
                    },
                },
            }
        });
    Some(strategy.boxed())
}

fn colliding_authorize(m: &Model) -> Option<BoxedStrategy<Transition>> {
    let views: Vec<(String, String, Plat, crate::reference::View)> = m
        .live
        .stores
        .iter()
        .map(|s| (s.client.clone(), s.id.clone(), s.plat, s.view()))
        .collect();
    let sellers: Vec<(Plat, String)> = views
        .iter()
        .flat_map(|(_, _, p, v)| v.seller_claims.iter().map(move |x| (*p, x.clone())))
        .collect();
    let creds: Vec<Cred> = views
        .iter()
        .filter_map(|v| v.3.cred_claim.clone())
        .collect();
    if views.len() < 2 || (sellers.is_empty() && creds.is_empty()) {
        return None;
    }
    let targets: Vec<(String, String, Plat)> =
        views.into_iter().map(|(c, s, p, _)| (c, s, p)).collect();
    let strategy = (
        proptest::sample::select(targets),
        any::<proptest::sample::Index>(),
        any::<proptest::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(move |((client, store, plat), i, j, upper)| {
            let seller = {
                let same: Vec<&String> = sellers
                    .iter()
                    .filter(|(p, _)| *p == plat)
                    .map(|(_, s)| s)
                    .collect();
                (!same.is_empty()).then(|| same[i.index(same.len())].clone())
            };
            let tokens: Vec<&String> = creds
                .iter()
                .filter_map(|c| match c {
                    Cred::Token(t) => Some(t),
                    Cred::Pair(..) => None,
                })
                .collect();
            let pairs: Vec<(&String, &String)> = creds
                .iter()
                .filter_map(|c| match c {
                    Cred::Pair(k, x) => Some((k, x)),
                    Cred::Token(_) => None,
                })
                .collect();
            let token = || Info {
                token: Some(if tokens.is_empty() {
                    "tok1".to_owned()
                } else {
                    tokens[j.index(tokens.len())].clone()
                }),
                ..Info::default()
            };
            let (auth_type, seller, info) = match plat {
                Plat::MyShop | Plat::TaobaoTw | Plat::Shopee | Plat::AmazonSp | Plat::TikTok => {
                    ("URL", seller, None)
                }
                Plat::MyKey => ("KEY", seller, Some(token())),
                Plat::VKey => {
                    let (k, x) = if pairs.is_empty() {
                        ("k1".to_owned(), "x1".to_owned())
                    } else {
                        let (k, x) = pairs[j.index(pairs.len())];
                        (k.clone(), x.clone())
                    };
                    let info = Info {
                        api_key: Some(k),
                        api_secret: Some(x),
                        ..Info::default()
                    };
                    ("KEY", None, Some(info))
                }
                Plat::Shopline => {
                    let handle = seller.unwrap_or_else(|| "shop-a".to_owned());
                    let handle = if upper {
                        handle.to_ascii_uppercase()
                    } else {
                        handle
                    };
                    ("KEY", Some(handle), Some(token()))
                }
                Plat::Shopify => {
                    let handle = seller.unwrap_or_else(|| "shop-a".to_owned());
                    let handle = if upper {
                        handle.to_ascii_uppercase()
                    } else {
                        handle
                    };
                    ("URL", Some(handle), None)
                }
            };
            Transition::Input {
                when: When::Now,
                input: Input::Authorize(AuthReq {
                    client,
                    store,
                    auth_type: Some(auth_type.to_owned()),
                    seller,
                    info,
                    redirect_url: None,
                }),
            }
        });
    Some(strategy.boxed())
}

impl ReferenceStateMachine for FleetMachine {
    type State = Model;
    type Transition = Transition;

    /// The model test's initial stores, and half the time two more IOP
    /// stores (the platform whose token answers name sellers to claim).
    fn init_state() -> BoxedStrategy<Model> {
        (transition::init_state(), any::<bool>())
            .prop_map(|(mut m, iop)| {
                if iop {
                    for store in ["s4", "s5"] {
                        m.input(
                            T0,
                            &Input::Register(RegisterReq {
                                client: "c1".into(),
                                store: store.into(),
                                platform: "taobao_tw".into(),
                                notify_url: None,
                                notify_secret: None,
                            }),
                        );
                    }
                    m.step = Step::default();
                }
                m
            })
            .boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Transition> {
        let base = transition::transitions(state, false)
            .prop_filter("a fleet host restores no snapshot", |t| {
                !matches!(
                    t,
                    Transition::SnapRestore { .. }
                        | Transition::Save
                        | Transition::Rollback
                        | Transition::Crash(_)
                        | Transition::Fork
                )
            })
            .boxed();
        let mut arms: Vec<(u32, BoxedStrategy<Transition>)> = vec![(6, base)];
        arms.extend(colliding_authorize(state).map(|c| (2, c)));
        arms.extend(colliding_answer(state).map(|c| (6, c)));
        proptest::strategy::Union::new_weighted(arms).boxed()
    }

    fn apply(mut state: Model, t: &Transition) -> Model {
        transition::apply(&mut state, t);
        state
    }

    fn preconditions(state: &Model, t: &Transition) -> bool {
        transition::preconditions(state, t)
    }
}

struct FleetTest;

impl StateMachineTest for FleetTest {
    type SystemUnderTest = Sut;
    type Reference = FleetMachine;

    fn init_test(m: &Model) -> Sut {
        let engines = 2 + m.live.stores.len() % 2;
        Sut::for_model_shadowed(m, Box::new(Fleet::new(engines)))
    }

    fn apply(mut sut: Sut, model: &Model, t: Transition) -> Sut {
        sut.apply(model, &t);
        sut
    }
}

prop_state_machine! {
    #![proptest_config(config())]
    #[test]
    fn fleet_matches_one_engine(sequential 1..40 => FleetTest);
}

// ------------------------------------------------------------------ the fleet host

const TYPES: [&str; 10] = [
    "register_store",
    "remove_store",
    "authorize",
    "oauth_redirect",
    "http_response",
    "http_failure",
    "token_rejected",
    "revoke",
    "query",
    "credentials",
];

/// What a host's front door lets through to an engine call (and to firing
/// what is due): a JSON object with a known `type`. Anything else is
/// answered 900002 without a call (the engine does the same).
fn is_input(text: &str) -> bool {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
        .is_some_and(|t| TYPES.contains(&t.as_str()))
}

fn due_ms(entry: &Value) -> Option<i64> {
    entry["due_at"].as_str().map(|s| {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("due_at is RFC 3339")
            .timestamp_millis()
    })
}

pub struct Fleet {
    engines: Vec<Engine>,
    turn: usize,
    /// The host's rows: store id → its latest change entry.
    rows: BTreeMap<String, Value>,
    by_ref: BTreeMap<String, String>,
    /// The host's clock (the latest time of any call).
    now: i64,
    /// The one engine's ids → the fleet's (request ids, state nonces).
    ids: BTreeMap<String, String>,
    calls: usize,
}

impl Fleet {
    pub fn new(n: usize) -> Fleet {
        Fleet {
            engines: (0..n).map(|_| new_engine()).collect(),
            turn: 0,
            rows: BTreeMap::new(),
            by_ref: BTreeMap::new(),
            now: T0,
            ids: BTreeMap::new(),
            calls: 0,
        }
    }

    /// The claims of every row but `except`, as foreign claims.
    fn foreign_except(&self, except: &BTreeSet<String>) -> Vec<Value> {
        let mut out = Vec::new();
        for (id, e) in &self.rows {
            if except.contains(id) {
                continue;
            }
            for c in e["claims"].as_array().expect("claims") {
                let mut c = c.clone();
                c["store_id"] = json!(id);
                out.push(c);
            }
        }
        out
    }

    /// On the next engine: load the rows of `ids` and every other row's
    /// claims, run `f`, drain, take the changes into the rows, unload.
    fn run<R>(
        &mut self,
        ids: BTreeSet<String>,
        f: impl FnOnce(&mut Engine) -> R,
    ) -> (R, Vec<Value>) {
        let i = self.turn % self.engines.len();
        self.turn += 1;
        let records: Vec<&Value> = ids.iter().map(|id| &self.rows[id]["record"]).collect();
        let foreign = self.foreign_except(&ids);
        let load = json!({"stores": records, "foreign_claims": foreign}).to_string();
        let e = &mut self.engines[i];
        e.load(&load)
            .unwrap_or_else(|err| panic!("the fleet's load was refused: {err}\n{load}"));
        let r = f(e);
        let outs: Vec<Value> = serde_json::from_str(&e.drain_outputs_json()).expect("JSON");
        let changes: Value = serde_json::from_str(&e.take_changes()).expect("JSON");
        let mut present = ids;
        for entry in changes["stores"].as_array().expect("stores") {
            let id = entry["store_id"].as_str().expect("store_id").to_owned();
            let sref = entry["ref"].as_str().expect("ref").to_owned();
            if entry["record"].is_null() {
                self.rows.remove(&id);
                self.by_ref.remove(&sref);
            } else {
                present.insert(id.clone());
                self.by_ref.insert(sref, id.clone());
                self.rows.insert(id, entry.clone());
            }
        }
        let e = &mut self.engines[i];
        e.unload(&json!({"store_ids": present, "foreign_claims": foreign}).to_string())
            .expect("unload");
        assert_eq!(e.store_count(), 0, "a fleet engine kept a store");
        assert_eq!(
            e.foreign_claim_count(),
            0,
            "a fleet engine kept a foreign claim"
        );
        (r, outs)
    }

    /// Fires what is due at the host's clock: every due store at once.
    fn tick(&mut self) -> Vec<Value> {
        let now = self.now;
        let due: BTreeSet<String> = self
            .rows
            .iter()
            .filter(|(_, e)| due_ms(e).is_some_and(|d| d <= now))
            .map(|(id, _)| id.clone())
            .collect();
        if due.is_empty() {
            return Vec::new();
        }
        self.run(due, |e| e.handle_timeout_ms(now)).1
    }

    /// The one engine's ids in `text` replaced by the fleet's.
    fn translate(&self, text: &str) -> String {
        let mut t = text.to_owned();
        for (a, f) in &self.ids {
            if t.contains(a.as_str()) {
                t = t.replace(a.as_str(), f);
            }
        }
        t
    }

    fn learn(&mut self, a: &str, f: &str) {
        match self.ids.get(a) {
            Some(old) => assert_eq!(old, f, "one id of the engine is two of the fleet"),
            None => {
                self.ids.insert(a.to_owned(), f.to_owned());
            }
        }
    }

    /// The reply without the ids that carry an engine's counters; the
    /// nonce of an auth_url learned.
    fn compare_reply(&mut self, a: &str, f: &str, ctx: &str) {
        let a: Value = serde_json::from_str(a).expect("JSON");
        let f: Value = serde_json::from_str(f).expect("JSON");
        if let (Some(ua), Some(uf)) = (
            a["data"]["auth_url"].as_str(),
            f["data"]["auth_url"].as_str(),
        ) {
            for name in ["state", "customField"] {
                if let (Some(na), Some(nf)) = (url_param(ua, name), url_param(uf, name)) {
                    self.learn(&na, &nf);
                }
            }
            // Shopee carries the nonce inside `redirect`.
            if let (Some(na), Some(nf)) = (inner_state(ua), inner_state(uf)) {
                self.learn(&na, &nf);
            }
        }
        assert_eq!(
            canon_reply(&a),
            canon_reply(&f),
            "the fleet replied differently to {ctx}"
        );
    }

    /// Each store's outputs, in order, up to the ids of engines.
    fn compare_outputs(&mut self, a: &str, f: &[Value], ctx: &str) {
        let a: Vec<Value> = serde_json::from_str(a).expect("JSON");
        let by_store = |v: &[Value]| {
            let mut m: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for o in v {
                m.entry(o["store_id"].as_str().expect("store_id").to_owned())
                    .or_default()
                    .push(o.clone());
            }
            m
        };
        let (ma, mf) = (by_store(&a), by_store(f));
        let dump = || format!("{ctx}\none engine: {a:#?}\nfleet: {f:#?}");
        assert_eq!(
            ma.keys().collect::<Vec<_>>(),
            mf.keys().collect::<Vec<_>>(),
            "outputs for other stores: {}",
            dump()
        );
        for (store, xs) in &ma {
            let ys = &mf[store];
            assert_eq!(xs.len(), ys.len(), "store {store}: {}", dump());
            for (x, y) in xs.iter().zip(ys) {
                if x["type"] == "http_request" {
                    self.learn(
                        x["request_id"].as_str().expect("id"),
                        y["request_id"].as_str().expect("id"),
                    );
                }
                assert_eq!(
                    canon_output(x),
                    canon_output(y),
                    "store {store}: {}",
                    dump()
                );
            }
        }
    }
}

impl Shadow for Fleet {
    fn handle(&mut self, text: &str, t: i64, status: HandleStatus, reply: &str, outs: &str) {
        self.calls += 1;
        let valid = is_input(text);
        assert_eq!(
            valid,
            status != HandleStatus::InvalidArgument,
            "the host's front door and the engine classify {text} differently"
        );
        let mut got = Vec::new();
        if valid {
            self.now = self.now.max(t);
            got.extend(self.tick());
        }
        let text_f = self.translate(text);
        let route = self.engines[0].route_json(&text_f).unwrap_or_default();
        let target = route.store_id.clone().or_else(|| {
            route
                .r#ref
                .as_ref()
                .and_then(|r| self.by_ref.get(r).cloned())
        });
        let ids: BTreeSet<String> = target
            .into_iter()
            .filter(|id| self.rows.contains_key(id))
            .collect();
        let now = self.now;
        let ((fs, freply), outs_f) = self.run(ids, |e| e.handle_json(&text_f, now));
        got.extend(outs_f);
        assert_eq!(fs, status, "the fleet's status for {text}: {freply}");
        self.compare_reply(reply, &freply, text);
        self.compare_outputs(outs, &got, text);
    }

    fn timeout(&mut self, t: i64, outs: &str) {
        self.calls += 1;
        self.now = self.now.max(t);
        let got = self.tick();
        self.compare_outputs(outs, &got, &format!("handle_timeout({t})"));
    }

    fn end_of_step(&mut self, engine: &Engine) {
        assert_eq!(
            engine.now().timestamp_millis(),
            self.now,
            "the host's clock"
        );
        let snap: Value = serde_json::from_str(&engine.snapshot()).expect("JSON");
        let stores = snap["stores"].as_array().expect("stores");
        let ids: Vec<&str> = stores
            .iter()
            .map(|r| r["store_id"].as_str().expect("id"))
            .collect();
        assert_eq!(
            ids,
            self.rows.keys().map(String::as_str).collect::<Vec<_>>(),
            "the fleet's rows hold other stores"
        );
        for r in stores {
            let row = &self.rows[r["store_id"].as_str().expect("id")];
            assert_eq!(r["claims"], row["claims"], "claims differ");
            assert_eq!(essence(r), essence(&row["record"]), "records differ");
        }
        let next = self.rows.values().filter_map(due_ms).min();
        assert_eq!(
            next.map(|t| t.clamp(self.now, MAX_TIME_MS)),
            engine.poll_timeout_ms(),
            "the rows' earliest due_at is not the engine's next deadline"
        );
    }
}

// ------------------------------------------------------------------ canonical forms

/// The nonce inside a Shopee link's (percent-encoded) `redirect`.
fn inner_state(url: &str) -> Option<String> {
    let redirect = url_param(url, "redirect")?;
    let (_, n) = redirect.split_once("%3Fstate%3D")?;
    Some(n.to_owned())
}

/// An auth_url without its nonce (also one inside Shopee's `redirect`)
/// and PKCE challenge.
fn canon_url(url: &str) -> String {
    let Some((head, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let q: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if ["state", "customField", "code_challenge"].contains(&k) => {
                format!("{k}=*")
            }
            Some(("redirect", v)) if v.contains("%3Fstate%3D") => {
                let (head, _) = v.split_once("%3Fstate%3D").expect("checked");
                format!("redirect={head}%3Fstate%3D*")
            }
            _ => kv.to_owned(),
        })
        .collect();
    format!("{head}?{}", q.join("&"))
}

fn canon_reply(r: &Value) -> Value {
    let mut r = r.clone();
    if let Some(u) = r["data"]["auth_url"].as_str() {
        r["data"]["auth_url"] = json!(canon_url(u));
    }
    r
}

fn without_event_id(body: &str) -> Value {
    let mut b: Value = serde_json::from_str(body).expect("notification bodies are JSON");
    b.as_object_mut().expect("object").remove("event_id");
    b
}

fn canon_output(o: &Value) -> Value {
    let mut o = o.clone();
    match o["type"].as_str() {
        Some("http_request") => {
            o["request_id"] = json!("*");
            if let Some(hs) = o["headers"].as_array_mut() {
                for h in hs {
                    if h[0] == "X-Shopauth-Signature" {
                        h[1] = json!("*");
                    }
                }
            }
            if let Some(body) = o["body"].as_str().map(str::to_owned) {
                o["body"] = if o["purpose"] == "notify" {
                    without_event_id(&body)
                } else {
                    json!(
                        body.split('&')
                            .map(|kv| if kv.starts_with("code_verifier=") {
                                "code_verifier=*"
                            } else {
                                kv
                            })
                            .collect::<Vec<_>>()
                            .join("&")
                    )
                };
            }
        }
        Some("transition") => o["event_id"] = json!("*"),
        _ => {}
    }
    o
}

/// A record without what carries an engine's own counters: timer sequence
/// numbers, request and nonce serials, rate-queue places, event ids in
/// queued notification bodies, the nonce in the auth_url.
fn essence(record: &Value) -> Value {
    let mut r = record.clone();
    if let Some(ts) = r["timers"].as_array() {
        let mut t: Vec<Value> = ts.iter().map(|t| json!([t[0], t[1]])).collect();
        t.sort_by_key(|t| t.to_string());
        r["timers"] = Value::Array(t);
    }
    if let Some(req) = r.get_mut("request").and_then(Value::as_object_mut) {
        for (_, w) in req.iter_mut() {
            if let Some(w) = w.as_object_mut() {
                w.remove("serial");
                w.remove("seq");
            }
        }
    }
    if let Some(open) = r.get_mut("open").and_then(Value::as_object_mut) {
        for k in ["nonce", "pkce"] {
            if let Some(n) = open.get_mut(k).and_then(Value::as_object_mut) {
                n.remove("serial");
            }
        }
        if let Some(u) = open.get("auth_url").and_then(Value::as_str).map(canon_url) {
            open.insert("auth_url".into(), json!(u));
        }
    }
    if let Some(n) = r.get_mut("notify").and_then(Value::as_object_mut) {
        for k in ["in_flight", "resend"] {
            if n.contains_key(k) {
                n.insert(k.into(), json!(true));
            }
        }
        if let Some(outbox) = n.get_mut("outbox").and_then(Value::as_array_mut) {
            for notice in outbox {
                let body = notice["body"].as_str().expect("body").to_owned();
                notice["body"] = without_event_id(&body);
            }
        }
    }
    r
}
