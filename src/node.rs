//! Starting and stopping a node from a loaded [`Config`].
//!
//! Start order: local directories → storage operator → hooks → the settings store
//! (auto-record rules, hook endpoints of the cluster) → the actor tree under
//! `NodeSupervisor` (uploader, spool recovery, streams, RTMP) → storage probe → WHIP →
//! cluster → HTTP.
//! The probe ([`crate::storage::probe_at_start`]) never stops start-up: an unreachable
//! store makes `/readyz` answer 503 and is probed again in the background, while
//! recordings collect in the spool. On SIGTERM/SIGINT
//! the node supervisor stops taking publishers, closes every recording cleanly and drains
//! the uploads (bounded; what is left stays in the spool for the next start); then HTTP
//! stops. If the actor tree stops on its own, the process exits non-zero.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use opendal::Operator;
use ractor::rpc::CallResult;
use ractor::Actor;
use recnode_actors::ingest::whip::{WhipIngestArgs, WhipIngestMsg, WhipSettings, WhipUdp};
use recnode_actors::ingest::StreamKeyRule;
use recnode_actors::node_supervisor::{NodeSupervisor, NodeSupervisorArgs, NodeSupervisorMsg};
use recnode_actors::stream::{RecordFormats, RecorderSettings, RestartPolicy};
use recnode_actors::uploader::{
    PresignSettings, StorageHealth, UploadSettings, UploadTarget, UploaderArgs,
};
use recnode_cluster::settings::SettingsMsg;

use crate::config::{Config, RecordFormat, StorageConfig};
use crate::http::ApiState;
use crate::storage::StorageProbe;

/// How long a clean shutdown may take: closing recordings, then draining uploads.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(75);

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
    /// The storage configuration cannot be used.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// The storage probe could not be set up (not: storage is unreachable, which only
    /// makes the node unready).
    #[error("cannot set up the storage probe")]
    Probe(#[from] crate::storage::ProbeError),
    /// An actor could not be spawned.
    #[error("cannot start the {what} actor: {message}")]
    Spawn {
        /// Which actor.
        what: &'static str,
        /// ractor's error.
        message: String,
    },
    /// The node's actors stopped on their own (a top-level actor failed; see the log).
    #[error("the node's actors stopped unexpectedly")]
    ActorsStopped,
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
    /// `[cluster.tls]` names a file that is missing or unusable.
    #[error(transparent)]
    ClusterTls(#[from] recnode_cluster::tls::TlsError),
}

/// The local spool under the data dir: `{data.dir}/spool/{object key}`.
pub fn spool_dir(config: &Config) -> PathBuf {
    config.data.dir.join("spool")
}

/// The node's state store (durable upload queue): `{data.dir}/state.sqlite3`.
pub fn state_db(config: &Config) -> PathBuf {
    config.data.dir.join("state.sqlite3")
}

/// How uploads reach storage, from `[recorder.upload]`: through a presign service when
/// `enabled`, else through the `[recorder.storage]` operator.
pub fn upload_settings(config: &Config, operator: &Operator) -> UploadSettings {
    let upload = &config.recorder.upload;
    let target = match (upload.enabled, &upload.presign_url) {
        (true, Some(url)) => UploadTarget::Presigned(PresignSettings {
            url: url.clone(),
            token: upload.token.clone(),
            ttl: Duration::from_secs(upload.presign_ttl_seconds),
        }),
        // `validate` refuses `enabled` without a URL.
        _ => UploadTarget::Operator(operator.clone()),
    };
    UploadSettings {
        concurrency: upload.concurrency,
        // `validate` checked that the value converts; the default is the fallback.
        max_backoff: Duration::try_from_secs_f64(upload.max_backoff_seconds)
            .unwrap_or(Duration::from_secs(30)),
        target,
    }
}

/// The name in this node's probe object keys: its alias, else its process id.
fn probe_name(config: &Config) -> String {
    match config.recorder.node_alias.as_str() {
        "" => format!("pid{}", std::process::id()),
        alias => alias.to_string(),
    }
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
        disk: recnode_actors::disk_guard::DiskGuardSettings {
            path: spool_dir(config),
            min_free_bytes: config.data.min_free_bytes,
            hard_min_free_bytes: config
                .data
                .hard_min_free_bytes
                .unwrap_or(config.data.min_free_bytes / 4),
            interval: std::time::Duration::from_secs(1),
        },
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

/// Starts the hook connector (`[hooks]`) on the node's state store.
async fn start_hooks(config: &Config) -> Result<recnode_actors::hooks::Hooks, NodeError> {
    let alias = &config.recorder.node_alias;
    let spawn_err = |message: String| NodeError::Spawn {
        what: "hook connector",
        message,
    };
    let node_id = recnode_actors::hooks::node_id_from_alias(alias);
    let settings = config
        .hooks
        .settings(node_id, alias)
        .map_err(|e| spawn_err(e.to_string()))?;
    let hooks = recnode_actors::hooks::start_hooks(settings, &state_db(config))
        .await
        .map_err(|e| spawn_err(e.to_string()))?;
    if let Err(e) = hooks
        .emitter
        .emit(recnode_actors::hooks::events::node_joined(node_id, alias))
        .await
    {
        tracing::error!("cannot emit node.joined: {e}");
    }
    Ok(hooks)
}

/// On a clean stop, emits `node.left` and gives the endpoints a moment to take what is
/// pending (the rest is delivered after the next start); then stops the connector.
async fn stop_hooks(hooks: &recnode_actors::hooks::Hooks, clean: bool) {
    if clean {
        let left = recnode_actors::hooks::events::node_left(
            hooks.emitter.node(),
            hooks.emitter.node_alias(),
            "shutdown",
        );
        if let Err(e) = hooks.emitter.emit(left).await {
            tracing::error!("cannot emit node.left: {e}");
        }
        if !hooks.wait_delivered(Duration::from_secs(2)).await {
            tracing::info!("hook events still pending; they are delivered after the next start");
        }
    }
    hooks.stop().await;
}

/// Starts the WHIP ingest from `[whip]` (unless disabled); returns it with its UDP address.
async fn start_whip(
    config: &Config,
    streams: &ractor::ActorRef<recnode_actors::stream::StreamSupervisorMsg>,
) -> Result<(Option<ractor::ActorRef<WhipIngestMsg>>, Option<SocketAddr>), NodeError> {
    use crate::config::{WhipAudioCodec, WhipVideoCodec};
    use recnode_actors::media::Codec;
    let w = &config.whip;
    if !w.enabled {
        return Ok((None, None));
    }
    let settings = WhipSettings {
        udp: match w.udp_port_range {
            Some([min, max]) => WhipUdp::PortRange { min, max },
            None => WhipUdp::Mux(w.udp_listen),
        },
        public_ips: w.public_ips.clone(),
        video_codecs: (w.video_codecs.iter())
            .map(|c| match c {
                WhipVideoCodec::H264 => Codec::H264,
                WhipVideoCodec::Vp8 => Codec::Vp8,
                WhipVideoCodec::Vp9 => Codec::Vp9,
                WhipVideoCodec::Av1 => Codec::Av1,
            })
            .collect(),
        audio_codecs: (w.audio_codecs.iter())
            .map(|c| match c {
                WhipAudioCodec::Opus => Codec::Opus,
            })
            .collect(),
        session_timeout: Duration::from_secs(w.session_timeout_seconds),
    };
    let args = WhipIngestArgs {
        settings,
        stream_keys: stream_key_rules(config),
        streams: streams.clone(),
    };
    let (whip, udp) = recnode_actors::ingest::whip::start_whip(args)
        .await
        .map_err(|e| NodeError::Spawn {
            what: "WHIP ingest",
            message: e.to_string(),
        })?;
    Ok((Some(whip), udp))
}

/// Joins the cluster from `[cluster]` (unless disabled): starts the node server, the
/// node's agent and membership, and makes the stream supervisor claim stream names
/// cluster-wide. Publishers that arrive before this are claimed when it is set.
async fn start_cluster(
    config: &Config,
    streams: &ractor::ActorRef<recnode_actors::stream::StreamSupervisorMsg>,
    hooks: &recnode_actors::hooks::Hooks,
    store: &ractor::ActorRef<SettingsMsg>,
    tls: Option<recnode_cluster::tls::ClusterTls>,
) -> Result<Option<recnode_cluster::Cluster>, NodeError> {
    let c = &config.cluster;
    if !c.enabled {
        return Ok(None);
    }
    let settings = recnode_cluster::ClusterSettings {
        node_name: config.cluster_node_name().to_string(),
        node_alias: config.recorder.node_alias.clone(),
        listen: c.listen,
        cookie: c.cookie.clone(),
        seeds: c.seeds.clone(),
        peer_timeout: Duration::from_millis(c.peer_timeout_ms),
        tls,
    };
    let api = crate::http::cluster::NodeApi::new(
        streams.clone(),
        settings.node_alias.clone(),
        Some(hooks.clone()),
    );
    let cluster = recnode_cluster::start(settings, api, hooks.emitter.clone(), store.clone())
        .await
        .map_err(|e| NodeError::Spawn {
            what: "cluster",
            message: e.to_string(),
        })?;
    streams
        .cast(recnode_actors::stream::StreamSupervisorMsg::SetPlacement(
            cluster.placement(),
        ))
        .map_err(|e| NodeError::Spawn {
            what: "cluster placement",
            message: e.to_string(),
        })?;
    Ok(Some(cluster))
}

/// Where the cluster-wide settings (hook endpoints, auto-record rules) are persisted.
pub fn settings_file(config: &Config) -> PathBuf {
    config.data.dir.join("cluster_settings.json")
}

/// Starts the settings store (on every node, clustered or not) and reads the persisted
/// auto-record rules' patterns.
async fn start_settings(
    config: &Config,
) -> Result<(ractor::ActorRef<SettingsMsg>, Vec<String>), NodeError> {
    let spawn_err = |message: String| NodeError::Spawn {
        what: "settings store",
        message,
    };
    let store = recnode_cluster::settings::start_store(settings_file(config))
        .await
        .map_err(|e| spawn_err(e.to_string()))?;
    let rules =
        ractor::call_t!(store, SettingsMsg::Rules, 5_000).map_err(|e| spawn_err(e.to_string()))?;
    if !rules.is_empty() {
        tracing::info!(rules = rules.len(), "auto-record rules loaded");
    }
    Ok((store, rules.into_iter().map(|r| r.pattern).collect()))
}

/// Runs a node until SIGINT/SIGTERM, then closes every recording before exiting.
pub async fn run(config: Config) -> Result<(), NodeError> {
    // `[cluster.tls]` first: a missing or bad file stops start-up before anything else.
    let cluster_tls = (config.cluster_tls_files())
        .map(|files| recnode_cluster::tls::load(&files, config.cluster_node_name()))
        .transpose()?;
    prepare_dirs(&config)?;
    let operator = crate::storage::build_operator(&config.recorder.storage)?;
    let health = StorageHealth::default();
    let settings = upload_settings(&config, &operator);
    let probe = match &settings.target {
        UploadTarget::Operator(op) => StorageProbe::Operator(op.clone()),
        UploadTarget::Presigned(presign) => StorageProbe::presign(presign.clone())?,
    };
    // Hooks first, so everything after can emit: the outbox in the state store, the
    // connector and the `[[hooks.endpoints]]`.
    let hooks = start_hooks(&config).await?;
    // The settings store before the streams: they start with the persisted auto-record
    // rules, so a publisher that reconnects at once is recorded by them.
    let (store, rules) = start_settings(&config).await?;
    let args = NodeSupervisorArgs {
        uploader: UploaderArgs {
            settings,
            spool_dir: spool_dir(&config),
            state_db: state_db(&config),
            health: health.clone(),
            hooks: hooks.emitter.clone(),
        },
        recorder: recorder_settings(&config),
        rtmp_listen: config.rtmp.listen,
        rtmp_apps: config.rtmp.apps.clone(),
        stream_keys: stream_key_rules(&config),
        hooks: hooks.emitter.clone(),
        auto_record_rules: rules,
    };
    let (node, node_done) = Actor::spawn(None, NodeSupervisor, args)
        .await
        .map_err(|e| NodeError::Spawn {
            what: "node supervisor",
            message: e.to_string(),
        })?;
    let handles =
        ractor::call_t!(node, NodeSupervisorMsg::Handles, 5_000).map_err(|e| NodeError::Spawn {
            what: "node supervisor",
            message: e.to_string(),
        })?;

    // Not reachable: warn, answer 503 on /readyz and keep probing; recording goes on.
    let reprobe = crate::storage::probe_at_start(probe, health.clone(), probe_name(&config)).await;

    let (whip, whip_udp) = start_whip(&config, &handles.streams).await?;
    // From now on the store tells the streams every rule change (also one made meanwhile).
    store
        .cast(SettingsMsg::WatchRules(handles.streams.clone()))
        .map_err(|e| NodeError::Spawn {
            what: "settings store",
            message: e.to_string(),
        })?;
    let cluster = start_cluster(&config, &handles.streams, &hooks, &store, cluster_tls).await?;
    let addr = config.http.listen;
    let state = ApiState {
        streams: handles.streams.clone(),
        admin_token: config.auth.admin_token.clone(),
        storage: health,
        operator,
        uploader: Some(handles.uploader.clone()),
        disk: Some(handles.disk.clone()),
        hooks: Some(hooks.clone()),
        whip: whip.clone(),
        cluster: cluster.clone(),
        rules: Some(crate::http::rules::RulesApi {
            store: store.clone(),
            writer: config.cluster_node_name().to_string(),
            config_auto_streams: config.recorder.auto_streams.clone(),
        }),
    };
    let server =
        crate::http::server(addr, state).map_err(|source| NodeError::HttpBind { addr, source })?;
    let http = server.handle();
    let mut serving = actix_web::rt::spawn(server);
    tracing::info!(
        http = %addr,
        rtmp = %handles.rtmp_addr,
        whip_udp = ?whip_udp,
        storage = config.recorder.storage.kind(),
        upload = if config.recorder.upload.enabled { "presigned" } else { "operator" },
        data_dir = %config.data.dir.display(),
        "recnode started"
    );

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(NodeError::Signals)?;
    let mut node_done = std::pin::pin!(node_done);
    let outcome = tokio::select! {
        _ = terminate.recv() => { tracing::info!("SIGTERM received; closing recordings"); Ok(()) }
        _ = tokio::signal::ctrl_c() => { tracing::info!("SIGINT received; closing recordings"); Ok(()) }
        result = &mut serving => match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(NodeError::HttpServe(e)),
            Err(e) => Err(NodeError::HttpServe(std::io::Error::other(e))),
        },
        _ = &mut node_done => Err(NodeError::ActorsStopped),
    };

    // No new publishers, every recording closed, uploads drained; then HTTP.
    if let Some(whip) = &whip {
        // WHIP sessions first: each unpublishes its stream before the streams close.
        let _ = whip
            .call(WhipIngestMsg::Shutdown, Some(Duration::from_secs(15)))
            .await;
        whip.stop(None);
    }
    if outcome.is_ok() {
        match node
            .call(NodeSupervisorMsg::Shutdown, Some(SHUTDOWN_TIMEOUT))
            .await
        {
            Ok(CallResult::Success(())) => {}
            other => tracing::error!(?other, "shutdown did not finish in time"),
        }
    }
    if let Some(task) = reprobe {
        task.abort();
    }
    if let Some(cluster) = &cluster {
        cluster.stop();
    }
    store.stop(None);
    node.stop(None);
    stop_hooks(&hooks, outcome.is_ok()).await;
    http.stop(true).await;
    outcome?;
    tracing::info!("recnode stopped");
    Ok(())
}
