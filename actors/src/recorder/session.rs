//! [`RecorderSession`]: one attempt at writing one recording.
//!
//! It owns the recording's muxers and open files (a `RecorderCore`: an fMP4 muxer and MPD
//! when DASH is on, an FLV writer when FLV is on) and runs every step of them on tokio's
//! blocking pool. A step is one batch of frames, which the stream actor cuts where the
//! muxer closes a fragment (see `batch.rs`). It supervises nothing. Its parent, the stream actor, spawns it linked,
//! feeds it codec configs and numbered frames, and restarts it with backoff when it
//! fails: after each durable step (a finished segment, an FLV fsync) the session sends its
//! checkpoint to the stream actor, which hands the latest one to the replacement session
//! so the same recording continues. Any I/O or muxing error makes the session return
//! `Err`; it never panics on purpose and never touches the publisher.
//!
//! Mailbox: unbounded (ractor's mailboxes are). The stream actor bounds what it queues
//! here: it counts the bytes in flight per session and fails a session that falls too far
//! behind (see `stream_actor.rs`).

use super::writer::{RecorderCore, StepReport};
use super::{Outcome, RecorderError, RecordingState, SeqFrame};
use crate::stream::{StreamInternal, StreamMsg};
use crate::uploader::UploaderMsg;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster_derive::RactorMessage;
use recnode_media::CodecConfig;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tracing::Instrument;

/// The recorder session actor (one per running recording attempt).
pub struct RecorderSession;

/// Messages to a recorder session, from its stream actor.
#[derive(RactorMessage)]
pub enum RecorderSessionMsg {
    /// A track's codec configuration (a new track; changed configs rotate the recording instead).
    Config(CodecConfig),
    /// The next frames of the stream, numbered, in order; frames already recorded are skipped.
    Frames(Vec<SeqFrame>),
    /// Finish the recording with this outcome, enqueue its files, then stop.
    Close(Outcome),
    /// Fail at once, as a write error would (tests only).
    #[cfg(any(test, feature = "fault-injection"))]
    FailNow,
}

/// What a recorder session starts from.
pub struct RecorderSessionArgs {
    /// The recording's durable state: new, or the last checkpoint of a failed predecessor.
    pub(crate) state: RecordingState,
    /// Whether this continues a recording whose previous session failed.
    pub(crate) resumed: bool,
    /// The spool root.
    pub(crate) spool_dir: PathBuf,
    /// Target segment length.
    pub(crate) segment_seconds: f64,
    /// Codec configurations known when the session starts.
    pub(crate) configs: Vec<CodecConfig>,
    /// Where finished files go.
    pub(crate) uploader: ActorRef<UploaderMsg>,
    /// The stream actor, which receives checkpoints.
    pub(crate) stream: ActorRef<StreamMsg>,
    /// The stream actor's number for this recording.
    pub(crate) recording: u64,
    /// Bytes of frames queued for this session and not yet written (shared with the stream actor).
    pub(crate) in_flight: Arc<AtomicU64>,
    /// Where the session's `record.segment` and `record.stopped` events go.
    pub(crate) hooks: crate::hooks::HookEmitter,
}

/// A running recorder session.
pub struct RecorderSessionState {
    /// `None` only while a step runs on the blocking pool.
    core: Option<RecorderCore>,
    stream: ActorRef<StreamMsg>,
    recording: u64,
    in_flight: Arc<AtomicU64>,
    span: tracing::Span,
    stream_name: String,
    record_dir: String,
}

impl RecorderSessionState {
    /// Runs one step of the core on the blocking pool and reports a new checkpoint.
    async fn step<F>(&mut self, f: F) -> Result<(), RecorderError>
    where
        F: FnOnce(&mut RecorderCore) -> Result<StepReport, RecorderError> + Send + 'static,
    {
        let Some(mut core) = self.core.take() else {
            return Err(self.lost("the previous step did not return its writer".into()));
        };
        let joined = tokio::task::spawn_blocking(move || {
            let result = f(&mut core);
            (core, result)
        })
        .await;
        let (core, result) = joined.map_err(|e| self.lost(e.to_string()))?;
        self.core = Some(core);
        let report = result?;
        if let Some(state) = report.checkpoint {
            self.checkpoint(state);
        }
        Ok(())
    }

    fn checkpoint(&self, state: RecordingState) {
        let msg = StreamMsg::Internal(StreamInternal::checkpoint(self.recording, state));
        // The stream actor only goes away after its sessions have stopped.
        let _ = self.stream.cast(msg);
    }

    fn lost(&self, message: String) -> RecorderError {
        RecorderError::WriterLost {
            stream: self.stream_name.clone(),
            record_dir: self.record_dir.clone(),
            message,
        }
    }
}

impl Actor for RecorderSession {
    type Msg = RecorderSessionMsg;
    type State = RecorderSessionState;
    type Arguments = RecorderSessionArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: RecorderSessionArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let span = tracing::info_span!(
            "recorder",
            stream = %args.state.stream,
            session = %format!("{}#{}", args.state.info.record_dir, args.state.restarts),
        );
        let stream_name = args.state.stream.clone();
        let record_dir = args.state.info.record_dir.clone();
        let resumed = args.resumed;
        let RecorderSessionArgs {
            state,
            spool_dir,
            segment_seconds,
            configs,
            uploader,
            hooks,
            ..
        } = args;
        let core = tokio::task::spawn_blocking(move || {
            RecorderCore::open(
                state,
                &spool_dir,
                uploader,
                hooks,
                configs,
                segment_seconds,
                resumed,
            )
        })
        .instrument(span.clone())
        .await
        .map_err(|e| format!("recording {record_dir} of stream {stream_name}: {e}"))??;
        span.in_scope(|| {
            tracing::info!(resumed, "recorder session started");
        });
        Ok(RecorderSessionState {
            core: Some(core),
            stream: args.stream,
            recording: args.recording,
            in_flight: args.in_flight,
            span,
            stream_name,
            record_dir,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let span = state.span.clone();
        match msg {
            RecorderSessionMsg::Config(config) => {
                state
                    .step(move |core| core.set_config(config))
                    .instrument(span)
                    .await?;
            }
            RecorderSessionMsg::Frames(frames) => {
                let bytes: u64 = frames.iter().map(|f| f.frame.data.len() as u64).sum();
                let result = state
                    .step(move |core| core.push_batch(frames))
                    .instrument(span)
                    .await;
                state.in_flight.fetch_sub(bytes, Ordering::Relaxed);
                result?;
            }
            RecorderSessionMsg::Close(outcome) => {
                state
                    .step(move |core| core.close(outcome).map(|()| StepReport::default()))
                    .instrument(span.clone())
                    .await?;
                if let Some(core) = &state.core {
                    state.checkpoint(core.state().clone());
                }
                span.in_scope(|| tracing::info!(outcome = outcome.as_str(), "recording closed"));
                myself.stop(Some("closed".into()));
            }
            #[cfg(any(test, feature = "fault-injection"))]
            RecorderSessionMsg::FailNow => {
                return Err(RecorderError::Injected {
                    stream: state.stream_name.clone(),
                    record_dir: state.record_dir.clone(),
                }
                .into());
            }
        }
        Ok(())
    }
}
