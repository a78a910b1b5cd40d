//! The `Connector`: one per node; registers hook endpoints and supervises one
//! [`EndpointDeliverer`] per enabled endpoint.
//!
//! It owns the endpoint registry (persisted in the outbox's `hook_endpoints` table):
//! config endpoints are synced at start (added, updated, or removed when no longer
//! configured); API endpoints are added and removed through [`ConnectorMsg`]. Every
//! change is committed before the call answers.
//!
//! Restart policy: ractor's default (stop the supervisor when a child exits) is
//! overridden. A deliverer that fails or exits on its own is restarted after a backoff
//! that doubles with each restart in the last minute (from 100 ms up to 30 s), from the
//! cursor stored in the outbox; deliverers are never given up on, since an endpoint's
//! events wait for it. A deliverer stopped on purpose (endpoint deleted, or disabled after
//! 410 Gone) is removed from the registry first, so its exit is not a failure.
//!
//! Who restarts the connector: nobody inside the process; it only fails if it cannot
//! read the registry at start, and then the node does not start.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use ractor_cluster_derive::RactorMessage;
use serde::Serialize;

use super::config::{config_endpoint_id, EndpointConfigError, EndpointSpec, HookFormat};
use super::emitter::HookEmitter;
use super::endpoint_deliverer::{EndpointDeliverer, EndpointDelivererArgs, EndpointDelivererMsg};
use super::outbox::{ops, DeadLetter, EndpointRow, Outbox, OutboxError};
use super::HookSettings;

/// The window in which a deliverer's restarts count towards its backoff.
const RESTART_WINDOW: Duration = Duration::from_secs(60);
/// The first restart delay.
const RESTART_MIN: Duration = Duration::from_millis(100);
/// The longest restart delay.
const RESTART_MAX: Duration = Duration::from_secs(30);

/// Why a connector call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConnectorError {
    /// No endpoint has this id.
    #[error("no hook endpoint {0:?}")]
    NotFound(String),
    /// An endpoint with this id exists already.
    #[error("a hook endpoint {0:?} exists already")]
    Exists(String),
    /// The endpoint is refused (the error names the field).
    #[error("invalid hook endpoint: {0}")]
    Invalid(#[from] EndpointConfigError),
    /// The outbox failed.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// An actor could not be started or did not answer.
    #[error("hook connector: {0}")]
    Actor(String),
}

/// An endpoint as the API shows it (the secret is never shown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointInfo {
    /// Its id.
    pub id: String,
    /// Its URL.
    pub url: String,
    /// `protobuf` or `json`.
    pub format: String,
    /// Its filter patterns.
    pub events: Vec<String>,
    /// `config` or `api`.
    pub source: String,
    /// Whether it receives events (false after 410 Gone).
    pub enabled: bool,
    /// Why it is disabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Every event up to this seq is settled for it.
    pub acked_seq: u64,
    /// Events after `acked_seq` (some may be filtered out).
    pub pending: u64,
    /// Its dead letters.
    pub dead_letters: u64,
    /// When it was registered (unix ms).
    pub created_at_ms: u64,
}

/// Messages to the connector.
#[derive(RactorMessage)]
pub enum ConnectorMsg {
    /// Every endpoint.
    List(RpcReplyPort<Result<Vec<EndpointInfo>, ConnectorError>>),
    /// Registers an endpoint (it receives events emitted from now on).
    Create(
        EndpointSpec,
        RpcReplyPort<Result<EndpointInfo, ConnectorError>>,
    ),
    /// Removes an endpoint (and its dead letters).
    Delete(String, RpcReplyPort<Result<(), ConnectorError>>),
    /// Up to `limit` dead letters of an endpoint with a seq above `after`.
    DeadLetters {
        /// The endpoint.
        id: String,
        /// Only seqs above this.
        after: u64,
        /// At most this many.
        limit: usize,
        /// The answer.
        reply: RpcReplyPort<Result<Vec<DeadLetter>, ConnectorError>>,
    },
    /// Sends an endpoint's dead letters again; answers how many.
    Replay(String, RpcReplyPort<Result<u64, ConnectorError>>),
    /// A deliverer's endpoint answered 410 Gone: disable it.
    Gone {
        /// The endpoint.
        id: String,
        /// What it answered.
        reason: String,
    },
    /// Restart the deliverer of an endpoint (after a backoff).
    #[doc(hidden)]
    Respawn(String),
}

/// What the connector starts with.
pub struct ConnectorArgs {
    /// The node's outbox.
    pub outbox: Outbox,
    /// Delivery settings and the config endpoints.
    pub settings: HookSettings,
}

struct Child {
    actor: ActorRef<EndpointDelivererMsg>,
    restarts: Vec<Instant>,
}

/// The connector.
pub struct Connector;

/// Its state.
pub struct ConnectorState {
    outbox: Outbox,
    settings: HookSettings,
    children: HashMap<String, Child>,
    /// Restart times of deliverers waiting to be respawned.
    restarting: HashMap<String, Vec<Instant>>,
}

fn info(row: EndpointRow, last_seq: u64, dead: &HashMap<String, u64>) -> EndpointInfo {
    EndpointInfo {
        dead_letters: dead.get(&row.id).copied().unwrap_or(0),
        pending: last_seq.saturating_sub(row.acked_seq),
        enabled: row.disabled.is_none(),
        disabled_reason: row.disabled,
        id: row.id,
        url: row.url,
        format: row.format,
        events: row.events,
        source: row.source,
        acked_seq: row.acked_seq,
        created_at_ms: row.created_at_ms,
    }
}

impl Connector {
    async fn spawn_deliverer(
        myself: &ActorRef<ConnectorMsg>,
        state: &mut ConnectorState,
        row: EndpointRow,
        restarts: Vec<Instant>,
    ) -> Result<(), ConnectorError> {
        let format = HookFormat::parse(&row.format).unwrap_or_default();
        let args = EndpointDelivererArgs {
            id: row.id.clone(),
            url: row.url,
            secret: row.secret,
            format,
            events: row.events,
            acked_seq: row.acked_seq,
            outbox: state.outbox.clone(),
            settings: state.settings.clone(),
            connector: myself.clone(),
        };
        let (actor, _) = Actor::spawn_linked(None, EndpointDeliverer, args, myself.get_cell())
            .await
            .map_err(|e| ConnectorError::Actor(format!("starting deliverer {}: {e}", row.id)))?;
        state.children.insert(row.id, Child { actor, restarts });
        Ok(())
    }

    fn stop_child(state: &mut ConnectorState, id: &str) {
        state.restarting.remove(id);
        if let Some(child) = state.children.remove(id) {
            child.actor.stop(None);
        }
    }

    async fn list(state: &ConnectorState) -> Result<Vec<EndpointInfo>, ConnectorError> {
        let rows = state.outbox.endpoints().await?;
        let dead = state.outbox.dead_letter_counts().await?;
        let last = state.outbox.last_seq();
        Ok(rows.into_iter().map(|r| info(r, last, &dead)).collect())
    }

    async fn create(
        myself: &ActorRef<ConnectorMsg>,
        state: &mut ConnectorState,
        spec: EndpointSpec,
    ) -> Result<EndpointInfo, ConnectorError> {
        let valid = spec.resolve(|_| format!("ep-{:016x}", fastrand::u64(..)))?;
        let created = state
            .outbox
            .exec("adding an endpoint", move |tx, ws| {
                ops::create(tx, ws, &valid)
            })
            .await?;
        let row = match created {
            ops::Created::Added(row) => row,
            ops::Created::Exists => {
                return Err(ConnectorError::Exists(spec.id.unwrap_or_default()));
            }
        };
        tracing::info!(endpoint = %row.id, url = %row.url, format = %row.format, "hook endpoint added");
        let shown = info(row.clone(), state.outbox.last_seq(), &HashMap::new());
        Self::spawn_deliverer(myself, state, row, Vec::new()).await?;
        Ok(shown)
    }

    async fn delete(state: &mut ConnectorState, id: String) -> Result<(), ConnectorError> {
        Self::stop_child(state, &id);
        let target = id.clone();
        let deleted = state
            .outbox
            .exec("removing an endpoint", move |tx, ws| {
                ops::delete(tx, ws, &target)
            })
            .await?;
        if deleted {
            tracing::info!(endpoint = %id, "hook endpoint removed");
            Ok(())
        } else {
            Err(ConnectorError::NotFound(id))
        }
    }

    async fn exists(state: &ConnectorState, id: &str) -> Result<EndpointRow, ConnectorError> {
        state
            .outbox
            .endpoints()
            .await?
            .into_iter()
            .find(|r| r.id == id)
            .ok_or_else(|| ConnectorError::NotFound(id.to_string()))
    }

    async fn replay(state: &mut ConnectorState, id: String) -> Result<u64, ConnectorError> {
        Self::exists(state, &id).await?;
        let target = id.clone();
        let marked = state
            .outbox
            .exec("marking dead letters for replay", move |tx, _| {
                ops::replay(tx, &target)
            })
            .await?;
        tracing::info!(endpoint = %id, events = marked, "replaying hook dead letters");
        if let Some(child) = state.children.get(&id) {
            let _ = child.actor.send_message(EndpointDelivererMsg::Replay);
        }
        Ok(marked)
    }
}

impl Actor for Connector {
    type Msg = ConnectorMsg;
    type State = ConnectorState;
    type Arguments = ConnectorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ConnectorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let configured = args
            .settings
            .endpoints
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                spec.resolve(config_endpoint_id)
                    .map_err(|e| e.within(&format!("hooks.endpoints[{i}]")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        args.outbox
            .exec("syncing config endpoints", move |tx, ws| {
                ops::sync_config(tx, ws, &configured)
            })
            .await?;
        let mut state = ConnectorState {
            outbox: args.outbox,
            settings: args.settings,
            children: HashMap::new(),
            restarting: HashMap::new(),
        };
        for row in state.outbox.endpoints().await? {
            if row.disabled.is_none() {
                Self::spawn_deliverer(&myself, &mut state, row, Vec::new()).await?;
            }
        }
        tracing::info!(endpoints = state.children.len(), "hook connector started");
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        for (_, child) in state.children.drain() {
            child.actor.stop(None);
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ConnectorMsg::List(reply) => {
                let _ = reply.send(Self::list(state).await);
            }
            ConnectorMsg::Create(spec, reply) => {
                let _ = reply.send(Self::create(&myself, state, spec).await);
            }
            ConnectorMsg::Delete(id, reply) => {
                let _ = reply.send(Self::delete(state, id).await);
            }
            ConnectorMsg::DeadLetters {
                id,
                after,
                limit,
                reply,
            } => {
                let result = match Self::exists(state, &id).await {
                    Ok(_) => state
                        .outbox
                        .dead_letters(&id, after, limit, None)
                        .await
                        .map_err(ConnectorError::from),
                    Err(e) => Err(e),
                };
                let _ = reply.send(result);
            }
            ConnectorMsg::Replay(id, reply) => {
                let _ = reply.send(Self::replay(state, id).await);
            }
            ConnectorMsg::Gone { id, reason } => {
                Self::stop_child(state, &id);
                let target = id.clone();
                let why = reason.clone();
                if let Err(e) = state
                    .outbox
                    .exec("disabling an endpoint", move |tx, ws| {
                        ops::disable(tx, ws, &target, &why)
                    })
                    .await
                {
                    tracing::error!(endpoint = %id, "{e}");
                }
                tracing::warn!(endpoint = %id, %reason, "hook endpoint disabled");
            }
            ConnectorMsg::Respawn(id) => {
                let Some(restarts) = state.restarting.remove(&id) else {
                    return Ok(());
                };
                if state.children.contains_key(&id) {
                    return Ok(());
                }
                match Self::exists(state, &id).await {
                    Ok(row) if row.disabled.is_none() => {
                        if let Err(e) =
                            Self::spawn_deliverer(&myself, state, row, restarts.clone()).await
                        {
                            tracing::error!(endpoint = %id, "{e}; retrying");
                            state.restarting.insert(id.clone(), restarts);
                            drop(myself.send_after(RESTART_MAX, move || ConnectorMsg::Respawn(id)));
                        }
                    }
                    Ok(_) | Err(ConnectorError::NotFound(_)) => {}
                    Err(e) => {
                        tracing::error!(endpoint = %id, "{e}; retrying");
                        state.restarting.insert(id.clone(), restarts);
                        drop(myself.send_after(RESTART_MAX, move || ConnectorMsg::Respawn(id)));
                    }
                }
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
            SupervisionEvent::ActorFailed(cell, err) => (cell.get_id(), err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => (
                cell.get_id(),
                reason.clone().unwrap_or_else(|| "stopped".into()),
            ),
            _ => return Ok(()),
        };
        let Some(id) = state
            .children
            .iter()
            .find(|(_, c)| c.actor.get_id() == who)
            .map(|(id, _)| id.clone())
        else {
            // A deliverer stopped on purpose (already removed).
            return Ok(());
        };
        let Some(child) = state.children.remove(&id) else {
            return Ok(());
        };
        let now = Instant::now();
        let mut restarts: Vec<Instant> = child
            .restarts
            .into_iter()
            .filter(|t| now.duration_since(*t) < RESTART_WINDOW)
            .collect();
        restarts.push(now);
        let exp = (restarts.len() as u32 - 1).min(16);
        let delay = RESTART_MIN.saturating_mul(1 << exp).min(RESTART_MAX);
        tracing::warn!(endpoint = %id, restarts = restarts.len(), retry_in = ?delay,
            "hook deliverer exited ({why}); restarting");
        state.restarting.insert(id.clone(), restarts);
        drop(myself.send_after(delay, move || ConnectorMsg::Respawn(id)));
        Ok(())
    }
}

/// A node's hook machinery: the outbox, an emitter into it, and the connector.
#[derive(Clone)]
pub struct Hooks {
    /// The durable outbox.
    pub outbox: Outbox,
    /// Raises events (clone it into every actor that emits).
    pub emitter: HookEmitter,
    /// The connector (endpoints, dead letters).
    pub connector: ActorRef<ConnectorMsg>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("outbox", &self.outbox)
            .field("emitter", &self.emitter)
            .finish()
    }
}

/// Opens the outbox in the state store at `state_db` and starts the connector
/// (unsupervised; it stops with [`Hooks::stop`]).
pub async fn start_hooks(settings: HookSettings, state_db: &Path) -> Result<Hooks, ConnectorError> {
    let path = state_db.to_path_buf();
    let retain = settings.retain_events;
    let outbox = tokio::task::spawn_blocking(move || Outbox::open(&path, retain))
        .await
        .map_err(|e| ConnectorError::Actor(format!("opening the outbox: {e}")))??;
    let emitter = HookEmitter::new(&outbox, settings.node, &settings.node_alias);
    let args = ConnectorArgs {
        outbox: outbox.clone(),
        settings,
    };
    let (connector, _) = Actor::spawn(None, Connector, args)
        .await
        .map_err(|e| ConnectorError::Actor(format!("starting the connector: {e}")))?;
    Ok(Hooks {
        outbox,
        emitter,
        connector,
    })
}

impl Hooks {
    /// Waits until every enabled endpoint has settled every event committed so far, for
    /// at most `timeout`; true if they all did.
    pub async fn wait_delivered(&self, timeout: Duration) -> bool {
        let target = self.outbox.last_seq();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(rows) = self.outbox.endpoints().await {
                if rows
                    .iter()
                    .all(|r| r.disabled.is_some() || r.acked_seq >= target)
                {
                    return true;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the connector and its deliverers, then closes the outbox (committing what
    /// was emitted before).
    pub async fn stop(&self) {
        let _ = self
            .connector
            .stop_and_wait(None, Some(Duration::from_secs(5)))
            .await;
        self.outbox.close().await;
    }
}
