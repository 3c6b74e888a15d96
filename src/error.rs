//! The error types: why an input was refused ([`Refusal`], one variant per
//! reply `kind` of the spec), why a configuration was refused
//! ([`ConfigError`]), why a snapshot was refused ([`RestoreError`]), why a
//! `load` or `unload` was refused ([`LoadError`]) and why a JSON text is not
//! an input at all ([`InputError`]).
//!
//! Messages name the field and the rule they break, and never carry a secret
//! (only field names and limits go into them, never the offending value).

use thiserror::Error;

/// Why `handle` refused an input. Each variant is one `kind` of the reply
/// envelope, with the code of spec §3.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    /// 900000: an internal inconsistency; nothing was changed.
    #[error("system error: {0}")]
    SystemError(String),
    /// 900002: a field breaks a rule.
    #[error("illegal param: {field} {rule}")]
    IllegalParam {
        /// The field's name (a JSON path for nested fields).
        field: String,
        /// The rule broken, in words.
        rule: String,
    },
    /// 900003: the seller is bound to another store.
    #[error("seller id already authorized: seller_id is bound to another store")]
    SellerIdTaken,
    /// 900004: the store is already authorized.
    #[error("repeat authorized: the store is already authorized")]
    RepeatAuthorized,
    /// 940002: no such store for this client.
    #[error("store not exist: no store with this store_id for this client_id")]
    StoreNotExist,
    /// 900005: the credentials are bound to another store.
    #[error("auth info already authorized: auth_info is bound to another store")]
    AuthInfoTaken,
    /// 900006: a token exchange or verification is in flight.
    #[error("authorization in progress: the store is waiting for the platform")]
    InProgress,
    /// 900007: unknown, forged, stale or used nonce; bad signature; wrong platform.
    #[error("invalid state: {0}")]
    InvalidState(&'static str),
    /// 900008: no open request with that id.
    #[error("unknown request: no open request has this request_id")]
    UnknownRequest,
    /// 900009: `register_store` of an existing store id.
    #[error("store already exists: store_id is registered")]
    StoreExists,
    /// 900010: no valid credentials.
    #[error("not authorized: the store has no valid credentials")]
    NotAuthorized,
}

impl Refusal {
    /// The numeric code of the reply envelope.
    pub fn code(&self) -> u32 {
        match self {
            Refusal::SystemError(_) => 900000,
            Refusal::IllegalParam { .. } => 900002,
            Refusal::SellerIdTaken => 900003,
            Refusal::RepeatAuthorized => 900004,
            Refusal::StoreNotExist => 940002,
            Refusal::AuthInfoTaken => 900005,
            Refusal::InProgress => 900006,
            Refusal::InvalidState(_) => 900007,
            Refusal::UnknownRequest => 900008,
            Refusal::StoreExists => 900009,
            Refusal::NotAuthorized => 900010,
        }
    }

    /// The `kind` of the reply envelope.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::SystemError(_) => "system_error",
            Refusal::IllegalParam { .. } => "illegal_param",
            Refusal::SellerIdTaken => "seller_id_taken",
            Refusal::RepeatAuthorized => "repeat_authorized",
            Refusal::StoreNotExist => "store_not_exist",
            Refusal::AuthInfoTaken => "auth_info_taken",
            Refusal::InProgress => "in_progress",
            Refusal::InvalidState(_) => "invalid_state",
            Refusal::UnknownRequest => "unknown_request",
            Refusal::StoreExists => "store_exists",
            Refusal::NotAuthorized => "not_authorized",
        }
    }

    /// Shorthand for an [`Refusal::IllegalParam`].
    pub fn illegal(field: impl Into<String>, rule: impl Into<String>) -> Self {
        Refusal::IllegalParam {
            field: field.into(),
            rule: rule.into(),
        }
    }
}

/// Why a JSON text is not an input the engine can apply.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InputError {
    /// Not JSON, not an object, too deep, no `type`, unknown `type`, too large
    /// (the C ABI's `SHOPAUTH_INVALID_ARGUMENT`).
    #[error("illegal param: input {0}")]
    Invalid(String),
    /// An object of a known type whose fields break a rule
    /// (the C ABI's `SHOPAUTH_REJECTED`).
    #[error(transparent)]
    Field(Refusal),
}

/// Why `Engine::new` refused a configuration. `path` is the JSON path of
/// the bad field, e.g. `apps.taobao_tw.redirect_uri`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid configuration at {path}: {rule}")]
pub struct ConfigError {
    /// JSON path of the bad field.
    pub path: String,
    /// The rule broken.
    pub rule: String,
}

impl ConfigError {
    pub(crate) fn new(path: impl Into<String>, rule: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            rule: rule.into(),
        }
    }
}

/// Why `restore` refused a snapshot. The engine is unchanged either way.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RestoreError {
    /// The text is not a snapshot (`SHOPAUTH_INVALID_ARGUMENT`).
    #[error("snapshot does not parse: {0}")]
    Malformed(String),
    /// Another major version (`SHOPAUTH_REJECTED`).
    #[error(
        "snapshot version is not supported (this engine reads major versions 1 to {supported})"
    )]
    Version {
        /// The newest major version this engine reads.
        supported: u32,
    },
    /// A version-1 snapshot taken under another configuration (`SHOPAUTH_REJECTED`).
    #[error(
        "snapshot was taken under another configuration (a version-1 snapshot restores only under the configuration it was taken with)"
    )]
    OtherConfiguration,
    /// Taken under another engine secret (`SHOPAUTH_REJECTED`).
    #[error("snapshot was taken under another engine secret")]
    OtherSecret,
    /// Parses, but its content contradicts itself (`SHOPAUTH_REJECTED`).
    #[error("snapshot is inconsistent: {0}")]
    Inconsistent(String),
}

/// Why `load` or `unload` (spec §11, fleets) refused a text. Nothing changed
/// either way. Messages start with `load refused (<kind>)` (or `unload
/// refused`), name the rule and the position (`stores[2]`,
/// `foreign_claims[0]`), and never carry a value of the text.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LoadError {
    /// Not JSON, or not of the shape `{"stores": [record, …],
    /// "foreign_claims": [claim, …]}` / `{"store_ids": […], "foreign_claims":
    /// […]}` (`SHOPAUTH_INVALID_ARGUMENT`). The message locates the error
    /// (`load.stores[2].state`, line and column), never quoting the text.
    #[error("{0}")]
    Malformed(String),
    /// A record is of a store this engine already holds (`SHOPAUTH_REJECTED`, as are all below).
    #[error(
        "load refused (already_loaded): stores[{index}] is a store this engine already holds (a store is loaded at most once)"
    )]
    AlreadyLoaded {
        /// Position of the record.
        index: usize,
    },
    /// A record is of a store removed here whose removal `take_changes` has
    /// not handed out yet (its change entry would be lost).
    #[error(
        "load refused (removed_not_taken): stores[{index}] is a store removed here since the last take_changes (take the changes before loading it again)"
    )]
    RemovedNotTaken {
        /// Position of the record.
        index: usize,
    },
    /// Two records of the load share a store id.
    #[error(
        "load refused (duplicate_store): stores[{index}] has the store id of an earlier record (store ids are unique)"
    )]
    DuplicateStore {
        /// Position of the later record.
        index: usize,
    },
    /// A record's platform is not in this engine's configuration.
    #[error(
        "load refused (platform_not_configured): stores[{index}] is on a platform this engine is not configured for (every store's platform is configured)"
    )]
    PlatformNotConfigured {
        /// Position of the record.
        index: usize,
    },
    /// A record breaks one of the per-store invariants `restore` checks.
    #[error("load refused (invalid_record): stores[{index}] breaks an invariant: {rule}")]
    InvalidRecord {
        /// Position of the record.
        index: usize,
        /// The invariant, in words.
        rule: String,
    },
    /// A claim of a record, or a foreign claim, is held here by another
    /// store (a store of this engine, a foreign claim naming another store,
    /// or another record or foreign claim of the same load).
    #[error(
        "load refused (claim_conflict): {what} of {at} is bound to another store here (no seller or credential is claimed by two stores)"
    )]
    ClaimConflict {
        /// `stores[i]` or `foreign_claims[j]`.
        at: String,
        /// `a seller claim` or `a credential claim`.
        what: &'static str,
    },
    /// A foreign claim names a store this engine holds or the load adds, or
    /// a record is of a store that foreign claims name.
    #[error(
        "load refused (foreign_store_loaded): {at} {why} (a store is either held here or named by foreign claims, never both)"
    )]
    ForeignStoreLoaded {
        /// `stores[i]` or `foreign_claims[j]`.
        at: String,
        /// What collides, in words.
        why: &'static str,
    },
    /// A foreign claim's field breaks a rule.
    #[error("{verb} refused (invalid_claim): foreign_claims[{index}].{field} {rule}")]
    InvalidClaim {
        /// `load` or `unload`.
        verb: &'static str,
        /// Position of the claim.
        index: usize,
        /// The field.
        field: &'static str,
        /// The rule broken.
        rule: &'static str,
    },
}

impl LoadError {
    /// A stable name of the rule broken (`malformed`, `already_loaded`,
    /// `removed_not_taken`, `duplicate_store`, `platform_not_configured`,
    /// `invalid_record`, `claim_conflict`, `foreign_store_loaded`,
    /// `invalid_claim`), the one in parentheses in the message.
    pub fn kind(&self) -> &'static str {
        match self {
            LoadError::Malformed(_) => "malformed",
            LoadError::AlreadyLoaded { .. } => "already_loaded",
            LoadError::RemovedNotTaken { .. } => "removed_not_taken",
            LoadError::DuplicateStore { .. } => "duplicate_store",
            LoadError::PlatformNotConfigured { .. } => "platform_not_configured",
            LoadError::InvalidRecord { .. } => "invalid_record",
            LoadError::ClaimConflict { .. } => "claim_conflict",
            LoadError::ForeignStoreLoaded { .. } => "foreign_store_loaded",
            LoadError::InvalidClaim { .. } => "invalid_claim",
        }
    }
}
