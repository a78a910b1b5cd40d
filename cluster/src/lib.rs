//! recnode's cluster layer.
//!
//! Owns everything that crosses nodes: the `ractor_cluster` `NodeServer` (started with
//! `NodeConnectionMode::Transitive`, reconnecting to seeds with backoff), the per-node
//! remotable `NodeAgent` whose messages carry prost types from [`recnode_proto`], and
//! placement (which node owns stream `{name}`, via the process group `stream/{name}`).
//!
//! Media never crosses the cluster: only the `NodeAgent` is remotable, and every
//! payload it receives is decoded with error handling, never unwrapped.
//!
//! The foundation issue only wires this crate into the dependency chain; membership and
//! routing arrive with the cluster issue.
#![deny(missing_docs)]

pub use recnode_actors as actors;
