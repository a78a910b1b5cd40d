//! Shared helpers for the media round-trip tests: make sources with ffmpeg, write what
//! the muxers return into a recording directory, and check results with ffprobe/ffmpeg.
//! Nothing here sleeps: waits are on process exit or on socket reads with a timeout.
#![allow(dead_code)]

use recnode_media::dash::Mpd;
use recnode_media::fmp4::{init_file_name, Fmp4Muxer, Fmp4Options, MuxOutput};
use recnode_media::{MediaEvent, TrackKind};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Runs a media tool and returns its output; a missing tool fails the test with a clear message.
pub fn run(tool: &str, args: &[&str]) -> Output {
    let out = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("{tool} is required for this test (scripts/test.sh installs it): {e}")
        });
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Makes a test source with ffmpeg; `args` are everything between `-y` and the output path.
pub fn make_source(dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut all = vec!["-hide_banner", "-v", "error", "-y"];
    all.extend_from_slice(args);
    let p = path.to_str().expect("temp paths are UTF-8");
    all.push(p);
    run("ffmpeg", &all);
    path
}

/// Frame counts per stream type, decoded by `ffprobe -count_frames`.
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
pub struct Counts {
    /// Video frames.
    pub video: u64,
    /// Audio frames.
    pub audio: u64,
}

/// Counts decoded frames per stream type with `ffprobe -count_frames`.
///
/// Each type is counted on its own (`-select_streams`): ffmpeg's DASH reader stops at
/// the first representation's end when it reads both, which would hide an audio tail
/// that is present in the segments. Only top-level `streams.` entries count, because
/// MPEG-TS and DASH inputs list each stream again under its program.
pub fn count_frames(path: &Path) -> Counts {
    let count = |select: &str| -> u64 {
        let out = run(
            "ffprobe",
            &[
                "-v",
                "error",
                "-select_streams",
                select,
                "-count_frames",
                "-show_entries",
                "stream=nb_read_frames",
                "-of",
                "flat",
                path.to_str().unwrap(),
            ],
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("streams.stream."))
            .filter_map(|l| l.split_once('=')?.1.trim_matches('"').parse::<u64>().ok())
            .sum()
    };
    Counts {
        video: count("v"),
        audio: count("a"),
    }
}

/// Decodes the whole file with `ffmpeg -v error ... -f null -`; returns what it printed (empty = clean).
pub fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-v",
            "error",
            "-i",
            path.to_str().unwrap(),
            "-f",
            "null",
            "-",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("ffmpeg is required for this test");
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        text.push_str(&format!("\nexit status {}", out.status));
    }
    text
}

/// The MD5 of every decoded video frame, in output order (`-f framemd5`).
pub fn video_md5s(path: &Path) -> Vec<String> {
    let out = run(
        "ffmpeg",
        &[
            "-hide_banner",
            "-v",
            "error",
            "-i",
            path.to_str().unwrap(),
            "-map",
            "0:v:0",
            "-f",
            "framemd5",
            "-",
        ],
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_string()))
        .collect()
}

/// Writes the muxer's outputs the way a recorder does: init files, segment files appended
/// fragment by fragment, and a DASH manifest rewritten as segments finish.
pub struct Recording {
    /// The record directory.
    pub dir: PathBuf,
    /// The muxer.
    pub muxer: Fmp4Muxer,
    /// The manifest.
    pub mpd: Mpd,
    /// How many segments each track finished.
    pub segments: BTreeMap<TrackKind, u32>,
}

impl Recording {
    /// A new recording into `dir` with default segmenting (2 s segments, 0.5 s fragments).
    pub fn new(dir: PathBuf) -> Self {
        fs::create_dir_all(&dir).unwrap();
        let opts = Fmp4Options::default();
        let mpd = Mpd::new(1_700_000_000_000, opts.segment_seconds);
        Recording {
            dir,
            muxer: Fmp4Muxer::new(opts),
            mpd,
            segments: BTreeMap::new(),
        }
    }

    /// Feeds one depacketizer/demuxer event through the muxer and writes the results.
    pub fn handle(&mut self, event: MediaEvent) {
        match event {
            MediaEvent::Config(config) => {
                let kind = config.kind();
                if let Some(init) = self
                    .muxer
                    .set_config(config.clone())
                    .expect("config accepted")
                {
                    let ts = self.muxer.timescale(kind).unwrap();
                    self.mpd.add_track(&config, ts, 1);
                    self.write(init);
                }
            }
            MediaEvent::Frame(frame) => {
                for o in self.muxer.push(frame).expect("frame accepted") {
                    self.write(o);
                }
            }
        }
    }

    fn write(&mut self, o: MuxOutput) {
        match o {
            MuxOutput::Init { track, data } => {
                fs::write(self.dir.join(init_file_name(track)), data).unwrap()
            }
            MuxOutput::Fragment {
                track,
                segment,
                data,
            } => {
                let name = recnode_media::fmp4::segment_file_name(track, segment);
                let mut f = fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join(name))
                    .unwrap();
                f.write_all(&data).unwrap();
            }
            MuxOutput::SegmentDone(info) => {
                *self.segments.entry(info.track).or_default() += 1;
                self.mpd.push_segment(&info);
                fs::write(
                    self.dir.join("manifest.mpd"),
                    self.mpd.render_dynamic(1_700_000_010_000),
                )
                .unwrap();
            }
        }
    }

    /// Ends the recording: final segments and the static manifest. Returns the manifest path.
    pub fn finish(&mut self) -> PathBuf {
        for o in self.muxer.finish().unwrap() {
            self.write(o);
        }
        let path = self.dir.join("manifest.mpd");
        fs::write(&path, self.mpd.render_static()).unwrap();
        path
    }

    /// One playable MP4 per track: its init segment followed by all its segments.
    pub fn track_file(&self, track: TrackKind) -> PathBuf {
        let mut data = fs::read(self.dir.join(init_file_name(track))).unwrap();
        let n = self.segments.get(&track).copied().unwrap_or(0);
        for number in 1..=n {
            let name = recnode_media::fmp4::segment_file_name(track, number);
            data.extend(fs::read(self.dir.join(name)).unwrap());
        }
        let path = self.dir.join(format!("{}_all.mp4", track.prefix()));
        fs::write(&path, data).unwrap();
        path
    }
}

/// A fresh directory under the target dir for one test's files.
pub fn test_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Asserts that a recording's DASH manifest and per-track files decode cleanly and hold
/// exactly the source's frames, with the same decoded video.
pub fn assert_recording_matches(source: &Path, rec: &Recording, manifest: &Path, has_audio: bool) {
    let want = count_frames(source);
    let mut got = Counts::default();
    let video = rec.track_file(TrackKind::Video);
    got.video = count_frames(&video).video;
    assert_eq!(decode_errors(&video), "", "video track decodes cleanly");
    if has_audio {
        let audio = rec.track_file(TrackKind::Audio);
        got.audio = count_frames(&audio).audio;
        assert_eq!(decode_errors(&audio), "", "audio track decodes cleanly");
    }
    assert_eq!(got, want, "frames in == frames out (per-track files)");
    assert_eq!(
        video_md5s(&video),
        video_md5s(source),
        "decoded video is identical"
    );

    let dash = count_frames(manifest);
    assert_eq!(dash, want, "frames in == frames out (DASH manifest)");
    assert_eq!(decode_errors(manifest), "", "DASH manifest decodes cleanly");
}

/// Streams `source` over RTP with `ffmpeg -re` (one UDP destination per entry of `maps`,
/// e.g. `["0:v", "0:a"]`) and returns the packets each destination received, in arrival order.
///
/// ffmpeg's own RTP packetizers make the packets, so the depacketizers are tested against
/// a tool we did not write. Loopback UDP at real-time pace loses nothing in practice; the
/// receiver threads read until ffmpeg has exited and their socket is drained.
pub fn rtp_capture(source: &Path, maps: &[&str], extra: &[&str]) -> Vec<Vec<Vec<u8>>> {
    use std::net::UdpSocket;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    let done = Arc::new(AtomicBool::new(false));
    let mut ports = Vec::new();
    let mut readers = Vec::new();
    for _ in maps {
        // RTP on an even port and RTCP on the next one, both ours, so ffmpeg's RTCP lands somewhere.
        let (rtp, rtcp) = loop {
            let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = rtp.local_addr().unwrap().port();
            if !port.is_multiple_of(2) || port == u16::MAX {
                continue;
            }
            if let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port + 1)) {
                break (rtp, rtcp);
            }
        };
        ports.push(rtp.local_addr().unwrap().port());
        rtp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let done = done.clone();
        readers.push(std::thread::spawn(move || {
            let _rtcp = rtcp;
            let mut packets = Vec::new();
            let mut buf = vec![0u8; 65_536];
            loop {
                match rtp.recv(&mut buf) {
                    Ok(n) => packets.push(buf[..n].to_vec()),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        if done.load(Ordering::SeqCst) {
                            break;
                        }
                    }
                    Err(e) => panic!("udp receive failed: {e}"),
                }
            }
            packets
        }));
    }
    let mut args: Vec<String> = ["-hide_banner", "-v", "error", "-re", "-i"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(source.to_str().unwrap().to_string());
    for (map, port) in maps.iter().zip(&ports) {
        args.extend(["-map", map, "-c", "copy"].iter().map(|s| s.to_string()));
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend([
            "-f".to_string(),
            "rtp".to_string(),
            format!("rtp://127.0.0.1:{port}?pkt_size=1200"),
        ]);
    }
    let out = Command::new("ffmpeg")
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("ffmpeg is required");
    // ffmpeg has exited, so every datagram it sent is already in our socket buffers.
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let captured: Vec<_> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    assert!(
        out.status.success(),
        "ffmpeg rtp failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    captured
}

/// Merges two tracks' events in decode-time order, configs first, as a live stream interleaves them.
pub fn interleave(a: Vec<MediaEvent>, b: Vec<MediaEvent>) -> Vec<MediaEvent> {
    let mut all: Vec<(f64, usize, MediaEvent)> = a
        .into_iter()
        .chain(b)
        .enumerate()
        .map(|(i, e)| {
            let t = match &e {
                MediaEvent::Config(_) => f64::NEG_INFINITY,
                MediaEvent::Frame(f) => f.dts_seconds(),
            };
            (t, i, e)
        })
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    all.into_iter().map(|(_, _, e)| e).collect()
}

/// Reads an FLV file tag by tag through the RTMP payload demuxer, as RTMP ingest would.
pub fn demux_flv(path: &Path) -> Vec<MediaEvent> {
    use recnode_media::flv::{FlvDemuxer, FlvReader, TagKind};
    let data = fs::read(path).unwrap();
    let mut demuxer = FlvDemuxer::new();
    let mut events = Vec::new();
    for tag in FlvReader::new(&data).expect("ffmpeg wrote a valid FLV header") {
        let tag = tag.expect("ffmpeg wrote valid FLV tags");
        let out = match tag.kind {
            TagKind::Video => demuxer.push_video(tag.timestamp_ms, tag.data),
            TagKind::Audio => demuxer.push_audio(tag.timestamp_ms, tag.data),
            TagKind::Script => continue,
        };
        events.extend(out.expect("ffmpeg's tag bodies demux"));
    }
    assert_eq!(demuxer.stats().errors, 0, "{:?}", demuxer.stats());
    events
}

/// Makes a 5 s test source: a 320x240 25 fps test pattern (plus a sine tone at
/// `audio_rate` Hz, if given) encoded with `codec_args` (whitespace-separated ffmpeg options).
pub fn lavfi_source(dir: &Path, name: &str, audio_rate: Option<u32>, codec_args: &str) -> PathBuf {
    let mut args = vec![
        "-f".to_string(),
        "lavfi".into(),
        "-i".into(),
        "testsrc2=size=320x240:rate=25".into(),
    ];
    if let Some(rate) = audio_rate {
        args.extend([
            "-f".into(),
            "lavfi".into(),
            "-i".into(),
            format!("sine=frequency=440:sample_rate={rate}"),
        ]);
    }
    args.extend(["-t".into(), "5".into()]);
    args.extend(codec_args.split_whitespace().map(str::to_string));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    make_source(dir, name, &refs)
}
