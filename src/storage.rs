//! Building the storage operator from `[recorder.storage]`.
//!
//! Each backend is an opendal service configured with live777's key names. Keys left out
//! fall back to the backend's standard environment variables (`AWS_*` for s3 unless
//! `disable_config_load`, `AZURE_STORAGE_*` for azblob, `GOOGLE_APPLICATION_CREDENTIALS`
//! for gcs, `ALIBABA_CLOUD_*` for oss), which opendal's signers read.

use std::time::Duration;

use opendal::layers::TimeoutLayer;
use opendal::Operator;
use recnode_actors::uploader::{fs_operator, init_http_transport, UploadError};

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
