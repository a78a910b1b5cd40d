//! Hook endpoints as configured (`[[hooks.endpoints]]`) or posted (`POST /api/hooks`), and
//! the `[hooks]` config section; both are checked by the same rules, and every error names
//! the field.

use serde::{Deserialize, Serialize};
use std::time::Duration;

use super::filter::EventFilter;
use super::signing::WebhookSecret;
use super::{HookSettings, DEFAULT_PIPELINE_WINDOW, MAX_PIPELINE_WINDOW};

/// The body format an endpoint receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookFormat {
    /// `application/x-protobuf`: the encoded `HookEvent`.
    #[default]
    Protobuf,
    /// `application/json`: canonical proto3 JSON of the `HookEvent`.
    Json,
}

impl HookFormat {
    /// The `Content-Type` of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            HookFormat::Protobuf => "application/x-protobuf",
            HookFormat::Json => "application/json",
        }
    }

    /// The name used in config and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            HookFormat::Protobuf => "protobuf",
            HookFormat::Json => "json",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<HookFormat> {
        match name {
            "protobuf" => Some(HookFormat::Protobuf),
            "json" => Some(HookFormat::Json),
            _ => None,
        }
    }
}

/// One hook endpoint as given (config or API). Every field may be omitted in the input so
/// that [`EndpointSpec::validate`] can name a missing one; `url` and `secret` are required.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointSpec {
    /// A stable name (letters, digits, `-`, `_`, `.`; at most 64). Without it, a config
    /// endpoint is named after its URL and an API endpoint gets a random one.
    pub id: Option<String>,
    /// Where events are POSTed: an `http://` or `https://` URL.
    pub url: Option<String>,
    /// The Standard Webhooks secret, `whsec_` followed by 24 to 64 bytes in base64.
    pub secret: Option<String>,
    /// The body format (default protobuf).
    pub format: HookFormat,
    /// Which events the endpoint receives: event types (`stream.started`), `family.*`
    /// patterns (`record.*`) or `*` (the default).
    pub events: Option<Vec<String>>,
}

/// A bad endpoint: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct EndpointConfigError {
    /// The field (`url`, `secret`, `events`, `id`), prefixed by where it came from
    /// (`hooks.endpoints[0].secret`) for config errors.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl EndpointConfigError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        EndpointConfigError {
            field: field.to_string(),
            message: message.into(),
        }
    }

    /// The same error with `prefix.` before the field name.
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = format!("{prefix}.{}", self.field);
        self
    }
}

/// True for `http://host…` and `https://host…` that parse as URLs.
fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "{url:?} must be an http:// or https:// URL, not {}://",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("{url:?} has no host"));
    }
    Ok(())
}

/// True for 1 to 64 ASCII letters, digits, `-`, `_`, `.` (not `.` or `..`).
pub(crate) fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A checked endpoint: what the connector stores and delivers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidEndpoint {
    /// Its id (given, derived from the URL, or random).
    pub id: String,
    /// Its URL.
    pub url: String,
    /// Its secret, as given (`whsec_…`).
    pub secret: String,
    /// Its body format.
    pub format: HookFormat,
    /// Its filter patterns.
    pub events: Vec<String>,
}

impl EndpointSpec {
    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), EndpointConfigError> {
        if let Some(id) = &self.id {
            if !is_valid_id(id) {
                return Err(EndpointConfigError::new(
                    "id",
                    format!("{id:?} must be 1 to 64 letters, digits, '-', '_' or '.'"),
                ));
            }
        }
        let url = self
            .url
            .as_deref()
            .ok_or_else(|| EndpointConfigError::new("url", "is required"))?;
        check_url(url).map_err(|m| EndpointConfigError::new("url", m))?;
        let secret = self
            .secret
            .as_deref()
            .ok_or_else(|| EndpointConfigError::new("secret", "is required"))?;
        WebhookSecret::parse(secret)
            .map_err(|e| EndpointConfigError::new("secret", e.to_string()))?;
        if let Some(events) = &self.events {
            EventFilter::parse(events).map_err(|m| EndpointConfigError::new("events", m))?;
        }
        Ok(())
    }

    /// Validates and fills in the defaults; `default_id` names an endpoint without an id.
    pub(crate) fn resolve(
        &self,
        default_id: impl FnOnce(&str) -> String,
    ) -> Result<ValidEndpoint, EndpointConfigError> {
        self.validate()?;
        // `validate` checked that both are present.
        let url = self.url.clone().unwrap_or_default();
        let secret = self.secret.clone().unwrap_or_default();
        Ok(ValidEndpoint {
            id: self.id.clone().unwrap_or_else(|| default_id(&url)),
            url,
            secret,
            format: self.format,
            events: self.events.clone().unwrap_or_else(|| vec!["*".to_string()]),
        })
    }
}

/// The id of a config endpoint without one: `cfg-` and a hash of its URL, so it keeps its
/// place in the outbox across restarts.
pub(crate) fn config_endpoint_id(url: &str) -> String {
    let hash = url.bytes().fold(0xcbf2_9ce4_8422_2325u64, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("cfg-{hash:016x}")
}

fn default_max_age_seconds() -> f64 {
    24.0 * 3600.0
}
fn default_retain_events() -> u64 {
    10_000
}
fn default_request_timeout_seconds() -> f64 {
    10.0
}
fn default_min_backoff_seconds() -> f64 {
    0.25
}
fn default_max_backoff_seconds() -> f64 {
    60.0
}
fn default_pipeline_window() -> usize {
    DEFAULT_PIPELINE_WINDOW
}

/// The `[hooks]` config section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HooksConfig {
    /// How long an event is retried before it becomes a dead letter (default 86400 s).
    pub max_age_seconds: f64,
    /// Events kept after delivery for `GET /api/events` replay (default 10,000).
    pub retain_events: u64,
    /// Timeout of one delivery attempt (default 10 s).
    pub request_timeout_seconds: f64,
    /// The first retry delay (default 0.25 s).
    pub min_backoff_seconds: f64,
    /// The longest retry delay (default 60 s).
    pub max_backoff_seconds: f64,
    /// Requests in flight per endpoint connection, HTTP/1.1 pipelining (default 32; 1 to
    /// 1024; 1 sends one at a time).
    pub pipeline_window: usize,
    /// `[[hooks.endpoints]]`.
    pub endpoints: Vec<EndpointSpec>,
}

impl Default for HooksConfig {
    fn default() -> Self {
        HooksConfig {
            max_age_seconds: default_max_age_seconds(),
            retain_events: default_retain_events(),
            request_timeout_seconds: default_request_timeout_seconds(),
            min_backoff_seconds: default_min_backoff_seconds(),
            max_backoff_seconds: default_max_backoff_seconds(),
            pipeline_window: default_pipeline_window(),
            endpoints: Vec::new(),
        }
    }
}

fn seconds(key: &str, value: f64) -> Result<Duration, EndpointConfigError> {
    if value > 0.0 {
        if let Ok(d) = Duration::try_from_secs_f64(value) {
            return Ok(d);
        }
    }
    Err(EndpointConfigError::new(
        key,
        format!("must be a finite number of seconds > 0, got {value}"),
    ))
}

impl HooksConfig {
    /// Checks the section; the error's field is the full key (`hooks.endpoints[1].url`).
    pub fn validate(&self) -> Result<(), EndpointConfigError> {
        self.settings(0, "").map(drop)
    }

    /// The connector's settings for a node with this id and alias.
    pub fn settings(
        &self,
        node: u32,
        node_alias: &str,
    ) -> Result<HookSettings, EndpointConfigError> {
        let max_age = seconds("hooks.max_age_seconds", self.max_age_seconds)?;
        let request_timeout = seconds(
            "hooks.request_timeout_seconds",
            self.request_timeout_seconds,
        )?;
        let min_backoff = seconds("hooks.min_backoff_seconds", self.min_backoff_seconds)?;
        let max_backoff = seconds("hooks.max_backoff_seconds", self.max_backoff_seconds)?;
        if !(1..=MAX_PIPELINE_WINDOW).contains(&self.pipeline_window) {
            return Err(EndpointConfigError::new(
                "hooks.pipeline_window",
                format!(
                    "must be 1 to {MAX_PIPELINE_WINDOW} requests, got {}",
                    self.pipeline_window
                ),
            ));
        }
        let mut ids = std::collections::BTreeSet::new();
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            let prefix = format!("hooks.endpoints[{i}]");
            let valid = endpoint
                .resolve(config_endpoint_id)
                .map_err(|e| e.within(&prefix))?;
            if !ids.insert(valid.id.clone()) {
                return Err(EndpointConfigError::new(
                    &format!("{prefix}.id"),
                    format!(
                        "{:?} is used by another endpoint (give each endpoint its own `id`)",
                        valid.id
                    ),
                ));
            }
        }
        Ok(HookSettings {
            node,
            node_alias: node_alias.to_string(),
            max_age,
            retain_events: self.retain_events,
            request_timeout,
            min_backoff,
            max_backoff: max_backoff.max(min_backoff),
            pipeline_window: self.pipeline_window,
            endpoints: self.endpoints.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn spec(url: &str, secret: &str, events: Option<&[&str]>) -> EndpointSpec {
        EndpointSpec {
            id: None,
            url: Some(url.to_string()),
            secret: Some(secret.to_string()),
            format: HookFormat::Json,
            events: events.map(|e| e.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn field_of(spec: &EndpointSpec) -> String {
        spec.validate().expect_err("must be refused").field
    }

    #[test]
    fn a_good_endpoint_passes_and_gets_defaults() {
        let s = spec("https://backend.example/hooks", SECRET, None);
        let valid = s.resolve(config_endpoint_id).expect("valid");
        assert_eq!(valid.events, ["*"]);
        assert!(valid.id.starts_with("cfg-"));
        assert_eq!(
            valid.id,
            config_endpoint_id("https://backend.example/hooks")
        );
        spec(
            "http://127.0.0.1:9/x",
            SECRET,
            Some(&["record.*", "stream.started"]),
        )
        .validate()
        .expect("valid filter");
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(field_of(&spec("ftp://x/y", SECRET, None)), "url");
        assert_eq!(field_of(&spec("not a url", SECRET, None)), "url");
        assert_eq!(
            field_of(&spec("http://x/", "whsec_c2hvcnQ=", None)),
            "secret"
        );
        assert_eq!(field_of(&spec("http://x/", "plain-secret", None)), "secret");
        assert_eq!(
            field_of(&spec("http://x/", SECRET, Some(&["record.nope"]))),
            "events"
        );
        assert_eq!(field_of(&spec("http://x/", SECRET, Some(&[]))), "events");
        let mut no_secret = spec("http://x/", SECRET, None);
        no_secret.secret = None;
        assert_eq!(field_of(&no_secret), "secret");
        let mut no_url = spec("http://x/", SECRET, None);
        no_url.url = None;
        assert_eq!(field_of(&no_url), "url");
        let mut bad_id = spec("http://x/", SECRET, None);
        bad_id.id = Some("../x".into());
        assert_eq!(field_of(&bad_id), "id");
    }

    #[test]
    fn config_errors_name_the_full_key() {
        let config = HooksConfig {
            endpoints: vec![
                spec("http://a/", SECRET, None),
                spec("http://b/", "whsec_", None),
            ],
            ..HooksConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err().field,
            "hooks.endpoints[1].secret"
        );
        let twice = HooksConfig {
            endpoints: vec![
                spec("http://a/", SECRET, None),
                spec("http://a/", SECRET, None),
            ],
            ..HooksConfig::default()
        };
        assert_eq!(twice.validate().unwrap_err().field, "hooks.endpoints[1].id");
        let bad_age = HooksConfig {
            max_age_seconds: 0.0,
            ..HooksConfig::default()
        };
        assert_eq!(
            bad_age.validate().unwrap_err().field,
            "hooks.max_age_seconds"
        );
        for window in [0, MAX_PIPELINE_WINDOW + 1] {
            let bad_window = HooksConfig {
                pipeline_window: window,
                ..HooksConfig::default()
            };
            assert_eq!(
                bad_window.validate().unwrap_err().field,
                "hooks.pipeline_window"
            );
        }
        let one = HooksConfig {
            pipeline_window: 1,
            ..HooksConfig::default()
        };
        assert_eq!(one.settings(1, "a").unwrap().pipeline_window, 1);
    }
}
