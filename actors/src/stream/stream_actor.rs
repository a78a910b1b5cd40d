//! [`StreamActor`]: one live stream.
//!
//! It owns the stream's latest codec configurations and its frame cache (the frames since
//! the last video keyframe, plus what a failed recorder still needs replayed; see
//! `gop.rs`), numbers every frame and fans frames out to its recordings. It supervises one
//! [`RecorderSession`] per running recording and one [`RotationTimer`] per rotating
//! recording, both spawned linked. Restart policy for recorder sessions lives here: a
//! session that fails is restarted after a backoff (`backoff_base`, doubled per recent
//! restart) from the recording's last checkpoint, which the stream actor keeps, and is
//! replayed from the cache so the same recording continues with no frame lost or written
//! twice; past `max_restarts` within `within` the recording is closed from its checkpoint
//! with outcome `failed` while the stream and its other recordings go on. Recorder
//! failures never reach the publisher.
//!
//! It is spawned linked by the [`super::StreamSupervisor`] on publish and is not restarted:
//! it stops after `Unpublish` (or shutdown) once its recordings are closed, and the
//! supervisor then drops it from the registry. It tells the supervisor each time it
//! starts or stops having a running recording, which keeps the node's counts.
//!
//! Frames go to a session in batches: a recording's [`BatchClock`] says which frame makes
//! the session's muxer close a fragment, and the frames up to it are sent as one message
//! (the cache holds them meanwhile), so a session runs a few steps per second, not one per
//! frame. Starts, restarts and closes send what is cached at once.
//!
//! Mailbox: unbounded (ractor's mailboxes are). Its only high-rate sender is one ingest
//! connection, paced by the publisher's socket; what it queues for each recorder session
//! is bounded by [`MAX_IN_FLIGHT_BYTES`].

use super::gop::{Dropped, FrameCache};
use super::{
    PublishRequest, RecordError, RecordingChange, RecordingInfo, RecordingStatus, StreamInfo,
    StreamMsg, StreamSupervisorMsg,
};
use crate::hooks::{events, HookEmitter};
use crate::recorder::{
    finalize_failed, recording_info, unix_ms, BatchClock, Outcome, RecorderSession,
    RecorderSessionArgs, RecorderSessionMsg, RecorderSettings, RecordingState, RotationTimer,
    RotationTimerArgs, RotationTimerMsg,
};
use crate::uploader::UploaderMsg;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use recnode_media::{CodecConfig, MediaEvent, TrackKind};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// A recorder session with more than this many bytes of frames queued is failed (and restarted).
pub(crate) const MAX_IN_FLIGHT_BYTES: u64 = 64 * 1024 * 1024;
/// The longest wait before a restart, however many restarts came before.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The stream actor (one per live stream).
pub struct StreamActor;

/// What a stream actor starts from.
pub struct StreamActorArgs {
    /// The accepted publish request.
    pub(crate) request: PublishRequest,
    /// The stream supervisor, told when the stream starts or stops being recorded.
    pub(crate) supervisor: ActorRef<StreamSupervisorMsg>,
    /// How recordings are made.
    pub(crate) settings: Arc<RecorderSettings>,
    /// Where finished files go.
    pub(crate) uploader: ActorRef<UploaderMsg>,
    /// Where stream and record events go.
    pub(crate) hooks: HookEmitter,
}

/// Messages a stream actor gets from its supervisor and its own children; opaque outside this crate.
pub struct StreamInternal(pub(crate) Internal);

/// The internal messages of a stream actor.
pub(crate) enum Internal {
    /// Start a recording if the name matches `auto_streams` (sent to itself on start).
    AutoStart,
    /// API: start recording.
    Start {
        base_dir: Option<String>,
        reply: RpcReplyPort<Result<RecordingInfo, RecordError>>,
    },
    /// API: stop the running recording.
    Stop(RpcReplyPort<Result<RecordingInfo, RecordError>>),
    /// API: recording status.
    Status(RpcReplyPort<RecordingStatus>),
    /// For `ListStreams`.
    Info(RpcReplyPort<StreamInfo>),
    /// Shutdown: close every recording, then reply and stop.
    Close(Option<RpcReplyPort<()>>),
    /// A recorder session's new durable state.
    Checkpoint {
        recording: u64,
        state: Box<RecordingState>,
    },
    /// A rotation timer fired.
    Rotate(u64),
    /// A backoff ended: restart the recording's session.
    Restart(u64),
    /// The ingest can ask its publisher for a keyframe (WHIP's PLI) through this.
    KeyframeSource(KeyframeRequester),
}

/// Asks a stream's publisher for a keyframe; the argument says why, for its log.
pub(crate) type KeyframeRequester = Arc<dyn Fn(&'static str) + Send + Sync>;

impl StreamInternal {
    pub(crate) fn checkpoint(recording: u64, state: RecordingState) -> Self {
        StreamInternal(Internal::Checkpoint {
            recording,
            state: Box::new(state),
        })
    }

    pub(crate) fn rotate(recording: u64) -> Self {
        StreamInternal(Internal::Rotate(recording))
    }

    /// Tells the stream actor how to ask its publisher for a keyframe.
    pub(crate) fn keyframe_source(requester: KeyframeRequester) -> Self {
        StreamInternal(Internal::KeyframeSource(requester))
    }
}

/// Where a recording is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Closing(Outcome),
}

/// One recording of this stream.
struct Recording {
    state: RecordingState,
    session: Option<ActorRef<RecorderSessionMsg>>,
    timer: Option<ActorRef<RotationTimerMsg>>,
    phase: Phase,
    /// Frames numbered this or later belong to the next recording (rotation).
    end_seq: Option<u64>,
    /// The next frame to send to the session.
    next_send: u64,
    /// Where the session's muxer closes fragments: when to send the frames held back.
    clock: BatchClock,
    /// The next frame to feed `clock`.
    clock_seq: u64,
    restart_times: VecDeque<Instant>,
    /// Rotate at the next video keyframe.
    rotate_pending: bool,
    in_flight: Arc<AtomicU64>,
    first_media_s: Option<f64>,
    last_media_s: f64,
    base_dir: Option<String>,
    /// `record.started` was emitted (it waits for `stream.started`).
    announced: bool,
    /// Test hook: fail the next session as soon as it starts.
    #[cfg(any(test, feature = "fault-injection"))]
    fail_on_start: bool,
}

#[derive(Clone, Copy)]
enum Child {
    Session(u64),
    Timer(u64),
}

/// A live stream's state.
pub struct StreamActorState {
    request: PublishRequest,
    supervisor: ActorRef<StreamSupervisorMsg>,
    /// Whether the supervisor was last told the stream is being recorded.
    reported_recording: bool,
    settings: Arc<RecorderSettings>,
    uploader: ActorRef<UploaderMsg>,
    hooks: HookEmitter,
    /// How to ask the publisher for a keyframe, when its ingest can (WHIP).
    keyframes: Option<KeyframeRequester>,
    /// `stream.started` was emitted: on the first frame, or when the stream closes first.
    announced: bool,
    /// Why the stream is closing: `unpublished` or `shutdown`.
    close_reason: &'static str,
    started_at_ms: u64,
    configs: [Option<CodecConfig>; 2],
    cache: FrameCache,
    recordings: BTreeMap<u64, Recording>,
    children: HashMap<ActorId, Child>,
    next_recording: u64,
    last_record_id: u64,
    closing: bool,
    close_waiters: Vec<RpcReplyPort<()>>,
    /// The last recording that failed for good: its info, why, and its restarts.
    last_failed: Option<(RecordingInfo, String, u32)>,
    span: tracing::Span,
}

/// Whether `name` matches `pattern`, where `*` matches any (possibly empty) run of characters.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

fn track_index(kind: TrackKind) -> usize {
    match kind {
        TrackKind::Video => 0,
        TrackKind::Audio => 1,
    }
}

impl StreamActorState {
    fn stream(&self) -> &str {
        &self.request.stream
    }

    fn has_video(&self) -> bool {
        self.configs[0].is_some()
    }

    fn running(&self) -> Option<u64> {
        self.recordings
            .iter()
            .rev()
            .find(|(_, r)| r.phase == Phase::Running)
            .map(|(id, _)| *id)
    }

    fn configs(&self) -> Vec<CodecConfig> {
        self.configs.iter().flatten().cloned().collect()
    }

    /// Emits `stream.started` once the stream's codecs are known (its first frame, or its
    /// close if no frame came), then `record.started` for each recording not yet announced,
    /// so a consumer always sees the stream start before its recordings.
    fn announce_stream(&mut self) {
        if !self.announced {
            self.announced = true;
            let r = &self.request;
            self.hooks.emit_nowait(events::stream_started(
                &r.stream,
                &r.app,
                r.protocol.as_str(),
                &self.configs(),
                &r.remote,
            ));
        }
        self.announce();
    }

    /// Emits `record.started` for each recording not yet announced, once the stream is.
    fn announce(&mut self) {
        if !self.announced {
            return;
        }
        for rec in self.recordings.values_mut() {
            if !rec.announced {
                rec.announced = true;
                let state = &rec.state;
                let mpd = state
                    .dash
                    .as_ref()
                    .map_or("", |_| state.info.mpd_path.as_str());
                let flv = state.flv.as_ref().map_or("", |f| f.key.as_str());
                self.hooks.emit_nowait(state.record_ref().started(mpd, flv));
            }
        }
    }

    /// Tells the supervisor when the stream starts or stops having a running recording
    /// (its counts for the cluster heartbeat and `/metrics`), once per change.
    fn report_recording(&mut self, myself: &ActorRef<StreamMsg>) {
        let recording = self.running().is_some();
        if recording != self.reported_recording {
            self.reported_recording = recording;
            let change = RecordingChange {
                actor: myself.get_id(),
                recording,
            };
            // A stopped supervisor is stopping this actor too.
            let _ = self
                .supervisor
                .cast(StreamSupervisorMsg::RecordingChanged(change));
        }
    }

    /// Asks the publisher for a keyframe, if its ingest can.
    fn want_keyframe(&self, why: &'static str) {
        if let Some(request) = &self.keyframes {
            request(why);
        }
    }

    /// Starts a recording whose first frame is `first_seq`.
    async fn start_recording(
        &mut self,
        myself: &ActorRef<StreamMsg>,
        base_dir: Option<String>,
        first_seq: u64,
    ) -> Result<RecordingInfo, RecordError> {
        let now_ms = unix_ms();
        let secs = (now_ms / 1000).max(self.last_record_id + 1);
        // A rotated base_dir recording names its successor `{parent}/{record_id}` (see
        // `rotated_base_dir`); API base_dirs cannot contain '{'.
        let templated = base_dir.as_deref().is_some_and(|d| d.contains(RECORD_ID));
        let base_dir = base_dir.map(|d| d.replace(RECORD_ID, &format!("{secs:010}")));
        let info = recording_info(self.stream(), base_dir.as_deref(), secs)?;
        if base_dir.is_none() || templated {
            self.last_record_id = secs;
        }
        let id = self.next_recording;
        self.next_recording += 1;
        let state = RecordingState::new(
            &self.settings,
            &self.request.stream,
            &self.request.app,
            info.clone(),
            now_ms,
            first_seq,
        );
        let recording = Recording {
            state,
            session: None,
            timer: None,
            phase: Phase::Running,
            end_seq: None,
            next_send: first_seq,
            clock: BatchClock::new(self.settings.segment_seconds),
            clock_seq: first_seq,
            restart_times: VecDeque::new(),
            rotate_pending: false,
            in_flight: Arc::new(AtomicU64::new(0)),
            first_media_s: None,
            last_media_s: 0.0,
            base_dir,
            announced: false,
            #[cfg(any(test, feature = "fault-injection"))]
            fail_on_start: false,
        };
        self.recordings.insert(id, recording);
        if let Err(e) = self.spawn_session(myself, id, false).await {
            self.recordings.remove(&id);
            tracing::error!(record_dir = %info.record_dir, "recording could not start: {e}");
            return Err(RecordError::Failed {
                stream: self.request.stream.clone(),
                message: e,
            });
        }
        if self.settings.max_recording_seconds > 0 {
            let args = RotationTimerArgs {
                stream: myself.clone(),
                recording: id,
                after: Duration::from_secs(self.settings.max_recording_seconds),
            };
            match Actor::spawn_linked(None, RotationTimer, args, myself.get_cell()).await {
                Ok((timer, _)) => {
                    self.children.insert(timer.get_id(), Child::Timer(id));
                    if let Some(r) = self.recordings.get_mut(&id) {
                        r.timer = Some(timer);
                    }
                }
                Err(e) => tracing::error!(record_dir = %info.record_dir,
                    "rotation timer did not start; this recording will not rotate: {e}"),
            }
        }
        tracing::info!(record_dir = %info.record_dir, "recording started");
        self.announce();
        let keyframe_cached = self
            .cache
            .get(first_seq)
            .is_some_and(|f| f.frame.track == TrackKind::Video && f.frame.keyframe);
        if self.has_video() && !keyframe_cached {
            // The recording waits for the next keyframe: ask for it now.
            self.want_keyframe("recording started");
        }
        self.rewind_clock(id);
        self.pump(id);
        Ok(info)
    }

    /// Spawns the session of recording `id` from its state (a checkpoint when `resumed`).
    async fn spawn_session(
        &mut self,
        myself: &ActorRef<StreamMsg>,
        id: u64,
        resumed: bool,
    ) -> Result<(), String> {
        let configs = self.configs();
        let Some(rec) = self.recordings.get_mut(&id) else {
            return Err("no such recording".into());
        };
        let in_flight = Arc::new(AtomicU64::new(0));
        let args = RecorderSessionArgs {
            state: rec.state.clone(),
            resumed,
            spool_dir: self.settings.spool_dir.clone(),
            segment_seconds: self.settings.segment_seconds,
            configs,
            uploader: self.uploader.clone(),
            stream: myself.clone(),
            recording: id,
            in_flight: in_flight.clone(),
            hooks: self.hooks.clone(),
        };
        let (session, _) = Actor::spawn_linked(None, RecorderSession, args, myself.get_cell())
            .await
            .map_err(|e| e.to_string())?;
        self.children.insert(session.get_id(), Child::Session(id));
        if let Some(rec) = self.recordings.get_mut(&id) {
            rec.session = Some(session);
            rec.in_flight = in_flight;
            if resumed {
                rec.next_send = rec.state.resume_seq();
            }
        }
        Ok(())
    }

    /// Sends recording `id` every cached frame it has not had yet (and, when closing, `Close`).
    fn pump(&mut self, id: u64) {
        let first = self.cache.first_seq();
        let stream = self.request.stream.clone();
        let Some(rec) = self.recordings.get_mut(&id) else {
            return;
        };
        let Some(session) = rec.session.clone() else {
            return;
        };
        if rec.next_send < first {
            tracing::warn!(record_dir = %rec.state.info.record_dir, lost = first - rec.next_send,
                "frames the recorder needed were already dropped from the cache; they are missing");
            rec.next_send = first;
        }
        let end = rec.end_seq.unwrap_or(u64::MAX);
        let mut batch = Vec::new();
        let mut bytes = 0u64;
        for f in self.cache.since(rec.next_send) {
            if f.seq >= end {
                break;
            }
            let t = f.frame.dts_seconds();
            rec.first_media_s.get_or_insert(t);
            rec.last_media_s = rec.last_media_s.max(t);
            bytes += f.frame.data.len() as u64;
            batch.push(f.clone());
        }
        rec.clock.sent();
        if let Some(last) = batch.last() {
            if rec.in_flight.fetch_add(bytes, Ordering::Relaxed) + bytes > MAX_IN_FLIGHT_BYTES {
                tracing::error!(stream = %stream, record_dir = %rec.state.info.record_dir,
                    "recorder fell {MAX_IN_FLIGHT_BYTES} bytes behind; failing it");
                session.stop(Some("fell behind".into()));
                rec.session = None;
                return;
            }
            rec.next_send = last.seq + 1;
            // A stopped session's failure reaches us as a supervision event.
            let _ = session.cast(RecorderSessionMsg::Frames(batch));
        }
        if let Phase::Closing(outcome) = rec.phase {
            let all_sent = rec.end_seq.is_none_or(|end| rec.next_send >= end);
            if all_sent {
                let _ = session.cast(RecorderSessionMsg::Close(outcome));
            }
        }
    }

    /// Feeds the newest cached frame to the clock of every running recording and sends
    /// each recording whose batch it ends what is held back.
    fn pump_due(&mut self) {
        let has_video = self.has_video();
        let Some(newest) = self.cache.get(self.cache.next_seq().wrapping_sub(1)) else {
            return;
        };
        let mut due = Vec::new();
        for (id, rec) in self.recordings.iter_mut() {
            if rec.phase != Phase::Running || newest.seq < rec.clock_seq {
                continue;
            }
            rec.clock_seq = newest.seq + 1;
            if rec.clock.on_frame(&newest.frame, has_video) && rec.session.is_some() {
                due.push(*id);
            }
        }
        for id in due {
            self.pump(id);
        }
    }

    /// Restarts recording `id`'s clock at its next frame to send and feeds it the cached
    /// frames from there, as its (new) session's muxer will see them.
    fn rewind_clock(&mut self, id: u64) {
        let has_video = self.has_video();
        let Some(rec) = self.recordings.get_mut(&id) else {
            return;
        };
        let end = rec.end_seq.unwrap_or(u64::MAX);
        rec.clock = BatchClock::new(self.settings.segment_seconds);
        rec.clock_seq = rec.next_send;
        for f in self.cache.since(rec.next_send) {
            if f.seq >= end {
                break;
            }
            rec.clock.on_frame(&f.frame, has_video);
            rec.clock_seq = f.seq + 1;
        }
    }

    /// Forgets cached frames no recording needs any more, then applies the cache bounds.
    fn trim_cache(&mut self) {
        let needed = self
            .recordings
            .values()
            .map(|r| {
                let resume = r.state.resume_seq();
                if r.session.is_some() {
                    resume.min(r.next_send)
                } else {
                    resume
                }
            })
            .min()
            .unwrap_or(u64::MAX);
        self.cache.trim(needed);
        match self.cache.enforce_bounds() {
            Dropped::Nothing => {}
            Dropped::BeforeKeyframe(n) => tracing::warn!(
                frames = n,
                "frame cache over its bounds: dropped frames before the last keyframe \
                 (a recorder restarting now would miss them)"
            ),
            Dropped::Everything(n) => tracing::warn!(
                frames = n,
                "frame cache over its bounds with one GOP: dropped it; new recordings \
                 start at the next keyframe"
            ),
        }
    }

    /// Closes recording `id` with `outcome` (its session gets `Close` once it has every frame).
    fn close_recording(&mut self, id: u64, outcome: Outcome, end_seq: Option<u64>) {
        let Some(rec) = self.recordings.get_mut(&id) else {
            return;
        };
        if rec.phase != Phase::Running {
            return;
        }
        rec.phase = Phase::Closing(outcome);
        // Its `record.stopped` must not come before its `record.started`.
        let announce = !rec.announced;
        if announce {
            self.announce_stream();
        }
        let Some(rec) = self.recordings.get_mut(&id) else {
            return;
        };
        // Frames that arrive from now on are not part of this recording, even on a replay.
        rec.end_seq = Some(end_seq.unwrap_or(self.cache.next_seq()));
        rec.rotate_pending = false;
        if let Some(timer) = rec.timer.take() {
            timer.stop(None);
        }
        if rec.session.is_some() {
            self.pump(id);
        } else if rec.state.resume_seq() == u64::MAX {
            // Nothing to write: no format is recorded.
            self.recordings.remove(&id);
        }
    }

    /// Rotates recording `id` at frame `at`: frames before it stay in the old record_dir.
    async fn rotate(&mut self, myself: &ActorRef<StreamMsg>, id: u64, at: u64) {
        let Some(rec) = self.recordings.get(&id) else {
            return;
        };
        let base_dir = rec.base_dir.as_deref().and_then(rotated_base_dir);
        let old_dir = rec.state.info.record_dir.clone();
        let old = rec.state.record_ref();
        self.close_recording(id, Outcome::Rotated, Some(at));
        match self.start_recording(myself, base_dir, at).await {
            Ok(info) => {
                tracing::info!(from = %old_dir, to = %info.record_dir, "recording rotated");
                self.hooks
                    .emit_nowait(old.rotated(&info.record_dir, &info.record_id));
            }
            Err(e) => {
                tracing::error!(from = %old_dir, "rotation could not start the next recording: {e}")
            }
        }
    }

    /// Handles a session that failed (or stopped while it should be running).
    fn on_session_failure(&mut self, myself: &ActorRef<StreamMsg>, id: u64, error: String) {
        let policy = self.settings.restart;
        let stream = self.request.stream.clone();
        let Some(rec) = self.recordings.get_mut(&id) else {
            return;
        };
        rec.session = None;
        let session = format!("{}#{}", rec.state.info.record_dir, rec.state.restarts);
        let now = Instant::now();
        while rec
            .restart_times
            .front()
            .is_some_and(|t| now.duration_since(*t) > policy.within)
        {
            rec.restart_times.pop_front();
        }
        if rec.restart_times.len() >= policy.max_restarts as usize {
            tracing::error!(stream = %stream, session = %session, restarts = rec.state.restarts,
                "recorder failed {} times within {:?}; recording marked failed: {error}",
                rec.restart_times.len() + 1, policy.within);
            let Some(rec) = self.recordings.remove(&id) else {
                return;
            };
            if let Some(timer) = rec.timer {
                timer.stop(None);
            }
            self.hooks.emit_nowait(
                rec.state
                    .record_ref()
                    .failed(&error, rec.state.restarts + 1),
            );
            self.last_failed = Some((rec.state.info.clone(), error, rec.state.restarts));
            let spool = self.settings.spool_dir.clone();
            let uploader = self.uploader.clone();
            let hooks = self.hooks.clone();
            let seconds = self.settings.segment_seconds;
            let state = rec.state;
            let span = self.span.clone();
            tokio::task::spawn_blocking(move || {
                let _g = span.enter();
                if let Err(e) = finalize_failed(state, &spool, uploader, hooks, seconds) {
                    tracing::error!("closing the failed recording left it unfinished: {e}");
                }
            });
            self.maybe_finish_close(myself);
            return;
        }
        rec.restart_times.push_back(now);
        rec.state.restarts += 1;
        let exp = u32::try_from(rec.restart_times.len() - 1)
            .unwrap_or(u32::MAX)
            .min(16);
        let backoff = policy
            .backoff_base
            .saturating_mul(1u32 << exp)
            .min(MAX_BACKOFF);
        tracing::warn!(stream = %stream, session = %session, restarts = rec.state.restarts,
            backoff_ms = backoff.as_millis() as u64,
            "recorder failed; restarting it to continue the same recording: {error}");
        self.hooks
            .emit_nowait(rec.state.record_ref().restarted(rec.state.restarts, &error));
        // The timer task is detached: it delivers `Restart` (or nothing, if we are gone).
        drop(myself.send_after(backoff, move || {
            StreamMsg::Internal(StreamInternal(Internal::Restart(id)))
        }));
    }

    /// After unpublish or shutdown: stop once every recording is closed.
    fn maybe_finish_close(&mut self, myself: &ActorRef<StreamMsg>) {
        if self.closing && self.recordings.is_empty() {
            for waiter in self.close_waiters.drain(..) {
                let _ = waiter.send(());
            }
            tracing::info!("stream closed");
            self.announce_stream();
            let r = &self.request;
            self.hooks.emit_nowait(events::stream_stopped(
                &r.stream,
                &r.app,
                r.protocol.as_str(),
                unix_ms().saturating_sub(self.started_at_ms),
                self.close_reason,
            ));
            myself.stop(Some("unpublished".into()));
        }
    }

    fn begin_close(
        &mut self,
        myself: &ActorRef<StreamMsg>,
        reply: Option<RpcReplyPort<()>>,
        reason: &'static str,
    ) {
        if !self.closing {
            self.close_reason = reason;
        }
        self.closing = true;
        self.close_waiters.extend(reply);
        let ids: Vec<u64> = self.recordings.keys().copied().collect();
        for id in ids {
            self.close_recording(id, Outcome::Completed, None);
        }
        self.maybe_finish_close(myself);
    }

    fn status(&self) -> RecordingStatus {
        if let Some(rec) = self.running().and_then(|id| self.recordings.get(&id)) {
            return RecordingStatus {
                recording: true,
                current: Some(rec.state.info.clone()),
                duration_seconds: rec
                    .first_media_s
                    .map_or(0.0, |first| (rec.last_media_s - first).max(0.0)),
                restarts: rec.state.restarts,
                failed: None,
            };
        }
        match &self.last_failed {
            Some((info, why, restarts)) => RecordingStatus {
                recording: false,
                current: Some(info.clone()),
                duration_seconds: 0.0,
                restarts: *restarts,
                failed: Some(why.clone()),
            },
            None => RecordingStatus {
                recording: false,
                current: None,
                duration_seconds: 0.0,
                restarts: 0,
                failed: None,
            },
        }
    }

    async fn on_config(&mut self, myself: &ActorRef<StreamMsg>, config: CodecConfig) {
        let i = track_index(config.kind());
        if self.configs[i].as_ref() == Some(&config) {
            return;
        }
        let changed = self.configs[i].is_some();
        self.configs[i] = Some(config.clone());
        if changed {
            // A recording keeps one configuration per track: continue in a new record_dir.
            tracing::info!(track = ?config.kind(), "codec configuration changed; rotating recordings");
            let running: Vec<u64> = self
                .recordings
                .iter()
                .filter(|(_, r)| r.phase == Phase::Running)
                .map(|(id, _)| *id)
                .collect();
            for id in running {
                if self.has_video() {
                    if let Some(r) = self.recordings.get_mut(&id) {
                        r.rotate_pending = true;
                    }
                } else {
                    let at = self.cache.next_seq();
                    self.rotate(myself, id, at).await;
                }
            }
            return;
        }
        for rec in self.recordings.values() {
            if let (Phase::Running, Some(session)) = (rec.phase, &rec.session) {
                let _ = session.cast(RecorderSessionMsg::Config(config.clone()));
            }
        }
    }

    async fn on_frame(&mut self, myself: &ActorRef<StreamMsg>, frame: recnode_media::Frame) {
        let starts_gop = frame.track == TrackKind::Video && frame.keyframe;
        let starts_gop = starts_gop || !self.has_video();
        let seq = self.cache.push(frame);
        if !self.announced {
            self.announce_stream();
        }
        if starts_gop {
            let due: Vec<u64> = self
                .recordings
                .iter()
                .filter(|(_, r)| r.phase == Phase::Running && r.rotate_pending)
                .map(|(id, _)| *id)
                .collect();
            for id in due {
                self.rotate(myself, id, seq).await;
            }
        }
        self.pump_due();
        self.trim_cache();
    }
}

/// Stands for the new record_id in a rotated recording's base_dir.
const RECORD_ID: &str = "{record_id}";

/// The base_dir of the recording that follows one with `base_dir` after a rotation: a
/// sibling `{parent}/{record_id}` when `base_dir` ends in a record_id; else the default
/// layout `{stream}/{record_id}`.
fn rotated_base_dir(base_dir: &str) -> Option<String> {
    let dir = base_dir.trim_end_matches('/');
    let (parent, last) = dir.rsplit_once('/').unwrap_or(("", dir));
    let is_record_id = last.len() == 10 && last.bytes().all(|b| b.is_ascii_digit());
    match (is_record_id, parent.is_empty()) {
        (true, false) => Some(format!("{parent}/{RECORD_ID}")),
        (true, true) => Some(RECORD_ID.to_string()),
        (false, _) => None,
    }
}

impl Actor for StreamActor {
    type Msg = StreamMsg;
    type State = StreamActorState;
    type Arguments = StreamActorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: StreamActorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let span = tracing::info_span!("stream", stream = %args.request.stream);
        span.in_scope(|| {
            tracing::info!(app = %args.request.app, remote = %args.request.remote, "stream live")
        });
        // Handled before any media: the publisher gets this actor only after pre_start.
        let _ = myself.cast(StreamMsg::Internal(StreamInternal(Internal::AutoStart)));
        Ok(StreamActorState {
            request: args.request,
            supervisor: args.supervisor,
            reported_recording: false,
            settings: args.settings,
            uploader: args.uploader,
            hooks: args.hooks,
            keyframes: None,
            announced: false,
            close_reason: "unpublished",
            started_at_ms: unix_ms(),
            configs: [None, None],
            cache: FrameCache::default(),
            recordings: BTreeMap::new(),
            children: HashMap::new(),
            next_recording: 1,
            last_record_id: 0,
            closing: false,
            close_waiters: Vec::new(),
            last_failed: None,
            span,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let span = state.span.clone();
        async {
        match msg {
            StreamMsg::Media(MediaEvent::Config(config)) => {
                if !state.closing {
                    state.on_config(&myself, config).await;
                }
            }
            StreamMsg::Media(MediaEvent::Frame(frame)) => {
                if !state.closing {
                    state.on_frame(&myself, frame).await;
                }
            }
            StreamMsg::Unpublish => state.begin_close(&myself, None, "unpublished"),
            StreamMsg::Internal(StreamInternal(internal)) => {
                handle_internal(&myself, internal, state).await
            }
            #[cfg(any(test, feature = "fault-injection"))]
            StreamMsg::InjectFault(fault) => match fault {
                super::StreamFault::FailRecorder => {
                    if let Some(rec) = state.running().and_then(|id| state.recordings.get_mut(&id)) {
                        tracing::warn!(record_dir = %rec.state.info.record_dir, "injecting a recorder failure");
                        match &rec.session {
                            Some(session) => {
                                let _ = session.cast(RecorderSessionMsg::FailNow);
                            }
                            // In backoff: the next session fails instead.
                            None => rec.fail_on_start = true,
                        }
                    }
                }
                super::StreamFault::FireRotationTimers => {
                    // What each timer's `Fire` leads to, applied in order with the media.
                    let timed: Vec<u64> = state
                        .recordings
                        .iter_mut()
                        .filter_map(|(id, r)| r.timer.take().map(|t| (id, t)))
                        .map(|(id, t)| {
                            t.stop(None);
                            *id
                        })
                        .collect();
                    for id in timed {
                        handle_internal(&myself, Internal::Rotate(id), state).await;
                    }
                }
            },
        }
        }
        .instrument(span)
        .await;
        state.report_recording(&myself);
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let _g = state.span.clone().entered();
        let (cell, failure) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, Some(err.to_string())),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                let _ = reason;
                (cell, None)
            }
            _ => return Ok(()),
        };
        match state.children.remove(&cell.get_id()) {
            Some(Child::Timer(id)) => {
                if let Some(rec) = state.recordings.get_mut(&id) {
                    if rec.timer.as_ref().map(|t| t.get_id()) == Some(cell.get_id()) {
                        rec.timer = None;
                    }
                }
            }
            Some(Child::Session(id)) => {
                let Some(rec) = state.recordings.get_mut(&id) else {
                    return Ok(());
                };
                rec.session = None;
                match (failure, rec.phase) {
                    (None, Phase::Closing(_)) => {
                        state.recordings.remove(&id);
                        state.maybe_finish_close(&myself);
                    }
                    (None, Phase::Running) => state.on_session_failure(
                        &myself,
                        id,
                        "recorder session stopped unexpectedly".into(),
                    ),
                    (Some(err), _) => state.on_session_failure(&myself, id, err),
                }
            }
            None => {}
        }
        state.report_recording(&myself);
        Ok(())
    }
}

async fn handle_internal(
    myself: &ActorRef<StreamMsg>,
    internal: Internal,
    state: &mut StreamActorState,
) {
    match internal {
        Internal::AutoStart => {
            let auto = state
                .settings
                .auto_streams
                .iter()
                .any(|p| glob_matches(p, &state.request.stream));
            if auto {
                let first = state.cache.gop_start();
                if let Err(e) = state.start_recording(myself, None, first).await {
                    tracing::error!("automatic recording did not start: {e}");
                }
            }
        }
        Internal::Start { base_dir, reply } => {
            let result = if state.closing {
                Err(RecordError::NotFound {
                    stream: state.request.stream.clone(),
                })
            } else if state.running().is_some() {
                Err(RecordError::AlreadyRecording {
                    stream: state.request.stream.clone(),
                })
            } else {
                let first = state.cache.gop_start();
                state.start_recording(myself, base_dir, first).await
            };
            let _ = reply.send(result);
        }
        Internal::Stop(reply) => {
            let result = match state.running() {
                Some(id) => {
                    let info = state.recordings.get(&id).map(|r| r.state.info.clone());
                    state.close_recording(id, Outcome::Completed, None);
                    info.ok_or(RecordError::NotRecording {
                        stream: state.request.stream.clone(),
                    })
                }
                None => Err(RecordError::NotRecording {
                    stream: state.request.stream.clone(),
                }),
            };
            let _ = reply.send(result);
        }
        Internal::Status(reply) => {
            let _ = reply.send(state.status());
        }
        Internal::Info(reply) => {
            let info = StreamInfo {
                stream: state.request.stream.clone(),
                app: state.request.app.clone(),
                protocol: state.request.protocol,
                codecs: state
                    .configs
                    .iter()
                    .flatten()
                    .map(|c| c.codec().name().to_string())
                    .collect(),
                recording: state.running().is_some(),
                started_at_ms: state.started_at_ms,
            };
            let _ = reply.send(info);
        }
        Internal::Close(reply) => state.begin_close(myself, reply, "shutdown"),
        Internal::KeyframeSource(requester) => state.keyframes = Some(requester),
        Internal::Checkpoint {
            recording,
            state: checkpoint,
        } => {
            if let Some(rec) = state.recordings.get_mut(&recording) {
                let restarts = rec.state.restarts;
                rec.state = *checkpoint;
                rec.state.restarts = restarts;
            }
            state.trim_cache();
        }
        Internal::Rotate(id) => {
            let has_video = state.has_video();
            let Some(rec) = state.recordings.get_mut(&id) else {
                return;
            };
            if rec.phase != Phase::Running {
                return;
            }
            if has_video {
                rec.rotate_pending = true;
            } else {
                let at = state.cache.next_seq();
                state.rotate(myself, id, at).await;
            }
        }
        Internal::Restart(id) => {
            let waiting = state
                .recordings
                .get(&id)
                .is_some_and(|r| r.session.is_none());
            if !waiting {
                return;
            }
            match state.spawn_session(myself, id, true).await {
                Ok(()) => {
                    if let Some(rec) = state.recordings.get(&id) {
                        tracing::info!(
                            session = %format!("{}#{}", rec.state.info.record_dir, rec.state.restarts),
                            from_seq = rec.next_send,
                            "recorder restarted; replaying from its checkpoint"
                        );
                    }
                    state.rewind_clock(id);
                    state.pump(id);
                    // The cache replays from the last keyframe; a fresh one also covers
                    // frames the cache had to drop.
                    state.want_keyframe("recorder restarted");
                    #[cfg(any(test, feature = "fault-injection"))]
                    if let Some(rec) = state.recordings.get_mut(&id) {
                        if std::mem::take(&mut rec.fail_on_start) {
                            if let Some(session) = &rec.session {
                                let _ = session.cast(RecorderSessionMsg::FailNow);
                            }
                        }
                    }
                }
                Err(e) => state.on_session_failure(myself, id, e),
            }
        }
    }
}
