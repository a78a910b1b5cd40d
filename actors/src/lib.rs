//! recnode's actor layer.
//!
//! Every long-lived piece of a node is a supervised `ractor` actor: one `StreamActor`
//! per live stream, one `RecorderSession` per recording, a `RotationTimer` per
//! rotating recording, the uploader pool and the hook `Connector`. The actors do all
//! I/O; the media work itself is delegated to the sans-IO [`recnode_media`] crate.
//!
//! Contract (see `../shared/DESIGN.md`, "Supervision tree"):
//! - restart policy lives only in supervisors, which override ractor's default of
//!   stopping when a child exits;
//! - messages of actors in this crate are local-only (`RactorMessage`); nothing here
//!   is advertised across the cluster;
//! - no actor blocks its loop: file I/O and CPU-heavy muxing run off the loop.
//!
//! The foundation issue only wires this crate into the dependency chain
//! (`media` ← `actors` ← `cluster` ← `recnode`); the actors arrive with the recording
//! pipeline.
#![deny(missing_docs)]

pub use recnode_media as media;
pub use recnode_proto as proto;
