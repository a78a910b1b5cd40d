//! Building the storage operator from `[recorder.storage]`.
//!
//! Each backend is an opendal service configured with live777's key names. Keys left out
//! fall back to the backend's standard environment variables (`AWS_*` for s3 unless
//! `disable_config_load`, `AZURE_STORAGE_*` for azblob, `GOOGLE_APPLICATION_CREDENTIALS`
//! for gcs, `ALIBABA_CLOUD_*` for oss), which opendal's signers read.
//!
//! [`StorageProbe`] checks at start-up that the store answers: it writes and deletes a
//! probe object (operator mode) or asks the presign service for a URL (presigned mode).
//! An unreachable store does not stop the node: [`probe_at_start`] marks
//! [`StorageHealth`] failing (so `/readyz` answers 503), and probes again in the
//! background until one probe succeeds; meanwhile recordings collect in the spool.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opendal::layers::TimeoutLayer;
use opendal::Operator;
use recnode_actors::uploader::{
    fs_operator, init_http_transport, PresignRequest, PresignSettings, PresignedRequest,
    StorageHealth, UploadError,
};

use crate::config::StorageConfig;

/// How long one storage request may take before it is failed and retried; an outage
/// that blackholes packets must not hold an upload forever.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a storage I/O step (one chunk of a body) may stall.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the storage configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The local root could not be prepared.
    #[error("storage `fs`")]
    Fs(#[source] UploadError),
    /// opendal refused the configuration.
    #[error("storage `{kind}` (keys under `recorder.storage`): {source}")]
    Config {
        /// The configured type.
        kind: &'static str,
        /// opendal's error.
        #[source]
        source: opendal::Error,
    },
}

/// Builds the operator `[recorder.storage]` describes. Nothing is contacted here; the
/// start-up probe checks that the store answers.
pub fn build_operator(config: &StorageConfig) -> Result<Operator, StorageError> {
    let kind = config.kind();
    let remote = |result: opendal::Result<Operator>| {
        result
            .map(|op| {
                op.layer(
                    TimeoutLayer::new()
                        .with_timeout(REQUEST_TIMEOUT)
                        .with_io_timeout(IO_TIMEOUT),
                )
            })
            .map_err(|source| StorageError::Config { kind, source })
    };
    if !matches!(config, StorageConfig::Fs(_)) {
        init_http_transport();
    }
    match config {
        StorageConfig::Fs(fs) => fs_operator(&fs.root).map_err(StorageError::Fs),
        StorageConfig::S3(s3) => {
            let mut b = opendal::services::S3::default()
                .bucket(&s3.bucket)
                .root(&s3.root);
            if let Some(v) = &s3.region {
                b = b.region(v);
            }
            if let Some(v) = &s3.endpoint {
                b = b.endpoint(v);
            }
            if let Some(v) = &s3.access_key_id {
                b = b.access_key_id(v);
            }
            if let Some(v) = &s3.secret_access_key {
                b = b.secret_access_key(v);
            }
            if let Some(v) = &s3.session_token {
                b = b.session_token(v);
            }
            if s3.disable_config_load {
                b = b.disable_config_load();
            }
            if s3.enable_virtual_host_style {
                b = b.enable_virtual_host_style();
            }
            remote(Operator::new(b))
        }
        StorageConfig::Azblob(az) => {
            let mut b = opendal::services::Azblob::default()
                .container(&az.container)
                .root(&az.root);
            if let Some(v) = &az.endpoint {
                b = b.endpoint(v);
            }
            if let Some(v) = &az.account_name {
                b = b.account_name(v);
            }
            if let Some(v) = &az.account_key {
                b = b.account_key(v);
            }
            remote(Operator::new(b))
        }
        StorageConfig::Gcs(gcs) => {
            let mut b = opendal::services::Gcs::default()
                .bucket(&gcs.bucket)
                .root(&gcs.root);
            if let Some(v) = &gcs.credential {
                b = b.credential(v);
            }
            if let Some(v) = &gcs.credential_path {
                b = b.credential_path(v);
            }
            if let Some(v) = &gcs.endpoint {
                b = b.endpoint(v);
            }
            remote(Operator::new(b))
        }
        StorageConfig::Oss(oss) => {
            let mut b = opendal::services::Oss::default()
                .bucket(&oss.bucket)
                .root(&oss.root);
            if let Some(v) = &oss.endpoint {
                b = b.endpoint(v);
            }
            if let Some(v) = &oss.access_key_id {
                b = b.access_key_id(v);
            }
            if let Some(v) = &oss.access_key_secret {
                b = b.access_key_secret(v);
            }
            remote(Operator::new(b))
        }
    }
}

/// Where probe objects go, under the storage root.
const PROBE_DIR: &str = ".recnode/";
/// How long one probe may take before it counts as failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait between two probes of an unreachable store.
pub const REPROBE_INTERVAL: Duration = Duration::from_secs(2);
/// How often storage is probed while it works (uploads also report failures as they happen).
pub const HEALTHY_PROBE_INTERVAL: Duration = Duration::from_secs(30);

/// Why a storage probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The probe object could not be written.
    #[error("writing probe object {key}: {source}")]
    Write {
        /// The probe object's key.
        key: String,
        /// opendal's error.
        #[source]
        source: opendal::Error,
    },
    /// The probe object was written but could not be deleted.
    #[error("deleting probe object {key}: {source}")]
    Delete {
        /// The probe object's key.
        key: String,
        /// opendal's error.
        #[source]
        source: opendal::Error,
    },
    /// The presign service did not hand out a URL.
    #[error("presign service {url}: {message}")]
    Presign {
        /// The service's URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The probe took longer than [`PROBE_TIMEOUT`].
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Checks that uploads can reach storage.
#[derive(Debug, Clone)]
pub enum StorageProbe {
    /// Writes and deletes `.recnode/probe-{node}-{unix}` through the operator.
    Operator(Operator),
    /// Asks the presign service for a PUT URL of a probe key (nothing is written: a
    /// presigned URL cannot delete what it wrote).
    Presign {
        /// The service, token and TTL.
        settings: PresignSettings,
        /// The HTTP client.
        http: reqwest::Client,
    },
}

impl StorageProbe {
    /// A probe for presigned mode; builds its HTTP client.
    pub fn presign(settings: PresignSettings) -> Result<StorageProbe, ProbeError> {
        init_http_transport();
        let http = reqwest::Client::builder()
            .connect_timeout(PROBE_TIMEOUT)
            .timeout(PROBE_TIMEOUT)
            .build()
            .map_err(|e| ProbeError::Presign {
                url: settings.url.clone(),
                message: format!("cannot build an HTTP client: {e}"),
            })?;
        Ok(StorageProbe::Presign { settings, http })
    }

    /// What the probe does, for log lines.
    pub fn describe(&self) -> &'static str {
        match self {
            StorageProbe::Operator(_) => "write and delete a probe object",
            StorageProbe::Presign { .. } => "ask the presign service for a probe URL",
        }
    }

    /// Probes once with the key of `node` (a name or the process id), bounded by
    /// [`PROBE_TIMEOUT`].
    pub async fn run(&self, node: &str) -> Result<(), ProbeError> {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let key = probe_key(node, unix);
        let attempt = async {
            match self {
                StorageProbe::Operator(op) => probe_operator(op, &key).await,
                StorageProbe::Presign { settings, http } => {
                    probe_presign(http, settings, &key).await
                }
            }
        };
        tokio::time::timeout(PROBE_TIMEOUT, attempt)
            .await
            .unwrap_or(Err(ProbeError::Timeout(PROBE_TIMEOUT)))
    }
}

/// The probe object's key: `.recnode/probe-{node}-{unix}`, with `node` cut down to
/// letters, digits, `-` and `_` so it is always a valid key.
pub fn probe_key(node: &str, unix: u64) -> String {
    let node: String = node
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    format!("{PROBE_DIR}probe-{node}-{unix}")
}

async fn probe_operator(op: &Operator, key: &str) -> Result<(), ProbeError> {
    op.write(key, &b"recnode storage probe\n"[..])
        .await
        .map_err(|source| ProbeError::Write {
            key: key.to_string(),
            source,
        })?;
    op.delete(key).await.map_err(|source| ProbeError::Delete {
        key: key.to_string(),
        source,
    })?;
    if op.info().scheme() == "fs" {
        // A local root has real directories: leave no empty `.recnode/` among the
        // streams. Best effort; another node's probe may be using it right now.
        let _ = op.delete(PROBE_DIR).await;
    }
    Ok(())
}

async fn probe_presign(
    http: &reqwest::Client,
    settings: &PresignSettings,
    key: &str,
) -> Result<(), ProbeError> {
    let failed = |message: String| ProbeError::Presign {
        url: settings.url.clone(),
        message,
    };
    let body = PresignRequest {
        key: key.to_string(),
        method: "PUT".to_string(),
        ttl_seconds: 60,
    };
    let mut request = http.post(&settings.url).json(&body);
    if let Some(token) = &settings.token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        let text: String = text.chars().take(300).collect();
        return Err(failed(format!("HTTP {status}: {}", text.trim())));
    }
    response
        .json::<PresignedRequest>()
        .await
        .map(|_| ())
        .map_err(|e| failed(format!("unreadable answer: {e}")))
}

/// Probes storage once and records the outcome in `health` (a failure is logged as a
/// warning), then returns the background task that keeps probing (see [`reprobe`];
/// always `Some`; abort it at shutdown).
pub async fn probe_at_start(
    probe: StorageProbe,
    health: StorageHealth,
    node: String,
) -> Option<tokio::task::JoinHandle<()>> {
    let reachable = match probe.run(&node).await {
        Ok(()) => {
            health.report_ok();
            tracing::info!(%node, probe = probe.describe(), "storage is reachable");
            true
        }
        Err(error) => {
            tracing::warn!(
                %node,
                probe = probe.describe(),
                error = %error,
                retry_every = ?REPROBE_INTERVAL,
                "storage is not reachable; recording goes on into the spool and /readyz answers 503 until it is"
            );
            health.report_error(&error);
            false
        }
    };
    Some(tokio::spawn(reprobe(probe, health, node, reachable)))
}

/// Probes for as long as the node runs: every [`REPROBE_INTERVAL`] while storage is
/// unreachable, every [`HEALTHY_PROBE_INTERVAL`] while it works, so an idle node (no
/// uploads to fail) still notices an outage on `/readyz`. Logs each transition once.
async fn reprobe(probe: StorageProbe, health: StorageHealth, node: String, mut reachable: bool) {
    loop {
        let wait = if reachable {
            HEALTHY_PROBE_INTERVAL
        } else {
            REPROBE_INTERVAL
        };
        tokio::time::sleep(wait).await;
        match probe.run(&node).await {
            Ok(()) => {
                health.report_ok();
                if !reachable {
                    tracing::info!(%node, "storage is reachable again");
                }
                reachable = true;
            }
            Err(error) => {
                if reachable {
                    tracing::warn!(%node, error = %error, "storage probe failed; /readyz answers 503 until storage answers again");
                } else {
                    tracing::debug!(%node, error = %error, "storage still unreachable");
                }
                health.report_error(&error);
                reachable = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_keys_are_valid_object_keys_whatever_the_node_name() {
        assert_eq!(probe_key("edge-1", 17), ".recnode/probe-edge-1-17");
        assert_eq!(probe_key("a/../b c", 1), ".recnode/probe-a____b_c-1");
        for node in ["", "..", "/", "x/y", "\\"] {
            let key = probe_key(node, 5);
            recnode_actors::uploader::validate_key(&key).unwrap_or_else(|e| panic!("{key}: {e}"));
        }
    }

    #[actix_web::test]
    async fn a_probe_writes_and_removes_its_object() {
        let dir = tempfile::tempdir().expect("temp dir");
        let op = fs_operator(dir.path()).expect("fs operator");
        let probe = StorageProbe::Operator(op.clone());
        let health = StorageHealth::default();
        let task = probe_at_start(probe, health.clone(), "n1".into())
            .await
            .expect("the background probe runs while storage works too");
        assert!(health.status().reachable);
        task.abort();
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("read root").collect();
        assert!(left.is_empty(), "the probe leaves nothing behind: {left:?}");
    }

    #[actix_web::test]
    async fn an_unwritable_store_is_reported_and_probed_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let op = fs_operator(&dir.path().join("root")).expect("fs operator");
        // A file where the probe's directory must go: every write fails.
        std::fs::write(dir.path().join("root/.recnode"), b"x").expect("block the probe dir");
        let health = StorageHealth::default();
        let task = probe_at_start(StorageProbe::Operator(op), health.clone(), "n1".into())
            .await
            .expect("a failed probe starts the background re-probe");
        let status = health.status();
        assert!(!status.reachable);
        assert!(
            status
                .error
                .as_deref()
                .is_some_and(|e| e.contains(".recnode/probe-n1-")),
            "{status:?}"
        );
        // Unblock: the background probe finds the store.
        std::fs::remove_file(dir.path().join("root/.recnode")).expect("unblock");
        let deadline = tokio::time::Instant::now() + REPROBE_INTERVAL * 10;
        while !health.status().reachable {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the re-probe did not find the store again"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        // It keeps probing (slowly) while the node runs.
        assert!(!task.is_finished());
        task.abort();
    }
}
