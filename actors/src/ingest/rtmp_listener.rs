//! [`RtmpListener`] owns the bound RTMP TCP listener and the task that accepts sockets on
//! it. It supervises one connection actor per accepted socket (spawned with `spawn_linked`);
//! a connection that stops or fails is logged and never restarted, because the publisher
//! reconnects on its own. A child's exit never stops the listener. The listener itself is
//! started by [`start_rtmp`](super::start_rtmp) and restarted, if at all, by its own
//! supervisor (the node's ingest supervisor), which re-binds by spawning it again with the
//! same [`RtmpIngestArgs`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use ractor_cluster_derive::RactorMessage;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::rtmp_connection::{RtmpConnection, RtmpConnectionArgs};
use super::{IngestError, IngestPolicy, RtmpIngestArgs};

/// How long the accept task waits after an accept error (for example too many open files)
/// before it tries again, so a persistent error does not spin a core.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// The RTMP listener actor: accepts sockets and spawns a connection actor for each.
pub struct RtmpListener;

/// Messages to the [`RtmpListener`].
#[derive(RactorMessage)]
pub enum RtmpListenerMsg {
    /// A socket accepted by the listener's own accept task (not for other senders).
    Accepted(TcpStream, SocketAddr),
    /// Replies with the address the listener is bound to.
    LocalAddr(RpcReplyPort<SocketAddr>),
}

/// The listener's state: the bound address, the shared policy and the accept task.
pub struct RtmpListenerState {
    local_addr: SocketAddr,
    policy: Arc<IngestPolicy>,
    accept_task: JoinHandle<()>,
    accepted: u64,
}

impl Actor for RtmpListener {
    type Msg = RtmpListenerMsg;
    type State = RtmpListenerState;
    type Arguments = RtmpIngestArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: RtmpIngestArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let listener =
            TcpListener::bind(args.listen)
                .await
                .map_err(|source| IngestError::Bind {
                    listen: args.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| IngestError::Bind {
            listen: args.listen,
            source,
        })?;
        info!(listen = %local_addr, apps = ?args.apps, "RTMP listener bound");
        let accept_task = tokio::spawn(accept_loop(listener, myself));
        Ok(RtmpListenerState {
            local_addr,
            policy: Arc::new(IngestPolicy {
                apps: args.apps,
                stream_keys: args.stream_keys,
                streams: args.streams,
            }),
            accept_task,
            accepted: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            RtmpListenerMsg::Accepted(socket, remote) => {
                state.accepted += 1;
                debug!(%remote, accepted = state.accepted, "RTMP socket accepted");
                let args = RtmpConnectionArgs {
                    socket,
                    remote,
                    policy: state.policy.clone(),
                };
                if let Err(err) =
                    Actor::spawn_linked(None, RtmpConnection, args, myself.get_cell()).await
                {
                    warn!(%remote, error = %err, "RTMP connection actor did not start; socket dropped");
                }
            }
            RtmpListenerMsg::LocalAddr(reply) => {
                // The caller may have given up waiting; nothing to do then.
                let _ = reply.send(state.local_addr);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Connections are never restarted: the publisher reconnects and gets a new one.
        match event {
            SupervisionEvent::ActorFailed(child, err) => {
                warn!(child = %child.get_id(), error = %err, "RTMP connection failed; not restarted");
            }
            SupervisionEvent::ActorTerminated(child, _, reason) => {
                debug!(child = %child.get_id(), reason = ?reason, "RTMP connection ended");
            }
            _ => {}
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Dropping the accept task's TcpListener frees the port; each connection sends its
        // Unpublish as it stops.
        state.accept_task.abort();
        myself.stop_children(Some("RTMP listener stopped".to_string()));
        info!(listen = %state.local_addr, "RTMP listener stopped");
        Ok(())
    }
}

/// Accepts sockets and hands each to the listener actor; ends when the actor is gone.
async fn accept_loop(listener: TcpListener, myself: ActorRef<RtmpListenerMsg>) {
    loop {
        match listener.accept().await {
            Ok((socket, remote)) => {
                if myself
                    .send_message(RtmpListenerMsg::Accepted(socket, remote))
                    .is_err()
                {
                    return;
                }
            }
            Err(err) => {
                warn!(error = %err, "RTMP accept failed");
                tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
            }
        }
    }
}
