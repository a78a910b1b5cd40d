//! [`StreamSupervisor`]: the registry of this node's live streams.
//!
//! It owns the map from stream name to [`StreamActor`] and supervises those actors (spawned
//! linked on `Publish`; the first publisher of a name keeps it). It forwards the recording
//! API to the stream's actor, which replies directly. It never restarts a stream actor: a
//! stream that ends (unpublish) or fails is dropped from the registry, and its publisher
//! must publish again. It overrides ractor's default `handle_supervisor_evt`, which would
//! stop the supervisor when any child exits. The node supervisor (the binary) starts it
//! with [`start_streams`].
//!
//! Mailbox: unbounded (ractor's mailboxes are); it gets one message per publish and per
//! API call, never media.

use super::stream_actor::{StreamActor, StreamActorArgs};
use super::{
    PublishRejected, RecordError, StreamInfo, StreamInternal, StreamMsg, StreamSupervisorMsg,
};
use crate::recorder::RecorderSettings;
use crate::uploader::UploaderMsg;
use ractor::concurrency::oneshot;
use ractor::{
    Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr, SupervisionEvent,
};
use std::collections::HashMap;
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
}

/// The registry of live streams.
pub struct StreamSupervisorState {
    settings: Arc<RecorderSettings>,
    uploader: ActorRef<UploaderMsg>,
    streams: HashMap<String, ActorRef<StreamMsg>>,
    by_id: HashMap<ActorId, String>,
    shutting_down: bool,
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
        _myself: ActorRef<Self::Msg>,
        args: StreamSupervisorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(StreamSupervisorState {
            settings: Arc::new(args.recorder),
            uploader: args.uploader,
            streams: HashMap::new(),
            by_id: HashMap::new(),
            shutting_down: false,
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
                let name = request.stream.clone();
                let args = StreamActorArgs {
                    request,
                    settings: state.settings.clone(),
                    uploader: state.uploader.clone(),
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
                    }
                }
            }
            StreamSupervisorMsg::StartRecording {
                stream,
                base_dir,
                reply,
            } => match state.streams.get(&stream) {
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
        if let Some(name) = state.by_id.remove(&cell.get_id()) {
            if state
                .streams
                .get(&name)
                .is_some_and(|a| a.get_id() == cell.get_id())
            {
                state.streams.remove(&name);
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
