//! [`SettingsStore`]: this node's copy of the cluster-wide settings (hook endpoints), with
//! their versions, persisted in a JSON file in the data dir.
//!
//! Every change carries a version (unix milliseconds at the write) and its writer's name;
//! the store accepts a change only when `(version, writer)` is greater than what it has
//! for that endpoint, so every node converges on the last writer whatever the order the
//! changes arrive in. A deleted endpoint stays as a tombstone, so an older write that
//! arrives late cannot bring it back. A node that joins pulls a peer's whole store
//! ([`SettingsMsg::Snapshot`]) and offers each entry to its own.
//!
//! The file is rewritten whole (write to a temporary file, then rename) on every accepted
//! change; changes are rare (an operator's API call). A file that does not parse is
//! logged and replaced, since any peer has the settings too.
//!
//! Started by [`crate::start`], unsupervised. Mailbox: unbounded (ractor's); it gets one
//! message per settings change, per pull and per peer's pull.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster_derive::RactorMessage;
use recnode_proto::cluster::v1 as pb;

/// The settings store actor (one per node).
pub struct SettingsStore;

/// Messages to the settings store; local only.
#[derive(RactorMessage)]
pub enum SettingsMsg {
    /// A change, local or from a peer; the reply says whether it is newer and was stored.
    Offer(pb::HookEndpointUpdate, RpcReplyPort<bool>),
    /// Every setting, tombstones included.
    Snapshot(RpcReplyPort<pb::SettingsSnapshot>),
}

/// The store's state: the latest change per endpoint id.
pub struct SettingsState {
    path: PathBuf,
    endpoints: BTreeMap<String, pb::HookEndpointUpdate>,
}

/// Whether `new` wins over `old` (last writer wins; the writer's name breaks ties).
fn newer(new: &pb::HookEndpointUpdate, old: &pb::HookEndpointUpdate) -> bool {
    (new.version, &new.writer) > (old.version, &old.writer)
}

impl SettingsState {
    fn save(&self) -> std::io::Result<()> {
        let snapshot = pb::SettingsSnapshot {
            hook_endpoints: self.endpoints.values().cloned().collect(),
        };
        let text = serde_json::to_vec_pretty(&snapshot).map_err(std::io::Error::other)?;
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &self.path)
    }
}

impl Actor for SettingsStore {
    type Msg = SettingsMsg;
    type State = SettingsState;
    type Arguments = PathBuf;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        path: PathBuf,
    ) -> Result<Self::State, ActorProcessingErr> {
        let endpoints = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<pb::SettingsSnapshot>(&bytes) {
                Ok(snapshot) => (snapshot.hook_endpoints.into_iter())
                    .map(|u| (u.id.clone(), u))
                    .collect(),
                Err(e) => {
                    tracing::warn!(path = %path.display(),
                        "cluster settings file does not parse, starting empty: {e}");
                    BTreeMap::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display()).into()),
        };
        Ok(SettingsState { path, endpoints })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SettingsMsg::Offer(update, reply) => {
                let accept = !update.id.is_empty()
                    && state
                        .endpoints
                        .get(&update.id)
                        .is_none_or(|old| newer(&update, old));
                if accept {
                    state.endpoints.insert(update.id.clone(), update);
                    if let Err(e) = state.save() {
                        tracing::error!(path = %state.path.display(),
                            "cannot persist cluster settings: {e}");
                    }
                }
                let _ = reply.send(accept);
            }
            SettingsMsg::Snapshot(reply) => {
                let _ = reply.send(pb::SettingsSnapshot {
                    hook_endpoints: state.endpoints.values().cloned().collect(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(version: u64, writer: &str) -> pb::HookEndpointUpdate {
        pb::HookEndpointUpdate {
            id: "e".into(),
            version,
            writer: writer.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_last_writer_wins_and_names_break_ties() {
        assert!(newer(&update(2, "a"), &update(1, "z")));
        assert!(!newer(&update(1, "z"), &update(2, "a")));
        assert!(newer(&update(2, "b"), &update(2, "a")));
        assert!(!newer(&update(2, "a"), &update(2, "a")));
    }
}
