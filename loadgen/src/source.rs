//! The prepared FLV file, held in memory as sequence headers plus the media frames to
//! replay (FLV spec v10.1 §E.4.2 AUDIODATA, §E.4.3 VIDEODATA).

use bytes::Bytes;
use recnode_media::flv::{FlvError, FlvReader, TagKind};

/// Why the source FLV could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a well-formed FLV file.
    #[error("parsing {path}: {source}")]
    Flv {
        /// The file.
        path: String,
        /// The parser's error.
        #[source]
        source: FlvError,
    },
    /// The file holds no audio or video frames.
    #[error("{path} holds no audio or video frames")]
    Empty {
        /// The file.
        path: String,
    },
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// An AUDIODATA tag body.
    Audio,
    /// A VIDEODATA tag body.
    Video,
}

/// One coded frame of the source.
#[derive(Debug, Clone)]
pub struct SourceFrame {
    /// Audio or video.
    pub kind: MediaKind,
    /// Tag timestamp in ms, relative to the earliest frame of the file.
    pub ts_ms: u64,
    /// The tag body, sent as the RTMP message body.
    pub data: Bytes,
}

/// The FLV file's sequence headers and frames, ready to replay.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// The AVC/HEVC sequence header tag body, if any.
    pub video_header: Option<Bytes>,
    /// The AAC sequence header tag body, if any.
    pub audio_header: Option<Bytes>,
    /// The coded frames in file order.
    pub frames: Vec<SourceFrame>,
    /// How far the timestamps of one loop are shifted for the next: the file's span plus
    /// one frame interval, so timestamps stay monotonic and frames never overlap.
    pub loop_len_ms: u64,
}

/// What a tag body is, as far as replay cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyRole {
    /// A sequence header (decoder configuration).
    Header,
    /// A coded frame.
    Frame,
    /// Not replayed: end-of-sequence, video info/command frames, empty bodies.
    Skip,
}

/// Classifies a VIDEODATA body (legacy §E.4.3 and the Enhanced RTMP v1 extended header).
fn video_role(data: &[u8]) -> BodyRole {
    let Some(&first) = data.first() else {
        return BodyRole::Skip;
    };
    let frame_type = (first >> 4) & 0x07;
    if frame_type == 5 {
        return BodyRole::Skip;
    }
    if first & 0x80 != 0 {
        // Enhanced RTMP: low nibble is the PacketType.
        return match first & 0x0f {
            0 => BodyRole::Header,
            1 | 3 => BodyRole::Frame,
            _ => BodyRole::Skip,
        };
    }
    let codec_id = first & 0x0f;
    if codec_id == 7 || codec_id == 12 {
        return match data.get(1) {
            Some(0) => BodyRole::Header,
            Some(1) => BodyRole::Frame,
            _ => BodyRole::Skip,
        };
    }
    BodyRole::Frame
}

/// Classifies an AUDIODATA body (§E.4.2).
fn audio_role(data: &[u8]) -> BodyRole {
    let Some(&first) = data.first() else {
        return BodyRole::Skip;
    };
    if first >> 4 == 10 {
        return match data.get(1) {
            Some(0) => BodyRole::Header,
            Some(1) => BodyRole::Frame,
            _ => BodyRole::Skip,
        };
    }
    BodyRole::Frame
}

/// The typical interval between frames of `kind` (mean over the file), at least 1 ms.
fn mean_interval(frames: &[SourceFrame], kind: MediaKind) -> Option<u64> {
    let mut ts = frames.iter().filter(|f| f.kind == kind).map(|f| f.ts_ms);
    let first = ts.next()?;
    let (count, last) = ts.fold((0u64, first), |(n, _), t| (n + 1, t));
    if count == 0 {
        return None;
    }
    Some((last.saturating_sub(first) / count).max(1))
}

impl Source {
    /// Reads and parses the FLV file at `path`.
    pub fn load(path: &str) -> Result<Source, SourceError> {
        let bytes = std::fs::read(path).map_err(|source| SourceError::Read {
            path: path.to_string(),
            source,
        })?;
        let source = Source::parse(&bytes).map_err(|source| SourceError::Flv {
            path: path.to_string(),
            source,
        })?;
        if source.frames.is_empty() {
            return Err(SourceError::Empty {
                path: path.to_string(),
            });
        }
        Ok(source)
    }

    /// Parses FLV file bytes: keeps the first sequence header per track and every frame.
    pub fn parse(bytes: &[u8]) -> Result<Source, FlvError> {
        let mut source = Source::default();
        let mut raw: Vec<(MediaKind, u32, Bytes)> = Vec::new();
        for tag in FlvReader::new(bytes)? {
            let tag = tag?;
            let (kind, role) = match tag.kind {
                TagKind::Video => (MediaKind::Video, video_role(tag.data)),
                TagKind::Audio => (MediaKind::Audio, audio_role(tag.data)),
                TagKind::Script => continue,
            };
            let data = Bytes::copy_from_slice(tag.data);
            match (role, kind) {
                (BodyRole::Header, MediaKind::Video) => {
                    source.video_header.get_or_insert(data);
                }
                (BodyRole::Header, MediaKind::Audio) => {
                    source.audio_header.get_or_insert(data);
                }
                (BodyRole::Frame, _) => raw.push((kind, tag.timestamp_ms, data)),
                (BodyRole::Skip, _) => {}
            }
        }
        let base = raw.iter().map(|(_, ts, _)| *ts).min().unwrap_or(0);
        source.frames = raw
            .into_iter()
            .map(|(kind, ts, data)| SourceFrame {
                kind,
                ts_ms: u64::from(ts - base),
                data,
            })
            .collect();
        let span = source.frames.iter().map(|f| f.ts_ms).max().unwrap_or(0);
        let interval = mean_interval(&source.frames, MediaKind::Video)
            .or_else(|| mean_interval(&source.frames, MediaKind::Audio))
            .unwrap_or(1);
        source.loop_len_ms = span + interval;
        Ok(source)
    }

    /// The number of frames of `kind` in one pass over the file.
    pub fn count(&self, kind: MediaKind) -> usize {
        self.frames.iter().filter(|f| f.kind == kind).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An FLV file with the given (type, timestamp, body) tags.
    fn flv(tags: &[(u8, u32, &[u8])]) -> Vec<u8> {
        let mut out = b"FLV\x01\x05\0\0\0\x09\0\0\0\0".to_vec();
        for (kind, ts, body) in tags {
            let size = body.len() as u32;
            out.push(*kind);
            out.extend_from_slice(&size.to_be_bytes()[1..]);
            out.extend_from_slice(&ts.to_be_bytes()[1..]);
            out.push((ts >> 24) as u8);
            out.extend_from_slice(&[0, 0, 0]);
            out.extend_from_slice(body);
            out.extend_from_slice(&(11 + size).to_be_bytes());
        }
        out
    }

    #[test]
    fn headers_are_kept_apart_and_end_of_sequence_is_dropped() {
        let bytes = flv(&[
            (9, 0, &[0x17, 0, 0, 0, 0, 1]),
            (8, 0, &[0xaf, 0, 0x12]),
            (9, 0, &[0x17, 1, 0, 0, 0, 9]),
            (8, 0, &[0xaf, 1, 7]),
            (8, 23, &[0xaf, 1, 7]),
            (9, 33, &[0x27, 1, 0, 0, 0, 9]),
            (9, 33, &[0x17, 2, 0, 0, 0]),
        ]);
        let source = Source::parse(&bytes).expect("valid FLV");
        assert!(source.video_header.is_some());
        assert!(source.audio_header.is_some());
        assert_eq!(source.count(MediaKind::Video), 2);
        assert_eq!(source.count(MediaKind::Audio), 2);
        assert_eq!(source.loop_len_ms, 33 + 33);
    }

    #[test]
    fn timestamps_are_made_relative_to_the_earliest_frame() {
        let bytes = flv(&[(9, 1000, &[0x17, 1, 0]), (9, 1040, &[0x27, 1, 0])]);
        let source = Source::parse(&bytes).expect("valid FLV");
        let ts: Vec<u64> = source.frames.iter().map(|f| f.ts_ms).collect();
        assert_eq!(ts, [0, 40]);
        assert_eq!(source.loop_len_ms, 80);
    }
}
