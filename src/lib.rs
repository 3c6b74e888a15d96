//! # shopauth
//!
//! The IO-free core of a store-authorization service for e-commerce
//! marketplaces (Taobao, Taobao Taiwan, Lazada, Shopline, and host-defined
//! OAuth 2.0 and KEY platforms). It takes a merchant store from
//! `unauthorized` through `requested`, `pending` and `authorized` to
//! `expired` or `failed` and back through re-authorization, enforces the
//! binding rules (one seller, one credential set, one store), and says
//! exactly which HTTP request to send, which timer to set and what to
//! answer. It performs no IO: the host supplies time and transport.
//!
//! The loop (sans-IO, as in quinn-proto and str0m):
//!
//! ```
//! use shopauth::{Engine, Input, Output};
//! let config = r#"{"secret":"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
//!                  "platforms":{"mykey":{"kind":"key","credential":"token"}}}"#;
//! let mut engine = Engine::from_config_json(config).unwrap();
//! let now = 1_700_000_000_000;
//! let input: Input = serde_json::from_str(
//!     r#"{"type":"register_store","client_id":"c1","store_id":"s1","platform":"mykey"}"#).unwrap();
//! engine.handle_ms(input, now).unwrap();
//! let (_, reply) = engine.handle_json(
//!     r#"{"type":"authorize","client_id":"c1","store_id":"s1","auth_type":"KEY","auth_info":{"token":"t"}}"#, now);
//! assert!(reply.starts_with(r#"{"code":200"#));
//! while let Some(output) = engine.poll_output() {
//!     if let Output::Transition(t) = output { assert_eq!(t.to, shopauth::State::Authorized); }
//! }
//! assert_eq!(engine.poll_timeout(), None);
//! ```
//!
//! Layout: `message` (the JSON vocabulary) → `validate` (field rules) →
//! `store` (one store's record) → `claims`, `timers`, `ratelimit` (engine
//! indexes) → `engine` (the rules) → `platform/*` (one file per protocol)
//! → `snapshot` (restore) and `changes` (persistence by changes) → `fleet`
//! (load, unload, route: several engines over one database) → `ffi` (the C
//! ABI, the only `unsafe`).

#![deny(unsafe_code)]
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub(crate) mod bulk;
pub(crate) mod changes;
pub(crate) mod claims;
pub mod config;
pub(crate) mod encoding;
pub mod engine;
pub mod error;
#[allow(unsafe_code)] // The C ABI: the one module that may use `unsafe`.
pub mod ffi;
pub(crate) mod fleet;
pub(crate) mod ids;
pub(crate) mod invariants;
pub(crate) mod json;
pub(crate) mod keys;
pub mod message;
pub(crate) mod notify;
pub mod platform;
pub(crate) mod ratelimit;
pub(crate) mod redact;
pub mod secret;
pub(crate) mod snapshot;
pub(crate) mod store;
pub(crate) mod timers;
pub(crate) mod typed;
pub(crate) mod validate;

pub use config::Config;
pub use engine::{Engine, HandleStatus};
pub use error::{ConfigError, InputError, LoadError, Refusal, RestoreError};
pub use fleet::Route;
pub use message::{
    AuthType, Claim, Input, Output, Purpose, Reason, Reply, ReplyData, State, StoreView, reply_json,
};
pub use secret::Secret;
