//! The engine's configuration: its JSON form ([`Config`]), the checks that
//! refuse a bad one with the path of the bad field, and the validated
//! platform profiles ([`Profile`]) the engine runs on.
//!
//! What does not live here: how a platform builds or reads its requests
//! (see `platform/*`), or any default that belongs to a protocol's wire
//! format rather than to the host's settings.

use crate::error::ConfigError;
use crate::platform::{Flow, Kind, Platform};
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
    pub apps: BTreeMap<String, AppConfig>,
    /// The host's own platforms (`oauth2`, `key`).
    #[serde(default)]
    pub platforms: BTreeMap<String, PlatformConfig>,
    /// Timers.
    #[serde(default)]
    pub timing: Timing,
}

/// An `apps` entry. Which fields apply depends on the platform's kind.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// The app key (`client_id` for oauth2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_key: Option<String>,
    /// The app secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_secret: Option<Secret>,
    /// The registered callback URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// Scope (Shopline; overrides an oauth2 platform's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// IOP `uuid` authorize parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// Override of the authorize endpoint (IOP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorize_url: Option<String>,
    /// Override of the API base (IOP `…/rest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// Override of the Shopline shop origin, with `{seller_id}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop_url: Option<String>,
    /// Status-check service: `damaijia` (seed 001) or `vvtool` (seed 002).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checker: Option<String>,
    /// The host's token at the status-check service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<Secret>,
    /// The seller's authorization page (may contain `{seller_id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_page_url: Option<String>,
    /// Status-check edition (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edition: Option<u32>,
    /// Override of the status-check service's origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// At most this many requests per second to the platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_s: Option<u32>,
    /// Re-check interval of authorized checker stores (default 86400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recheck_interval_s: Option<u64>,
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

/// A host's RFC 6749 platform (`kind: "oauth2"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Oauth2Platform {
    /// Authorization endpoint.
    pub authorize_url: String,
    /// Token endpoint.
    pub token_url: String,
    /// Scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Client authentication at the token endpoint.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// PKCE S256 (default on).
    #[serde(default = "yes")]
    pub pkce: bool,
    /// Extra authorize parameters, added in name order.
    #[serde(default)]
    pub extra_authorize_params: BTreeMap<String, String>,
    /// Validity of a code (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_ttl_s: Option<u64>,
    /// Refresh lead of this platform (default `timing.refresh_lead_s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_lead_s: Option<u64>,
    /// Whether `authorize` needs a seller_id.
    #[serde(default)]
    pub seller_id_required: bool,
    /// At most this many requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_s: Option<u32>,
}

/// A host's KEY platform (`kind: "key"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPlatform {
    /// `token` or `api_key_secret`.
    pub credential: CredentialForm,
    /// How to check them (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyConfig>,
    /// Whether `authorize` needs a seller_id.
    #[serde(default)]
    pub seller_id_required: bool,
    /// At most this many requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_s: Option<u32>,
}

fn yes() -> bool {
    true
}

/// Client authentication at an oauth2 token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `client_id` and `client_secret` in the form body.
    #[default]
    ClientSecretPost,
    /// HTTP Basic.
    ClientSecretBasic,
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

/// How to verify KEY credentials. Templates may use `{token}`, `{api_key}`,
/// `{api_secret}`, `{seller_id}`; in the URL the values are percent-encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    /// HTTP method (default GET).
    #[serde(default = "get")]
    pub method: String,
    /// URL template.
    pub url: String,
    /// Header templates.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Body template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Statuses that mean "valid" (default `[200]`).
    #[serde(default = "ok_statuses")]
    pub valid_statuses: Vec<u16>,
}

fn get() -> String {
    "GET".into()
}
fn ok_statuses() -> Vec<u16> {
    vec![200]
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
    seller_required: bool,
    code_ttl_s: u64,
    refresh_lead_s: u64,
}

/// IOP settings.
#[derive(Debug, Clone)]
pub struct IopApp {
    /// App key.
    pub app_key: String,
    /// App secret.
    pub app_secret: Secret,
    /// Registered callback.
    pub redirect_uri: String,
    /// Optional `uuid`.
    pub uuid: Option<String>,
    /// Authorize endpoint.
    pub authorize_url: String,
    /// API base (`…/rest`).
    pub api_url: String,
    /// Whether token create sends `grantType=authorization_code` (taobao_tw).
    pub send_grant_type: bool,
}

/// Shopline settings.
#[derive(Debug, Clone)]
pub struct ShoplineApp {
    /// App key.
    pub app_key: String,
    /// App secret.
    pub app_secret: Secret,
    /// Registered callback.
    pub redirect_uri: String,
    /// Scope.
    pub scope: String,
    /// Shop origin template with `{seller_id}`.
    pub shop_url: String,
}

/// Which status-check service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckerService {
    /// Seed 001.
    Damaijia,
    /// Seed 002.
    Vvtool,
}

/// Status-check settings.
#[derive(Debug, Clone)]
pub struct CheckerApp {
    /// Which service.
    pub service: CheckerService,
    /// The host's token there.
    pub access_token: Secret,
    /// The seller's authorization page (template).
    pub auth_page_url: String,
    /// Edition / vvtype.
    pub edition: u32,
    /// Service origin.
    pub base_url: String,
    /// Re-check interval in seconds.
    pub recheck_interval_s: u64,
}

/// oauth2 settings.
#[derive(Debug, Clone)]
pub struct Oauth2App {
    /// Client id.
    pub app_key: String,
    /// Client secret.
    pub app_secret: Secret,
    /// Registered callback.
    pub redirect_uri: String,
    /// Authorization endpoint.
    pub authorize_url: String,
    /// Token endpoint.
    pub token_url: String,
    /// Scope.
    pub scope: Option<String>,
    /// Client authentication.
    pub client_auth: ClientAuth,
    /// PKCE S256.
    pub pkce: bool,
    /// Extra authorize parameters.
    pub extra_authorize_params: BTreeMap<String, String>,
}

/// KEY settings.
#[derive(Debug, Clone)]
pub struct KeyApp {
    /// `token` or `api_key_secret`.
    pub credential: CredentialForm,
    /// Verification request.
    pub verify: Option<VerifyConfig>,
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
    /// Whether seller ids compare case-insensitively (Shopline handles).
    pub fn seller_case_insensitive(&self) -> bool {
        self.platform().seller_case_insensitive()
    }
}

// The fields below are set during validation; kept private to the crate.
impl Profile {
    fn new(name: &str, kind: Kind, rate: Option<u32>, seller_required: bool) -> Self {
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

/// Names of the built-in platforms.
pub const BUILT_IN: [&str; 4] = ["taobao_tw", "lazada", "shopline", "taobao"];

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
            let at = |f: &str| format!("apps.{name}.{f}");
            let profile = match name.as_str() {
                "taobao_tw" | "lazada" => {
                    let (auth, api) = if name == "lazada" {
                        (
                            "https://auth.lazada.com/oauth/authorize",
                            "https://auth.lazada.com/rest",
                        )
                    } else {
                        (
                            "https://auth.taobao.tw/oauth/authorize",
                            "https://auth.taobao.tw/rest",
                        )
                    };
                    only(
                        app,
                        name,
                        &[
                            "app_key",
                            "app_secret",
                            "redirect_uri",
                            "uuid",
                            "authorize_url",
                            "api_url",
                            "rate_limit_per_s",
                        ],
                    )?;
                    let mut p = Profile::new(
                        name,
                        Kind::Iop(IopApp {
                            app_key: required_text(&app.app_key, &at("app_key"))?,
                            app_secret: required_secret(&app.app_secret, &at("app_secret"))?,
                            redirect_uri: url_field(
                                app.redirect_uri.as_deref(),
                                &at("redirect_uri"),
                            )?,
                            uuid: app.uuid.clone(),
                            authorize_url: url_or(
                                app.authorize_url.as_deref(),
                                auth,
                                &at("authorize_url"),
                            )?,
                            api_url: url_or(app.api_url.as_deref(), api, &at("api_url"))?
                                .trim_end_matches('/')
                                .to_owned(),
                            send_grant_type: name == "taobao_tw",
                        }),
                        rate(app.rate_limit_per_s, &at("rate_limit_per_s"))?,
                        false,
                    );
                    p.code_ttl_s = 1800;
                    p
                }
                "shopline" => {
                    only(
                        app,
                        name,
                        &[
                            "app_key",
                            "app_secret",
                            "redirect_uri",
                            "scope",
                            "shop_url",
                            "rate_limit_per_s",
                        ],
                    )?;
                    let shop_url = app
                        .shop_url
                        .clone()
                        .unwrap_or_else(|| "https://{seller_id}.myshopline.com".into());
                    if !shop_url.contains("{seller_id}") {
                        return Err(ConfigError::new(at("shop_url"), "must contain {seller_id}"));
                    }
                    url_field(Some(&shop_url.replace("{seller_id}", "x")), &at("shop_url"))?;
                    Profile::new(
                        name,
                        Kind::Shopline(ShoplineApp {
                            app_key: required_text(&app.app_key, &at("app_key"))?,
                            app_secret: required_secret(&app.app_secret, &at("app_secret"))?,
                            redirect_uri: url_field(
                                app.redirect_uri.as_deref(),
                                &at("redirect_uri"),
                            )?,
                            scope: app.scope.clone().unwrap_or_default(),
                            shop_url: shop_url.trim_end_matches('/').to_owned(),
                        }),
                        rate(app.rate_limit_per_s, &at("rate_limit_per_s"))?,
                        true,
                    )
                }
                "taobao" => {
                    only(
                        app,
                        name,
                        &[
                            "checker",
                            "access_token",
                            "auth_page_url",
                            "edition",
                            "base_url",
                            "rate_limit_per_s",
                            "recheck_interval_s",
                        ],
                    )?;
                    let (service, base, default_rate) = match app.checker.as_deref() {
                        Some("damaijia") => {
                            (CheckerService::Damaijia, "http://www.damaijia168.com", None)
                        }
                        Some("vvtool") => {
                            (CheckerService::Vvtool, "http://api.vv-tool.com", Some(10))
                        }
                        Some(_) => {
                            return Err(ConfigError::new(
                                at("checker"),
                                "must be \"damaijia\" or \"vvtool\"",
                            ));
                        }
                        None => {
                            return Err(ConfigError::new(
                                at("checker"),
                                "is required (\"damaijia\" or \"vvtool\")",
                            ));
                        }
                    };
                    let page = app
                        .auth_page_url
                        .as_deref()
                        .ok_or_else(|| ConfigError::new(at("auth_page_url"), "is required"))?;
                    url_field(
                        Some(&page.replace("{seller_id}", "x")),
                        &at("auth_page_url"),
                    )?;
                    let recheck = app.recheck_interval_s.unwrap_or(86400);
                    if recheck == 0 {
                        return Err(ConfigError::new(
                            at("recheck_interval_s"),
                            "must be at least 1",
                        ));
                    }
                    Profile::new(
                        name,
                        Kind::Checker(CheckerApp {
                            service,
                            access_token: required_secret(&app.access_token, &at("access_token"))?,
                            auth_page_url: page.to_owned(),
                            edition: app.edition.unwrap_or(1),
                            base_url: url_or(app.base_url.as_deref(), base, &at("base_url"))?
                                .trim_end_matches('/')
                                .to_owned(),
                            recheck_interval_s: recheck,
                        }),
                        rate(
                            app.rate_limit_per_s.or(default_rate),
                            &at("rate_limit_per_s"),
                        )?,
                        true,
                    )
                }
                other => match self.platforms.get(other) {
                    Some(PlatformConfig::Oauth2(Oauth2Platform {
                        authorize_url,
                        token_url,
                        scope,
                        client_auth,
                        pkce,
                        extra_authorize_params,
                        code_ttl_s,
                        refresh_lead_s,
                        seller_id_required,
                        rate_limit_per_s,
                    })) => {
                        only(
                            app,
                            name,
                            &["app_key", "app_secret", "redirect_uri", "scope"],
                        )?;
                        let pat = |f: &str| format!("platforms.{name}.{f}");
                        let mut p = Profile::new(
                            name,
                            Kind::Oauth2(Oauth2App {
                                app_key: required_text(&app.app_key, &at("app_key"))?,
                                app_secret: required_secret(&app.app_secret, &at("app_secret"))?,
                                redirect_uri: url_field(
                                    app.redirect_uri.as_deref(),
                                    &at("redirect_uri"),
                                )?,
                                authorize_url: url_field(
                                    Some(authorize_url),
                                    &pat("authorize_url"),
                                )?,
                                token_url: url_field(Some(token_url), &pat("token_url"))?,
                                scope: app.scope.clone().or_else(|| scope.clone()),
                                client_auth: *client_auth,
                                pkce: *pkce,
                                extra_authorize_params: extra_authorize_params.clone(),
                            }),
                            rate(*rate_limit_per_s, &pat("rate_limit_per_s"))?,
                            *seller_id_required,
                        );
                        p.code_ttl_s = code_ttl_s.unwrap_or(600);
                        if p.code_ttl_s == 0 {
                            return Err(ConfigError::new(pat("code_ttl_s"), "must be at least 1"));
                        }
                        if let Some(l) = refresh_lead_s {
                            p.refresh_lead_s = *l;
                        } else {
                            p.refresh_lead_s = t.refresh_lead_s;
                        }
                        p
                    }
                    Some(PlatformConfig::Key(_)) => {
                        return Err(ConfigError::new(
                            format!("apps.{name}"),
                            "a key platform takes no apps entry",
                        ));
                    }
                    None => {
                        return Err(ConfigError::new(
                            format!("apps.{name}"),
                            "names no platform (built in: taobao_tw, lazada, shopline, taobao; or one of `platforms`)",
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
            let pat = |f: &str| format!("platforms.{name}.{f}");
            if BUILT_IN.contains(&name.as_str()) {
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
                PlatformConfig::Key(KeyPlatform {
                    credential,
                    verify,
                    seller_id_required,
                    rate_limit_per_s,
                }) => {
                    if let Some(v) = verify {
                        let probe = v
                            .url
                            .replace("{token}", "x")
                            .replace("{api_key}", "x")
                            .replace("{api_secret}", "x")
                            .replace("{seller_id}", "x");
                        url_field(Some(&probe), &pat("verify.url"))?;
                        if v.method.is_empty() || !v.method.bytes().all(|b| b.is_ascii_uppercase())
                        {
                            return Err(ConfigError::new(
                                pat("verify.method"),
                                "must be an upper-case HTTP method",
                            ));
                        }
                        for (i, (n, t)) in v.headers.iter().enumerate() {
                            if n.is_empty() || !n.bytes().all(is_tchar) {
                                return Err(ConfigError::new(
                                    pat(&format!("verify.headers[{i}][0]")),
                                    "must be an HTTP header name (RFC 9110 token characters)",
                                ));
                            }
                            if t.chars().any(crate::validate::is_control) {
                                return Err(ConfigError::new(
                                    pat(&format!("verify.headers[{i}][1]")),
                                    "must not contain control characters (they would split the header)",
                                ));
                            }
                        }
                        if v.valid_statuses.is_empty() {
                            return Err(ConfigError::new(
                                pat("verify.valid_statuses"),
                                "must list at least one status",
                            ));
                        }
                    }
                    let mut prof = Profile::new(
                        name,
                        Kind::Key(KeyApp {
                            credential: *credential,
                            verify: verify.clone(),
                        }),
                        rate(*rate_limit_per_s, &pat("rate_limit_per_s"))?,
                        *seller_id_required,
                    );
                    prof.refresh_lead_s = t.refresh_lead_s;
                    profiles.insert(name.clone(), prof);
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

fn only(app: &AppConfig, name: &str, allowed: &[&str]) -> Result<(), ConfigError> {
    let v = serde_json::to_value(app).expect("app serializes");
    if let Some(obj) = v.as_object() {
        for k in obj.keys() {
            if !allowed.contains(&k.as_str()) {
                return Err(ConfigError::new(
                    format!("apps.{name}.{k}"),
                    "does not apply to this platform's kind",
                ));
            }
        }
    }
    Ok(())
}

fn required_text(v: &Option<String>, path: &str) -> Result<String, ConfigError> {
    match v {
        Some(s) if !s.is_empty() => Ok(s.clone()),
        _ => Err(ConfigError::new(path, "is required (non-empty)")),
    }
}

fn required_secret(v: &Option<Secret>, path: &str) -> Result<Secret, ConfigError> {
    match v {
        Some(s) if !s.expose().is_empty() => Ok(s.clone()),
        _ => Err(ConfigError::new(path, "is required (non-empty)")),
    }
}

fn rate(v: Option<u32>, path: &str) -> Result<Option<u32>, ConfigError> {
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
    if u.host_str().is_none_or(str::is_empty) {
        return Err("must have a host");
    }
    Ok(u)
}

/// An RFC 9110 `tchar` (the characters of a header name).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn url_field(v: Option<&str>, path: &str) -> Result<String, ConfigError> {
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

fn url_or(v: Option<&str>, default: &str, path: &str) -> Result<String, ConfigError> {
    url_field(Some(v.unwrap_or(default)), path)
}
