//! Starting and stopping a node from a loaded [`Config`].
//!
//! Start order: local directories → storage operator → uploader → spool recovery (what a
//! killed node left behind is finished and re-queued before anything new is recorded) →
//! stream supervisor → RTMP listener → HTTP. Stop order on SIGTERM/SIGINT is the reverse
//! where it matters: stop taking publishers, close every recording cleanly, drain the
//! uploads (bounded; what is left stays in the spool for the next start), stop HTTP.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ractor::rpc::CallResult;
use recnode_actors::ingest::{start_rtmp, IngestError, RtmpIngestArgs, StreamKeyRule};
use recnode_actors::recovery::recover_spool;
use recnode_actors::stream::{
    start_streams, RecordFormats, RecorderSettings, RestartPolicy, StreamSupervisorArgs,
    StreamSupervisorMsg,
};
use recnode_actors::uploader::{
    fs_operator, start_uploader, UploadError, UploaderArgs, UploaderMsg,
};

use crate::config::{Config, RecordFormat, StorageConfig};
use crate::http::ApiState;

/// How long a clean shutdown waits for recordings to close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a clean shutdown waits for queued uploads; the rest stays in the spool.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A local directory could not be created.
    #[error("cannot create directory {} (key `{key}`)", path.display())]
    CreateDir {
        /// The config key that names the directory.
        key: &'static str,
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The storage type is valid config but this build cannot write to it yet.
    #[error(
        "storage type `{kind}` (key `recorder.storage.type`) is not available in this build; \
         use `fs`"
    )]
    UnsupportedStorage {
        /// The configured type.
        kind: &'static str,
    },
    /// The storage operator or the uploader could not start.
    #[error("storage")]
    Storage(#[source] UploadError),
    /// An actor could not be spawned.
    #[error("cannot start the {what} actor: {message}")]
    Spawn {
        /// Which actor.
        what: &'static str,
        /// ractor's error.
        message: String,
    },
    /// The RTMP listener could not start (for example, its port is taken).
    #[error("RTMP ingest (key `rtmp.listen`)")]
    Rtmp(#[source] IngestError),
    /// The HTTP server could not bind its address.
    #[error("cannot listen for HTTP on {addr} (key `http.listen`)")]
    HttpBind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed while running.
    #[error("HTTP server failed")]
    HttpServe(#[source] std::io::Error),
    /// Waiting for SIGTERM/SIGINT failed.
    #[error("cannot install signal handlers")]
    Signals(#[source] std::io::Error),
}

/// The local spool under the data dir: `{data.dir}/spool/{object key}`.
pub fn spool_dir(config: &Config) -> PathBuf {
    config.data.dir.join("spool")
}

/// Creates the local directories the config names: the data dir and its spool and, for
/// `fs` storage, the storage root.
pub fn prepare_dirs(config: &Config) -> Result<(), NodeError> {
    create_dir(&config.data.dir, "data.dir")?;
    create_dir(&spool_dir(config), "data.dir")?;
    if let StorageConfig::Fs(fs) = &config.recorder.storage {
        create_dir(&fs.root, "recorder.storage.root")?;
    }
    Ok(())
}

fn create_dir(path: &Path, key: &'static str) -> Result<(), NodeError> {
    std::fs::create_dir_all(path).map_err(|source| NodeError::CreateDir {
        key,
        path: path.to_path_buf(),
        source,
    })
}

/// How recordings are made, from `[recorder]`.
fn recorder_settings(config: &Config) -> RecorderSettings {
    let r = &config.recorder;
    RecorderSettings {
        spool_dir: spool_dir(config),
        auto_streams: r.auto_streams.clone(),
        formats: RecordFormats {
            dash: r.formats.contains(&RecordFormat::Dash),
            flv: r.formats.contains(&RecordFormat::Flv),
        },
        segment_seconds: r.segment_seconds,
        max_recording_seconds: r.max_recording_seconds,
        node_alias: r.node_alias.clone(),
        restart: RestartPolicy::default(),
    }
}

/// Publish keys from `[auth.stream_keys]`: exact names first, then patterns.
fn stream_key_rules(config: &Config) -> Vec<StreamKeyRule> {
    let mut rules: Vec<StreamKeyRule> = config
        .auth
        .stream_keys
        .iter()
        .map(|(pattern, key)| StreamKeyRule {
            pattern: pattern.clone(),
            key: key.clone(),
        })
        .collect();
    rules.sort_by_key(|r| r.pattern.contains('*'));
    rules
}

/// Runs a node until SIGINT/SIGTERM, then closes every recording before exiting.
pub async fn run(config: Config) -> Result<(), NodeError> {
    prepare_dirs(&config)?;
    let spool = spool_dir(&config);
    let operator = match &config.recorder.storage {
        StorageConfig::Fs(fs) => fs_operator(&fs.root).map_err(NodeError::Storage)?,
        other => {
            return Err(NodeError::UnsupportedStorage { kind: other.kind() });
        }
    };
    let uploader = start_uploader(UploaderArgs {
        operator,
        spool_dir: spool.clone(),
    })
    .await
    .map_err(NodeError::Storage)?;

    match recover_spool(&spool, config.recorder.segment_seconds, &uploader).await {
        Ok(report) => tracing::info!(?report, "spool recovery finished"),
        // Recovery is best effort: what it could not finish stays in the spool, and the
        // node still records new streams.
        Err(e) => tracing::error!("spool recovery failed: {e}"),
    }

    let streams = start_streams(StreamSupervisorArgs {
        recorder: recorder_settings(&config),
        uploader: uploader.clone(),
    })
    .await
    .map_err(|e| NodeError::Spawn {
        what: "stream supervisor",
        message: e.to_string(),
    })?;

    let (rtmp, rtmp_addr) = start_rtmp(RtmpIngestArgs {
        listen: config.rtmp.listen,
        apps: config.rtmp.apps.clone(),
        stream_keys: stream_key_rules(&config),
        streams: streams.clone(),
    })
    .await
    .map_err(NodeError::Rtmp)?;

    let addr = config.http.listen;
    let state = ApiState {
        streams: streams.clone(),
        admin_token: config.auth.admin_token.clone(),
    };
    let server =
        crate::http::server(addr, state).map_err(|source| NodeError::HttpBind { addr, source })?;
    let http = server.handle();
    let mut serving = actix_web::rt::spawn(server);
    tracing::info!(
        http = %addr,
        rtmp = %rtmp_addr,
        storage = config.recorder.storage.kind(),
        data_dir = %config.data.dir.display(),
        "recnode started"
    );

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(NodeError::Signals)?;
    let served = tokio::select! {
        _ = terminate.recv() => { tracing::info!("SIGTERM received; closing recordings"); None }
        _ = tokio::signal::ctrl_c() => { tracing::info!("SIGINT received; closing recordings"); None }
        result = &mut serving => Some(result),
    };

    // No new publishers, then close what is recording, then hand the files to storage.
    rtmp.stop(Some("node shutting down".into()));
    match streams
        .call(StreamSupervisorMsg::Shutdown, Some(CLOSE_TIMEOUT))
        .await
    {
        Ok(CallResult::Success(())) => tracing::info!("all recordings closed"),
        other => tracing::error!(?other, "recordings did not all close in time"),
    }
    match uploader.call(UploaderMsg::Drain, Some(DRAIN_TIMEOUT)).await {
        Ok(CallResult::Success(())) => tracing::info!("uploads drained"),
        _ => tracing::warn!(
            "uploads not finished in {DRAIN_TIMEOUT:?}; the rest stays in the spool for the next start"
        ),
    }
    streams.stop(None);
    uploader.stop(None);
    http.stop(true).await;
    if let Some(result) = served {
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(NodeError::HttpServe(e)),
            Err(e) => return Err(NodeError::HttpServe(std::io::Error::other(e))),
        }
    }
    tracing::info!("recnode stopped");
    Ok(())
}
