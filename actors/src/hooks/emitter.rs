//! [`HookEmitter`]: how actors raise hook events.

use std::future::Future;
use std::sync::{mpsc, Arc};

use recnode_proto::hook::v1::{hook_event, HookEvent};
use tokio::sync::oneshot;

use super::now_ms;
use super::outbox::{EmitCmd, Outbox, OutboxError, WriterCmd};

/// Where an emitted event landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    /// Its per-node sequence number.
    pub seq: u64,
    /// Its unique id.
    pub id: String,
}

struct Inner {
    tx: mpsc::Sender<WriterCmd>,
    node: u32,
    node_alias: String,
}

/// Raises hook events into the node's outbox. Cheap to clone; a disabled emitter
/// ([`HookEmitter::disabled`]) drops events, for tests and tools without a node.
///
/// Events are committed in the order of the `emit`/`emit_nowait` calls (across clones,
/// the order in which the calls reach the outbox's channel).
#[derive(Clone)]
pub struct HookEmitter {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for HookEmitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Some(inner) => f
                .debug_struct("HookEmitter")
                .field("node", &inner.node)
                .field("node_alias", &inner.node_alias)
                .finish(),
            None => f.write_str("HookEmitter(disabled)"),
        }
    }
}

impl HookEmitter {
    /// An emitter into `outbox` that stamps events with this node's id and alias.
    pub fn new(outbox: &Outbox, node: u32, node_alias: &str) -> HookEmitter {
        HookEmitter {
            inner: Some(Arc::new(Inner {
                tx: outbox.sender(),
                node,
                node_alias: node_alias.to_string(),
            })),
        }
    }

    /// An emitter that drops every event (`emit` answers `Ok` with seq 0).
    pub fn disabled() -> HookEmitter {
        HookEmitter { inner: None }
    }

    /// Whether events go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The node id stamped on events (0 when disabled).
    pub fn node(&self) -> u32 {
        self.inner.as_ref().map_or(0, |i| i.node)
    }

    /// The node alias stamped on events (empty when disabled).
    pub fn node_alias(&self) -> &str {
        self.inner.as_ref().map_or("", |i| i.node_alias.as_str())
    }

    fn envelope(inner: &Inner, event: hook_event::Event) -> HookEvent {
        HookEvent {
            node: inner.node,
            ts: now_ms(),
            event: Some(event),
            id: String::new(),
            seq: 0,
            node_alias: inner.node_alias.clone(),
        }
    }

    /// Queues `event` now (so its place in the order is fixed by this call) and returns
    /// a future that resolves once it is committed to the outbox: from then on it
    /// survives a crash of the process. Dropping the future does not cancel the event.
    pub fn emit(
        &self,
        event: hook_event::Event,
    ) -> impl Future<Output = Result<Emitted, OutboxError>> + Send + 'static {
        let queued = self.inner.as_ref().map(|inner| {
            let (reply, rx) = oneshot::channel();
            let cmd = WriterCmd::Emit(EmitCmd {
                event: Self::envelope(inner, event),
                reply: Some(reply),
            });
            inner
                .tx
                .send(cmd)
                .map(|()| rx)
                .map_err(|_| OutboxError::Closed)
        });
        async move {
            match queued {
                None => Ok(Emitted {
                    seq: 0,
                    id: String::new(),
                }),
                Some(Err(e)) => Err(e),
                Some(Ok(rx)) => {
                    let (seq, id) = rx.await.map_err(|_| OutboxError::Closed)??;
                    Ok(Emitted { seq, id })
                }
            }
        }
    }

    /// Queues `event` without waiting for its commit (a failure is logged by the
    /// outbox). For callers that must not wait, such as a media loop.
    pub fn emit_nowait(&self, event: hook_event::Event) {
        if let Some(inner) = &self.inner {
            let cmd = WriterCmd::Emit(EmitCmd {
                event: Self::envelope(inner, event),
                reply: None,
            });
            if inner.tx.send(cmd).is_err() {
                tracing::warn!(node_alias = %inner.node_alias, "hook outbox closed; event dropped");
            }
        }
    }
}
