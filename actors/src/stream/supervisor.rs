//! [`StreamSupervisor`]: the registry of this node's live streams.
//!
//! It owns the map from stream name to [`StreamActor`] and supervises those actors (spawned
//! linked on `Publish`; the first publisher of a name keeps it). It forwards the recording
//! API to the stream's actor, which replies directly. It never restarts a stream actor: a
//! stream that ends (unpublish) or fails is dropped from the registry, and its publisher
//! must publish again. It overrides ractor's default `handle_supervisor_evt`, which would
//! stop the supervisor when any child exits. The node supervisor (the binary) starts it
//! with [`start_streams`]. Before a publish goes live it claims the name through its
//! [`super::StreamPlacement`] (nothing to claim on a single node; in a cluster a name live
//! on another node is refused as `AlreadyLive`) and releases it when the stream ends.
//!
//! It counts its live streams and those being recorded: each stream actor reports when
//! it starts or stops having a running recording, so [`StreamSupervisorMsg::Counts`]
//! answers from the registry alone, at a cost independent of the number of streams.
//!
//! Mailbox: unbounded (ractor's mailboxes are); it gets one message per publish, per
//! API call and per recording start or stop, never media.

use super::stream_actor::{StreamActor, StreamActorArgs};
use super::{
    PublishRejected, RecordError, StreamCounts, StreamInfo, StreamInternal, StreamMsg,
    StreamSupervisorMsg,
};
use crate::disk_guard::{DiskGuard, DiskGuardArgs, DiskLevel, DiskStatus};
use crate::recorder::RecorderSettings;
use crate::uploader::UploaderMsg;
use ractor::concurrency::oneshot;
use ractor::{
    Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr, SupervisionEvent,
};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// How long `ListStreams` waits for each stream.
const INFO_TIMEOUT: Duration = Duration::from_secs(2);
/// How long `Shutdown` waits for every stream to close its recordings.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// The stream supervisor actor (one per node).
pub struct StreamSupervisor;

/// What the stream supervisor starts from.
pub struct StreamSupervisorArgs {
    /// How recordings are made.
    pub recorder: RecorderSettings,
    /// Where recorders send finished files.
    pub uploader: ActorRef<UploaderMsg>,
    /// Free space under the spool, which this supervisor's disk guard measures.
    pub disk: DiskStatus,
    /// Where streams, recordings and the disk guard emit hook events.
    pub hooks: crate::hooks::HookEmitter,
    /// The auto-record rules made through the API, as persisted when the node starts
    /// (later changes come as [`StreamSupervisorMsg::SetAutoRecordRules`]).
    pub auto_record_rules: Vec<String>,
}

/// The registry of live streams.
pub struct StreamSupervisorState {
    /// How new streams are recorded; its `auto_streams` are the configured patterns
    /// followed by the API's rules.
    settings: Arc<RecorderSettings>,
    /// `[recorder] auto_streams` from the config, which the API's rules add to.
    config_auto_streams: Vec<String>,
    /// The same settings without `auto_streams`, for streams published while disk space is low.
    settings_no_auto: Arc<RecorderSettings>,
    /// Free space under the spool, measured by the disk guard child.
    disk: DiskStatus,
    /// The disk guard child.
    #[cfg_attr(not(any(test, feature = "fault-injection")), allow(dead_code))]
    disk_guard: ActorRef<crate::disk_guard::DiskGuardMsg>,
    uploader: ActorRef<UploaderMsg>,
    /// Stream and record events of the streams it starts go here.
    hooks: crate::hooks::HookEmitter,
    streams: HashMap<String, ActorRef<StreamMsg>>,
    by_id: HashMap<ActorId, String>,
    /// The stream actors that reported a running recording (each reports its changes).
    recording: HashSet<ActorId>,
    shutting_down: bool,
    /// Claims stream names across the cluster ([`super::LocalPlacement`] without one).
    placement: Arc<dyn super::StreamPlacement>,
}

/// Starts the stream supervisor (unlinked); the binary calls this once per node.
pub async fn start_streams(
    args: StreamSupervisorArgs,
) -> Result<ActorRef<StreamSupervisorMsg>, SpawnErr> {
    let (actor, _) = Actor::spawn(None, StreamSupervisor, args).await?;
    Ok(actor)
}

/// Sends `internal` to `actor`; if it is gone, answers through `on_gone` instead.
fn forward(actor: &ActorRef<StreamMsg>, internal: StreamInternal) -> Result<(), StreamInternal> {
    match actor.cast(StreamMsg::Internal(internal)) {
        Ok(()) => Ok(()),
        Err(ractor::MessagingErr::SendErr(StreamMsg::Internal(internal))) => Err(internal),
        // Any other error dropped the message (and its reply port): the caller sees a closed port.
        Err(_) => Ok(()),
    }
}

impl StreamSupervisorState {
    fn not_found(stream: &str) -> RecordError {
        RecordError::NotFound {
            stream: stream.to_string(),
        }
    }
}

impl Actor for StreamSupervisor {
    type Msg = StreamSupervisorMsg;
    type State = StreamSupervisorState;
    type Arguments = StreamSupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: StreamSupervisorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let disk = args.disk;
        let guard = DiskGuardArgs {
            settings: args.recorder.disk.clone(),
            status: disk.clone(),
            streams: myself.clone(),
            hooks: args.hooks.clone(),
        };
        let (disk_guard, _) =
            Actor::spawn_linked(None, DiskGuard, guard, myself.get_cell()).await?;
        let settings_no_auto = Arc::new(RecorderSettings {
            auto_streams: Vec::new(),
            ..args.recorder.clone()
        });
        let config_auto_streams = args.recorder.auto_streams.clone();
        let settings = RecorderSettings {
            auto_streams: effective_auto_streams(&config_auto_streams, &args.auto_record_rules),
            ..args.recorder
        };
        Ok(StreamSupervisorState {
            settings: Arc::new(settings),
            config_auto_streams,
            settings_no_auto,
            disk,
            disk_guard,
            uploader: args.uploader,
            hooks: args.hooks,
            streams: HashMap::new(),
            by_id: HashMap::new(),
            recording: HashSet::new(),
            shutting_down: false,
            placement: Arc::new(super::LocalPlacement),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        use super::stream_actor::Internal;
        match msg {
            StreamSupervisorMsg::Publish(request, reply) => {
                if state.shutting_down {
                    let _ = reply.send(Err(PublishRejected::ShuttingDown));
                    return Ok(());
                }
                if state.streams.contains_key(&request.stream) {
                    tracing::info!(stream = %request.stream, remote = %request.remote,
                        "publish refused: stream already live");
                    let _ = reply.send(Err(PublishRejected::AlreadyLive {
                        stream: request.stream,
                    }));
                    return Ok(());
                }
                if let Err(owner) = state.placement.claim(&request.stream) {
                    tracing::info!(stream = %request.stream, remote = %request.remote, %owner,
                        "publish refused: stream already live on another node");
                    let _ = reply.send(Err(PublishRejected::AlreadyLive {
                        stream: request.stream,
                    }));
                    return Ok(());
                }
                let name = request.stream.clone();
                let settings = if state.disk.level() >= DiskLevel::Low {
                    if glob_matches_any(&state.settings.auto_streams, &name) {
                        tracing::warn!(stream = %name, free_bytes = state.disk.free_bytes(),
                            min_free_bytes = state.disk.min_free_bytes(),
                            "auto-record skipped: disk space low");
                    }
                    state.settings_no_auto.clone()
                } else {
                    state.settings.clone()
                };
                let args = StreamActorArgs {
                    request,
                    supervisor: myself.clone(),
                    settings,
                    uploader: state.uploader.clone(),
                    hooks: state.hooks.clone(),
                };
                match Actor::spawn_linked(None, StreamActor, args, myself.get_cell()).await {
                    Ok((actor, _)) => {
                        state.by_id.insert(actor.get_id(), name.clone());
                        state.streams.insert(name, actor.clone());
                        let _ = reply.send(Ok(actor));
                    }
                    Err(e) => {
                        // Dropping the reply port tells ingest the publish failed.
                        tracing::error!(stream = %name, "stream actor did not start: {e}");
                        state.placement.release(&name);
                    }
                }
            }
            StreamSupervisorMsg::SetPlacement(placement) => {
                // Streams already live were never claimed: claim them now.
                for name in state.streams.keys() {
                    if let Err(owner) = placement.claim(name) {
                        tracing::warn!(stream = %name, %owner, "stream is live on two nodes");
                    }
                }
                state.placement = placement;
            }
            StreamSupervisorMsg::SetAutoRecordRules(rules) => {
                let auto_streams = effective_auto_streams(&state.config_auto_streams, &rules);
                if auto_streams != state.settings.auto_streams {
                    tracing::info!(rules = ?rules, ?auto_streams,
                        "auto-record rules changed; they apply to streams published from now on");
                    state.settings = Arc::new(RecorderSettings {
                        auto_streams,
                        ..(*state.settings).clone()
                    });
                }
            }
            StreamSupervisorMsg::StartRecording {
                stream,
                base_dir,
                reply,
            } => match state.streams.get(&stream) {
                Some(_) if state.disk.level() >= DiskLevel::Low => {
                    let error = RecordError::InsufficientStorage {
                        stream: stream.clone(),
                        free_bytes: state.disk.free_bytes(),
                        min_free_bytes: state.disk.min_free_bytes(),
                    };
                    tracing::warn!(%stream, "{error}");
                    let _ = reply.send(Err(error));
                }
                Some(actor) => {
                    if let Err(StreamInternal(Internal::Start { reply, .. })) =
                        forward(actor, StreamInternal(Internal::Start { base_dir, reply }))
                    {
                        let _ = reply.send(Err(StreamSupervisorState::not_found(&stream)));
                    }
                }
                None => {
                    let _ = reply.send(Err(StreamSupervisorState::not_found(&stream)));
                }
            },
            StreamSupervisorMsg::StopRecording { stream, reply } => {
                match state.streams.get(&stream) {
                    Some(actor) => {
                        if let Err(StreamInternal(Internal::Stop(reply))) =
                            forward(actor, StreamInternal(Internal::Stop(reply)))
                        {
                            let _ = reply.send(Err(StreamSupervisorState::not_found(&stream)));
                        }
                    }
                    None => {
                        let _ = reply.send(Err(StreamSupervisorState::not_found(&stream)));
                    }
                }
            }
            StreamSupervisorMsg::RecordingStatus { stream, reply } => {
                match state.streams.get(&stream).cloned() {
                    Some(actor) => {
                        // Ask from a task so a slow stream never holds up the registry.
                        tokio::spawn(async move {
                            let result = actor
                                .call(
                                    |r| StreamMsg::Internal(StreamInternal(Internal::Status(r))),
                                    Some(INFO_TIMEOUT),
                                )
                                .await;
                            let answer = match result {
                                Ok(ractor::rpc::CallResult::Success(status)) => Ok(status),
                                _ => Err(StreamSupervisorState::not_found(&stream)),
                            };
                            let _ = reply.send(answer);
                        });
                    }
                    None => {
                        let _ = reply.send(Err(StreamSupervisorState::not_found(&stream)));
                    }
                }
            }
            StreamSupervisorMsg::ListStreams(reply) => {
                let actors: Vec<ActorRef<StreamMsg>> = state.streams.values().cloned().collect();
                tokio::spawn(list_streams(actors, reply));
            }
            StreamSupervisorMsg::Counts(reply) => {
                let _ = reply.send(StreamCounts {
                    live_streams: state.streams.len(),
                    recordings: state.recording.len(),
                });
            }
            StreamSupervisorMsg::RecordingChanged(change) => {
                // A change can arrive after the stream's exit (supervision events
                // overtake messages): only registered streams count.
                if change.recording && state.by_id.contains_key(&change.actor) {
                    state.recording.insert(change.actor);
                } else {
                    state.recording.remove(&change.actor);
                }
            }
            StreamSupervisorMsg::Shutdown(reply) => {
                state.shutting_down = true;
                tracing::info!(
                    streams = state.streams.len(),
                    "shutting down: closing every stream"
                );
                let mut waits = Vec::new();
                for actor in state.streams.values() {
                    let (tx, rx) = oneshot();
                    let port: RpcReplyPort<()> = tx.into();
                    if forward(actor, StreamInternal(Internal::Close(Some(port)))).is_ok() {
                        waits.push(rx);
                    }
                }
                tokio::spawn(async move {
                    let all = async {
                        for rx in waits {
                            // A stream that stops without answering has closed too.
                            let _ = rx.await;
                        }
                    };
                    if tokio::time::timeout(SHUTDOWN_TIMEOUT, all).await.is_err() {
                        tracing::error!("shutdown: some streams did not close in time");
                    }
                    let _ = reply.send(());
                });
            }
            StreamSupervisorMsg::DiskCritical => {
                for (name, actor) in &state.streams {
                    let (tx, rx) = oneshot();
                    if forward(actor, StreamInternal(Internal::Stop(tx.into()))).is_ok() {
                        let name = name.clone();
                        tokio::spawn(async move {
                            if let Ok(Ok(info)) = rx.await {
                                tracing::warn!(stream = %name, record_dir = %info.record_dir,
                                    "recording closed: disk space critical");
                            }
                        });
                    }
                }
            }
            #[cfg(any(test, feature = "fault-injection"))]
            StreamSupervisorMsg::OverrideDiskFree(free, reply) => {
                // The guard replies once the new level is in effect.
                let _ = state
                    .disk_guard
                    .cast(crate::disk_guard::DiskGuardMsg::OverrideFree(free, reply));
            }
            #[cfg(any(test, feature = "fault-injection"))]
            StreamSupervisorMsg::InjectFault {
                stream,
                fault,
                reply,
            } => {
                let result = match state.streams.get(&stream) {
                    Some(actor) => actor
                        .cast(StreamMsg::InjectFault(fault))
                        .map_err(|_| StreamSupervisorState::not_found(&stream)),
                    None => Err(StreamSupervisorState::not_found(&stream)),
                };
                let _ = reply.send(result);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, failure) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, Some(err)),
            SupervisionEvent::ActorTerminated(cell, _, _) => (cell, None),
            _ => return Ok(()),
        };
        if !state.by_id.contains_key(&cell.get_id()) {
            // Not a stream: the disk guard. Without it no new recording could be refused
            // safely, so this is a bug worth escalating.
            if let Some(err) = failure {
                return Err(format!("disk guard failed: {err}").into());
            }
            return Ok(());
        }
        state.recording.remove(&cell.get_id());
        if let Some(name) = state.by_id.remove(&cell.get_id()) {
            if state
                .streams
                .get(&name)
                .is_some_and(|a| a.get_id() == cell.get_id())
            {
                state.streams.remove(&name);
                state.placement.release(&name);
            }
            match failure {
                Some(err) => tracing::error!(stream = %name, "stream actor failed: {err}"),
                None => tracing::info!(stream = %name, "stream ended"),
            }
        }
        Ok(())
    }
}

/// Collects every stream's [`StreamInfo`], sorted by name; a stream that does not answer is left out.
async fn list_streams(actors: Vec<ActorRef<StreamMsg>>, reply: RpcReplyPort<Vec<StreamInfo>>) {
    use super::stream_actor::Internal;
    let mut infos = Vec::with_capacity(actors.len());
    for actor in actors {
        let result = actor
            .call(
                |r| StreamMsg::Internal(StreamInternal(Internal::Info(r))),
                Some(INFO_TIMEOUT),
            )
            .await;
        if let Ok(ractor::rpc::CallResult::Success(info)) = result {
            infos.push(info);
        }
    }
    infos.sort_by(|a, b| a.stream.cmp(&b.stream));
    let _ = reply.send(infos);
}

/// The patterns new streams are auto-recorded by: the configured ones, then the API's
/// rules that add something (in order, without repeats).
fn effective_auto_streams(config: &[String], rules: &[String]) -> Vec<String> {
    let mut all: Vec<String> = Vec::with_capacity(config.len() + rules.len());
    for pattern in config.iter().chain(rules) {
        if !all.contains(pattern) {
            all.push(pattern.clone());
        }
    }
    all
}

/// Whether `name` matches any of the `auto_streams` patterns.
fn glob_matches_any(patterns: &[String], name: &str) -> bool {
    patterns
        .iter()
        .any(|p| super::stream_actor::glob_matches(p, name))
}
