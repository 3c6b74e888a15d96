//! KEY platforms: credentials handed in by the business party, optionally
//! checked by a verification request described in the configuration
//! (method, URL template, header templates, body template, valid statuses).
//!
//! What does not live here: the credential-form rules of `authorize`
//! (see `validate`) or the five-try limit (the engine's).
//!
//! Also here: its settings (`KeyApp`, `KeyPlatform`, `VerifyConfig`) and the reading of a host's key platform, and its `Platform` implementation.

use super::{Ctx, KeyCredential, Outcome, Outgoing, retryable_status};
use crate::config::CredentialForm;
use crate::config::{Profile, Timing, is_tchar, rate, url_field};
use crate::encoding::pct;
use crate::error::ConfigError;
use crate::message::{Purpose, Reason};
use crate::platform::Kind;
use serde::{Deserialize, Serialize};

fn fill(template: &str, ctx: &Ctx<'_>, encode: bool) -> String {
    let enc = |s: &str| if encode { pct(s) } else { s.to_owned() };
    let (token, key, secret) = match ctx.key {
        Some(KeyCredential::Token { token }) => (token.expose(), "", ""),
        Some(KeyCredential::Pair {
            api_key,
            api_secret,
        }) => ("", api_key.expose(), api_secret.expose()),
        None => ("", "", ""),
    };
    template
        .replace("{token}", &enc(token))
        .replace("{api_key}", &enc(key))
        .replace("{api_secret}", &enc(secret))
        .replace("{seller_id}", &enc(ctx.seller_id.unwrap_or("")))
}

/// A filled header template as it may be sent. Validation refuses
/// credentials with control characters (spec §4) and the configuration
/// refuses such templates, so this changes nothing they let through; it is
/// the last guard for a value that got in another way (e.g. a record
/// restored from a snapshot written before those rules): a CR or LF would
/// end the header and start another, so every control character is
/// percent-encoded instead (the platform then refuses the credential).
fn header_value(v: String) -> String {
    if !v.chars().any(crate::validate::is_control) {
        return v;
    }
    let mut out = String::with_capacity(v.len() + 8);
    for c in v.chars() {
        if crate::validate::is_control(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The verification request.
pub fn build(app: &KeyApp, ctx: &Ctx<'_>) -> Outgoing {
    let v = app
        .verify
        .as_ref()
        .expect("build is only called for verifying platforms");
    Outgoing {
        method: v.method.as_str(),
        url: fill(&v.url, ctx, true),
        headers: v
            .headers
            .iter()
            .map(|(n, t)| (n.clone(), header_value(fill(t, ctx, false))))
            .collect(),
        body: v.body.as_ref().map(|b| fill(b, ctx, false)),
    }
}

/// Classifies the verification answer by its status.
/// Reads a verification answer: a valid status authorizes, 429/5xx is tried
/// again, anything else is a refusal.
pub fn read(app: &KeyApp, status: u16) -> Outcome {
    let valid = app
        .verify
        .as_ref()
        .is_some_and(|v| v.valid_statuses.contains(&status));
    if valid {
        Outcome::Authorized { cost: None }
    } else if retryable_status(status) {
        Outcome::Retry(super::describe(status, "verification unavailable"))
    } else {
        Outcome::Rejected(
            Reason::PlatformRejected,
            format!("the platform refused the credentials (HTTP {status})"),
        )
    }
}

impl super::Platform for KeyApp {
    fn flow(&self) -> super::Flow {
        super::Flow::KeyOnly
    }
    fn authorize_url(&self, _: &super::UrlArgs<'_>) -> String {
        String::new()
    }
    fn build(&self, _purpose: Purpose, ctx: &Ctx<'_>) -> Outgoing {
        build(self, ctx)
    }
    fn read(&self, _purpose: Purpose, status: u16, _body: &str, _ctx: &Ctx<'_>) -> Outcome {
        read(self, status)
    }
    fn key_form(&self) -> Option<CredentialForm> {
        Some(self.credential)
    }
    fn verifies_key(&self) -> bool {
        self.verify.is_some()
    }
    fn secrets(&self) -> Vec<&str> {
        Vec::new()
    }
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

/// How to verify KEY credentials. Templates may use `{token}`, `{api_key}`,
/// `{api_secret}`, `{seller_id}`; in the URL the values are percent-encoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    /// HTTP method (default GET), checked when the configuration is read.
    #[serde(default)]
    pub method: Method,
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

/// The HTTP methods a verification request may use (written upper-case in
/// the configuration; any other is refused when it is read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// `GET`.
    #[default]
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `HEAD`.
    Head,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// The method as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Head => "HEAD",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}
fn ok_statuses() -> Vec<u16> {
    vec![200]
}

/// KEY settings.
#[derive(Debug, Clone)]
pub struct KeyApp {
    /// `token` or `api_key_secret`.
    pub credential: CredentialForm,
    /// Verification request.
    pub verify: Option<VerifyConfig>,
}

/// Reads a host's KEY platform (`platforms.{name}`; it takes no `apps` entry).
pub(crate) fn profile(
    name: &str,
    platform: &KeyPlatform,
    t: &Timing,
) -> Result<Profile, ConfigError> {
    let pat = |f: &str| format!("platforms.{name}.{f}");
    let KeyPlatform {
        credential,
        verify,
        seller_id_required,
        rate_limit_per_s,
    } = platform;
    if let Some(v) = verify {
        let probe = v
            .url
            .replace("{token}", "x")
            .replace("{api_key}", "x")
            .replace("{api_secret}", "x")
            .replace("{seller_id}", "x");
        url_field(Some(&probe), &pat("verify.url"))?;
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
        Kind::new(KeyApp {
            credential: *credential,
            verify: verify.clone(),
        }),
        rate(*rate_limit_per_s, &pat("rate_limit_per_s"))?,
        *seller_id_required,
    );
    prof.refresh_lead_s = t.refresh_lead_s;
    Ok(prof)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CredentialForm;
    use crate::secret::Secret;

    #[test]
    fn fills_templates_and_classifies() {
        let app = KeyApp {
            credential: CredentialForm::ApiKeySecret,
            verify: Some(VerifyConfig {
                method: Method::Post,
                url: "https://api.example/check?key={api_key}&shop={seller_id}".into(),
                headers: vec![("X-Secret".into(), "{api_secret}".into())],
                body: Some("{\"k\":\"{api_key}\"}".into()),
                valid_statuses: vec![200, 204],
            }),
        };
        let cred = KeyCredential::Pair {
            api_key: Secret::new("k y"),
            api_secret: Secret::new("s&t"),
        };
        let ctx = Ctx {
            now: 0,
            seller_id: Some("shop 1"),
            code: None,
            pkce_verifier: None,
            tokens: None,
            key: Some(&cred),
            learned: &[],
        };
        let r = build(&app, &ctx);
        assert_eq!(r.method, "POST");
        assert_eq!(r.url, "https://api.example/check?key=k%20y&shop=shop%201");
        assert_eq!(r.headers, vec![("X-Secret".to_owned(), "s&t".to_owned())]);
        assert_eq!(r.body.as_deref(), Some("{\"k\":\"k y\"}"));
        assert_eq!(read(&app, 204), Outcome::Authorized { cost: None });
        assert!(matches!(read(&app, 503), Outcome::Retry(_)));
        assert!(matches!(read(&app, 429), Outcome::Retry(_)));
        assert!(matches!(
            read(&app, 401),
            Outcome::Rejected(Reason::PlatformRejected, _)
        ));
    }

    #[test]
    fn header_values_never_carry_control_characters() {
        let app = KeyApp {
            credential: CredentialForm::Token,
            verify: Some(VerifyConfig {
                method: Method::Get,
                url: "https://api.example/check".into(),
                headers: vec![("Authorization".into(), "Bearer {token}".into())],
                body: None,
                valid_statuses: vec![200],
            }),
        };
        // Such a token is refused by validation; here it reaches the builder
        // directly, as a restored record could.
        let cred = KeyCredential::Token {
            token: Secret::new("t\r\nX-Injected: 1\u{0}\u{85}"),
        };
        let ctx = Ctx {
            now: 0,
            seller_id: None,
            code: None,
            pkce_verifier: None,
            tokens: None,
            key: Some(&cred),
            learned: &[],
        };
        let r = build(&app, &ctx);
        let (_, v) = &r.headers[0];
        assert_eq!(v, "Bearer t%0D%0AX-Injected: 1%00%C2%85");
        assert!(!v.chars().any(crate::validate::is_control));
        assert_eq!(header_value("plain".into()), "plain");
    }
}
