//! The blocking half of a recorder session: the muxers and the spool files.
//!
//! [`RecorderCore`] is owned by one [`super::RecorderSession`] and is moved into
//! `tokio::task::spawn_blocking` for every step (one batch of frames, one config, close),
//! then moved back; the session awaits each step, so steps run one at a time and in order.
//! We chose `spawn_blocking` per step over a dedicated writer thread because the session
//! must learn the result of every step before it reports a checkpoint (a checkpoint may
//! only name bytes that are fsynced), a panic in a step then simply fails the session, and
//! tokio's blocking pool grows with the number of fsyncs waiting at once (a fixed pool
//! would queue every stream behind one slow fsync). A step is a batch of frames that ends
//! where the muxer closes a fragment (see `batch.rs`), so there are a few steps per second
//! per recording, not one per frame.
//!
//! Durability: within a step, fragments and FLV tags are appended with plain writes; at the
//! end of the step every file written to is `fdatasync`ed once, before the step reports a
//! checkpoint. As a step ends where a fragment closes, each fMP4 fragment is durable as soon
//! as it closes, and a crash loses at most the open fragment. A finished segment is synced
//! before it is enqueued for upload. The FLV is synced at the end of a step that holds a
//! video keyframe or comes at least one second of media after its last sync. Files that
//! are replaced while recording (`manifest.mpd`, `session.json`) are written to a
//! temporary name and renamed over the old one, so a reader never sees half a file.

use super::retime::retime_fragment;
use super::{clock, track_index, DashCheckpoint, Outcome, RecorderError, RecordingState, SeqFrame};
use crate::hooks::HookEmitter;
use crate::uploader::{UploadJob, UploaderMsg};
use ractor::ActorRef;
use recnode_media::flv::{FlvWriter, FlvWriterOptions};
use recnode_media::fmp4::{
    init_file_name, segment_file_name, Fmp4Muxer, Fmp4Options, MuxOutput, SegmentInfo,
};
use recnode_media::{CodecConfig, TrackKind};
use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Numbers the live-manifest snapshots handed to the uploader, unique within the process.
static MANIFEST_SNAPSHOTS: AtomicU64 = AtomicU64::new(0);

/// Fsync the FLV at least this often, in seconds of media.
const FLV_SYNC_SECONDS: f64 = 1.0;

const TRACKS: [TrackKind; 2] = [TrackKind::Video, TrackKind::Audio];

/// What a step produced that the session must act on.
#[derive(Debug, Default)]
pub(crate) struct StepReport {
    /// The durable state changed: the new checkpoint to hand to the stream actor.
    pub checkpoint: Option<RecordingState>,
}

/// The fMP4 + DASH half of a session.
struct DashWriter {
    muxer: Fmp4Muxer,
    /// Frames before these (per track) are already in finished segments.
    skip_before: [u64; 2],
    /// Whether this session continues a recording that already has a time origin.
    resumed: bool,
    /// This muxer's own time zero: the first frame it was given.
    muxer_origin: Option<(i64, u32)>,
    /// Per track: added to every `tfdt` this muxer writes (a resumed session only).
    offsets: [Option<i64>; 2],
    /// Per track: the seq of the last frame given to the muxer (it holds that one back).
    last_pushed: [Option<u64>; 2],
    /// Per track: the open segment file.
    open: [Option<OpenSegment>; 2],
    /// Per track: the file number of this muxer's segment 1 (it numbers from 1 each session).
    number_base: [u32; 2],
}

/// A segment file being written.
struct OpenSegment {
    /// Its number in the recording.
    number: u32,
    file: File,
    path: PathBuf,
    /// Appended to since its last fsync.
    dirty: bool,
}

/// The FLV half of a session.
struct FlvFile {
    path: PathBuf,
    file: File,
    writer: Option<FlvWriter>,
    /// Tags of the current step, appended to the file at its end.
    buf: Vec<u8>,
    /// Frames before this are already in the file (or in `buf`).
    skip_before: u64,
    /// Whether `buf` holds a video keyframe (the step then ends with an fsync).
    keyframe_in_buf: bool,
    /// Media time (seconds) of the newest frame in `buf`.
    buf_media_time: Option<f64>,
    /// Media time (seconds) of the last fsync.
    last_sync: Option<f64>,
    /// FLV cannot carry this stream's codecs; the recording goes on without it.
    disabled: bool,
    /// Frames of a track the writer was created without, dropped.
    dropped: u64,
}

/// One recorder session's muxers, files and durable state; used only inside `spawn_blocking`.
pub(crate) struct RecorderCore {
    /// The durable state; it is a valid checkpoint after every step.
    state: RecordingState,
    record_path: PathBuf,
    uploader: ActorRef<UploaderMsg>,
    /// Where `record.segment` and `record.stopped` go.
    hooks: HookEmitter,
    configs: [Option<CodecConfig>; 2],
    dash: Option<DashWriter>,
    flv: Option<FlvFile>,
    segment_seconds: f64,
    /// What the current step changed that its end must act on.
    step: StepEffects,
}

/// What happened during the current step, acted on by [`RecorderCore::end_step`].
#[derive(Debug, Default)]
struct StepEffects {
    /// A segment was finished: the live manifest is rewritten.
    segment_done: bool,
    /// The durable state changed: report a checkpoint.
    checkpoint: bool,
}

fn rebase(dts: i64, timescale: u32, origin: (i64, u32), track_timescale: u32) -> i64 {
    // The same rounding as the muxer's rebase (round half away from zero).
    let fts = i128::from(timescale.max(1));
    let (ov, ots) = (i128::from(origin.0), i128::from(origin.1.max(1)));
    let num = (i128::from(dts) * ots - ov * fts) * i128::from(track_timescale);
    let den = fts * ots;
    let r = if num >= 0 {
        (num + den / 2) / den
    } else {
        (num - den / 2) / den
    };
    i64::try_from(r).unwrap_or(if r < 0 { i64::MIN } else { i64::MAX })
}

impl RecorderCore {
    /// Opens (or, after a failure, reopens) the recording's files in the spool.
    ///
    /// A new recording writes session.json (`recording`); a resumed one drops the segment
    /// that was open when its predecessor failed and truncates the FLV to its last fsync.
    pub(crate) fn open(
        state: RecordingState,
        spool_dir: &Path,
        uploader: ActorRef<UploaderMsg>,
        hooks: HookEmitter,
        configs: Vec<CodecConfig>,
        segment_seconds: f64,
        resumed: bool,
    ) -> Result<RecorderCore, RecorderError> {
        let record_path = spool_dir.join(&state.info.record_dir);
        let mut core = RecorderCore {
            state,
            record_path,
            uploader,
            hooks,
            configs: [None, None],
            dash: None,
            flv: None,
            segment_seconds,
            step: StepEffects::default(),
        };
        let dir = core.record_path.clone();
        fs::create_dir_all(&dir).map_err(|e| core.io("creating", &dir, e))?;
        if let Some(cp) = &core.state.dash {
            let skip_before = cp.resume_seq;
            let has_origin = cp.origin.is_some();
            let number_base = TRACKS.map(|k| cp.segments_next(k));
            core.remove_unfinished_segments()?;
            core.dash = Some(DashWriter {
                muxer: Fmp4Muxer::new(Fmp4Options {
                    segment_seconds,
                    fragment_seconds: super::batch::FRAGMENT_SECONDS,
                    first_segment: 1,
                }),
                skip_before,
                resumed: has_origin,
                muxer_origin: None,
                offsets: [None; 2],
                last_pushed: [None; 2],
                open: [None, None],
                number_base,
            });
        }
        if let Some(cp) = core.state.flv.clone() {
            let path = core.spool_path(&cp.key);
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| core.io("opening", &path, e))?;
            let keep = if cp.writer.is_some() { cp.len } else { 0 };
            file.set_len(keep)
                .map_err(|e| core.io("truncating", &path, e))?;
            let mut file = file;
            file.seek(SeekFrom::End(0))
                .map_err(|e| core.io("seeking", &path, e))?;
            core.flv = Some(FlvFile {
                path,
                file,
                writer: cp.writer,
                buf: Vec::new(),
                skip_before: cp.resume_seq,
                keyframe_in_buf: false,
                buf_media_time: None,
                last_sync: None,
                disabled: false,
                dropped: 0,
            });
        }
        if !resumed {
            core.write_session_json(Outcome::Recording, false)?;
        }
        for config in configs {
            core.set_config(config)?;
        }
        Ok(core)
    }

    /// The durable state as of now.
    pub(crate) fn state(&self) -> &RecordingState {
        &self.state
    }

    fn spool_path(&self, key: &str) -> PathBuf {
        // record_path = spool_dir/record_dir and every key starts with record_dir.
        let rel = key
            .strip_prefix(self.state.info.record_dir.as_str())
            .unwrap_or(key)
            .trim_start_matches('/');
        self.record_path.join(rel)
    }

    fn key(&self, name: &str) -> String {
        format!("{}/{name}", self.state.info.record_dir)
    }

    fn io(&self, what: &'static str, path: &Path, source: std::io::Error) -> RecorderError {
        RecorderError::Io {
            stream: self.state.stream.clone(),
            record_dir: self.state.info.record_dir.clone(),
            what,
            path: path.to_path_buf(),
            source,
        }
    }

    fn mux_err(&self, source: recnode_media::fmp4::Fmp4Error) -> RecorderError {
        RecorderError::Mux {
            stream: self.state.stream.clone(),
            record_dir: self.state.info.record_dir.clone(),
            source,
        }
    }

    fn enqueue(&self, key: String, delete_after: bool) {
        self.enqueue_file(self.spool_path(&key), key, delete_after);
    }

    /// Enqueues `local` to be stored as `key`.
    fn enqueue_file(&self, local: PathBuf, key: String, delete_after: bool) {
        let job = UploadJob {
            local,
            key,
            delete_after,
        };
        if let Err(e) = self.uploader.cast(UploaderMsg::Enqueue(job)) {
            // The files stay in the spool; spool recovery queues them again on the next start.
            tracing::error!(stream = %self.state.stream, record_dir = %self.state.info.record_dir,
                "uploader is gone, file left in the spool: {e}");
        }
    }

    /// Deletes segment files a failed predecessor left unfinished (numbers ≥ `next_segment`).
    fn remove_unfinished_segments(&self) -> Result<(), RecorderError> {
        let Some(cp) = &self.state.dash else {
            return Ok(());
        };
        let entries = match fs::read_dir(&self.record_path) {
            Ok(entries) => entries,
            Err(e) => return Err(self.io("listing", &self.record_path, e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            for kind in TRACKS {
                let prefix = format!("{}_seg_", kind.prefix());
                let number = name
                    .strip_prefix(&prefix)
                    .and_then(|n| n.strip_suffix(".m4s"))
                    .and_then(|n| n.parse::<u32>().ok());
                if number.is_some_and(|n| n >= cp.segments_next(kind)) {
                    let path = entry.path();
                    fs::remove_file(&path).map_err(|e| self.io("removing", &path, e))?;
                }
            }
        }
        Ok(())
    }

    /// Adds a track (its init segment is written once per recording).
    pub(crate) fn set_config(&mut self, config: CodecConfig) -> Result<StepReport, RecorderError> {
        let kind = config.kind();
        let i = track_index(kind);
        if self.configs[i].as_ref() == Some(&config) {
            return Ok(StepReport::default());
        }
        self.configs[i] = Some(config.clone());
        let name = config.codec().name().to_string();
        if !self.state.codecs.contains(&name) {
            self.state.codecs.push(name);
        }
        let mut report = StepReport::default();
        let Some(dash) = self.dash.as_mut() else {
            return Ok(report);
        };
        let init = dash.muxer.set_config(config.clone());
        let timescale = dash.muxer.timescale(kind);
        let init = init.map_err(|e| self.mux_err(e))?;
        let cp = self.dash_cp();
        if !cp.tracks_declared[i] {
            let start = cp.segments_next(kind);
            if let Some(ts) = timescale {
                cp.mpd.add_track(&config, ts, start);
                cp.tracks_declared[i] = true;
            }
        }
        if let Some(MuxOutput::Init { track, data }) = init {
            if !self.dash_cp().init_written[i] {
                let key = self.key(&init_file_name(track));
                let path = self.spool_path(&key);
                write_synced(&path, &data).map_err(|e| self.io("writing", &path, e))?;
                // The init segment stays in the spool until the recording closes: spool
                // recovery after a crash needs it to rebuild the manifest.
                self.enqueue(key, false);
                self.dash_cp().init_written[i] = true;
                report.checkpoint = Some(self.state.clone());
            }
        }
        Ok(report)
    }

    fn dash_cp(&mut self) -> &mut DashCheckpoint {
        // `dash` (the writer) exists only when `state.dash` (its checkpoint) does.
        self.state
            .dash
            .as_mut()
            .expect("invariant: a DASH writer implies a DASH checkpoint")
    }

    /// Writes a batch of frames (in stream order) to every format, then makes what it
    /// wrote durable (see the module doc).
    pub(crate) fn push_batch(
        &mut self,
        frames: Vec<SeqFrame>,
    ) -> Result<StepReport, RecorderError> {
        for f in &frames {
            let t = f.frame.dts_seconds();
            self.state.media_span = Some(match self.state.media_span {
                Some((a, b)) => (a.min(t), b.max(t)),
                None => (t, t),
            });
            if self.dash.is_some() {
                self.push_dash(f)?;
            }
            if self.flv.is_some() {
                self.push_flv(f);
            }
        }
        self.end_step()
    }

    /// Ends a step: appends the buffered FLV tags, fsyncs every file written to, rewrites
    /// the live manifest after a finished segment, and returns the new checkpoint if the
    /// durable state changed.
    fn end_step(&mut self) -> Result<StepReport, RecorderError> {
        if let Some(dash) = self.dash.as_mut() {
            let mut failed = None;
            for seg in dash.open.iter_mut().flatten() {
                if seg.dirty {
                    if let Err(e) = seg.file.sync_data() {
                        failed = Some((seg.path.clone(), e));
                        break;
                    }
                    seg.dirty = false;
                }
            }
            if let Some((path, e)) = failed {
                return Err(self.io("syncing", &path, e));
            }
        }
        self.flush_flv(false)?;
        if std::mem::take(&mut self.step.segment_done) {
            self.write_manifest(false)?;
        }
        let mut report = StepReport::default();
        if std::mem::take(&mut self.step.checkpoint) {
            report.checkpoint = Some(self.state.clone());
        }
        Ok(report)
    }

    fn push_dash(&mut self, f: &SeqFrame) -> Result<(), RecorderError> {
        let kind = f.frame.track;
        let i = track_index(kind);
        let Some(dash) = self.dash.as_mut() else {
            return Ok(());
        };
        if f.seq < dash.skip_before[i] {
            return Ok(());
        }
        let Some(timescale) = dash.muxer.timescale(kind) else {
            // No codec configuration for this track yet: the muxer would refuse the frame.
            return Ok(());
        };
        let frame = &f.frame;
        let first_overall = dash.muxer_origin.is_none();
        let muxer_origin = *dash
            .muxer_origin
            .get_or_insert((frame.dts, frame.timescale.max(1)));
        if dash.offsets[i].is_none() {
            let mine = rebase(frame.dts, frame.timescale, muxer_origin, timescale).max(0);
            let offset = if dash.resumed {
                let cp = self
                    .state
                    .dash
                    .as_ref()
                    .expect("invariant: a DASH writer implies a DASH checkpoint");
                let expected = match (cp.next_dts[i], cp.origin) {
                    (Some(next), _) => i64::try_from(next).unwrap_or(i64::MAX),
                    (None, Some(origin)) => {
                        rebase(frame.dts, frame.timescale, origin, timescale).max(0)
                    }
                    (None, None) => mine,
                };
                expected - mine
            } else {
                0
            };
            // A video track only starts at a keyframe; until then the muxer drops frames.
            if kind == TrackKind::Audio || frame.keyframe {
                let dash = self.dash.as_mut().expect("checked above");
                dash.offsets[i] = Some(offset);
            }
        }
        if first_overall {
            let cp = self.dash_cp();
            if cp.origin.is_none() {
                cp.origin = Some(muxer_origin);
            }
        }
        let dash = self.dash.as_mut().expect("checked above");
        let outputs = dash.muxer.push(frame.clone());
        let outputs = outputs.map_err(|e| self.mux_err(e))?;
        let dash = self.dash.as_mut().expect("checked above");
        let other = 1 - i;
        let other_pending = dash.last_pushed[other];
        dash.last_pushed[i] = Some(f.seq);
        let mut cut = false;
        for o in outputs {
            cut |= matches!(o, MuxOutput::SegmentDone(_));
            self.write_dash_output(o)?;
        }
        if cut {
            let cp = self.dash_cp();
            cp.resume_seq[i] = f.seq;
            // The other track's last frame is still held back by the muxer.
            cp.resume_seq[other] = other_pending.unwrap_or(f.seq);
            self.step.checkpoint = true;
        }
        Ok(())
    }

    fn write_dash_output(&mut self, o: MuxOutput) -> Result<(), RecorderError> {
        match o {
            MuxOutput::Init { .. } => Ok(()),
            MuxOutput::Fragment {
                track,
                segment,
                data,
            } => {
                let i = track_index(track);
                let base = self.dash.as_ref().map_or(1, |d| d.number_base[i]);
                let number = base + segment.saturating_sub(1);
                let sequence = self.dash_cp().next_fragment_sequence[i];
                self.dash_cp().next_fragment_sequence[i] = sequence.wrapping_add(1);
                let dash = self
                    .dash
                    .as_mut()
                    .expect("invariant: DASH output needs a writer");
                let data = if dash.resumed {
                    let offset = dash.offsets[i].unwrap_or(0);
                    retime_fragment(&data, offset, sequence).map_err(|message| {
                        RecorderError::Retime {
                            stream: self.state.stream.clone(),
                            record_dir: self.state.info.record_dir.clone(),
                            message,
                        }
                    })?
                } else {
                    data
                };
                let dash = self
                    .dash
                    .as_mut()
                    .expect("invariant: DASH output needs a writer");
                if dash.open[i].as_ref().map(|s| s.number) != Some(number) {
                    let key = self.key(&segment_file_name(track, number));
                    let path = self.spool_path(&key);
                    let file = OpenOptions::new().create(true).append(true).open(&path);
                    let file = match file {
                        Ok(file) => file,
                        Err(e) => return Err(self.io("opening", &path, e)),
                    };
                    let dash = self.dash.as_mut().expect("checked above");
                    dash.open[i] = Some(OpenSegment {
                        number,
                        file,
                        path,
                        dirty: false,
                    });
                }
                let dash = self.dash.as_mut().expect("checked above");
                let seg = dash.open[i].as_mut().expect("opened above");
                seg.dirty = true;
                if let Err(e) = seg.file.write_all(&data) {
                    let path = seg.path.clone();
                    return Err(self.io("appending to", &path, e));
                }
                Ok(())
            }
            MuxOutput::SegmentDone(info) => {
                let i = track_index(info.track);
                let base = self.dash.as_ref().map_or(1, |d| d.number_base[i]);
                let number = base + info.number.saturating_sub(1);
                let offset = self.dash.as_ref().and_then(|d| d.offsets[i]).unwrap_or(0);
                let start = u64::try_from(i128::from(info.start) + i128::from(offset)).unwrap_or(0);
                let info = SegmentInfo {
                    number,
                    start,
                    ..info
                };
                // The segment is durable before anything names it (the manifest, the
                // upload queue, a checkpoint).
                if let Some(seg) = self.dash.as_mut().and_then(|d| d.open[i].take()) {
                    if seg.dirty {
                        if let Err(e) = seg.file.sync_data() {
                            return Err(self.io("syncing", &seg.path, e));
                        }
                    }
                }
                let cp = self.dash_cp();
                cp.mpd.push_segment(&info);
                cp.segments[i] += 1;
                cp.next_dts[i] = Some(start + info.duration);
                let key = self.key(&info.file_name());
                self.enqueue(key.clone(), true);
                self.step.segment_done = true;
                let ms = |t: u64| t.saturating_mul(1000) / u64::from(info.timescale.max(1));
                self.hooks.emit_nowait(self.state.record_ref().segment(
                    &key,
                    info.track,
                    number,
                    ms(start),
                    ms(info.duration),
                    info.bytes,
                ));
                Ok(())
            }
        }
    }

    fn write_manifest(&mut self, final_version: bool) -> Result<(), RecorderError> {
        let Some(cp) = &self.state.dash else {
            return Ok(());
        };
        let text = if final_version {
            cp.mpd.render_static()
        } else {
            cp.mpd.render_dynamic(clock::unix_ms())
        };
        let key = self.key("manifest.mpd");
        let path = self.spool_path(&key);
        if final_version {
            replace_synced(&path, text.as_bytes()).map_err(|e| self.io("writing", &path, e))?;
            self.enqueue(key, true);
            return Ok(());
        }
        // The uploader reads a job's file when it reaches the job, and the live manifest is
        // rewritten after every segment: uploading it by path could store a version that
        // lists segments still queued behind it. Each version goes up from its own snapshot
        // (a `.tmp` file, which spool recovery deletes if a crash leaves one behind). The
        // spool's own manifest.mpd (crash recovery reads it) is the same bytes, so it
        // becomes a second name of the snapshot rather than a second copy.
        let n = MANIFEST_SNAPSHOTS.fetch_add(1, Ordering::Relaxed);
        let snapshot = path.with_file_name(format!("manifest.mpd.{n}.tmp"));
        write_synced(&snapshot, text.as_bytes()).map_err(|e| self.io("writing", &snapshot, e))?;
        if link_over(&snapshot, &path).is_err() {
            // No hard links here (or a stale temporary name in the way): write a copy.
            replace_synced(&path, text.as_bytes()).map_err(|e| self.io("writing", &path, e))?;
        }
        self.enqueue_file(snapshot, key, true);
        Ok(())
    }

    /// Encodes one frame into the FLV buffer of the current step.
    fn push_flv(&mut self, f: &SeqFrame) {
        let (video, audio) = (&self.configs[0], &self.configs[1]);
        let stream = &self.state.stream;
        let Some(flv) = self.flv.as_mut() else {
            return;
        };
        if flv.disabled || f.seq < flv.skip_before {
            return;
        }
        if flv.writer.is_none() {
            match FlvWriter::new(video.clone(), audio.clone(), FlvWriterOptions::default()) {
                Ok(mut writer) => {
                    flv.buf.extend_from_slice(&writer.header());
                    flv.writer = Some(writer);
                }
                Err(e) => {
                    tracing::warn!(stream = %stream, "no FLV for this recording: {e}");
                    flv.disabled = true;
                    // A disabled FLV needs no frame: its checkpoint must not pin the frame
                    // cache, and its empty file must not outlive a restarted session.
                    self.state.flv = None;
                    let _ = std::fs::remove_file(&flv.path);
                    return;
                }
            }
        }
        let writer = flv.writer.as_mut().expect("created above");
        match writer.write_frame(&f.frame) {
            Ok(tag) => flv.buf.extend_from_slice(&tag),
            Err(e) => {
                // A frame of a track the file was started without (its config came later).
                flv.dropped += 1;
                if flv.dropped == 1 {
                    tracing::warn!(stream = %stream, "frame not written to the FLV: {e}");
                }
            }
        }
        flv.skip_before = f.seq + 1;
        flv.keyframe_in_buf |= f.frame.track == TrackKind::Video && f.frame.keyframe;
        let t = f.frame.dts_seconds();
        flv.buf_media_time = Some(flv.buf_media_time.map_or(t, |b| b.max(t)));
    }

    /// Appends the buffered FLV tags; fsyncs (and checkpoints) the FLV when `force`, after a
    /// video keyframe, or a second of media after the last fsync.
    fn flush_flv(&mut self, force: bool) -> Result<(), RecorderError> {
        let Some(flv) = self.flv.as_mut() else {
            return Ok(());
        };
        if flv.buf.is_empty() && !force {
            return Ok(());
        }
        let t = flv.buf_media_time.take();
        let sync = force
            || std::mem::take(&mut flv.keyframe_in_buf)
            || match (t, flv.last_sync) {
                (Some(t), Some(last)) => t - last >= FLV_SYNC_SECONDS,
                _ => true,
            };
        let result =
            flv.file.write_all(&flv.buf).and_then(
                |()| {
                    if sync {
                        flv.file.sync_data()
                    } else {
                        Ok(())
                    }
                },
            );
        flv.buf.clear();
        if let Err(e) = result {
            let path = flv.path.clone();
            return Err(self.io("appending to", &path, e));
        }
        if sync {
            if let Some(t) = t {
                flv.last_sync = Some(t);
            }
            let writer = flv.writer.clone();
            let len = writer.as_ref().map_or(0, FlvWriter::position);
            let resume_seq = flv.skip_before;
            if let Some(cp) = self.state.flv.as_mut() {
                cp.writer = writer;
                cp.len = len;
                cp.resume_seq = resume_seq;
            }
            self.step.checkpoint = true;
        }
        Ok(())
    }

    /// Ends the recording: last segments, static manifest, FLV metadata, final session.json;
    /// every file is enqueued for upload.
    pub(crate) fn close(&mut self, outcome: Outcome) -> Result<(), RecorderError> {
        if let Some(dash) = self.dash.as_mut() {
            let outputs = dash.muxer.finish();
            let outputs = outputs.map_err(|e| self.mux_err(e))?;
            for o in outputs {
                self.write_dash_output(o)?;
            }
            // The static manifest below replaces the live one.
            self.step.segment_done = false;
            self.write_manifest(true)?;
            self.release_inits();
        }
        // Tags still buffered (none after a completed step) go in before the metadata.
        self.flush_flv(false)?;
        if let Some(flv) = self.flv.take() {
            let mut flv = flv;
            if let Some(writer) = flv.writer.as_mut() {
                let finish = writer.finish();
                let path = flv.path.clone();
                let result = flv
                    .file
                    .seek(SeekFrom::Start(finish.metadata_offset))
                    .and_then(|_| flv.file.write_all(&finish.metadata))
                    .and_then(|()| flv.file.sync_all());
                result.map_err(|e| self.io("finishing", &path, e))?;
                if let Some(cp) = self.state.flv.as_mut() {
                    cp.writer = flv.writer.clone();
                    cp.len = finish.file_size;
                }
                let key = self.state.flv.as_ref().map(|c| c.key.clone());
                if let Some(key) = key {
                    self.enqueue(key, true);
                }
            } else {
                // Nothing was written: no FLV.
                let _ = fs::remove_file(&flv.path);
            }
        }
        self.write_session_json(outcome, true)?;
        self.hooks.emit_nowait(self.state.record_ref().stopped(
            (self.state.duration_seconds() * 1000.0) as u64,
            hook_outcome(outcome),
            self.state.segment_count(),
        ));
        Ok(())
    }

    /// Once the recording is closed, the init segments kept for crash recovery are stored
    /// again (same key, same bytes) and removed from the spool.
    fn release_inits(&self) {
        let written = self
            .state
            .dash
            .as_ref()
            .map_or([false, false], |cp| cp.init_written);
        for track in [TrackKind::Video, TrackKind::Audio] {
            if written[track_index(track)] {
                self.enqueue(self.key(&init_file_name(track)), true);
            }
        }
    }

    fn write_session_json(
        &self,
        outcome: Outcome,
        final_version: bool,
    ) -> Result<(), RecorderError> {
        let text = session_json(&self.state, outcome, self.segment_seconds);
        let key = self.key("session.json");
        let path = self.spool_path(&key);
        replace_synced(&path, text.as_bytes()).map_err(|e| self.io("writing", &path, e))?;
        self.enqueue(key, final_version);
        Ok(())
    }
}

impl DashCheckpoint {
    /// The number the next segment of `kind` is written as (numbers start at 1).
    fn segments_next(&self, kind: TrackKind) -> u32 {
        1 + self.segments[track_index(kind)]
    }
}

/// The session.json of a recording.
fn session_json(state: &RecordingState, outcome: Outcome, segment_seconds: f64) -> String {
    let end_ms = match outcome {
        Outcome::Recording => None,
        _ => Some(clock::unix_ms()),
    };
    let duration = state.duration_seconds();
    let segments = state
        .dash
        .as_ref()
        .map(|cp| serde_json::json!({ "video": cp.segments[0], "audio": cp.segments[1] }));
    let value = serde_json::json!({
        "stream": state.stream,
        "app": state.app,
        "node_alias": state.node_alias,
        "record_id": state.info.record_id,
        "record_dir": state.info.record_dir,
        "mpd_path": state.dash.as_ref().map(|_| state.info.mpd_path.clone()),
        "flv_path": state.flv.as_ref().map(|f| f.key.clone()),
        "codecs": state.codecs,
        "start_unix_ms": state.started_at_ms,
        "end_unix_ms": end_ms,
        "duration_seconds": duration,
        "segment_seconds": segment_seconds,
        "segments": segments,
        "restarts": state.restarts,
        "outcome": outcome.as_str(),
    });
    // Serialising a `serde_json::Value` cannot fail.
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

/// Closes a recording whose recorder failed for good, from its last checkpoint: drops the
/// unfinished segment, writes the static manifest, finishes the FLV at its last fsync and
/// writes session.json with outcome `failed`; enqueues them all. Frames after the
/// checkpoint are lost.
pub(crate) fn finalize_failed(
    state: RecordingState,
    spool_dir: &Path,
    uploader: ActorRef<UploaderMsg>,
    hooks: HookEmitter,
    segment_seconds: f64,
) -> Result<(), RecorderError> {
    let core = RecorderCore {
        record_path: spool_dir.join(&state.info.record_dir),
        state,
        uploader,
        hooks,
        configs: [None, None],
        dash: None,
        flv: None,
        segment_seconds,
        step: StepEffects::default(),
    };
    let mut core = core;
    if core.state.dash.is_some() {
        core.remove_unfinished_segments()?;
        core.write_manifest(true)?;
        core.release_inits();
    }
    if let Some(cp) = core.state.flv.clone() {
        let path = core.spool_path(&cp.key);
        if let Some(mut writer) = cp.writer {
            let finish = writer.finish();
            let result = OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|mut f| {
                    f.set_len(cp.len)?;
                    f.seek(SeekFrom::Start(finish.metadata_offset))?;
                    f.write_all(&finish.metadata)?;
                    f.sync_all()
                });
            result.map_err(|e| core.io("finishing", &path, e))?;
            core.enqueue(cp.key.clone(), true);
        } else {
            let _ = fs::remove_file(&path);
        }
    }
    core.write_session_json(Outcome::Failed, true)?;
    core.hooks.emit_nowait(core.state.record_ref().stopped(
        (core.state.duration_seconds() * 1000.0) as u64,
        hook_outcome(Outcome::Failed),
        core.state.segment_count(),
    ));
    Ok(())
}

/// A recording's outcome as hook events spell it.
fn hook_outcome(outcome: Outcome) -> crate::hooks::events::Outcome {
    use crate::hooks::events::Outcome as Hook;
    match outcome {
        Outcome::Recording => Hook::Unspecified,
        Outcome::Completed => Hook::Completed,
        Outcome::Failed => Hook::Failed,
        Outcome::Rotated => Hook::Rotated,
    }
}

/// Writes a whole file and fsyncs it.
fn write_synced(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// Makes `path` a second name of the (synced) file `existing`, atomically: a hard link
/// under a temporary name, renamed over `path`.
fn link_over(existing: &Path, path: &Path) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    if let Err(e) = fs::hard_link(existing, &tmp) {
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            return Err(e);
        }
        // Left behind by a crash between the link and the rename.
        fs::remove_file(&tmp)?;
        fs::hard_link(existing, &tmp)?;
    }
    fs::rename(&tmp, path)
}

/// Replaces a file atomically: write and fsync a temporary file, then rename it over `path`.
fn replace_synced(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    write_synced(&tmp, data)?;
    fs::rename(&tmp, path)
}
