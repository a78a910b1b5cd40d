//! recnode's actor layer.
//!
//! Every long-lived piece of a node is a supervised `ractor` actor: one stream actor per
//! live stream, one recorder session per recording, a rotation timer per rotating
//! recording, the uploader and (later) the hook connector. The actors do all I/O; the
//! media work itself is delegated to the sans-IO [`recnode_media`] crate.
//!
//! Contract (see `../shared/DESIGN.md`, "Supervision tree"):
//! - restart policy lives only in supervisors, which override ractor's default of
//!   stopping when a child exits;
//! - messages of actors in this crate are local-only (`RactorMessage`); nothing here
//!   is advertised across the cluster;
//! - no actor blocks its loop: file I/O and CPU-heavy muxing run off the loop.
//!
//! Modules: [`node_supervisor`] (the root: starts, owns and stops the rest), [`ingest`] (RTMP listener and connections), [`stream`] (live streams and the
//! registry of them), [`recorder`] (recording sessions), [`uploader`] (spool → storage),
//! [`state_store`] (the node's SQLite state: the durable upload queue).
#![deny(missing_docs)]

pub mod disk_guard;
pub mod hooks;
pub mod ingest;
pub mod node_supervisor;
pub mod recorder;
pub mod recovery;
pub mod state_store;
pub mod stream;
pub mod uploader;

pub use recnode_media as media;
pub use recnode_proto as proto;
