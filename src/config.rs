//! The node's configuration: one TOML file, `${VAR}` expansion, `RECNODE_*` overrides.
//!
//! Loading runs in a fixed order, and every step can fail with a [`ConfigError`] that
//! names the file (or environment variable) and the key:
//! 1. read the file (no file: start from an empty document, i.e. the built-in defaults);
//! 2. expand `${VAR}` from the environment in the text (`$${` writes a literal `${`;
//!    full-line comments are left alone); an unset variable is an error;
//! 3. parse the text as TOML;
//! 4. apply `RECNODE_<SECTION>__<KEY>` environment overrides to the parsed tree; a
//!    value is read as a TOML value (`4`, `true`, `["a","b"]`) and, if it is not one,
//!    as a plain string;
//! 5. deserialize into [`Config`]; every struct denies unknown fields, so a misspelt
//!    key, a wrong type or an unknown storage `type` stops start-up;
//! 6. [`Config::validate`] checks what types cannot (e.g. `segment_seconds > 0`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Prefix of environment variables that override config keys.
pub const ENV_PREFIX: &str = "RECNODE_";
/// Separator between path segments in an override's name (`RECNODE_HTTP__LISTEN`).
pub const ENV_SEPARATOR: &str = "__";

/// The whole configuration of a node.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[http]`: the HTTP API.
    pub http: HttpConfig,
    /// `[rtmp]`: the RTMP ingest.
    pub rtmp: RtmpConfig,
    /// `[whip]`: the WebRTC (WHIP) ingest.
    pub whip: WhipConfig,
    /// `[recorder]`: what to record and where to store it.
    pub recorder: RecorderConfig,
    /// `[data]`: local state (spool, queues).
    pub data: DataConfig,
    /// `[auth]`: the API's admin token and publishers' stream keys.
    pub auth: AuthConfig,
    /// `[hooks]`: hook event delivery and `[[hooks.endpoints]]`.
    pub hooks: recnode_actors::hooks::HooksConfig,
    /// `[cluster]`: joining other nodes over ractor_cluster (off by default).
    pub cluster: ClusterConfig,
}

/// The shortest `[cluster] peer_timeout_ms`: two heartbeats, so one late answer is no
/// reason to report a peer gone.
const MIN_PEER_TIMEOUT_MS: u64 = 2000;

/// `[cluster]` section: this node's place in a cluster of recnode nodes.
///
/// Off by default; a node without it works alone, exactly as before. Without
/// `[cluster.tls]` the cluster port speaks plain TCP (the cookie is a challenge, never
/// sent, but everything else is readable): keep it on a private network or loopback.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Whether the node joins a cluster (default false).
    pub enabled: bool,
    /// This node's name, unique in the cluster (default: `recorder.node_alias`).
    pub node_name: String,
    /// The address the node server listens on for peers (default `127.0.0.1:4370`).
    pub listen: SocketAddr,
    /// The shared secret every node of the cluster must have (`${RECNODE_COOKIE}` or
    /// `RECNODE_CLUSTER__COOKIE`).
    pub cookie: String,
    /// Peers to connect to (and keep reconnecting to), `host:port`.
    pub seeds: Vec<String>,
    /// A peer that answers no heartbeat (one a second) for this long is reported gone
    /// (`node.left`, reason `heartbeat_timeout`) until it answers again (default 3000,
    /// at least 2000).
    pub peer_timeout_ms: u64,
    /// `[cluster.tls]`: mutual TLS between nodes (default: off, plain TCP).
    pub tls: Option<ClusterTlsConfig>,
}

/// `[cluster.tls]` section: every node presents `cert` and accepts only peers whose
/// certificate `ca` signed. Relative paths are from the working directory.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterTlsConfig {
    /// This node's certificate chain (PEM), leaf first; used as server and as client.
    pub cert: PathBuf,
    /// This node's private key (PEM).
    pub key: PathBuf,
    /// The CA certificate (PEM) that signs every node's certificate.
    pub ca: PathBuf,
    /// The name every peer's certificate must carry (a DNS name or IP address); when
    /// unset, the host of the address dialled (the seed's, or a peer's `listen`).
    pub server_name: Option<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            node_name: String::new(),
            listen: SocketAddr::from(([127, 0, 0, 1], 4370)),
            cookie: String::new(),
            seeds: Vec::new(),
            peer_timeout_ms: 3000,
            tls: None,
        }
    }
}

/// `[auth]` section.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// When set, every `/api/*` call needs `Authorization: Bearer <admin_token>`.
    pub admin_token: Option<String>,
    /// Publish keys: a stream name, or a pattern with `*`, mapped to the key a publisher
    /// must pass (`?key=...` over RTMP). Streams that match no entry need no key.
    pub stream_keys: BTreeMap<String, String>,
}

/// `[http]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address the HTTP server binds (default `0.0.0.0:7777`).
    pub listen: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 7777)),
        }
    }
}

/// `[rtmp]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RtmpConfig {
    /// Address the RTMP listener binds (default `0.0.0.0:1935`).
    pub listen: SocketAddr,
    /// RTMP application names accepted from publishers (default `["live"]`).
    pub apps: Vec<String>,
}

impl Default for RtmpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 1935)),
            apps: vec!["live".to_string()],
        }
    }
}

/// `[whip]` section: WebRTC publishing over WHIP (`POST /whip/{stream}` on the HTTP port).
///
/// Media arrives over UDP: by default on one port shared by every session (`udp_listen`,
/// UDP mux), which scales better than a port per session (one firewall rule, one socket,
/// nothing bound per publisher); `udp_port_range` switches to a socket per session.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhipConfig {
    /// Whether `/whip` takes publishers (default true).
    pub enabled: bool,
    /// The UDP address every session shares (default `0.0.0.0:8189`; port 0 picks one).
    pub udp_listen: SocketAddr,
    /// `[min, max]`: one UDP port per session from this range instead of `udp_listen`.
    pub udp_port_range: Option<[u16; 2]>,
    /// Addresses to advertise in ICE candidates instead of the local ones (1:1 NAT).
    pub public_ips: Vec<std::net::IpAddr>,
    /// Video codecs to accept, most preferred first (`h264`, `vp8`, `vp9`, `av1`).
    pub video_codecs: Vec<WhipVideoCodec>,
    /// Audio codecs to accept, most preferred first (`opus`).
    pub audio_codecs: Vec<WhipAudioCodec>,
    /// Seconds without RTP (or with ICE failed) after which a session is closed.
    pub session_timeout_seconds: u64,
}

impl Default for WhipConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            udp_listen: SocketAddr::from(([0, 0, 0, 0], 8189)),
            udp_port_range: None,
            public_ips: Vec::new(),
            video_codecs: vec![
                WhipVideoCodec::H264,
                WhipVideoCodec::Vp8,
                WhipVideoCodec::Vp9,
                WhipVideoCodec::Av1,
            ],
            audio_codecs: vec![WhipAudioCodec::Opus],
            session_timeout_seconds: 10,
        }
    }
}

impl WhipConfig {
    /// Checks the port range, the codec lists and the timeout.
    fn validate(&self) -> Result<(), ValidationError> {
        let bad = |key: &'static str, reason: String| ValidationError::Whip { key, reason };
        if let Some([min, max]) = self.udp_port_range {
            if min == 0 || min > max {
                return Err(bad(
                    "udp_port_range",
                    format!("must be [min, max] with 0 < min <= max, got [{min}, {max}]"),
                ));
            }
        }
        if self.video_codecs.is_empty() && self.audio_codecs.is_empty() {
            return Err(bad(
                "video_codecs",
                "video_codecs and audio_codecs must not both be empty".into(),
            ));
        }
        if !(1..=3600).contains(&self.session_timeout_seconds) {
            return Err(bad(
                "session_timeout_seconds",
                format!(
                    "must be between 1 and 3600, got {}",
                    self.session_timeout_seconds
                ),
            ));
        }
        Ok(())
    }
}

/// A video codec WHIP publishers may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhipVideoCodec {
    /// H264 (packetization-mode 1).
    H264,
    /// VP8.
    Vp8,
    /// VP9.
    Vp9,
    /// AV1.
    Av1,
}

/// An audio codec WHIP publishers may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhipAudioCodec {
    /// Opus.
    Opus,
}

/// Output format of a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    /// Fragmented MP4 segments with a DASH manifest.
    Dash,
    /// One FLV file per recording (RTMP sources).
    Flv,
}

/// `[recorder]` section (live777's key names).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecorderConfig {
    /// Stream name patterns recorded as soon as they go live (`"*"` for all).
    pub auto_streams: Vec<String>,
    /// Rotate a recording into a new directory after this many seconds (0: never).
    pub max_recording_seconds: u64,
    /// Target media segment duration in seconds; segments are cut at keyframes.
    pub segment_seconds: f64,
    /// Human-readable name of this node, carried in hook events.
    pub node_alias: String,
    /// Formats written for each recording (default `["dash", "flv"]`).
    pub formats: Vec<RecordFormat>,
    /// `[recorder.storage]`: where finished files go.
    pub storage: StorageConfig,
    /// `[recorder.upload]`: how finished files travel from the spool to storage.
    pub upload: UploadConfig,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self {
            auto_streams: Vec::new(),
            max_recording_seconds: 0,
            segment_seconds: 2.0,
            node_alias: String::new(),
            formats: vec![RecordFormat::Dash, RecordFormat::Flv],
            storage: StorageConfig::default(),
            upload: UploadConfig::default(),
        }
    }
}

/// `[recorder.upload]`: the upload pool and live777's presigned-URL mode.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadConfig {
    /// Presigned-URL mode: ask `presign_url` for PUT URLs instead of using credentials.
    pub enabled: bool,
    /// The presign service (`POST`, see `recnode_actors::uploader::PresignRequest`).
    pub presign_url: Option<String>,
    /// Bearer token sent to the presign service.
    pub token: Option<String>,
    /// How long a presigned URL should stay valid.
    pub presign_ttl_seconds: u64,
    /// How many uploads run at once (default 4).
    pub concurrency: usize,
    /// The longest wait between two attempts of a failing upload.
    pub max_backoff_seconds: f64,
}

impl Default for UploadConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            presign_url: None,
            token: None,
            presign_ttl_seconds: 900,
            concurrency: 4,
            max_backoff_seconds: 30.0,
        }
    }
}

/// `[recorder.storage]`, selected by its `type` key.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum StorageConfig {
    /// `type = "fs"`: a local directory.
    Fs(FsStorage),
    /// `type = "s3"`: Amazon S3 or an S3-compatible service (MinIO, R2 …).
    S3(S3Storage),
    /// `type = "azblob"`: Azure Blob Storage.
    Azblob(AzblobStorage),
    /// `type = "gcs"`: Google Cloud Storage.
    Gcs(GcsStorage),
    /// `type = "oss"`: Alibaba Cloud OSS.
    Oss(OssStorage),
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self::Fs(FsStorage::default())
    }
}

impl StorageConfig {
    /// The `type` value that selects this variant.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Fs(_) => "fs",
            Self::S3(_) => "s3",
            Self::Azblob(_) => "azblob",
            Self::Gcs(_) => "gcs",
            Self::Oss(_) => "oss",
        }
    }
}

fn default_object_root() -> String {
    "/".to_string()
}

/// Local file system storage.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FsStorage {
    /// Directory recordings are stored under (default `./recordings`).
    pub root: PathBuf,
}

impl Default for FsStorage {
    fn default() -> Self {
        Self {
            root: PathBuf::from("./recordings"),
        }
    }
}

/// S3 storage (live777's keys).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Storage {
    /// Bucket name (required).
    #[serde(default)]
    pub bucket: String,
    /// Prefix inside the bucket (default `/`).
    #[serde(default = "default_object_root")]
    pub root: String,
    /// Region; when unset, taken from the environment or the endpoint.
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint URL, for S3-compatible services.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Access key id.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Secret access key.
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// Session token for temporary credentials.
    #[serde(default)]
    pub session_token: Option<String>,
    /// Do not load credentials and region from the environment or AWS config files.
    #[serde(default)]
    pub disable_config_load: bool,
    /// Address buckets as `bucket.endpoint` instead of `endpoint/bucket`.
    #[serde(default)]
    pub enable_virtual_host_style: bool,
}

/// Azure Blob Storage.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzblobStorage {
    /// Container name (required).
    #[serde(default)]
    pub container: String,
    /// Prefix inside the container (default `/`).
    #[serde(default = "default_object_root")]
    pub root: String,
    /// Endpoint URL.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Storage account name.
    #[serde(default)]
    pub account_name: Option<String>,
    /// Storage account key.
    #[serde(default)]
    pub account_key: Option<String>,
}

/// Google Cloud Storage.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcsStorage {
    /// Bucket name (required).
    #[serde(default)]
    pub bucket: String,
    /// Prefix inside the bucket (default `/`).
    #[serde(default = "default_object_root")]
    pub root: String,
    /// Service account credential, base64-encoded JSON.
    #[serde(default)]
    pub credential: Option<String>,
    /// Path to a service account credential file.
    #[serde(default)]
    pub credential_path: Option<String>,
    /// Endpoint URL.
    #[serde(default)]
    pub endpoint: Option<String>,
}

/// Alibaba Cloud OSS.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OssStorage {
    /// Bucket name (required).
    #[serde(default)]
    pub bucket: String,
    /// Prefix inside the bucket (default `/`).
    #[serde(default = "default_object_root")]
    pub root: String,
    /// Endpoint URL.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Access key id.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Access key secret.
    #[serde(default)]
    pub access_key_secret: Option<String>,
}

/// `[data]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Directory for the spool and the node's state (default `./data`).
    pub dir: PathBuf,
    /// Below this many free bytes under `dir`, new recordings are refused (0: off).
    pub min_free_bytes: u64,
    /// Below this many free bytes, open recordings are closed cleanly (default: a
    /// quarter of `min_free_bytes`).
    pub hard_min_free_bytes: Option<u64>,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("./data"),
            min_free_bytes: 1 << 30,
            hard_min_free_bytes: None,
        }
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `${VAR}` names a variable that is not set (or not UTF-8).
    #[error("{origin}, line {line}: environment variable `{var}` (used as ${{{var}}}) is not set")]
    UnsetVar {
        /// Where the text came from.
        origin: String,
        /// 1-based line of the reference.
        line: usize,
        /// The variable's name.
        var: String,
    },
    /// A `${` is not followed by a valid variable name and `}`.
    #[error(
        "{origin}, line {line}: bad variable reference: {reason} (write $${{ for a literal ${{)"
    )]
    BadVarRef {
        /// Where the text came from.
        origin: String,
        /// 1-based line of the reference.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The text is not valid TOML (toml's message gives line and column).
    #[error("{origin}: {message}")]
    Syntax {
        /// Where the text came from.
        origin: String,
        /// toml's message.
        message: String,
    },
    /// A `RECNODE_*` variable cannot be applied to the config tree.
    #[error("environment override {var}: {reason}")]
    BadOverride {
        /// The variable's name.
        var: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key is unknown, has the wrong type, or a required key is missing.
    #[error("{origin}: key `{key}`: {message}")]
    Invalid {
        /// Where the value came from: the file, and the override variable if one set it.
        origin: String,
        /// Dotted path of the key (e.g. `recorder.storage`).
        key: String,
        /// serde's message (it names unknown fields and expected types).
        message: String,
    },
    /// The values parse but are not acceptable.
    #[error("{origin}: {reason}")]
    Validation {
        /// Where the text came from.
        origin: String,
        /// What is wrong (shown in this error's message, so not chained as a source).
        reason: ValidationError,
    },
}

/// A value that parses but is not acceptable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValidationError {
    /// A `[hooks]` key is bad (the error names it, e.g. `hooks.endpoints[0].secret`).
    #[error("key `{}`: {}", .0.field, .0.message)]
    Hooks(recnode_actors::hooks::EndpointConfigError),
    /// A `[cluster]` key is bad.
    #[error("key `cluster.{key}`: {reason}")]
    Cluster {
        /// The key under `[cluster]`.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// `recorder.segment_seconds` is zero, negative or not finite.
    #[error("key `recorder.segment_seconds` must be a finite number > 0, got {0}")]
    SegmentSeconds(f64),
    /// `rtmp.apps` is empty.
    #[error("key `rtmp.apps` must list at least one application")]
    NoApps,
    /// An entry of `rtmp.apps` is not a plain name.
    #[error("key `rtmp.apps`: {0:?} is not a valid application name (use letters, digits, '-', '_', '.')")]
    BadApp(String),
    /// `recorder.formats` is empty.
    #[error("key `recorder.formats` must list at least one format")]
    NoFormats,
    /// A storage key that the chosen `type` requires is missing or empty.
    #[error("key `recorder.storage.{key}` is required when type = \"{kind}\"")]
    MissingStorageKey {
        /// The storage type.
        kind: &'static str,
        /// The missing key.
        key: &'static str,
    },
    /// A directory path is empty.
    #[error("key `{0}` must not be empty")]
    EmptyPath(&'static str),
    /// `auth.admin_token` is set but empty.
    #[error("key `auth.admin_token` must not be empty (remove it to disable API auth)")]
    EmptyAdminToken,
    /// An `auth.stream_keys` entry has an empty pattern or key.
    #[error("key `auth.stream_keys`: entry {0:?} needs a non-empty pattern and key")]
    EmptyStreamKey(String),
    /// `recorder.upload.enabled` is true but `presign_url` is not set.
    #[error("key `recorder.upload.presign_url` is required when `recorder.upload.enabled = true`")]
    MissingPresignUrl,
    /// `recorder.upload.presign_url` is not an http(s) URL.
    #[error("key `recorder.upload.presign_url` must be an http:// or https:// URL with a host, got {0:?}")]
    BadPresignUrl(String),
    /// `recorder.upload.concurrency` is zero.
    #[error("key `recorder.upload.concurrency` must be at least 1")]
    UploadConcurrency,
    /// `recorder.upload.max_backoff_seconds` is zero, negative, not finite or too large.
    #[error(
        "key `recorder.upload.max_backoff_seconds` must be a finite number of seconds > 0, got {0}"
    )]
    MaxBackoff(f64),
    /// `recorder.upload.presign_ttl_seconds` is outside 1..=604800 (7 days, S3's limit).
    #[error("key `recorder.upload.presign_ttl_seconds` must be between 1 and {MAX_PRESIGN_TTL_SECONDS} (7 days), got {0}")]
    PresignTtl(u64),
    /// `data.hard_min_free_bytes` is above `data.min_free_bytes`.
    #[error(
        "key `data.hard_min_free_bytes` ({hard}) must not exceed `data.min_free_bytes` ({min})"
    )]
    HardMinFreeBytes {
        /// `data.hard_min_free_bytes`.
        hard: u64,
        /// `data.min_free_bytes`.
        min: u64,
    },
    /// A `[whip]` value is out of range.
    #[error("key `whip.{key}`: {reason}")]
    Whip {
        /// The key under `[whip]`.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The longest validity of a presigned URL, in seconds (7 days; S3's SigV4 limit).
pub const MAX_PRESIGN_TTL_SECONDS: u64 = 604_800;

/// True for `http://host...` and `https://host...` with no blanks or control characters.
fn is_http_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    !host.is_empty()
        && !host.starts_with(':')
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl Config {
    /// Loads the config from `path` (or the built-in defaults) and the process environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        // Non-UTF-8 variables cannot be config values; a `${VAR}` naming one reports
        // it as unset.
        let env: BTreeMap<String, String> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                let origin = format!("config file {}", path.display());
                Self::from_text(&text, &origin, &env)
            }
            None => Self::from_text("", "built-in defaults", &env),
        }
    }

    /// Builds a config from TOML `text` and an environment (for `${VAR}` and overrides).
    ///
    /// `origin` names the text's source in error messages (e.g. `config file x.toml`).
    pub fn from_text(
        text: &str,
        origin: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let expanded = expand_env(text, origin, |name| env.get(name).cloned())?;
        let mut tree: toml::Table =
            expanded
                .parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    origin: origin.to_string(),
                    message: e.to_string().trim_end().to_string(),
                })?;
        let overrides = apply_overrides(&mut tree, env)?;
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(tree)).map_err(|e| {
                let key = e.path().to_string();
                let setters: Vec<&str> = overrides
                    .iter()
                    .filter(|(_, path)| related(path, &key))
                    .map(|(var, _)| var.as_str())
                    .collect();
                let origin = if setters.is_empty() {
                    origin.to_string()
                } else {
                    format!("{origin} with environment override {}", setters.join(", "))
                };
                ConfigError::Invalid {
                    origin,
                    key,
                    message: e.into_inner().message().to_string(),
                }
            })?;
        config
            .validate()
            .map_err(|reason| ConfigError::Validation {
                origin: origin.to_string(),
                reason,
            })?;
        Ok(config)
    }

    /// Checks `[recorder.upload]`.
    fn validate_upload(&self) -> Result<(), ValidationError> {
        let upload = &self.recorder.upload;
        if upload.enabled {
            let url = upload
                .presign_url
                .as_deref()
                .ok_or(ValidationError::MissingPresignUrl)?;
            if !is_http_url(url) {
                return Err(ValidationError::BadPresignUrl(url.to_string()));
            }
        }
        if upload.concurrency == 0 {
            return Err(ValidationError::UploadConcurrency);
        }
        let backoff = upload.max_backoff_seconds;
        if !(backoff > 0.0 && Duration::try_from_secs_f64(backoff).is_ok()) {
            return Err(ValidationError::MaxBackoff(backoff));
        }
        if !(1..=MAX_PRESIGN_TTL_SECONDS).contains(&upload.presign_ttl_seconds) {
            return Err(ValidationError::PresignTtl(upload.presign_ttl_seconds));
        }
        Ok(())
    }

    /// `[cluster.tls]` as the cluster layer takes it, when the cluster is enabled with it.
    pub fn cluster_tls_files(&self) -> Option<recnode_cluster::tls::TlsFiles> {
        let tls = self.cluster.tls.as_ref().filter(|_| self.cluster.enabled)?;
        Some(recnode_cluster::tls::TlsFiles {
            cert: tls.cert.clone(),
            key: tls.key.clone(),
            ca: tls.ca.clone(),
            server_name: tls.server_name.clone(),
        })
    }

    /// The cluster node name: `cluster.node_name`, else `recorder.node_alias`.
    pub fn cluster_node_name(&self) -> &str {
        match self.cluster.node_name.as_str() {
            "" => &self.recorder.node_alias,
            name => name,
        }
    }

    /// Checks `[cluster]` when it is enabled: a plain node name, a cookie, usable seeds.
    fn validate_cluster(&self) -> Result<(), ValidationError> {
        if !self.cluster.enabled {
            return Ok(());
        }
        let bad = |key: &'static str, reason: String| ValidationError::Cluster { key, reason };
        let name = self.cluster_node_name();
        if !is_plain_name(name) || name.contains('@') {
            return Err(bad(
                "node_name",
                format!("needs a plain name (or `recorder.node_alias`), got {name:?}"),
            ));
        }
        if self.cluster.listen.ip().is_unspecified() {
            return Err(bad(
                "listen",
                format!(
                    "{} is not an address peers can reach (it is also this node's address in the cluster)",
                    self.cluster.listen
                ),
            ));
        }
        if self.cluster.cookie.is_empty() {
            return Err(bad("cookie", "must not be empty when enabled".into()));
        }
        if let Some(seed) = self.cluster.seeds.iter().find(|s| {
            s.rsplit_once(':')
                .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
        }) {
            return Err(bad("seeds", format!("{seed:?} is not host:port")));
        }
        if self.cluster.peer_timeout_ms < MIN_PEER_TIMEOUT_MS {
            return Err(bad(
                "peer_timeout_ms",
                format!(
                    "must be at least {MIN_PEER_TIMEOUT_MS} (heartbeats go out every second), got {}",
                    self.cluster.peer_timeout_ms
                ),
            ));
        }
        if let Some(tls) = &self.cluster.tls {
            for (key, path) in [
                ("tls.cert", &tls.cert),
                ("tls.key", &tls.key),
                ("tls.ca", &tls.ca),
            ] {
                if path.as_os_str().is_empty() {
                    return Err(bad(key, "must name a PEM file".into()));
                }
            }
            if tls.server_name.as_deref() == Some("") {
                return Err(bad("tls.server_name", "must not be empty when set".into()));
            }
        }
        Ok(())
    }

    /// Checks what the types cannot express.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let segment = self.recorder.segment_seconds;
        if !(segment.is_finite() && segment > 0.0) {
            return Err(ValidationError::SegmentSeconds(segment));
        }
        if self.rtmp.apps.is_empty() {
            return Err(ValidationError::NoApps);
        }
        if let Some(app) = self.rtmp.apps.iter().find(|app| !is_plain_name(app)) {
            return Err(ValidationError::BadApp(app.clone()));
        }
        if self.recorder.formats.is_empty() {
            return Err(ValidationError::NoFormats);
        }
        if self.data.dir.as_os_str().is_empty() {
            return Err(ValidationError::EmptyPath("data.dir"));
        }
        if self.auth.admin_token.as_deref() == Some("") {
            return Err(ValidationError::EmptyAdminToken);
        }
        if let Some((pattern, _)) = self
            .auth
            .stream_keys
            .iter()
            .find(|(pattern, key)| pattern.is_empty() || key.is_empty())
        {
            return Err(ValidationError::EmptyStreamKey(pattern.clone()));
        }
        self.validate_upload()?;
        self.hooks.validate().map_err(ValidationError::Hooks)?;
        self.whip.validate()?;
        if let Some(hard) = self.data.hard_min_free_bytes {
            if hard > self.data.min_free_bytes {
                return Err(ValidationError::HardMinFreeBytes {
                    hard,
                    min: self.data.min_free_bytes,
                });
            }
        }
        self.validate_cluster()?;
        let (kind, required) = match &self.recorder.storage {
            StorageConfig::Fs(fs) => {
                if fs.root.as_os_str().is_empty() {
                    return Err(ValidationError::EmptyPath("recorder.storage.root"));
                }
                return Ok(());
            }
            StorageConfig::S3(s3) => ("s3", [("bucket", &s3.bucket)]),
            StorageConfig::Azblob(az) => ("azblob", [("container", &az.container)]),
            StorageConfig::Gcs(gcs) => ("gcs", [("bucket", &gcs.bucket)]),
            StorageConfig::Oss(oss) => ("oss", [("bucket", &oss.bucket)]),
        };
        for (key, value) in required {
            if value.is_empty() {
                return Err(ValidationError::MissingStorageKey { kind, key });
            }
        }
        Ok(())
    }
}

/// True for names made of ASCII letters, digits, `-`, `_` and `.` (not `.`/`..`).
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// True when an override at `path` could have caused an error reported at `key`.
fn related(path: &[String], key: &str) -> bool {
    let joined = path.join(".");
    joined == key
        || joined.starts_with(&format!("{key}."))
        || key.starts_with(&format!("{joined}."))
}

/// Replaces `${NAME}` with `lookup(NAME)`; `$${` is a literal `${`.
///
/// Lines whose first non-blank character is `#` are copied unchanged, so a comment
/// may mention `${VAR}` without requiring it.
pub fn expand_env(
    text: &str,
    origin: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let line_no = index + 1;
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos..];
            if let Some(tail) = after.strip_prefix("$${") {
                out.push_str("${");
                rest = tail;
            } else if let Some(tail) = after.strip_prefix("${") {
                let bad = |reason: &str| ConfigError::BadVarRef {
                    origin: origin.to_string(),
                    line: line_no,
                    reason: reason.to_string(),
                };
                let end = tail.find('}').ok_or_else(|| bad("missing `}`"))?;
                let name = &tail[..end];
                if !is_var_name(name) {
                    return Err(bad(&format!("{name:?} is not a variable name")));
                }
                let value = lookup(name).ok_or_else(|| ConfigError::UnsetVar {
                    origin: origin.to_string(),
                    line: line_no,
                    var: name.to_string(),
                })?;
                out.push_str(&value);
                rest = &tail[end + 1..];
            } else {
                out.push('$');
                rest = &after[1..];
            }
        }
        out.push_str(rest);
    }
    Ok(out)
}

fn is_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Applies every `RECNODE_*` variable of `env` to `tree`, in name order.
///
/// Returns the applied overrides as (variable, key path), for error messages.
fn apply_overrides(
    tree: &mut toml::Table,
    env: &BTreeMap<String, String>,
) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
    let mut applied = Vec::new();
    for (var, raw) in env {
        let Some(name) = var.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        // An override names a section and a key; `RECNODE_COOKIE` or
        // `RECNODE_ADMIN_TOKEN` without a separator are plain variables for `${...}`.
        if !name.contains(ENV_SEPARATOR) {
            continue;
        }
        let bad = |reason: String| ConfigError::BadOverride {
            var: var.clone(),
            reason,
        };
        let path: Vec<String> = name
            .split(ENV_SEPARATOR)
            .map(|segment| segment.to_ascii_lowercase())
            .collect();
        if path.iter().any(|segment| segment.is_empty()) {
            return Err(bad(format!(
                "expected RECNODE_<SECTION>{ENV_SEPARATOR}<KEY>, with no empty part"
            )));
        }
        let (leaf, parents) = path
            .split_last()
            .ok_or_else(|| bad("names no key".to_string()))?;
        let mut table = &mut *tree;
        for (depth, segment) in parents.iter().enumerate() {
            let entry = table
                .entry(segment.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = entry.as_table_mut().ok_or_else(|| {
                bad(format!(
                    "key `{}` is a value, not a section",
                    path[..=depth].join(".")
                ))
            })?;
        }
        table.insert(leaf.clone(), parse_override_value(raw));
        applied.push((var.clone(), path));
    }
    Ok(applied)
}

/// Reads `raw` as a TOML value (`4`, `true`, `["a"]`, `"quoted"`), else as a string.
fn parse_override_value(raw: &str) -> toml::Value {
    let doc = format!("value = {raw}");
    match doc.parse::<toml::Table>() {
        // Exactly one key: a raw value containing a newline and `key = …` must not
        // smuggle in a second key; it is then taken as a plain string.
        Ok(mut table) if table.len() == 1 => table
            .remove("value")
            .unwrap_or_else(|| toml::Value::String(raw.to_string())),
        _ => toml::Value::String(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse(text: &str, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_text(text, "config file test.toml", &env(pairs))
    }

    fn parse_err(text: &str, pairs: &[(&str, &str)]) -> String {
        parse(text, pairs)
            .expect_err("config must be rejected")
            .to_string()
    }

    #[test]
    fn empty_file_gives_the_documented_defaults() {
        let config = parse("", &[]).expect("defaults are valid");
        assert_eq!(config, Config::default());
        assert_eq!(
            config.http.listen,
            "0.0.0.0:7777".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(
            config.rtmp.listen,
            "0.0.0.0:1935".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(config.rtmp.apps, ["live"]);
        assert!(config.recorder.auto_streams.is_empty());
        assert_eq!(config.recorder.max_recording_seconds, 0);
        assert_eq!(config.recorder.segment_seconds, 2.0);
        assert_eq!(config.recorder.node_alias, "");
        assert_eq!(
            config.recorder.formats,
            [RecordFormat::Dash, RecordFormat::Flv]
        );
        assert_eq!(
            config.recorder.storage,
            StorageConfig::Fs(FsStorage {
                root: PathBuf::from("./recordings")
            })
        );
        assert_eq!(config.data.dir, PathBuf::from("./data"));
    }

    #[test]
    fn auth_section_reads_admin_token_and_stream_key_patterns() {
        let config = parse(
            "[auth]\nadmin_token = \"${TOKEN}\"\n[auth.stream_keys]\n\"cam-*\" = \"k1\"\nshow = \"k2\"\n",
            &[("TOKEN", "s3cret")],
        )
        .expect("valid auth section");
        assert_eq!(config.auth.admin_token.as_deref(), Some("s3cret"));
        assert_eq!(config.auth.stream_keys["cam-*"], "k1");
        assert_eq!(config.auth.stream_keys["show"], "k2");
        assert!(parse_err("[auth]\nadmin_token = \"\"\n", &[]).contains("auth.admin_token"));
        assert!(parse_err("[auth.stream_keys]\nx = \"\"\n", &[]).contains("auth.stream_keys"));
    }

    #[test]
    fn full_file_with_s3_storage_is_read() {
        let text = r#"
            [http]
            listen = "127.0.0.1:8080"
            [rtmp]
            listen = "127.0.0.1:1936"
            apps = ["live", "event"]
            [recorder]
            auto_streams = ["*"]
            max_recording_seconds = 3600
            segment_seconds = 4
            node_alias = "edge-1"
            formats = ["dash"]
            [recorder.storage]
            type = "s3"
            bucket = "recs"
            root = "/node1"
            region = "us-east-1"
            endpoint = "http://127.0.0.1:9000"
            access_key_id = "minio"
            secret_access_key = "minio123"
            session_token = "tok"
            disable_config_load = true
            enable_virtual_host_style = false
            [data]
            dir = "/var/lib/recnode"
        "#;
        let config = parse(text, &[]).expect("valid config");
        assert_eq!(config.http.listen.port(), 8080);
        assert_eq!(config.rtmp.apps, ["live", "event"]);
        assert_eq!(config.recorder.auto_streams, ["*"]);
        assert_eq!(config.recorder.max_recording_seconds, 3600);
        assert_eq!(config.recorder.segment_seconds, 4.0);
        assert_eq!(config.recorder.formats, [RecordFormat::Dash]);
        let StorageConfig::S3(s3) = &config.recorder.storage else {
            panic!("expected s3, got {:?}", config.recorder.storage);
        };
        assert_eq!(s3.bucket, "recs");
        assert_eq!(s3.root, "/node1");
        assert_eq!(s3.region.as_deref(), Some("us-east-1"));
        assert_eq!(s3.session_token.as_deref(), Some("tok"));
        assert!(s3.disable_config_load);
        assert!(!s3.enable_virtual_host_style);
        assert_eq!(config.data.dir, PathBuf::from("/var/lib/recnode"));
    }

    #[test]
    fn every_storage_type_is_accepted_with_its_keys() {
        let cases = [
            ("fs", "root = \"/srv/rec\""),
            ("azblob", "container = \"c\"\naccount_name = \"a\"\naccount_key = \"k\"\nendpoint = \"e\"\nroot = \"/\""),
            ("gcs", "bucket = \"b\"\ncredential = \"c\"\ncredential_path = \"p\"\nendpoint = \"e\""),
            ("oss", "bucket = \"b\"\naccess_key_id = \"i\"\naccess_key_secret = \"s\"\nendpoint = \"e\""),
        ];
        for (kind, keys) in cases {
            let text = format!("[recorder.storage]\ntype = \"{kind}\"\n{keys}\n");
            let config = parse(&text, &[]).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(config.recorder.storage.kind(), kind);
        }
    }

    #[test]
    fn variables_in_the_file_expand_from_the_environment() {
        let text = "# ${NOT_SET_BUT_IN_A_COMMENT}\n[recorder]\nnode_alias = \"${ALIAS}-$${literal}\"\nsegment_seconds = ${SEG}\n";
        let config = parse(text, &[("ALIAS", "edge"), ("SEG", "3.5")]).expect("valid");
        assert_eq!(config.recorder.node_alias, "edge-${literal}");
        assert_eq!(config.recorder.segment_seconds, 3.5);
    }

    #[test]
    fn unset_variable_is_an_error_naming_it() {
        let err = parse("[recorder]\nnode_alias = \"${MISSING_ALIAS}\"\n", &[]).unwrap_err();
        assert!(
            matches!(&err, ConfigError::UnsetVar { var, line: 2, .. } if var == "MISSING_ALIAS"),
            "{err:?}"
        );
        assert!(err.to_string().contains("MISSING_ALIAS"));
        assert!(err.to_string().contains("test.toml"));
    }

    #[test]
    fn malformed_variable_reference_is_an_error() {
        let err = parse("[recorder]\nnode_alias = \"${NO_END\"\n", &[]).unwrap_err();
        assert!(
            matches!(err, ConfigError::BadVarRef { line: 2, .. }),
            "{err:?}"
        );
        let err = parse("[recorder]\nnode_alias = \"${1X}\"\n", &[]).unwrap_err();
        assert!(matches!(err, ConfigError::BadVarRef { .. }), "{err:?}");
    }

    #[test]
    fn env_overrides_replace_file_values_with_typed_values() {
        let text = "[http]\nlisten = \"0.0.0.0:1\"\n[recorder]\nsegment_seconds = 2\n";
        let config = parse(
            text,
            &[
                ("RECNODE_HTTP__LISTEN", "127.0.0.1:8080"),
                ("RECNODE_RECORDER__SEGMENT_SECONDS", "4"),
                ("RECNODE_RECORDER__AUTO_STREAMS", r#"["cam*", "live"]"#),
                ("RECNODE_RECORDER__NODE_ALIAS", "edge 1"),
                ("RECNODE_RECORDER__STORAGE__TYPE", "s3"),
                ("RECNODE_RECORDER__STORAGE__BUCKET", "recs"),
                ("RECNODE_RECORDER__STORAGE__DISABLE_CONFIG_LOAD", "true"),
                ("UNRELATED", "x"),
            ],
        )
        .expect("valid");
        assert_eq!(
            config.http.listen,
            "127.0.0.1:8080".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(config.recorder.segment_seconds, 4.0);
        assert_eq!(config.recorder.auto_streams, ["cam*", "live"]);
        assert_eq!(config.recorder.node_alias, "edge 1");
        let StorageConfig::S3(s3) = config.recorder.storage else {
            panic!("expected s3");
        };
        assert_eq!(s3.bucket, "recs");
        assert!(s3.disable_config_load);
    }

    #[test]
    fn override_value_smuggling_a_second_key_stays_a_string() {
        let config = parse(
            "",
            &[("RECNODE_RECORDER__NODE_ALIAS", "\"a\"\nsegment_seconds = 9")],
        )
        .expect("valid");
        assert_eq!(config.recorder.node_alias, "\"a\"\nsegment_seconds = 9");
        assert_eq!(config.recorder.segment_seconds, 2.0);
    }

    #[test]
    fn unknown_key_in_file_is_rejected_naming_it() {
        let err = parse_err("[http]\nlisten = \"0.0.0.0:7777\"\nlsten = 1\n", &[]);
        assert!(err.contains("lsten"), "{err}");
        assert!(err.contains("test.toml"), "{err}");
    }

    #[test]
    fn unknown_section_is_rejected_naming_it() {
        let err = parse_err("[htp]\nlisten = \"0.0.0.0:7777\"\n", &[]);
        assert!(err.contains("htp"), "{err}");
    }

    #[test]
    fn unknown_override_key_is_rejected_naming_the_variable() {
        let err = parse_err("", &[("RECNODE_HTTP__LISTN", "127.0.0.1:1")]);
        assert!(err.contains("listn"), "{err}");
        assert!(err.contains("RECNODE_HTTP__LISTN"), "{err}");
    }

    #[test]
    fn override_below_a_value_is_rejected() {
        let err = parse_err("", &[("RECNODE_RECORDER__NODE_ALIAS__X", "1")]);
        assert!(err.contains("RECNODE_RECORDER__NODE_ALIAS__X"), "{err}");
        assert!(err.contains("recorder.node_alias"), "{err}");
        let err = parse(
            "[recorder]\nnode_alias = \"a\"\n",
            &[("RECNODE_RECORDER__NODE_ALIAS__X", "1")],
        )
        .expect_err("must fail");
        assert!(matches!(err, ConfigError::BadOverride { .. }), "{err:?}");
        assert!(err.to_string().contains("recorder.node_alias"), "{err}");
    }

    #[test]
    fn wrong_type_is_rejected_naming_the_key() {
        let err = parse_err("[recorder]\nsegment_seconds = \"two\"\n", &[]);
        assert!(err.contains("recorder.segment_seconds"), "{err}");
        let err = parse_err("[recorder]\nmax_recording_seconds = -5\n", &[]);
        assert!(err.contains("recorder.max_recording_seconds"), "{err}");
        let err = parse_err("[http]\nlisten = \"not an address\"\n", &[]);
        assert!(err.contains("http.listen"), "{err}");
        let err = parse_err("[recorder]\nformats = [\"mkv\"]\n", &[]);
        assert!(
            err.contains("recorder.formats") && err.contains("mkv"),
            "{err}"
        );
    }

    #[test]
    fn unknown_storage_type_is_rejected_naming_it() {
        let err = parse_err("[recorder.storage]\ntype = \"ftp\"\nroot = \"/\"\n", &[]);
        assert!(err.contains("recorder.storage"), "{err}");
        assert!(err.contains("ftp"), "{err}");
    }

    #[test]
    fn key_of_another_storage_type_is_rejected_naming_it() {
        let err = parse_err("[recorder.storage]\ntype = \"fs\"\nbucket = \"b\"\n", &[]);
        assert!(err.contains("bucket"), "{err}");
    }

    #[test]
    fn toml_syntax_error_names_the_file_and_line() {
        let err = parse_err("[http\nlisten = 1\n", &[]);
        assert!(err.contains("test.toml"), "{err}");
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn segment_seconds_must_be_positive() {
        for bad in ["0", "-1.5", "nan", "inf"] {
            let err = parse(&format!("[recorder]\nsegment_seconds = {bad}\n"), &[]).unwrap_err();
            assert!(
                matches!(
                    err,
                    ConfigError::Validation {
                        reason: ValidationError::SegmentSeconds(_),
                        ..
                    }
                ),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn object_storage_requires_its_bucket() {
        let err = parse("[recorder.storage]\ntype = \"s3\"\n", &[]).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Validation {
                    reason: ValidationError::MissingStorageKey {
                        kind: "s3",
                        key: "bucket"
                    },
                    ..
                }
            ),
            "{err:?}"
        );
        let err = parse("[recorder.storage]\ntype = \"azblob\"\n", &[]).unwrap_err();
        assert!(err.to_string().contains("container"), "{err}");
    }

    fn validation_error(text: &str) -> ValidationError {
        match parse(text, &[]) {
            Err(ConfigError::Validation { reason, .. }) => reason,
            other => panic!("expected a validation error for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn upload_section_is_read_with_its_defaults() {
        let config = parse("", &[]).expect("defaults are valid");
        assert_eq!(config.recorder.upload, UploadConfig::default());
        assert!(!config.recorder.upload.enabled);
        assert_eq!(config.recorder.upload.concurrency, 4);
        assert_eq!(config.recorder.upload.presign_ttl_seconds, 900);
        let config = parse(
            "[recorder.upload]\nenabled = true\npresign_url = \"https://signer.example/api/storage/presign\"\n\
             token = \"t\"\npresign_ttl_seconds = 604800\nconcurrency = 1\nmax_backoff_seconds = 0.5\n",
            &[],
        )
        .expect("valid upload section");
        let upload = &config.recorder.upload;
        assert!(upload.enabled);
        assert_eq!(upload.token.as_deref(), Some("t"));
        assert_eq!(upload.presign_ttl_seconds, 604_800);
        assert_eq!(upload.max_backoff_seconds, 0.5);
    }

    #[test]
    fn presigned_mode_requires_an_http_presign_url() {
        assert_eq!(
            validation_error("[recorder.upload]\nenabled = true\n"),
            ValidationError::MissingPresignUrl
        );
        for bad in [
            "ftp://x/presign",
            "signer:7777",
            "http://",
            "http:///p",
            "http://a b/",
        ] {
            let text = format!("[recorder.upload]\nenabled = true\npresign_url = \"{bad}\"\n");
            assert_eq!(
                validation_error(&text),
                ValidationError::BadPresignUrl(bad.to_string()),
                "{bad}"
            );
        }
        let err = parse_err("[recorder.upload]\nenabled = true\n", &[]);
        assert!(err.contains("recorder.upload.presign_url"), "{err}");
        // A URL without `enabled` is kept for later and not required to be set.
        parse(
            "[recorder.upload]\npresign_url = \"http://127.0.0.1:7777/p\"\n",
            &[],
        )
        .expect("valid");
    }

    #[test]
    fn upload_concurrency_backoff_and_ttl_must_be_in_range() {
        assert_eq!(
            validation_error("[recorder.upload]\nconcurrency = 0\n"),
            ValidationError::UploadConcurrency
        );
        for bad in ["0", "-1", "nan", "inf", "1e300"] {
            let text = format!("[recorder.upload]\nmax_backoff_seconds = {bad}\n");
            assert!(
                matches!(validation_error(&text), ValidationError::MaxBackoff(_)),
                "{bad}"
            );
        }
        for bad in [0, 604_801] {
            let text = format!("[recorder.upload]\npresign_ttl_seconds = {bad}\n");
            assert_eq!(validation_error(&text), ValidationError::PresignTtl(bad));
        }
        let err = parse_err("[recorder.upload]\nconcurrency = 0\n", &[]);
        assert!(err.contains("recorder.upload.concurrency"), "{err}");
        let err = parse_err("[recorder.upload]\npresign_ttl_seconds = 0\n", &[]);
        assert!(err.contains("recorder.upload.presign_ttl_seconds"), "{err}");
    }

    #[test]
    fn hard_free_space_floor_must_not_exceed_the_soft_one() {
        assert_eq!(
            validation_error("[data]\nmin_free_bytes = 100\nhard_min_free_bytes = 101\n"),
            ValidationError::HardMinFreeBytes {
                hard: 101,
                min: 100
            }
        );
        let err = parse_err("[data]\nmin_free_bytes = 0\nhard_min_free_bytes = 1\n", &[]);
        assert!(err.contains("data.hard_min_free_bytes"), "{err}");
        parse(
            "[data]\nmin_free_bytes = 100\nhard_min_free_bytes = 100\n",
            &[],
        )
        .expect("valid");
    }

    #[test]
    fn whip_section_is_read_with_its_defaults_and_checked() {
        let config = parse("", &[]).expect("defaults");
        assert!(config.whip.enabled);
        assert_eq!(
            config.whip.udp_listen,
            SocketAddr::from(([0, 0, 0, 0], 8189))
        );
        assert_eq!(config.whip.udp_port_range, None);
        assert_eq!(config.whip.audio_codecs, [WhipAudioCodec::Opus]);
        let config = parse(
            "[whip]\nudp_port_range = [50000, 50100]\npublic_ips = [\"203.0.113.7\"]\n\
             video_codecs = [\"vp8\", \"av1\"]\nsession_timeout_seconds = 5\n",
            &[("RECNODE_WHIP__AUDIO_CODECS", "[]")],
        )
        .expect("valid whip section");
        assert_eq!(config.whip.udp_port_range, Some([50000, 50100]));
        assert_eq!(
            config.whip.public_ips,
            ["203.0.113.7".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(
            config.whip.video_codecs,
            [WhipVideoCodec::Vp8, WhipVideoCodec::Av1]
        );
        assert!(config.whip.audio_codecs.is_empty());
        assert!(
            parse_err("[whip]\nvideo_codecs = [\"mpeg2\"]\n", &[]).contains("whip.video_codecs")
        );
        assert!(parse_err("[whip]\nudp_port_range = [9, 8]\n", &[]).contains("whip.udp_port_range"));
        assert!(
            parse_err("[whip]\nvideo_codecs = []\naudio_codecs = []\n", &[])
                .contains("whip.video_codecs")
        );
        assert!(parse_err("[whip]\nsession_timeout_seconds = 0\n", &[])
            .contains("whip.session_timeout_seconds"));
    }

    #[test]
    fn rtmp_apps_must_be_plain_names() {
        let err = parse("[rtmp]\napps = []\n", &[]).unwrap_err();
        assert!(err.to_string().contains("rtmp.apps"), "{err}");
        let err = parse("[rtmp]\napps = [\"../x\"]\n", &[]).unwrap_err();
        assert!(err.to_string().contains("../x"), "{err}");
    }

    #[test]
    fn cluster_tls_names_three_files_and_takes_them_from_the_environment() {
        let text = "[cluster]\nenabled = true\nnode_name = \"a\"\ncookie = \"x\"\n\
            [cluster.tls]\ncert = \"a.pem\"\nkey = \"a.key\"\n";
        let config = parse(text, &[("RECNODE_CLUSTER__TLS__CA", "/etc/recnode/ca.pem")])
            .expect("valid cluster.tls");
        let files = config.cluster_tls_files().expect("tls on");
        assert_eq!(files.cert, PathBuf::from("a.pem"));
        assert_eq!(files.ca, PathBuf::from("/etc/recnode/ca.pem"));
        assert_eq!(files.server_name, None);
        assert!(
            Config::default().cluster_tls_files().is_none(),
            "off by default"
        );
        let err = parse_err(text, &[]);
        assert!(err.contains("ca"), "a missing file key is named: {err}");
        let err = parse_err(text, &[("RECNODE_CLUSTER__TLS__CA", "\"\"")]);
        assert!(err.contains("cluster.tls.ca"), "{err}");
        let err = parse_err(text, &[("RECNODE_CLUSTER__TLS__CAFILE", "ca.pem")]);
        assert!(err.contains("CAFILE") || err.contains("cafile"), "{err}");
    }

    #[test]
    fn a_cluster_needs_a_cookie_and_host_port_seeds_and_takes_them_from_the_environment() {
        // `${RECNODE_COOKIE}` as the issue spells it: a RECNODE_ variable without a
        // section separator is for expansion, not an override.
        let text = "[cluster]\nenabled = true\nnode_name = \"a\"\ncookie = \"${RECNODE_COOKIE}\"\n";
        let config = parse(
            text,
            &[
                ("RECNODE_COOKIE", "s3cret"),
                ("RECNODE_CLUSTER__SEEDS", r#"["127.0.0.1:4371"]"#),
            ],
        )
        .expect("valid cluster config");
        assert!(config.cluster.enabled);
        assert_eq!(config.cluster.cookie, "s3cret");
        assert_eq!(config.cluster.seeds, ["127.0.0.1:4371"]);
        assert_eq!(config.cluster_node_name(), "a");
        let err = parse_err("[cluster]\nenabled = true\nnode_name = \"a\"\n", &[]);
        assert!(err.contains("cluster.cookie"), "{err}");
        let err = parse_err(
            "[cluster]\nenabled = true\nnode_name = \"a\"\ncookie = \"x\"\nseeds = [\"nohost\"]\n",
            &[],
        );
        assert!(err.contains("cluster.seeds"), "{err}");
        let err = parse_err(
            "[cluster]\nenabled = true\nnode_name = \"a\"\ncookie = \"x\"\nlisten = \"0.0.0.0:4370\"\n",
            &[],
        );
        assert!(err.contains("cluster.listen"), "{err}");
        assert!(!Config::default().cluster.enabled, "off by default");
        assert_eq!(config.cluster.peer_timeout_ms, 3000);
        let err = parse_err(
            "[cluster]\nenabled = true\nnode_name = \"a\"\ncookie = \"x\"\npeer_timeout_ms = 500\n",
            &[],
        );
        assert!(err.contains("cluster.peer_timeout_ms"), "{err}");
    }
}
