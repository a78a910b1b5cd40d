//! The `NodeSupervisor`: the root of a node's actor tree.
//!
//! It owns the three top-level actors and starts them in dependency order: spool recovery
//! first (what a killed node left behind is finished and added to the durable upload
//! queue before anything uploads or records), then the [`Uploader`] (which loads that
//! queue, so recorders have somewhere to send files), the [`StreamSupervisor`], and the
//! [`RtmpListener`] (publishers last).
//! [`NodeSupervisorMsg::Shutdown`] stops them in the reverse order that keeps recordings
//! whole: no new publishers, every recording closed, uploads drained (bounded).
//!
//! Restart policy: these three restart their own children (recorders, connections, the
//! upload workers) and handle every expected error inside. One of them exiting is a bug,
//! and restarting it in place would leave the others holding dead references, so the
//! node supervisor escalates instead: it stops itself with the reason, the process exits
//! non-zero, the process manager starts it again, and spool recovery completes the
//! recordings that were open. Nothing restarts the node supervisor inside the process.

use std::net::SocketAddr;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use ractor_cluster_derive::RactorMessage;

use crate::disk_guard::DiskStatus;
use crate::hooks::{events, HookEmitter};
use crate::ingest::{RtmpIngestArgs, RtmpListener, RtmpListenerMsg, StreamKeyRule};
use crate::recovery::recover_spool;
use crate::stream::{
    RecorderSettings, StreamSupervisor, StreamSupervisorArgs, StreamSupervisorMsg,
};
use crate::uploader::{Uploader, UploaderArgs, UploaderMsg};

/// How long shutdown waits for recordings to close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for queued uploads; the rest stays in the spool for the next start.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The root actor of a node.
pub struct NodeSupervisor;

/// What the node's actors need to start.
pub struct NodeSupervisorArgs {
    /// The upload settings, the spool and the state store.
    pub uploader: UploaderArgs,
    /// How recordings are made.
    pub recorder: RecorderSettings,
    /// Where the RTMP listener binds.
    pub rtmp_listen: SocketAddr,
    /// RTMP applications accepted.
    pub rtmp_apps: Vec<String>,
    /// Publish keys.
    pub stream_keys: Vec<StreamKeyRule>,
    /// Where the node's actors emit hook events.
    pub hooks: HookEmitter,
    /// The auto-record rules made through the API, as persisted (see
    /// [`StreamSupervisorArgs::auto_record_rules`]).
    pub auto_record_rules: Vec<String>,
}

/// Messages to the node supervisor.
#[derive(RactorMessage)]
pub enum NodeSupervisorMsg {
    /// The stream supervisor (for the HTTP API) and the bound RTMP address.
    Handles(RpcReplyPort<NodeHandles>),
    /// Stop ingest, close every recording, drain uploads; replies when done.
    Shutdown(RpcReplyPort<()>),
}

/// References the binary's HTTP layer needs.
#[derive(Debug, Clone)]
pub struct NodeHandles {
    /// The registry of live streams, which answers the recording API.
    pub streams: ActorRef<StreamSupervisorMsg>,
    /// The address the RTMP listener bound.
    pub rtmp_addr: SocketAddr,
    /// The upload queue (its counters feed `/metrics`).
    pub uploader: ActorRef<UploaderMsg>,
    /// Free space under the spool, as the disk guard last measured it.
    pub disk: DiskStatus,
}

/// The node supervisor's children.
pub struct NodeSupervisorState {
    uploader: ActorRef<UploaderMsg>,
    disk: DiskStatus,
    streams: ActorRef<StreamSupervisorMsg>,
    rtmp: ActorRef<RtmpListenerMsg>,
    rtmp_addr: SocketAddr,
    shutting_down: bool,
}

impl Actor for NodeSupervisor {
    type Msg = NodeSupervisorMsg;
    type State = NodeSupervisorState;
    type Arguments = NodeSupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: NodeSupervisorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let spool = args.uploader.spool_dir.clone();
        // Before the uploader: recovery rewrites files the queue may name, and enqueues
        // into the store the uploader loads at start, so nothing is uploaded twice.
        match recover_spool(
            &spool,
            args.recorder.segment_seconds,
            &args.uploader.state_db,
        )
        .await
        {
            Ok(report) => {
                tracing::info!(?report, "spool recovery finished");
                emit_recovered(&args.hooks, &spool, &report.recovered).await;
            }
            // Best effort: what could not be finished stays in the spool for an operator
            // (and the next start); new streams are still recorded.
            Err(e) => tracing::error!("spool recovery failed: {e}"),
        }
        let (uploader, _) =
            Actor::spawn_linked(None, Uploader, args.uploader, myself.get_cell()).await?;

        let disk = DiskStatus::new(&args.recorder.disk);
        let streams_args = StreamSupervisorArgs {
            recorder: args.recorder,
            uploader: uploader.clone(),
            disk: disk.clone(),
            hooks: args.hooks.clone(),
            auto_record_rules: args.auto_record_rules,
        };
        let (streams, _) =
            Actor::spawn_linked(None, StreamSupervisor, streams_args, myself.get_cell()).await?;

        let rtmp_args = RtmpIngestArgs {
            listen: args.rtmp_listen,
            apps: args.rtmp_apps,
            stream_keys: args.stream_keys,
            streams: streams.clone(),
        };
        let (rtmp, _) =
            Actor::spawn_linked(None, RtmpListener, rtmp_args, myself.get_cell()).await?;
        let rtmp_addr = ractor::call_t!(rtmp, RtmpListenerMsg::LocalAddr, 5_000)?;

        Ok(NodeSupervisorState {
            uploader,
            disk,
            streams,
            rtmp,
            rtmp_addr,
            shutting_down: false,
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            NodeSupervisorMsg::Handles(reply) => {
                let _ = reply.send(NodeHandles {
                    streams: state.streams.clone(),
                    rtmp_addr: state.rtmp_addr,
                    uploader: state.uploader.clone(),
                    disk: state.disk.clone(),
                });
            }
            NodeSupervisorMsg::Shutdown(reply) => {
                state.shutting_down = true;
                state.rtmp.stop(Some("node shutting down".into()));
                match state
                    .streams
                    .call(StreamSupervisorMsg::Shutdown, Some(CLOSE_TIMEOUT))
                    .await
                {
                    Ok(CallResult::Success(())) => tracing::info!("all recordings closed"),
                    other => tracing::error!(?other, "recordings did not all close in time"),
                }
                match state
                    .uploader
                    .call(UploaderMsg::Drain, Some(DRAIN_TIMEOUT))
                    .await
                {
                    Ok(CallResult::Success(())) => tracing::info!("uploads drained"),
                    _ => tracing::warn!(
                        "uploads not finished in {DRAIN_TIMEOUT:?}; the rest stays in the spool \
                         for the next start"
                    ),
                }
                state.streams.stop(None);
                state.uploader.stop(None);
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (who, why) = match &event {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell.get_id(), reason.clone().unwrap_or_default())
            }
            SupervisionEvent::ActorFailed(cell, err) => (cell.get_id(), err.to_string()),
            _ => return Ok(()),
        };
        if state.shutting_down {
            return Ok(());
        }
        let name = if who == state.uploader.get_id() {
            "uploader"
        } else if who == state.streams.get_id() {
            "stream supervisor"
        } else if who == state.rtmp.get_id() {
            "RTMP listener"
        } else {
            return Ok(());
        };
        // See the module docs: a top-level actor exiting is a bug; escalate to the process.
        tracing::error!(actor = name, reason = %why, "top-level actor exited; stopping the node");
        myself.stop(Some(format!("{name} exited: {why}")));
        Ok(())
    }
}

/// Emits `record.stopped` (outcome `recovered`) for each record dir spool recovery
/// finished, described by the session.json recovery wrote (read before the uploader
/// starts, so the file is still in the spool).
async fn emit_recovered(hooks: &HookEmitter, spool: &std::path::Path, record_dirs: &[String]) {
    for dir in record_dirs {
        let path = spool.join(dir).join("session.json");
        let read = tokio::task::spawn_blocking(move || std::fs::read(path)).await;
        let session: serde_json::Value = match read {
            Ok(Ok(bytes)) => serde_json::from_slice(&bytes).unwrap_or_default(),
            _ => serde_json::Value::Null,
        };
        let text = |k: &str| session[k].as_str().unwrap_or_default().to_string();
        let record = events::RecordRef {
            stream: text("stream"),
            app: text("app"),
            record_id: text("record_id"),
            record_dir: dir.clone(),
            format: [("mpd_path", "dash"), ("flv_path", "flv")]
                .iter()
                .filter(|(k, _)| session[*k].is_string())
                .map(|(_, f)| *f)
                .collect::<Vec<_>>()
                .join(","),
        };
        let duration_ms = (session["duration_seconds"].as_f64().unwrap_or(0.0) * 1000.0) as u64;
        let segments = session["segments"]["video"]
            .as_u64()
            .or_else(|| session["segments"]["audio"].as_u64())
            .unwrap_or(0) as u32;
        hooks.emit_nowait(record.stopped(duration_ms, events::Outcome::Recovered, segments));
    }
}
