//! The engine's configuration: its JSON form ([`Config`]), the checks that
//! are common to every platform (secret, timing, platform names), the
//! helpers that refuse a bad field with its path, and the validated
//! platform profiles ([`Profile`]) the engine runs on.
//!
//! What does not live here: each platform kind's settings and the reading
//! of its entry (`platform/*.rs`, reached through the registry in
//! `platform/mod.rs`), how a platform builds or reads its requests, or any
//! default that belongs to a protocol's wire format.

use crate::error::ConfigError;
use crate::platform::key::KeyPlatform;
use crate::platform::oauth2::{self, Oauth2Platform};
use crate::platform::{self, Flow, Kind, Platform, key};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The configuration, as JSON (spec §5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Engine secret, hex, at least 32 bytes.
    pub secret: Secret,
    /// Credentials and settings per platform.
    #[serde(default)]
    pub apps: BTreeMap<String, AppEntry>,
    /// The host's own platforms (`oauth2`, `key`).
    #[serde(default)]
    pub platforms: BTreeMap<String, PlatformConfig>,
    /// Timers.
    #[serde(default)]
    pub timing: Timing,
}

/// An `apps` entry as written: a JSON object whose fields only its
/// platform kind knows. Each kind reads it as its own entry type, which
/// denies the fields of other kinds (`platform/*.rs`); nothing here names a
/// kind's fields. Its `Debug` shows the field names only (values may be
/// secrets).
#[derive(Clone, PartialEq, Default, Deserialize)]
#[serde(transparent)]
pub struct AppEntry(serde_json::Map<String, serde_json::Value>);

impl AppEntry {
    /// The entry's fields.
    pub fn fields(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.0
    }
}

impl From<serde_json::Map<String, serde_json::Value>> for AppEntry {
    fn from(m: serde_json::Map<String, serde_json::Value>) -> Self {
        AppEntry(m)
    }
}

impl std::fmt::Debug for AppEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// The fields of the `apps` entries of shopauth 0.1, in the order its
/// configuration fingerprint (version-1 snapshots) serialized them.
const V1_FIELD_ORDER: [&str; 15] = [
    "app_key",
    "app_secret",
    "redirect_uri",
    "scope",
    "uuid",
    "authorize_url",
    "api_url",
    "shop_url",
    "checker",
    "access_token",
    "auth_page_url",
    "edition",
    "base_url",
    "rate_limit_per_s",
    "recheck_interval_s",
];

/// Written for the configuration fingerprint only: the fields of version 1
/// first, in their order, then the others by name; nulls left out (as
/// absent fields were), so a version-1 configuration fingerprints as it
/// did.
impl Serialize for AppEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let rank = |k: &str| V1_FIELD_ORDER.iter().position(|f| *f == k);
        let mut fields: Vec<(&String, &serde_json::Value)> =
            self.0.iter().filter(|(_, v)| !v.is_null()).collect();
        fields.sort_by(|(a, _), (b, _)| {
            (rank(a).unwrap_or(usize::MAX), a.as_str()).cmp(&(rank(b).unwrap_or(usize::MAX), b))
        });
        s.collect_map(fields)
    }
}

/// A host-defined platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PlatformConfig {
    /// RFC 6749 authorization-code flow.
    Oauth2(Oauth2Platform),
    /// Credentials handed in by the business party.
    Key(KeyPlatform),
}

/// The credential form of a KEY platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialForm {
    /// `auth_info.token`.
    Token,
    /// `auth_info.api_key` + `auth_info.api_secret`.
    ApiKeySecret,
}

/// `timing`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timing {
    /// Bound of `requested` (default 3600).
    pub request_ttl_s: u64,
    /// Refresh this long before access expiry, at most half the lifetime (default 1800).
    pub refresh_lead_s: u64,
    /// An unanswered request fails after this (default 60).
    pub request_timeout_s: u64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            request_ttl_s: 3600,
            refresh_lead_s: 1800,
            request_timeout_s: 60,
        }
    }
}

// ------------------------------------------------------------ profiles

/// What the engine knows of one platform after validation.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Its name (the `platform` of stores).
    pub name: String,
    /// Protocol and settings.
    pub kind: Kind,
    /// Requests per second, if limited.
    pub rate_limit_per_s: Option<u32>,
    pub(crate) seller_required: bool,
    pub(crate) code_ttl_s: u64,
    pub(crate) refresh_lead_s: u64,
}

/// The engine's validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Engine secret bytes.
    pub secret: Vec<u8>,
    /// Profiles by name.
    /// Profiles in name order; stores refer to them by index.
    pub profiles: Vec<Profile>,
    /// Timing.
    pub timing: Timing,
}

impl Settings {
    /// The index and profile of the platform called `name`.
    pub fn profile(&self, name: &str) -> Option<(usize, &Profile)> {
        self.profiles
            .iter()
            .enumerate()
            .find(|(_, p)| p.name == name)
    }
}

impl Profile {
    /// The platform kind's implementation.
    pub fn platform(&self) -> &dyn Platform {
        self.kind.platform()
    }
    /// Whether the platform takes `URL` authorizations.
    pub fn takes_url(&self) -> bool {
        self.platform().flow() != Flow::KeyOnly
    }
    /// The credential form a `KEY` authorization needs, if the platform takes KEY.
    pub fn key_form(&self) -> Option<CredentialForm> {
        self.platform().key_form()
    }
    /// Whether `authorize` needs a seller_id.
    pub fn seller_id_required(&self) -> bool {
        self.seller_required
    }
    /// How long a code is good for, from the redirect.
    pub fn code_ttl_s(&self) -> u64 {
        self.code_ttl_s
    }
    /// Refresh lead for this platform.
    pub fn refresh_lead_s(&self) -> u64 {
        self.refresh_lead_s
    }
}

// The fields below are set during validation; kept private to the crate.
impl Profile {
    pub(crate) fn new(name: &str, kind: Kind, rate: Option<u32>, seller_required: bool) -> Self {
        Profile {
            name: name.to_owned(),
            kind,
            rate_limit_per_s: rate,
            seller_required,
            code_ttl_s: 600,
            refresh_lead_s: 0,
        }
    }
}

impl Config {
    /// Parses a configuration text; errors name the path of the bad field
    /// and the rule, never the value found there (it may be a secret).
    pub fn from_json(text: &str) -> Result<Config, ConfigError> {
        crate::typed::from_str(text).map_err(|p| {
            let p = refine_platform(text, p);
            let rule = p.rule();
            ConfigError::new(p.path_or("(root)"), rule)
        })
    }

    /// The canonical text fingerprinted into snapshots.
    pub fn canonical(&self) -> String {
        serde_json::to_string(self).expect("config serializes")
    }

    /// Validates everything and builds the profiles.
    pub fn validate(&self) -> Result<Settings, ConfigError> {
        let hex = self.secret.expose();
        let secret = hex::decode(hex).map_err(|_| {
            ConfigError::new("secret", "must be hex digits (an even number of them)")
        })?;
        if secret.len() < 32 {
            return Err(ConfigError::new(
                "secret",
                "must be at least 64 hex digits (32 bytes)",
            ));
        }
        let t = &self.timing;
        for (v, name) in [
            (t.request_ttl_s, "timing.request_ttl_s"),
            (t.request_timeout_s, "timing.request_timeout_s"),
        ] {
            if v == 0 || v > 366 * 86400 {
                return Err(ConfigError::new(
                    name,
                    "must be between 1 and 31622400 seconds",
                ));
            }
        }
        if t.refresh_lead_s > 366 * 86400 {
            return Err(ConfigError::new(
                "timing.refresh_lead_s",
                "must be at most 31622400 seconds",
            ));
        }
        let mut profiles = BTreeMap::new();
        for (name, app) in &self.apps {
            let profile = match name.as_str() {
                builtin if platform::built_in(builtin).is_some() => {
                    platform::built_in(builtin).expect("listed")(name, app)?
                }
                other => match self.platforms.get(other) {
                    Some(PlatformConfig::Oauth2(p)) => oauth2::profile(name, app, p, t)?,
                    Some(PlatformConfig::Key(_)) => {
                        return Err(ConfigError::new(
                            format!("apps.{name}"),
                            "a key platform takes no apps entry",
                        ));
                    }
                    None => {
                        return Err(ConfigError::new(
                            format!("apps.{name}"),
                            format!(
                                "names no platform (built in: {}; or one of `platforms`)",
                                platform::built_in_names().join(", ")
                            ),
                        ));
                    }
                },
            };
            let mut profile = profile;
            if profile.refresh_lead_s == 0 {
                profile.refresh_lead_s = t.refresh_lead_s;
            }
            profiles.insert(name.clone(), profile);
        }
        for (name, p) in &self.platforms {
            if platform::built_in(name).is_some() {
                return Err(ConfigError::new(
                    format!("platforms.{name}"),
                    "is the name of a built-in platform",
                ));
            }
            if name.is_empty() || name.chars().count() > 64 {
                return Err(ConfigError::new(
                    format!("platforms.{name}"),
                    "a platform name has 1-64 characters",
                ));
            }
            match p {
                PlatformConfig::Oauth2(_) => {
                    if !profiles.contains_key(name) {
                        return Err(ConfigError::new(
                            format!("apps.{name}"),
                            "is required for an oauth2 platform",
                        ));
                    }
                }
                PlatformConfig::Key(k) => {
                    profiles.insert(name.clone(), key::profile(name, k, t)?);
                }
            }
        }
        Ok(Settings {
            secret,
            profiles: profiles.into_values().collect(),
            timing: t.clone(),
        })
    }
}

/// A `platforms` entry is read through its `kind` first, so a problem
/// inside it is reported at the entry (`platforms.x`); this types the
/// entry's fields again without the tag to name the field itself
/// (`platforms.x.verify.url`).
fn refine_platform(text: &str, p: crate::typed::Problem) -> crate::typed::Problem {
    use crate::typed::{DeError, from_value};
    let mut segments = p.path.split('.');
    let (Some("platforms"), Some(name), rest) = (segments.next(), segments.next(), segments.next())
    else {
        return p;
    };
    match (rest, segments.next(), &p.error) {
        (None, _, _) => {}
        (Some("kind"), None, DeError::BadValue { .. } | DeError::WrongType { .. }) => {
            return crate::typed::Problem {
                path: p.path,
                error: DeError::UnknownVariant {
                    expected: &["oauth2", "key"],
                },
            };
        }
        _ => return p,
    }
    let Ok(serde_json::Value::Object(mut root)) = serde_json::from_str(text) else {
        return p;
    };
    let Some(serde_json::Value::Object(mut entry)) = root
        .get_mut("platforms")
        .and_then(|v| v.get_mut(name))
        .map(serde_json::Value::take)
    else {
        return p;
    };
    let kind = entry.remove("kind");
    let entry = serde_json::Value::Object(entry);
    let inner = match kind.as_ref().and_then(serde_json::Value::as_str) {
        Some("oauth2") => from_value::<Oauth2Platform>(entry).err(),
        Some("key") => from_value::<KeyPlatform>(entry).err(),
        _ => None,
    };
    match inner {
        Some(q) => q.under(&p.path),
        None => p,
    }
}

/// Reads an `apps` entry as its kind's own entry type (which denies unknown
/// fields): a field that belongs to another kind is refused at its path.
pub(crate) fn app_entry<T: serde::de::DeserializeOwned>(
    app: &AppEntry,
    name: &str,
) -> Result<T, ConfigError> {
    let v = serde_json::Value::Object(app.0.clone());
    crate::typed::from_value(v).map_err(|p| {
        let misplaced = matches!(&p.error, crate::typed::DeError::Unknown(f)
            if platform::some_entry_takes(f));
        let p = p.under(&format!("apps.{name}"));
        if misplaced {
            ConfigError::new(p.path, "does not apply to this platform's kind")
        } else {
            let rule = p.rule();
            ConfigError::new(p.path, rule)
        }
    })
}

pub(crate) fn required_text(v: &Option<String>, path: &str) -> Result<String, ConfigError> {
    match v {
        Some(s) if !s.is_empty() => Ok(s.clone()),
        _ => Err(ConfigError::new(path, "is required (non-empty)")),
    }
}

pub(crate) fn required_secret(v: &Option<Secret>, path: &str) -> Result<Secret, ConfigError> {
    match v {
        Some(s) if !s.expose().is_empty() => Ok(s.clone()),
        _ => Err(ConfigError::new(path, "is required (non-empty)")),
    }
}

pub(crate) fn rate(v: Option<u32>, path: &str) -> Result<Option<u32>, ConfigError> {
    match v {
        Some(0) => Err(ConfigError::new(path, "must be at least 1")),
        v => Ok(v),
    }
}

/// An absolute http(s) URL without user info.
pub(crate) fn check_url(s: &str) -> Result<url::Url, &'static str> {
    let u = url::Url::parse(s).map_err(|_| "must be an absolute URL")?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err("must be an http or https URL");
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("must not carry user info");
    }
    // http and https are special schemes: `url` refuses them without a
    // host, so every accepted one has one.
    Ok(u)
}

/// An RFC 9110 `tchar` (the characters of a header name).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

pub(crate) fn url_field(v: Option<&str>, path: &str) -> Result<String, ConfigError> {
    let s = v.ok_or_else(|| ConfigError::new(path, "is required"))?;
    // The URL is sent as written: `url` would silently drop a CR or LF
    // that the request line must not carry.
    if s.chars().any(crate::validate::is_control) {
        return Err(ConfigError::new(
            path,
            "must not contain control characters",
        ));
    }
    check_url(s).map_err(|rule| ConfigError::new(path, rule))?;
    Ok(s.to_owned())
}

/// A per-shop origin template such as `https://{seller_id}.myshopline.com`
/// (`default` when absent): it must hold `{seller_id}` and be an http(s)
/// URL with a handle in its place. Returned without a trailing `/`.
pub(crate) fn origin_template(
    v: Option<&str>,
    default: &str,
    path: &str,
) -> Result<String, ConfigError> {
    let template = v.unwrap_or(default);
    if !template.contains("{seller_id}") {
        return Err(ConfigError::new(path, "must contain {seller_id}"));
    }
    url_field(Some(&template.replace("{seller_id}", "x")), path)?;
    Ok(template.trim_end_matches('/').to_owned())
}

pub(crate) fn url_or(v: Option<&str>, default: &str, path: &str) -> Result<String, ConfigError> {
    url_field(Some(v.unwrap_or(default)), path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_apps_entry_shows_its_field_names_only() {
        let e: AppEntry =
            serde_json::from_str(r#"{"app_key":"k","app_secret":"SECRET-X"}"#).expect("object");
        let shown = format!("{e:?}");
        assert_eq!(shown, r#"{"app_key", "app_secret"}"#);
    }

    #[test]
    fn an_apps_entry_fingerprints_in_version_1_field_order() {
        let e: AppEntry = serde_json::from_str(
            r#"{"zeta":1,"scope":"s","app_key":"k","uuid":null,"redirect_uri":"r","alpha":2}"#,
        )
        .expect("object");
        assert_eq!(
            serde_json::to_string(&e).expect("serializes"),
            r#"{"app_key":"k","redirect_uri":"r","scope":"s","alpha":2,"zeta":1}"#
        );
    }
}
