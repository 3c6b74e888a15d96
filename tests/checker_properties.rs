//! Property tests for checker platforms (issue 4): random scripts against a
//! `taobao` app backed by a simulated vv-tool or damaijia status service,
//! checking after every step the rate limit, reply envelopes, states,
//! claims, metering and transition costs; then liveness (every `requested`
//! store gets checked and authorized) and determinism (same script, same
//! transcript). Snapshot/restore into a fresh engine is one of the steps.
//!
//! `SHOPAUTH_CHECKER_CASES` raises the case count (default 256 per service).

mod common;
use common::*;
use proptest::prelude::*;
use serde_json::{Value, json};
use shopauth::Engine;
use std::collections::{BTreeMap, BTreeSet};

const TTL_MS: i64 = 3_600_000;
const REQUEST_TIMEOUT_MS: i64 = 60_000;
const POLL_MAX_MS: i64 = 300_000;
const SHOPS: u8 = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Service {
    Vvtool,
    Damaijia,
}

#[derive(Clone, Debug)]
enum Shop {
    /// A shop id from a small pool (collisions happen by themselves).
    Pool(u8),
    /// A shop id currently claimed by another store, if there is one.
    Taken(u8),
    /// No shop id at all (900002).
    Missing,
}

#[derive(Clone, Debug)]
enum Step {
    Register {
        store: u8,
        notify: bool,
    },
    Authorize {
        store: u8,
        shop: Shop,
    },
    /// Answers the oldest open status check; `pick` selects the answer, `money` the metering.
    Answer {
        pick: u8,
        money: u8,
    },
    Transport,
    Notify {
        ok: bool,
    },
    TokenRejected(u8),
    Revoke(u8),
    Remove(u8),
    Query(u8),
    Tick(u32),
    Jump,
    Restore,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (any::<u8>(), any::<bool>()).prop_map(|(store, notify)| Step::Register { store, notify }),
        4 => (any::<u8>(), prop_oneof![
            6 => (0..SHOPS).prop_map(Shop::Pool),
            2 => any::<u8>().prop_map(Shop::Taken),
            1 => Just(Shop::Missing),
        ]).prop_map(|(store, shop)| Step::Authorize { store, shop }),
        8 => (any::<u8>(), 0u8..=5).prop_map(|(pick, money)| Step::Answer { pick, money }),
        1 => Just(Step::Transport),
        2 => any::<bool>().prop_map(|ok| Step::Notify { ok }),
        1 => any::<u8>().prop_map(Step::TokenRejected),
        1 => any::<u8>().prop_map(Step::Revoke),
        1 => any::<u8>().prop_map(Step::Remove),
        1 => any::<u8>().prop_map(Step::Query),
        3 => (0u32..=120_000).prop_map(Step::Tick),
        2 => Just(Step::Jump),
        1 => Just(Step::Restore),
    ]
}

#[derive(Clone, Debug)]
struct Script {
    service: Service,
    /// Status checks per second; 6 (damaijia only): no `rate_limit_per_s`.
    rate: usize,
    stores: u8,
    steps: Vec<Step>,
}

fn script(service: Service) -> impl Strategy<Value = Script> {
    // damaijia has no limit by default: 6 stands for "not configured".
    let top = if service == Service::Damaijia { 6 } else { 5 };
    (1usize..=top, 1u8..=12, prop::collection::vec(step(), 1..80)).prop_map(
        move |(rate, stores, steps)| Script {
            service,
            rate,
            stores,
            steps,
        },
    )
}

/// What the simulated service answers: (HTTP status, body, money if code/status 0, 302 link).
fn answer(
    service: Service,
    pick: u8,
    money: u8,
    n: u64,
) -> (u16, String, Option<i64>, Option<String>) {
    let m = i64::from(money);
    match service {
        Service::Vvtool => {
            let plain = |c: i64| {
                (
                    200,
                    json!({"code": c, "msg": format!("code {c}")}).to_string(),
                    None,
                    None,
                )
            };
            match pick % 20 {
                0 | 15 | 16 => (200, json!({"code": 0, "msg": "success", "msec": 3, "time": 1_617_257_597, "data": {"status": "unAuthorize", "withholding_money": m}}).to_string(), Some(m), None),
                1 | 17 | 18 => (200, json!({"code": 0, "msg": "success", "msec": 3, "time": 1_617_257_597, "data": {"status": "subAuthorize", "withholding_money": m}}).to_string(), Some(m), None),
                19 => (200, json!({"code": 0, "status": "subAuthorize", "withholding_money": m}).to_string(), Some(m), None),
                2 => {
                    let link = format!("https://oauth.taobao.com/authorize?n={n}");
                    (200, json!({"code": 302, "msg": "Not authorized yet", "data": {"url": link}}).to_string(), None, Some(link))
                }
                3 => plain(303),
                4 => plain(101),
                5 => plain(202),
                6 => plain(100),
                7 => plain(103),
                8 => plain(200),
                9 => plain(203),
                10 => plain(204),
                11 => plain(401),
                12 => plain(404),
                13 => (503, String::new(), None, None),
                _ => (200, "<html>gateway oops".to_owned(), None, None),
            }
        }
        Service::Damaijia => {
            let plain = |c: i64| {
                (
                    200,
                    json!({"status": c, "err": format!("status {c}")}).to_string(),
                    None,
                    None,
                )
            };
            match pick % 12 {
                0 | 9 => (
                    200,
                    json!({"status": 0, "data": {"status": "unAuthorize", "deduct_money": m}})
                        .to_string(),
                    Some(m),
                    None,
                ),
                1 | 10 | 11 => (
                    200,
                    json!({"status": 0, "data": {"status": "subAuthorize", "deduct_money": m}})
                        .to_string(),
                    Some(m),
                    None,
                ),
                2 => plain(2011),
                3 => plain(2010),
                4 => plain(422),
                5 => plain(132),
                6 => plain(200),
                7 => (503, String::new(), None, None),
                _ => (200, "not json at all".to_owned(), None, None),
            }
        }
    }
}

fn sub_authorize(service: Service) -> String {
    match service {
        Service::Vvtool => {
            json!({"code": 0, "data": {"status": "subAuthorize", "withholding_money": 1}})
        }
        Service::Damaijia => {
            json!({"status": 0, "data": {"status": "subAuthorize", "deduct_money": 1}})
        }
    }
    .to_string()
}

fn config(s: &Script) -> Value {
    let checker = match s.service {
        Service::Vvtool => "vvtool",
        Service::Damaijia => "damaijia",
    };
    let mut app = json!({"checker": checker, "access_token": "checker-access-token",
                         "auth_page_url": "https://auth.example/taobao?shop={seller_id}"});
    if s.rate <= 5 {
        app["rate_limit_per_s"] = json!(s.rate);
    }
    json!({"secret": SECRET, "apps": {"taobao": app}})
}

/// A status check or notification the host has received and not answered.
#[derive(Clone, Debug)]
struct Open {
    req: Value,
    store: String,
    sent: i64,
    epoch: u32,
    generation: u64,
}

#[derive(Clone, Debug, Default)]
struct Model {
    /// Metering expected from the answers the engine accepted.
    cost: i64,
    /// Shop id of the last accepted attempt.
    shop: Option<String>,
    /// Engine time when the current attempt started.
    attempt_start: i64,
    /// From the last query.
    state: String,
    claims: Vec<String>,
}

const CODES: [(i64, &str); 12] = [
    (200, ""),
    (900000, "system_error"),
    (900002, "illegal_param"),
    (900003, "seller_id_taken"),
    (900004, "repeat_authorized"),
    (940002, "store_not_exist"),
    (900005, "auth_info_taken"),
    (900006, "in_progress"),
    (900007, "invalid_state"),
    (900008, "unknown_request"),
    (900009, "store_exists"),
    (900010, "not_authorized"),
];

struct Run {
    service: Service,
    rate: usize,
    config: Value,
    h: Host,
    transcript: Vec<String>,
    /// Engine time of every status check drained, in order.
    sends: Vec<i64>,
    checks: Vec<Open>,
    notifies: Vec<Open>,
    stores: BTreeMap<String, Model>,
    /// Per store id: bumped by every transition, removal, accepted authorize or token_rejected.
    generation: BTreeMap<String, u64>,
    epoch: u32,
    answers: u64,
}

impl Run {
    fn new(s: &Script) -> Run {
        let config = config(s);
        Run {
            service: s.service,
            rate: if s.rate <= 5 { s.rate } else { usize::MAX },
            h: Host::with(config.clone()),
            config,
            transcript: Vec::new(),
            sends: Vec::new(),
            checks: Vec::new(),
            notifies: Vec::new(),
            stores: BTreeMap::new(),
            generation: BTreeMap::new(),
            epoch: 0,
            answers: 0,
        }
    }

    fn bump(&mut self, store: &str) {
        *self.generation.entry(store.to_owned()).or_default() += 1;
    }

    fn generation_of(&self, store: &str) -> u64 {
        self.generation.get(store).copied().unwrap_or(0)
    }

    /// Files the outputs drained since the last call; returns them.
    fn collect(&mut self) -> Vec<Value> {
        let outs = self.h.take();
        for o in &outs {
            self.transcript.push(o.to_string());
            match o["type"].as_str() {
                Some("http_request") => {
                    let store = o["store_id"].as_str().unwrap().to_owned();
                    let open = Open {
                        req: o.clone(),
                        generation: self.generation_of(&store),
                        store,
                        sent: self.h.now,
                        epoch: self.epoch,
                    };
                    match o["purpose"].as_str() {
                        Some("status_check") => {
                            self.sends.push(self.h.now);
                            self.checks.push(open);
                        }
                        Some("notify") => self.notifies.push(open),
                        p => panic!("unexpected request purpose {p:?}: {o}"),
                    }
                }
                Some("transition") => {
                    let store = o["store_id"].as_str().unwrap().to_owned();
                    self.bump(&store);
                }
                t => panic!("unexpected output type {t:?}: {o}"),
            }
        }
        outs
    }

    /// Sends one input; checks the envelope and that a refusal produced no outputs.
    fn send(&mut self, input: Value) -> (Value, Vec<Value>) {
        self.transcript.push(input.to_string());
        let reply = self.h.send(input.clone());
        self.transcript.push(reply.to_string());
        let outs = self.collect();
        let code = reply["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("no code: {reply}"));
        let kind = CODES
            .iter()
            .find(|(c, _)| *c == code)
            .unwrap_or_else(|| panic!("code {code} not in the spec table: {reply}"))
            .1;
        assert!(reply["message"].is_string(), "{reply}");
        assert!(reply.get("data").is_some(), "{reply}");
        if code == 200 {
            assert_eq!(reply["message"], "SUCCESS", "{reply}");
        } else {
            assert_eq!(reply["kind"], kind, "{reply}");
            assert_eq!(reply["data"], Value::Null, "{reply}");
            assert!(outs.is_empty(), "refused {input} produced {outs:?}");
        }
        (reply, outs)
    }

    fn tick(&mut self, ms: i64) -> Vec<Value> {
        self.h.tick(ms);
        self.transcript.push(format!("tick {}", self.h.now));
        self.collect()
    }

    fn jump(&mut self) -> (bool, Vec<Value>) {
        let went = self.h.jump();
        self.transcript.push(format!("jump {}", self.h.now));
        (went, self.collect())
    }

    fn store_id(i: u8, n: u8) -> String {
        format!("t{:02}", i % n)
    }

    fn shop_id(i: u8) -> String {
        format!("{}", 880_000 + u32::from(i % SHOPS))
    }

    /// Whether an answer to `o` may legitimately be refused as unknown.
    fn may_be_dead(&self, o: &Open) -> bool {
        o.epoch != self.epoch
            || self.h.now >= o.sent + REQUEST_TIMEOUT_MS
            || self.generation_of(&o.store) != o.generation
    }

    fn answer_check(
        &mut self,
        o: Open,
        status: u16,
        body: &str,
        money: Option<i64>,
        link: Option<String>,
    ) -> Vec<Value> {
        let before = self.stores.get(&o.store).map(|m| m.state.clone());
        let (reply, outs) = self.send(json!({"type": "http_response", "request_id": o.req["request_id"], "status": status, "body": body}));
        match code(&reply) {
            200 => {
                let m = self.stores.get_mut(&o.store).unwrap_or_else(|| {
                    panic!("an answer for removed store {} was accepted", o.store)
                });
                if let Some(c) = money {
                    m.cost += c;
                }
                for t in outs.iter().filter(|t| t["type"] == "transition") {
                    if t["store_id"] == o.store.as_str() {
                        assert_eq!(
                            t["cost"].as_i64(),
                            money,
                            "transition cost {t} after {body}"
                        );
                    } else {
                        assert_eq!(t.get("cost").unwrap_or(&Value::Null), &Value::Null, "{t}");
                    }
                }
                if let (Some(l), Some("requested")) = (link, before.as_deref()) {
                    let v = self.query_checked(&o.store);
                    if v["state"] == "requested" {
                        assert_eq!(v["auth_url"], l.as_str(), "302 link not adopted: {v}");
                    }
                }
            }
            900008 => assert!(
                self.may_be_dead(&o),
                "live check {} refused as unknown",
                o.req
            ),
            c => panic!("answer refused with {c}: {reply}"),
        }
        outs
    }

    fn query_checked(&mut self, store: &str) -> Value {
        let (r, outs) = self.send(json!({"type": "query", "client_id": "c1", "store_id": store}));
        assert!(outs.is_empty(), "query produced {outs:?}");
        ok(&r);
        r["data"].clone()
    }

    fn apply(&mut self, step: &Step, n: u8) {
        let outs = match step {
            Step::Register { store, notify } => {
                let id = Self::store_id(*store, n);
                let mut input = json!({"type": "register_store", "client_id": "c1", "store_id": id, "platform": "taobao"});
                if *notify {
                    input["notify_url"] = json!(format!("https://biz.example/n/{id}"));
                }
                let exists = self.stores.contains_key(&id);
                let (r, outs) = self.send(input);
                if exists {
                    assert_eq!(code(&r), 900009, "{r}");
                } else {
                    ok(&r);
                    let m = Model {
                        state: "unauthorized".into(),
                        ..Model::default()
                    };
                    self.stores.insert(id, m);
                }
                outs
            }
            Step::Authorize { store, shop } => {
                let id = Self::store_id(*store, n);
                let shop = match shop {
                    Shop::Pool(i) => Some(Self::shop_id(*i)),
                    Shop::Missing => None,
                    Shop::Taken(i) => {
                        let taken: Vec<String> = self
                            .stores
                            .iter()
                            .filter(|(k, _)| **k != id)
                            .flat_map(|(_, m)| m.claims.clone())
                            .collect();
                        Some(if taken.is_empty() {
                            Self::shop_id(*i)
                        } else {
                            taken[usize::from(*i) % taken.len()].clone()
                        })
                    }
                };
                let mut input = json!({"type": "authorize", "client_id": "c1", "store_id": id, "auth_type": "URL"});
                if let Some(s) = &shop {
                    input["seller_id"] = json!(s);
                }
                let expected = match (self.stores.get(&id), &shop) {
                    (None, _) => 940002,
                    (Some(_), None) => 900002,
                    (Some(m), _) if m.state == "authorized" => 900004,
                    (Some(m), Some(s)) if m.state == "requested" && m.shop.as_ref() == Some(s) => {
                        200
                    }
                    (Some(_), Some(s))
                        if self
                            .stores
                            .iter()
                            .any(|(k, m)| *k != id && m.claims.contains(s)) =>
                    {
                        900003
                    }
                    _ => 200,
                };
                let idempotent = self
                    .stores
                    .get(&id)
                    .is_some_and(|m| m.state == "requested" && m.shop == shop);
                if expected == 200 && !idempotent {
                    self.bump(&id);
                }
                let (r, outs) = self.send(input);
                assert_eq!(code(&r), expected, "authorize {id} {shop:?}: {r}");
                if expected == 200 {
                    if idempotent {
                        assert!(outs.is_empty(), "idempotent authorize produced {outs:?}");
                    } else {
                        let s = shop.unwrap();
                        assert_eq!(
                            r["data"]["auth_url"],
                            format!("https://auth.example/taobao?shop={s}")
                        );
                        let now = self.h.now;
                        let m = self.stores.get_mut(&id).unwrap();
                        m.shop = Some(s);
                        m.attempt_start = now;
                    }
                }
                outs
            }
            Step::Answer { pick, money } => {
                if self.checks.is_empty() {
                    return self.after_step(&[], false);
                }
                let o = self.checks.remove(0);
                self.answers += 1;
                let (status, body, money, link) = answer(self.service, *pick, *money, self.answers);
                let outs = self.answer_check(o, status, &body, money, link);
                return self.after_step(&outs, true);
            }
            Step::Transport => {
                if self.checks.is_empty() {
                    return self.after_step(&[], false);
                }
                let o = self.checks.remove(0);
                let (r, outs) = self.send(json!({"type": "http_failure", "request_id": o.req["request_id"], "error": "connection refused"}));
                match code(&r) {
                    200 => {}
                    900008 => assert!(self.may_be_dead(&o), "live check refused: {}", o.req),
                    _ => panic!("{r}"),
                }
                outs
            }
            Step::Notify { ok: good } => {
                if self.notifies.is_empty() {
                    return self.after_step(&[], false);
                }
                let o = self.notifies.remove(0);
                let status = if *good { 204 } else { 500 };
                let (r, outs) = self.send(json!({"type": "http_response", "request_id": o.req["request_id"], "status": status, "body": ""}));
                assert!([200, 900008].contains(&code(&r)), "{r}");
                outs
            }
            Step::TokenRejected(s) => {
                let id = Self::store_id(*s, n);
                let expected = match self.stores.get(&id) {
                    None => 940002,
                    Some(m) if m.state == "authorized" => 200,
                    Some(_) => 900010,
                };
                if expected == 200 {
                    self.bump(&id);
                }
                let (r, outs) =
                    self.send(json!({"type": "token_rejected", "client_id": "c1", "store_id": id}));
                assert_eq!(code(&r), expected, "{r}");
                outs
            }
            Step::Revoke(s) => {
                let id = Self::store_id(*s, n);
                let exists = self.stores.contains_key(&id);
                let (r, outs) =
                    self.send(json!({"type": "revoke", "client_id": "c1", "store_id": id}));
                assert_eq!(code(&r), if exists { 200 } else { 940002 }, "{r}");
                outs
            }
            Step::Remove(s) => {
                let id = Self::store_id(*s, n);
                let exists = self.stores.contains_key(&id);
                let (r, outs) =
                    self.send(json!({"type": "remove_store", "client_id": "c1", "store_id": id}));
                if exists {
                    ok(&r);
                    self.stores.remove(&id);
                    self.bump(&id);
                } else {
                    assert_eq!(code(&r), 940002, "{r}");
                }
                outs
            }
            Step::Query(s) => {
                let id = Self::store_id(*s, n);
                let exists = self.stores.contains_key(&id);
                let (r, outs) =
                    self.send(json!({"type": "query", "client_id": "c1", "store_id": id}));
                assert_eq!(code(&r), if exists { 200 } else { 940002 }, "{r}");
                assert!(outs.is_empty());
                outs
            }
            Step::Tick(ms) => self.tick(i64::from(*ms)),
            Step::Jump => self.jump().1,
            Step::Restore => {
                let snap = self.h.engine.snapshot();
                let mut e = Engine::from_config_json(&self.config.to_string()).expect("config");
                e.restore(&snap).expect("restore");
                self.h.engine = e;
                self.epoch += 1;
                self.transcript.push("restore".into());
                // Open requests are re-sent (new ids) at the next call.
                let stale: Vec<Open> = self
                    .checks
                    .drain(..)
                    .chain(self.notifies.drain(..))
                    .collect();
                let mut outs = self.tick(0);
                if let Some(o) = stale.first() {
                    let (r, more) = self.send(json!({"type": "http_response", "request_id": o.req["request_id"], "status": 200, "body": "{}"}));
                    assert_eq!(code(&r), 900008, "an id from before the restore: {r}");
                    outs.extend(more);
                }
                outs
            }
        };
        self.after_step(&outs, false)
    }

    /// Invariants after every step. `costs_checked` marks steps whose transition costs were already checked.
    fn after_step(&mut self, outs: &[Value], costs_checked: bool) {
        if !costs_checked {
            for t in outs.iter().filter(|t| t["type"] == "transition") {
                assert_eq!(t.get("cost").unwrap_or(&Value::Null), &Value::Null, "{t}");
            }
        }
        self.check_rate();
        let ids: Vec<String> = self.stores.keys().cloned().collect();
        let mut owners: BTreeMap<String, String> = BTreeMap::new();
        let mut any_requested = false;
        let open_for: BTreeSet<String> = self
            .checks
            .iter()
            .filter(|o| !self.may_be_dead(o))
            .map(|o| o.store.clone())
            .collect();
        for id in ids {
            let v = self.query_checked(&id);
            let state = v["state"].as_str().unwrap().to_owned();
            let claims: Vec<String> = v["claims"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["kind"] == "seller")
                .map(|c| {
                    assert_eq!(c["platform"], "taobao", "{c}");
                    c["seller_id"].as_str().unwrap().to_owned()
                })
                .collect();
            for c in &claims {
                if let Some(other) = owners.insert(c.clone(), id.clone()) {
                    panic!("seller {c} claimed by {other} and {id}");
                }
            }
            match state.as_str() {
                "failed" | "revoked" | "unauthorized" => {
                    assert!(v["claims"].as_array().unwrap().is_empty(), "{v}")
                }
                "requested" | "authorized" | "expired" => assert!(!claims.is_empty(), "{v}"),
                s => panic!("unexpected state {s}: {v}"),
            }
            if state == "requested" {
                any_requested = true;
                assert!(
                    open_for.contains(&id) || self.h.engine.poll_timeout_ms().is_some(),
                    "{id} requested with no check open and no timer"
                );
            }
            if state == "authorized" {
                assert_eq!(v["access_expires_at"], Value::Null, "{v}");
            }
            let m = self.stores.get_mut(&id).unwrap();
            assert_eq!(
                v["cost_total"].as_i64(),
                Some(m.cost),
                "metering of {id}: {v}"
            );
            m.state = state;
            m.claims = claims;
        }
        if any_requested {
            assert!(
                self.h.engine.poll_timeout_ms().is_some(),
                "a store is requested but poll_timeout is None"
            );
        }
    }

    fn check_rate(&self) {
        let mut j = 0;
        for (i, &t) in self.sends.iter().enumerate() {
            if i > 0 {
                assert!(t >= self.sends[i - 1]);
            }
            j = j.max(i);
            while j < self.sends.len() && self.sends[j] < t + 1000 {
                j += 1;
            }
            assert!(
                j - i <= self.rate,
                "{} status checks in [{t}, {}) with a limit of {}",
                j - i,
                t + 1000,
                self.rate
            );
        }
    }

    /// Answers every check with subAuthorize, acknowledges notifications and
    /// jumps ahead until no store is `requested`.
    fn finish(&mut self) {
        let start = self.h.now;
        let waiting: Vec<(String, i64)> = self
            .stores
            .iter()
            .filter(|(_, m)| m.state == "requested")
            .map(|(k, m)| (k.clone(), m.attempt_start))
            .collect();
        let body = sub_authorize(self.service);
        for _ in 0..10_000 {
            while !self.checks.is_empty() {
                let o = self.checks.remove(0);
                let outs = self.answer_check(o, 200, &body, Some(1), None);
                self.after_step(&outs, true);
            }
            while !self.notifies.is_empty() {
                let o = self.notifies.remove(0);
                let (r, outs) = self.send(json!({"type": "http_response", "request_id": o.req["request_id"], "status": 204, "body": ""}));
                assert!([200, 900008].contains(&code(&r)), "{r}");
                self.after_step(&outs, false);
            }
            if self.stores.values().all(|m| m.state != "requested") {
                break;
            }
            let (went, outs) = self.jump();
            assert!(
                went,
                "stores requested but nothing scheduled: {:?}",
                self.stores
            );
            self.after_step(&outs, false);
        }
        for (id, attempt_start) in waiting {
            let Some(m) = self.stores.get(&id) else {
                continue;
            };
            let deadline = attempt_start + TTL_MS;
            if m.state != "authorized" {
                // Only an attempt that had less than a full poll interval left may time out.
                let v = self.query_checked(&id);
                assert_eq!(v["state"], "failed", "{v}");
                assert_eq!(v["last_error"]["reason"], "timeout", "{v}");
                assert!(
                    deadline - start < POLL_MAX_MS + REQUEST_TIMEOUT_MS,
                    "{id} timed out although {} s of its ttl were left when checks started being answered",
                    (deadline - start) / 1000
                );
            }
        }
    }
}

fn run(s: &Script) -> Vec<String> {
    let mut r = Run::new(s);
    for st in &s.steps {
        r.apply(st, s.stores);
    }
    r.finish();
    r.transcript
}

fn cases() -> u32 {
    std::env::var("SHOPAUTH_CHECKER_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn check(s: &Script) {
    let a = run(s);
    let b = run(s);
    assert!(a == b, "same script, different transcripts");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn vvtool_scripts(s in script(Service::Vvtool)) {
        check(&s);
    }

    #[test]
    fn damaijia_scripts(s in script(Service::Damaijia)) {
        check(&s);
    }
}
