//! Shared test harness: a configuration with every platform kind, a driver
//! that feeds JSON inputs and drains outputs, and helpers to pick outputs.
//! Simulated platforms live in the scenario files that need them.
#![allow(dead_code)]

use serde_json::{Value, json};
use shopauth::{Engine, HandleStatus};

pub const SECRET: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
pub const T0: i64 = 1_700_000_000_000;

/// A configuration with an oauth2 platform (`myshop`), a KEY platform
/// without verification (`mykey`), one with verification (`vkey`), IOP,
/// Shopline and a vv-tool checker.
pub fn config() -> Value {
    json!({
        "secret": SECRET,
        "apps": {
            "myshop": {"app_key": "cid", "app_secret": "oauth2-app-secret", "redirect_uri": "https://host.example/cb/myshop"},
            "taobao_tw": {"app_key": "123456", "app_secret": "iop-tw-secret", "redirect_uri": "https://host.example/cb/taobao_tw"},
            "lazada": {"app_key": "654321", "app_secret": "iop-lz-secret", "redirect_uri": "https://host.example/cb/lazada"},
            "shopline": {"app_key": "slkey", "app_secret": "shopline-app-secret", "redirect_uri": "https://host.example/cb/shopline", "scope": "read_orders"},
            "taobao": {"checker": "vvtool", "access_token": "checker-access-token", "auth_page_url": "https://auth.example/taobao?shop={seller_id}"}
        },
        "platforms": {
            "myshop": {"kind": "oauth2", "authorize_url": "https://as.example/authorize", "token_url": "https://as.example/token", "scope": "orders"},
            "mykey": {"kind": "key", "credential": "token"},
            "pairkey": {"kind": "key", "credential": "api_key_secret"},
            "vkey": {"kind": "key", "credential": "api_key_secret",
                      "verify": {"method": "GET", "url": "https://api.example/verify?key={api_key}", "headers": [["X-Secret", "{api_secret}"]]}}
        }
    })
}

pub struct Host {
    pub engine: Engine,
    pub now: i64,
    pub outputs: Vec<Value>,
}

impl Host {
    pub fn new() -> Host {
        Host::with(config())
    }

    pub fn with(config: Value) -> Host {
        Host {
            engine: Engine::from_config_json(&config.to_string()).expect("config is valid"),
            now: T0,
            outputs: Vec::new(),
        }
    }

    /// Sends one input; returns the reply as JSON and drains outputs into `self.outputs`.
    pub fn send(&mut self, input: Value) -> Value {
        let (_, reply) = self.send_status(input);
        reply
    }

    pub fn send_status(&mut self, input: Value) -> (HandleStatus, Value) {
        let (status, reply) = self.engine.handle_json(&input.to_string(), self.now);
        self.drain();
        (status, serde_json::from_str(&reply).expect("reply is JSON"))
    }

    pub fn drain(&mut self) {
        let text = self.engine.drain_outputs_json();
        let v: Vec<Value> = serde_json::from_str(&text).expect("outputs are JSON");
        self.outputs.extend(v);
    }

    /// Advances time by `ms` and fires timers.
    pub fn tick(&mut self, ms: i64) {
        self.now += ms;
        self.engine.handle_timeout_ms(self.now);
        self.drain();
    }

    /// Jumps to the next deadline (if any, and not beyond `limit`).
    pub fn jump(&mut self) -> bool {
        match self.engine.poll_timeout_ms() {
            Some(t) => {
                self.now = self.now.max(t);
                self.engine.handle_timeout_ms(self.now);
                self.drain();
                true
            }
            None => false,
        }
    }

    pub fn take(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.outputs)
    }

    /// Removes and returns the outputs of `kind` (`http_request`, `transition`, `redirect`).
    pub fn take_kind(&mut self, kind: &str) -> Vec<Value> {
        let (want, keep): (Vec<Value>, Vec<Value>) = std::mem::take(&mut self.outputs)
            .into_iter()
            .partition(|o| o["type"] == kind);
        self.outputs = keep;
        want
    }

    /// Removes and returns the one http_request with `purpose`.
    pub fn request(&mut self, purpose: &str) -> Value {
        let pos = self
            .outputs
            .iter()
            .position(|o| o["type"] == "http_request" && o["purpose"] == purpose)
            .unwrap_or_else(|| panic!("no {purpose} request in {:#?}", self.outputs));
        self.outputs.remove(pos)
    }

    pub fn transitions(&mut self) -> Vec<(String, String, String, Option<String>)> {
        self.take_kind("transition")
            .into_iter()
            .map(|t| {
                (
                    t["store_id"].as_str().unwrap().to_owned(),
                    t["from"].as_str().unwrap().to_owned(),
                    t["to"].as_str().unwrap().to_owned(),
                    t["reason"].as_str().map(str::to_owned),
                )
            })
            .collect()
    }

    pub fn respond(&mut self, req: &Value, status: u16, body: &str) -> Value {
        self.send(json!({"type": "http_response", "request_id": req["request_id"], "status": status, "body": body}))
    }

    pub fn fail_transport(&mut self, req: &Value) -> Value {
        self.send(json!({"type": "http_failure", "request_id": req["request_id"], "error": "connection refused"}))
    }

    pub fn register(&mut self, store: &str, platform: &str) -> Value {
        self.send(json!({"type": "register_store", "client_id": "c1", "store_id": store, "platform": platform}))
    }

    pub fn query(&mut self, store: &str) -> Value {
        let r = self.send(json!({"type": "query", "client_id": "c1", "store_id": store}));
        assert_eq!(r["code"], 200, "{r}");
        r["data"].clone()
    }

    pub fn state(&mut self, store: &str) -> String {
        self.query(store)["state"].as_str().unwrap().to_owned()
    }
}

/// The value of a query parameter of a URL (decoded).
pub fn param(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Form body → pairs.
pub fn form(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn ok(reply: &Value) {
    assert_eq!(reply["code"], 200, "{reply}");
}

pub fn code(reply: &Value) -> i64 {
    reply["code"].as_i64().unwrap()
}

/// `authorize` (URL) of store `store` of client `c1`, with a redirect_url
/// and, when given, a seller_id.
pub fn authorize_url_of(h: &mut Host, store: &str, seller: Option<&str>) -> Value {
    let mut a = json!({"type": "authorize", "client_id": "c1", "store_id": store, "auth_type": "URL",
                       "redirect_url": "https://biz.example/done"});
    if let Some(s) = seller {
        a["seller_id"] = json!(s);
    }
    h.send(a)
}

/// The auth_url of a successful [`authorize_url_of`].
pub fn link_of(h: &mut Host, store: &str, seller: Option<&str>) -> String {
    let r = authorize_url_of(h, store, seller);
    ok(&r);
    r["data"]["auth_url"].as_str().unwrap().to_owned()
}
