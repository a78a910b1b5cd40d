//! Hook events: what a node tells the platform's backend, delivered signed, durable and in
//! order.
//!
//! The pieces, from an event's birth to its receipt:
//! - **[`HookEmitter`]** (cheap to clone) is how actors raise events. [`HookEmitter::emit`]
//!   resolves once the event is committed to the outbox, so an event emitted is an event
//!   kept even if the process is killed the moment after; [`HookEmitter::emit_nowait`] is
//!   the fire-and-forget form (order is still the order of the calls).
//! - **The outbox** ([`outbox`]) lives in the node's state store (SQLite, WAL mode). One
//!   writer thread owns all writes: it takes every emit that is waiting, gives each the
//!   next gapless per-node `seq` and a unique `id`, encodes it and commits the whole batch
//!   in one transaction (group commit), then wakes the emitters and the readers.
//!   Compaction deletes what every enabled endpoint has acknowledged, keeping the newest
//!   [`HookSettings::retain_events`] for `GET /api/events` replay; dead letters are kept.
//! - **The [`Connector`]** actor (one per node) registers endpoints (from config and the
//!   API, persisted) and supervises one **[`EndpointDeliverer`]** per enabled endpoint,
//!   restarting a failed one with backoff (ractor's default of stopping is overridden).
//! - **An [`EndpointDeliverer`]** sends its endpoint's events in `seq` order, one request
//!   each, signed per Standard Webhooks ([`signing`]), as protobuf or canonical proto3
//!   JSON, pipelined on one keep-alive connection ([`pipelined_client`], up to
//!   [`HookSettings::pipeline_window`] requests in flight). A 2xx acknowledges, 410 Gone
//!   disables the endpoint, anything else retries the head of the line (and re-sends what
//!   was behind it) with exponential backoff and jitter. An event that still fails
//!   after [`HookSettings::max_age`] moves to the endpoint's dead letters, from where
//!   [`ConnectorMsg::Replay`] sends it again.
//!
//! Guarantees: at least once (a redelivery keeps the event's `id`), in `seq` order per
//! endpoint, retried for `max_age`, then kept as a dead letter. In order means: requests
//! go out in `seq` order, and an event is sent again only together with every event after
//! it, in order, so the last copy of each event a receiver takes comes in `seq` order.
//! With pipelining, a receiver that refuses an event may already have taken some sent
//! behind it; a window of 1 never sends an event before the one ahead is settled.
//!
//! Event types are the dotted names of [`recnode_proto::hook::v1::HookEvent::event_type`]
//! (`record.started`); an endpoint's filter ([`EventFilter`]) lists names and
//! `family.*` patterns.

mod config;
mod connector;
mod emitter;
mod endpoint_deliverer;
pub mod events;
mod filter;
pub mod outbox;
pub mod pipelined_client;
pub mod signing;

pub use config::{EndpointConfigError, EndpointSpec, HookFormat, HooksConfig};
pub use connector::{
    start_hooks, Connector, ConnectorArgs, ConnectorError, ConnectorMsg, ConnectorState,
    EndpointInfo, Hooks,
};
pub use emitter::{Emitted, HookEmitter};
pub use endpoint_deliverer::{
    DeliveryOutcome, EndpointDeliverer, EndpointDelivererArgs, EndpointDelivererMsg,
    EndpointDelivererState,
};
pub use filter::EventFilter;
pub use outbox::{DeadLetter, Outbox, OutboxError, OutboxStats, StoredEvent};
pub use pipelined_client::PipelinedClient;

use std::time::Duration;

/// The default [`HookSettings::pipeline_window`].
pub const DEFAULT_PIPELINE_WINDOW: usize = 32;
/// The largest [`HookSettings::pipeline_window`] accepted.
pub const MAX_PIPELINE_WINDOW: usize = 1024;

/// How the connector delivers and how long the outbox keeps events.
#[derive(Debug, Clone, PartialEq)]
pub struct HookSettings {
    /// Numeric id of this node, the `node` field of every event.
    pub node: u32,
    /// This node's alias, the `node_alias` field of every event.
    pub node_alias: String,
    /// How long an event is retried before it moves to the dead letters (default 24 h).
    pub max_age: Duration,
    /// How many of the newest events the outbox keeps after every endpoint has them,
    /// for `GET /api/events?since=` replay (default 10,000).
    pub retain_events: u64,
    /// Timeout of one delivery attempt (default 10 s).
    pub request_timeout: Duration,
    /// The first retry delay; each failure doubles it (default 250 ms).
    pub min_backoff: Duration,
    /// The longest retry delay (default 60 s).
    pub max_backoff: Duration,
    /// How many requests may be in flight to one endpoint on its connection (HTTP/1.1
    /// pipelining, default [`DEFAULT_PIPELINE_WINDOW`]); 1 sends one request at a time
    /// through reqwest, as before pipelining.
    pub pipeline_window: usize,
    /// Endpoints from the config file (`[[hooks.endpoints]]`), validated.
    pub endpoints: Vec<EndpointSpec>,
}

impl Default for HookSettings {
    fn default() -> Self {
        HookSettings {
            node: 0,
            node_alias: String::new(),
            max_age: Duration::from_secs(24 * 3600),
            retain_events: 10_000,
            request_timeout: Duration::from_secs(10),
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(60),
            pipeline_window: DEFAULT_PIPELINE_WINDOW,
            endpoints: Vec::new(),
        }
    }
}

/// The current time in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A stable numeric node id from a node alias (FNV-1a, 32 bits; 0 for no alias), used as
/// the events' `node` until the cluster assigns ids.
pub fn node_id_from_alias(alias: &str) -> u32 {
    if alias.is_empty() {
        return 0;
    }
    alias.bytes().fold(0x811c_9dc5u32, |hash, b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}
