//! [`SettingsStore`]: this node's copy of the cluster-wide settings (hook endpoints and
//! auto-record rules), with their versions, persisted in a JSON file in the data dir.
//!
//! Every change carries a version (unix milliseconds at the write) and its writer's name;
//! the store accepts a change only when `(version, writer)` is greater than what it has
//! for that id, so every node converges on the last writer whatever the order the
//! changes arrive in. A deleted entry stays as a tombstone, so an older write that
//! arrives late cannot bring it back. A node that joins pulls a peer's whole store
//! ([`SettingsMsg::Snapshot`]) and offers each entry to its own.
//!
//! Rules written through this node's API get their version here
//! ([`SettingsMsg::WriteRule`]): `max(now, previous version + 1)`, so a second write made
//! within the same millisecond (or on a node whose clock is behind the last writer's)
//! still wins over the first.
//!
//! The store runs on every node, also without `[cluster] enabled`, so a single node
//! persists its rules too. It tells the stream supervisor it watches
//! ([`SettingsMsg::WatchRules`]) the live rule patterns at once and after every accepted
//! rule change, whichever way the change came (local API, a peer's cast, a pulled
//! snapshot), so the supervisor always records by what the store holds.
//!
//! The file is rewritten whole (write to a temporary file, then rename) on every accepted
//! change; changes are rare (an operator's API call). A file that does not parse is
//! logged and replaced, since any peer has the settings too.
//!
//! Started by the binary with [`start_store`], unsupervised. Mailbox: unbounded
//! (ractor's); it gets one message per settings change, per pull and per peer's pull.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr};
use ractor_cluster_derive::RactorMessage;
use recnode_actors::stream::{validate_stream_name, validate_stream_pattern, StreamSupervisorMsg};
use recnode_proto::cluster::v1 as pb;

/// The settings store actor (one per node).
pub struct SettingsStore;

/// A rule change made through this node's API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleWrite {
    /// The rule id (already validated).
    pub id: String,
    /// The new pattern (already validated), or `None` to delete the rule.
    pub pattern: Option<String>,
    /// This node's name, which breaks version ties.
    pub writer: String,
}

/// A rule change the store accepted: what to send to the other nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleWritten {
    /// The change, with its version.
    pub update: pb::AutoRecordRuleUpdate,
    /// Whether the id had no live rule before (a create, not a replace).
    pub created: bool,
}

/// Why a rule write was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleWriteError {
    /// A delete named a rule that does not exist (or was already deleted).
    #[error("no auto-record rule {id:?}")]
    NotFound {
        /// The rule id.
        id: String,
    },
}

/// Messages to the settings store; local only.
#[derive(RactorMessage)]
pub enum SettingsMsg {
    /// A hook endpoint change, local or from a peer; the reply says whether it is newer
    /// and was stored.
    Offer(pb::HookEndpointUpdate, RpcReplyPort<bool>),
    /// A rule change from a peer; the reply says whether it is valid and newer and was
    /// stored.
    OfferRule(pb::AutoRecordRuleUpdate, RpcReplyPort<bool>),
    /// A rule change made through this node's API: the store versions it, keeps it and
    /// answers the change to send to the other nodes.
    WriteRule(RuleWrite, RpcReplyPort<Result<RuleWritten, RuleWriteError>>),
    /// The live rules (no tombstones), sorted by id.
    Rules(RpcReplyPort<Vec<pb::AutoRecordRuleUpdate>>),
    /// Send the live rule patterns to this stream supervisor now and after every change.
    WatchRules(ActorRef<StreamSupervisorMsg>),
    /// Every setting, tombstones included.
    Snapshot(RpcReplyPort<pb::SettingsSnapshot>),
}

/// The store's state: the latest change per endpoint id and per rule id.
pub struct SettingsState {
    path: PathBuf,
    endpoints: BTreeMap<String, pb::HookEndpointUpdate>,
    rules: BTreeMap<String, pb::AutoRecordRuleUpdate>,
    watcher: Option<ActorRef<StreamSupervisorMsg>>,
}

/// Starts the settings store on `path` (read if it exists).
pub async fn start_store(path: PathBuf) -> Result<ActorRef<SettingsMsg>, SpawnErr> {
    let (store, _) = Actor::spawn(None, SettingsStore, path).await?;
    Ok(store)
}

/// Whether `new` wins over `old` (last writer wins; the writer's name breaks ties).
fn newer(new: (u64, &str), old: (u64, &str)) -> bool {
    new > old
}

/// The version of a local write: now, or past the previous version if the clock is not.
fn next_version(now_ms: u64, previous: Option<u64>) -> u64 {
    previous.map_or(now_ms, |v| now_ms.max(v.saturating_add(1)))
}

/// Why a rule from a peer cannot be stored, if it cannot.
fn invalid_rule(update: &pb::AutoRecordRuleUpdate) -> Option<String> {
    if let Err(e) = validate_stream_name(&update.id) {
        return Some(format!("rule id: {e}"));
    }
    if update.deleted {
        return None;
    }
    validate_stream_pattern(&update.pattern)
        .err()
        .map(|e| e.to_string())
}

/// Replaces `path` with `text`: written and fsynced under a temporary name, renamed over
/// it, and the directory fsynced, so a crash leaves the old file or the new one.
fn write_durably(path: &std::path::Path, text: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(text)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl SettingsState {
    fn snapshot(&self) -> pb::SettingsSnapshot {
        pb::SettingsSnapshot {
            hook_endpoints: self.endpoints.values().cloned().collect(),
            auto_record_rules: self.rules.values().cloned().collect(),
        }
    }

    /// Persists the settings, off the async loop (the store's next message waits for it,
    /// so files are written in order and a change is on disk before it is answered).
    async fn save(&self) {
        let path = self.path.clone();
        let text = match serde_json::to_vec_pretty(&self.snapshot()) {
            Ok(text) => text,
            Err(e) => {
                tracing::error!(path = %path.display(), "cannot encode cluster settings: {e}");
                return;
            }
        };
        let written = tokio::task::spawn_blocking(move || write_durably(&path, &text))
            .await
            .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())));
        if let Err(e) = written {
            tracing::error!(path = %self.path.display(), "cannot persist cluster settings: {e}");
        }
    }

    fn live_rules(&self) -> Vec<pb::AutoRecordRuleUpdate> {
        (self.rules.values())
            .filter(|r| !r.deleted)
            .cloned()
            .collect()
    }

    /// Tells the watching stream supervisor the live patterns.
    fn push_rules(&self) {
        if let Some(watcher) = &self.watcher {
            let patterns = self.live_rules().into_iter().map(|r| r.pattern).collect();
            if let Err(e) = watcher.cast(StreamSupervisorMsg::SetAutoRecordRules(patterns)) {
                tracing::error!("the stream supervisor did not take the auto-record rules: {e}");
            }
        }
    }

    /// Stores a rule change if it is newer; true when stored.
    async fn offer_rule(&mut self, update: pb::AutoRecordRuleUpdate) -> bool {
        let accept = self
            .rules
            .get(&update.id)
            .is_none_or(|old| newer((update.version, &update.writer), (old.version, &old.writer)));
        if accept {
            self.rules.insert(update.id.clone(), update);
            self.save().await;
            self.push_rules();
        }
        accept
    }

    async fn write_rule(&mut self, write: RuleWrite) -> Result<RuleWritten, RuleWriteError> {
        let old = self.rules.get(&write.id);
        let existed = old.is_some_and(|r| !r.deleted);
        if write.pattern.is_none() && !existed {
            return Err(RuleWriteError::NotFound { id: write.id });
        }
        let update = pb::AutoRecordRuleUpdate {
            version: next_version(crate::now_ms(), old.map(|r| r.version)),
            writer: write.writer,
            deleted: write.pattern.is_none(),
            pattern: write.pattern.unwrap_or_default(),
            id: write.id,
        };
        // Newer than what is stored by construction (its version is past it).
        self.rules.insert(update.id.clone(), update.clone());
        self.save().await;
        self.push_rules();
        Ok(RuleWritten {
            update,
            created: !existed,
        })
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
        let snapshot = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<pb::SettingsSnapshot>(&bytes) {
                Ok(snapshot) => snapshot,
                Err(e) => {
                    tracing::warn!(path = %path.display(),
                        "cluster settings file does not parse, starting empty: {e}");
                    pb::SettingsSnapshot::default()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => pb::SettingsSnapshot::default(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display()).into()),
        };
        let endpoints = (snapshot.hook_endpoints.into_iter())
            .map(|u| (u.id.clone(), u))
            .collect();
        let rules = (snapshot.auto_record_rules.into_iter())
            .filter(|r| match invalid_rule(r) {
                Some(why) => {
                    tracing::warn!(path = %path.display(), rule = %r.id,
                        "stored auto-record rule dropped: {why}");
                    false
                }
                None => true,
            })
            .map(|r| (r.id.clone(), r))
            .collect();
        Ok(SettingsState {
            path,
            endpoints,
            rules,
            watcher: None,
        })
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
                    && state.endpoints.get(&update.id).is_none_or(|old| {
                        newer((update.version, &update.writer), (old.version, &old.writer))
                    });
                if accept {
                    state.endpoints.insert(update.id.clone(), update);
                    state.save().await;
                }
                let _ = reply.send(accept);
            }
            SettingsMsg::OfferRule(update, reply) => {
                let accept = match invalid_rule(&update) {
                    Some(why) => {
                        tracing::warn!(rule = %update.id, writer = %update.writer,
                            "auto-record rule from a peer refused: {why}");
                        false
                    }
                    None => state.offer_rule(update).await,
                };
                let _ = reply.send(accept);
            }
            SettingsMsg::WriteRule(write, reply) => {
                let _ = reply.send(state.write_rule(write).await);
            }
            SettingsMsg::Rules(reply) => {
                let _ = reply.send(state.live_rules());
            }
            SettingsMsg::WatchRules(streams) => {
                state.watcher = Some(streams);
                state.push_rules();
            }
            SettingsMsg::Snapshot(reply) => {
                let _ = reply.send(state.snapshot());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_writer_wins_and_names_break_ties() {
        assert!(newer((2, "a"), (1, "z")));
        assert!(!newer((1, "z"), (2, "a")));
        assert!(newer((2, "b"), (2, "a")));
        assert!(!newer((2, "a"), (2, "a")));
    }

    #[test]
    fn a_local_write_always_gets_a_version_past_the_previous_one() {
        assert_eq!(next_version(1_000, None), 1_000);
        assert_eq!(next_version(1_000, Some(999)), 1_000);
        // Same millisecond, or a clock behind the last writer's.
        assert_eq!(next_version(1_000, Some(1_000)), 1_001);
        assert_eq!(next_version(1_000, Some(5_000)), 5_001);
    }

    fn rule(
        id: &str,
        version: u64,
        writer: &str,
        pattern: Option<&str>,
    ) -> pb::AutoRecordRuleUpdate {
        pb::AutoRecordRuleUpdate {
            id: id.into(),
            version,
            writer: writer.into(),
            deleted: pattern.is_none(),
            pattern: pattern.unwrap_or_default().into(),
        }
    }

    #[tokio::test]
    async fn rules_converge_keep_tombstones_refuse_bad_patterns_and_persist() {
        let dir = std::env::temp_dir().join(format!("recnode-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("cluster_settings.json");
        let _ = std::fs::remove_file(&path);
        let store = start_store(path.clone()).await.expect("store");
        let offer = |r: pb::AutoRecordRuleUpdate| {
            let store = store.clone();
            async move { ractor::call_t!(store, SettingsMsg::OfferRule, 5_000, r).expect("answer") }
        };
        assert!(offer(rule("web", 10, "a", Some("web-*"))).await);
        assert!(!offer(rule("web", 9, "z", Some("old-*"))).await, "older");
        assert!(offer(rule("web", 11, "b", None)).await, "newer delete");
        assert!(
            !offer(rule("web", 10, "c", Some("web-*"))).await,
            "behind the tombstone"
        );
        assert!(
            !offer(rule("bad", 12, "a", Some("a/b"))).await,
            "bad pattern"
        );
        assert!(!offer(rule("a b", 12, "a", Some("x"))).await, "bad id");
        assert!(offer(rule("all", 12, "a", Some("*"))).await);

        let write = |id: &str, pattern: Option<&str>| {
            let w = RuleWrite {
                id: id.into(),
                pattern: pattern.map(str::to_string),
                writer: "me".into(),
            };
            let store = store.clone();
            async move { ractor::call_t!(store, SettingsMsg::WriteRule, 5_000, w).expect("answer") }
        };
        // Two quick writes: the second always wins.
        let first = write("fast", Some("one")).await.expect("created");
        assert!(first.created);
        let second = write("fast", Some("two")).await.expect("replaced");
        assert!(!second.created);
        assert!(second.update.version > first.update.version);
        // Deleting a missing or deleted rule is refused.
        assert_eq!(
            write("web", None).await,
            Err(RuleWriteError::NotFound { id: "web".into() })
        );
        let live = ractor::call_t!(store, SettingsMsg::Rules, 5_000).expect("rules");
        let patterns: Vec<(&str, &str)> = (live.iter())
            .map(|r| (r.id.as_str(), r.pattern.as_str()))
            .collect();
        assert_eq!(patterns, [("all", "*"), ("fast", "two")]);
        store.stop(None);

        // A new store on the same file has the rules, tombstones included.
        let again = start_store(path.clone()).await.expect("store");
        let snapshot = ractor::call_t!(again, SettingsMsg::Snapshot, 5_000).expect("snapshot");
        let ids: Vec<(&str, bool)> = (snapshot.auto_record_rules.iter())
            .map(|r| (r.id.as_str(), r.deleted))
            .collect();
        assert_eq!(ids, [("all", false), ("fast", false), ("web", true)]);
        again.stop(None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
