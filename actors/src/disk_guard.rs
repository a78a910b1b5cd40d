//! The disk guard: watches free space under the spool so a full disk never corrupts a
//! recording.
//!
//! [`DiskGuard`] measures the free bytes of the file system that holds the spool every
//! [`DiskGuardSettings::interval`] (with `statvfs`, off the actor loop) and publishes the
//! [`DiskLevel`] in a shared [`DiskStatus`]:
//! - **Low** (free < `min_free_bytes`): new recordings are refused (the API answers 507,
//!   auto-record skips the stream with a log line); open recordings keep writing.
//! - **Critical** (free < `hard_min_free_bytes`): the stream supervisor is told to stop
//!   every open recording, which closes it cleanly (final fragments, a static manifest,
//!   session.json), while a little space is left for exactly that.
//!
//! Each transition is logged once, with the path and the numbers. It is a child of the
//! stream supervisor, which it notifies; its mailbox gets one tick per interval.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster_derive::RactorMessage;

use crate::stream::StreamSupervisorMsg;

/// Where and when the disk guard acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskGuardSettings {
    /// A directory on the file system to watch (the spool).
    pub path: PathBuf,
    /// Below this many free bytes new recordings are refused; 0 turns the guard off.
    pub min_free_bytes: u64,
    /// Below this many free bytes open recordings are closed.
    pub hard_min_free_bytes: u64,
    /// How often free space is measured.
    pub interval: Duration,
}

impl Default for DiskGuardSettings {
    fn default() -> Self {
        DiskGuardSettings {
            path: PathBuf::from("./data/spool"),
            min_free_bytes: 0,
            hard_min_free_bytes: 0,
            interval: Duration::from_secs(1),
        }
    }
}

/// How much room the spool has left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DiskLevel {
    /// Enough free space (or the guard is off).
    Ok = 0,
    /// Under `min_free_bytes`: no new recordings.
    Low = 1,
    /// Under `hard_min_free_bytes`: open recordings are closed.
    Critical = 2,
}

impl DiskLevel {
    fn from_u8(v: u8) -> DiskLevel {
        match v {
            0 => DiskLevel::Ok,
            1 => DiskLevel::Low,
            _ => DiskLevel::Critical,
        }
    }

    /// The level for `free` bytes under `settings`.
    pub fn classify(free: u64, settings: &DiskGuardSettings) -> DiskLevel {
        if settings.min_free_bytes == 0 {
            DiskLevel::Ok
        } else if free < settings.hard_min_free_bytes {
            DiskLevel::Critical
        } else if free < settings.min_free_bytes {
            DiskLevel::Low
        } else {
            DiskLevel::Ok
        }
    }
}

/// The latest measurement, shared by the guard, the stream supervisor and the metrics.
#[derive(Debug, Clone)]
pub struct DiskStatus {
    inner: Arc<StatusInner>,
}

#[derive(Debug)]
struct StatusInner {
    level: AtomicU8,
    free_bytes: AtomicU64,
    min_free_bytes: u64,
    hard_min_free_bytes: u64,
}

impl DiskStatus {
    /// A status at [`DiskLevel::Ok`] until the first measurement.
    pub fn new(settings: &DiskGuardSettings) -> DiskStatus {
        DiskStatus {
            inner: Arc::new(StatusInner {
                level: AtomicU8::new(DiskLevel::Ok as u8),
                free_bytes: AtomicU64::new(u64::MAX),
                min_free_bytes: settings.min_free_bytes,
                hard_min_free_bytes: settings.hard_min_free_bytes,
            }),
        }
    }

    /// The current level.
    pub fn level(&self) -> DiskLevel {
        DiskLevel::from_u8(self.inner.level.load(Ordering::Relaxed))
    }

    /// Free bytes at the last measurement (`u64::MAX` before the first).
    pub fn free_bytes(&self) -> u64 {
        self.inner.free_bytes.load(Ordering::Relaxed)
    }

    /// The configured soft threshold.
    pub fn min_free_bytes(&self) -> u64 {
        self.inner.min_free_bytes
    }

    /// The configured hard floor.
    pub fn hard_min_free_bytes(&self) -> u64 {
        self.inner.hard_min_free_bytes
    }

    fn set(&self, free: u64, level: DiskLevel) {
        self.inner.free_bytes.store(free, Ordering::Relaxed);
        self.inner.level.store(level as u8, Ordering::Relaxed);
    }
}

/// Free bytes available to this (unprivileged) process on the file system holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(path)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// The disk guard actor (see the module docs).
pub struct DiskGuard;

/// What the disk guard starts with.
pub struct DiskGuardArgs {
    /// Thresholds and the watched path.
    pub settings: DiskGuardSettings,
    /// Where it publishes each measurement.
    pub status: DiskStatus,
    /// Told to close every recording when the level turns critical.
    pub streams: ActorRef<StreamSupervisorMsg>,
    /// Where `upload.disk_low` goes on each move to low or critical.
    pub hooks: crate::hooks::HookEmitter,
}

/// Messages to the disk guard.
#[derive(RactorMessage)]
pub enum DiskGuardMsg {
    /// Measure now (sent by its own interval timer).
    Tick,
    /// A measurement finished (sent by its own measuring task).
    Measured(Result<u64, String>),
    /// Test hook: pretend the file system has this many free bytes (`None`: measure
    /// again); replies once the level is in effect.
    #[cfg(any(test, feature = "fault-injection"))]
    OverrideFree(Option<u64>, ractor::RpcReplyPort<()>),
}

/// The disk guard's state.
pub struct DiskGuardState {
    settings: DiskGuardSettings,
    status: DiskStatus,
    streams: ActorRef<StreamSupervisorMsg>,
    hooks: crate::hooks::HookEmitter,
    level: DiskLevel,
    measuring: bool,
    /// Whether the last measurement failed (logged once per failure streak).
    failing: bool,
    #[cfg(any(test, feature = "fault-injection"))]
    override_free: Option<u64>,
}

impl DiskGuardState {
    fn apply(&mut self, free: u64) {
        let level = DiskLevel::classify(free, &self.settings);
        self.status.set(free, level);
        if level == self.level {
            return;
        }
        let path = self.settings.path.display().to_string();
        let (min, hard) = (
            self.settings.min_free_bytes,
            self.settings.hard_min_free_bytes,
        );
        if level > self.level {
            self.hooks.emit_nowait(crate::hooks::events::disk_low(
                &path,
                free,
                if level == DiskLevel::Critical {
                    hard
                } else {
                    min
                },
                level == DiskLevel::Critical,
            ));
        }
        match level {
            DiskLevel::Ok => tracing::info!(
                %path, free_bytes = free, min_free_bytes = min,
                "disk space recovered: new recordings are accepted again"
            ),
            DiskLevel::Low => tracing::warn!(
                %path, free_bytes = free, min_free_bytes = min,
                "disk space low: new recordings are refused until space is freed"
            ),
            DiskLevel::Critical => {
                tracing::error!(
                    %path, free_bytes = free, hard_min_free_bytes = hard,
                    "disk space critical: closing every open recording"
                );
                if self
                    .streams
                    .cast(StreamSupervisorMsg::DiskCritical)
                    .is_err()
                {
                    tracing::error!("stream supervisor gone; cannot close recordings");
                }
            }
        }
        self.level = level;
    }
}

impl Actor for DiskGuard {
    type Msg = DiskGuardMsg;
    type State = DiskGuardState;
    type Arguments = DiskGuardArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<DiskGuardMsg>,
        args: DiskGuardArgs,
    ) -> Result<DiskGuardState, ActorProcessingErr> {
        if args.settings.min_free_bytes > 0 {
            myself.send_interval(args.settings.interval, || DiskGuardMsg::Tick);
            let _ = myself.cast(DiskGuardMsg::Tick);
        }
        Ok(DiskGuardState {
            settings: args.settings,
            status: args.status,
            streams: args.streams,
            hooks: args.hooks,
            level: DiskLevel::Ok,
            measuring: false,
            failing: false,
            #[cfg(any(test, feature = "fault-injection"))]
            override_free: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<DiskGuardMsg>,
        msg: DiskGuardMsg,
        state: &mut DiskGuardState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DiskGuardMsg::Tick => {
                #[cfg(any(test, feature = "fault-injection"))]
                if let Some(free) = state.override_free {
                    state.apply(free);
                    return Ok(());
                }
                if state.measuring {
                    return Ok(());
                }
                state.measuring = true;
                let path = state.settings.path.clone();
                tokio::spawn(async move {
                    let measured = tokio::task::spawn_blocking(move || free_bytes(&path))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.map_err(|e| e.to_string()));
                    let _ = myself.cast(DiskGuardMsg::Measured(measured));
                });
            }
            DiskGuardMsg::Measured(result) => {
                state.measuring = false;
                match result {
                    Ok(free) => {
                        state.failing = false;
                        #[cfg(any(test, feature = "fault-injection"))]
                        if state.override_free.is_some() {
                            return Ok(());
                        }
                        state.apply(free);
                    }
                    Err(error) => {
                        if !state.failing {
                            tracing::warn!(path = %state.settings.path.display(), %error,
                                "cannot measure free disk space; keeping the last level");
                        }
                        state.failing = true;
                    }
                }
            }
            #[cfg(any(test, feature = "fault-injection"))]
            DiskGuardMsg::OverrideFree(free, reply) => {
                state.override_free = free;
                match free {
                    Some(free) => state.apply(free),
                    None => {
                        // Measure now, on this loop: a test hook, so a short blocking call
                        // is acceptable here.
                        if let Ok(free) = free_bytes(&state.settings.path) {
                            state.apply(free);
                        }
                    }
                }
                let _ = reply.send(());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(min: u64, hard: u64) -> DiskGuardSettings {
        DiskGuardSettings {
            min_free_bytes: min,
            hard_min_free_bytes: hard,
            ..DiskGuardSettings::default()
        }
    }

    #[test]
    fn levels_follow_the_two_thresholds() {
        let s = settings(1000, 250);
        assert_eq!(DiskLevel::classify(5000, &s), DiskLevel::Ok);
        assert_eq!(DiskLevel::classify(1000, &s), DiskLevel::Ok);
        assert_eq!(DiskLevel::classify(999, &s), DiskLevel::Low);
        assert_eq!(DiskLevel::classify(250, &s), DiskLevel::Low);
        assert_eq!(DiskLevel::classify(249, &s), DiskLevel::Critical);
        assert_eq!(DiskLevel::classify(0, &settings(0, 0)), DiskLevel::Ok);
    }

    #[test]
    fn free_bytes_of_a_real_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).unwrap() > 0);
        assert!(free_bytes(&dir.path().join("missing")).is_err());
    }
}
