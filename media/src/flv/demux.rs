//! RTMP/FLV audio and video tag bodies → [`MediaEvent`]s.
//!
//! Legacy video follows FLV spec v10.1 §E.4.3.1 VIDEODATA and §E.4.3.2 AVCVIDEOPACKET;
//! audio follows §E.4.2.1 AUDIODATA and §E.4.2.2 AACAUDIODATA. The extended video header
//! (IsExHeader, PacketType, FourCC) follows Enhanced RTMP v1 ("Enhancing RTMP, FLV",
//! Veovera, 2023), section "Extended VideoTagHeader".

use bytes::{BufMut, Bytes, BytesMut};

use super::FlvError;
use crate::codec::{h264, h265, AacConfig, Av1Config, AvcConfig, Codec, HevcConfig, Vp9Config};
use crate::{CodecConfig, Frame, MediaEvent, TrackKind};

/// FrameType 1: key frame (§E.4.3.1).
const FRAME_TYPE_KEY: u8 = 1;
/// FrameType 5: video info/command frame (§E.4.3.1); carries no picture.
const FRAME_TYPE_COMMAND: u8 = 5;
/// Legacy CodecID 7: AVC (§E.4.3.1).
const CODEC_ID_AVC: u8 = 7;
/// SoundFormat 10: AAC (§E.4.2.1).
const SOUND_FORMAT_AAC: u8 = 10;

/// Enhanced RTMP v1 video PacketType values.
mod packet_type {
    pub const SEQUENCE_START: u8 = 0;
    pub const CODED_FRAMES: u8 = 1;
    pub const SEQUENCE_END: u8 = 2;
    pub const CODED_FRAMES_X: u8 = 3;
    pub const METADATA: u8 = 4;
    pub const MPEG2TS_SEQUENCE_START: u8 = 5;
}

/// Counters a caller can log or export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DemuxStats {
    /// Video bodies that produced a frame.
    pub video_frames: u64,
    /// Audio bodies that produced a frame.
    pub audio_frames: u64,
    /// Bodies ignored on purpose: command frames, end of sequence, metadata, empty bodies.
    pub ignored: u64,
    /// Bodies that returned an error (including frames before their sequence header).
    pub errors: u64,
}

/// Unwraps 32-bit millisecond timestamps into a monotonic-ish `i64` timeline.
///
/// Each new value is placed at the smallest signed 32-bit distance from the previous one,
/// so a wrap from near 2^32 to near 0 adds 2^32 and a small step backwards (audio and
/// video interleaved slightly out of order) stays a small step backwards.
#[derive(Debug, Clone, Copy, Default)]
struct TimestampUnwrapper {
    last: Option<i64>,
}

impl TimestampUnwrapper {
    fn unwrap(&mut self, timestamp_ms: u32) -> i64 {
        let value = match self.last {
            None => i64::from(timestamp_ms),
            Some(last) => {
                // Reinterpreting the wrapped difference as i32 picks the nearest representative.
                let delta = timestamp_ms.wrapping_sub(last as u32) as i32;
                last + i64::from(delta)
            }
        };
        self.last = Some(value);
        value
    }
}

/// The video track's state: its config and the NAL length size of its record.
#[derive(Debug, Clone)]
struct VideoTrack {
    config: CodecConfig,
    /// NAL unit length field size (1–4) for H264/H265 coded frames.
    nal_length_size: usize,
}

/// Turns the bodies of RTMP audio/video messages (= FLV tag bodies) into codec configs
/// and frames, one stream's worth of state.
///
/// Frames carry `timescale = 1000`; `dts` is the unwrapped message timestamp and
/// `pts = dts + CompositionTime`. H264/H265 frame data is rewritten to 4-byte NAL lengths.
///
/// A coded frame that arrives before its sequence header is dropped and reported as
/// [`FlvError::MissingConfig`] (and counted in [`DemuxStats::errors`]); the demuxer stays
/// usable after any error. Bodies for other codecs return [`FlvError::UnsupportedCodec`].
#[derive(Debug, Clone, Default)]
pub struct FlvDemuxer {
    video: Option<VideoTrack>,
    audio: Option<AacConfig>,
    video_clock: TimestampUnwrapper,
    audio_clock: TimestampUnwrapper,
    stats: DemuxStats,
}

/// A cursor over one body, producing errors with the body's context.
struct Body<'a> {
    data: &'a [u8],
    pos: usize,
    kind: TrackKind,
    timestamp_ms: u32,
}

impl<'a> Body<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FlvError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or(FlvError::TruncatedBody {
                kind: self.kind,
                timestamp_ms: self.timestamp_ms,
                offset: self.pos,
                what,
            })?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, FlvError> {
        Ok(self.take(1, what)?[0])
    }

    /// A signed 24-bit big-endian value (CompositionTime, §E.4.3.2), sign-extended.
    fn si24(&mut self, what: &'static str) -> Result<i32, FlvError> {
        let b = self.take(3, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], 0]) >> 8)
    }

    fn rest(&mut self) -> &'a [u8] {
        let out = &self.data[self.pos.min(self.data.len())..];
        self.pos = self.data.len();
        out
    }

    fn invalid(&self, what: String) -> FlvError {
        FlvError::InvalidBody {
            kind: self.kind,
            timestamp_ms: self.timestamp_ms,
            offset: self.pos,
            what,
        }
    }
}

fn fourcc_name(fourcc: &[u8]) -> String {
    format!("FourCC {:?}", String::from_utf8_lossy(fourcc))
}

impl FlvDemuxer {
    /// A demuxer with no codec configuration yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counters since creation.
    pub fn stats(&self) -> DemuxStats {
        self.stats
    }

    /// The current video codec configuration, once a sequence header was seen.
    pub fn video_config(&self) -> Option<&CodecConfig> {
        self.video.as_ref().map(|track| &track.config)
    }

    /// The current AAC configuration, once a sequence header was seen.
    pub fn audio_config(&self) -> Option<&AacConfig> {
        self.audio.as_ref()
    }

    /// Demuxes one video message/tag body (§E.4.3 or the Enhanced RTMP extended header).
    pub fn push_video(
        &mut self,
        timestamp_ms: u32,
        body: &[u8],
    ) -> Result<Vec<MediaEvent>, FlvError> {
        let result = self.video_body(timestamp_ms, body);
        self.count(&result, TrackKind::Video);
        result
    }

    /// Demuxes one audio message/tag body (§E.4.2); only AAC is supported.
    pub fn push_audio(
        &mut self,
        timestamp_ms: u32,
        body: &[u8],
    ) -> Result<Vec<MediaEvent>, FlvError> {
        let result = self.audio_body(timestamp_ms, body);
        self.count(&result, TrackKind::Audio);
        result
    }

    fn count(&mut self, result: &Result<Vec<MediaEvent>, FlvError>, kind: TrackKind) {
        match result {
            Err(_) => self.stats.errors += 1,
            Ok(events) if events.iter().any(|e| matches!(e, MediaEvent::Frame(_))) => match kind {
                TrackKind::Video => self.stats.video_frames += 1,
                TrackKind::Audio => self.stats.audio_frames += 1,
            },
            Ok(events) if events.is_empty() => self.stats.ignored += 1,
            Ok(_) => {}
        }
    }

    fn audio_body(&mut self, timestamp_ms: u32, data: &[u8]) -> Result<Vec<MediaEvent>, FlvError> {
        let mut body = Body {
            data,
            pos: 0,
            kind: TrackKind::Audio,
            timestamp_ms,
        };
        let flags = body.u8("SoundFormat")?;
        let sound_format = flags >> 4;
        if sound_format != SOUND_FORMAT_AAC {
            let name = match sound_format {
                0 => "Linear PCM, platform endian",
                1 => "ADPCM",
                2 => "MP3",
                3 => "Linear PCM, little endian",
                4..=6 => "Nellymoser",
                7 => "G.711 A-law",
                8 => "G.711 mu-law",
                9 => "ExHeader/reserved",
                11 => "Speex",
                14 => "MP3 8 kHz",
                15 => "device-specific",
                _ => "reserved",
            };
            return Err(FlvError::UnsupportedCodec {
                kind: TrackKind::Audio,
                codec: format!("SoundFormat {sound_format} ({name})"),
                timestamp_ms,
            });
        }
        match body.u8("AACPacketType")? {
            0 => {
                let asc = body.rest();
                if asc.is_empty() {
                    // `ffmpeg -c copy` from MPEG-TS/HLS sends an empty sequence header
                    // before the real one; it carries nothing, so it is skipped (counted
                    // as ignored), not treated as a broken config.
                    return Ok(Vec::new());
                }
                let config = AacConfig::from_asc(asc).map_err(|source| FlvError::Config {
                    codec: Codec::Aac,
                    timestamp_ms,
                    source,
                })?;
                self.audio = Some(config.clone());
                Ok(vec![MediaEvent::Config(CodecConfig::Aac(config))])
            }
            1 => {
                if self.audio.is_none() {
                    return Err(FlvError::MissingConfig {
                        kind: TrackKind::Audio,
                        timestamp_ms,
                    });
                }
                let raw = body.rest();
                if raw.is_empty() {
                    return Ok(Vec::new());
                }
                let ts = self.audio_clock.unwrap(timestamp_ms);
                Ok(vec![MediaEvent::Frame(Frame {
                    track: TrackKind::Audio,
                    pts: ts,
                    dts: ts,
                    timescale: 1000,
                    keyframe: true,
                    data: Bytes::copy_from_slice(raw),
                })])
            }
            other => Err(body.invalid(format!("AACPacketType {other}"))),
        }
    }

    fn video_body(&mut self, timestamp_ms: u32, data: &[u8]) -> Result<Vec<MediaEvent>, FlvError> {
        let mut body = Body {
            data,
            pos: 0,
            kind: TrackKind::Video,
            timestamp_ms,
        };
        let first = body.u8("FrameType")?;
        if first & 0x80 != 0 {
            return self.enhanced_video(first, body);
        }
        let frame_type = (first >> 4) & 0x07;
        if frame_type == FRAME_TYPE_COMMAND {
            return Ok(Vec::new());
        }
        let codec_id = first & 0x0f;
        if codec_id != CODEC_ID_AVC {
            let name = match codec_id {
                1 => "JPEG",
                2 => "Sorenson H.263",
                3 => "Screen video",
                4 => "On2 VP6",
                5 => "On2 VP6 with alpha",
                6 => "Screen video v2",
                12 => "HEVC (non-standard legacy)",
                _ => "reserved",
            };
            return Err(FlvError::UnsupportedCodec {
                kind: TrackKind::Video,
                codec: format!("CodecID {codec_id} ({name})"),
                timestamp_ms,
            });
        }
        let packet_type = body.u8("AVCPacketType")?;
        let cts = body.si24("CompositionTime")?;
        match packet_type {
            0 => self.avc_sequence_start(&mut body),
            1 => self.nal_frames(Codec::H264, frame_type, cts, &mut body),
            2 => Ok(Vec::new()),
            other => Err(body.invalid(format!("AVCPacketType {other}"))),
        }
    }

    fn enhanced_video(
        &mut self,
        first: u8,
        mut body: Body<'_>,
    ) -> Result<Vec<MediaEvent>, FlvError> {
        let frame_type = (first >> 4) & 0x07;
        let packet_type = first & 0x0f;
        let fourcc = body.take(4, "FourCC")?;
        if frame_type == FRAME_TYPE_COMMAND && packet_type != packet_type::METADATA {
            return Ok(Vec::new());
        }
        let codec = match fourcc {
            b"avc1" => Codec::H264,
            b"hvc1" => Codec::H265,
            b"av01" => Codec::Av1,
            b"vp09" => Codec::Vp9,
            _ => {
                return Err(FlvError::UnsupportedCodec {
                    kind: TrackKind::Video,
                    codec: fourcc_name(fourcc),
                    timestamp_ms: body.timestamp_ms,
                })
            }
        };
        match packet_type {
            packet_type::SEQUENCE_START => match codec {
                Codec::H264 => self.avc_sequence_start(&mut body),
                Codec::H265 => self.hevc_sequence_start(&mut body),
                Codec::Av1 => self.av1_sequence_start(&mut body),
                _ => self.vp9_sequence_start(&mut body),
            },
            packet_type::CODED_FRAMES | packet_type::CODED_FRAMES_X => {
                let has_cts = packet_type == packet_type::CODED_FRAMES
                    && matches!(codec, Codec::H264 | Codec::H265);
                let cts = if has_cts {
                    body.si24("CompositionTime")?
                } else {
                    0
                };
                match codec {
                    Codec::H264 | Codec::H265 => self.nal_frames(codec, frame_type, cts, &mut body),
                    _ => self.opaque_frame(codec, frame_type, &mut body),
                }
            }
            packet_type::SEQUENCE_END
            | packet_type::METADATA
            | packet_type::MPEG2TS_SEQUENCE_START => Ok(Vec::new()),
            other => Err(body.invalid(format!(
                "Enhanced RTMP PacketType {other} for {}",
                fourcc_name(fourcc)
            ))),
        }
    }

    fn config_error(
        codec: Codec,
        timestamp_ms: u32,
    ) -> impl FnOnce(crate::codec::CodecError) -> FlvError {
        move |source| FlvError::Config {
            codec,
            timestamp_ms,
            source,
        }
    }

    fn set_video(&mut self, config: CodecConfig, nal_length_size: usize) -> Vec<MediaEvent> {
        self.video = Some(VideoTrack {
            config: config.clone(),
            nal_length_size,
        });
        vec![MediaEvent::Config(config)]
    }

    fn avc_sequence_start(&mut self, body: &mut Body<'_>) -> Result<Vec<MediaEvent>, FlvError> {
        let record = body.rest();
        if record.is_empty() {
            // An empty sequence header (sent by some encoders before the real one) is skipped.
            return Ok(Vec::new());
        }
        let config = AvcConfig::from_record(record)
            .map_err(Self::config_error(Codec::H264, body.timestamp_ms))?;
        let length_size = h264::record_length_size(record)
            .map_err(Self::config_error(Codec::H264, body.timestamp_ms))?;
        Ok(self.set_video(CodecConfig::H264(config), usize::from(length_size)))
    }

    fn hevc_sequence_start(&mut self, body: &mut Body<'_>) -> Result<Vec<MediaEvent>, FlvError> {
        let record = body.rest();
        if record.is_empty() {
            // An empty sequence header (sent by some encoders before the real one) is skipped.
            return Ok(Vec::new());
        }
        let config = HevcConfig::from_record(record)
            .map_err(Self::config_error(Codec::H265, body.timestamp_ms))?;
        let length_size = h265::record_length_size(record)
            .map_err(Self::config_error(Codec::H265, body.timestamp_ms))?;
        Ok(self.set_video(CodecConfig::H265(config), usize::from(length_size)))
    }

    /// `av1C` (AV1 ISO-BMFF binding §2.3.3): four bytes of fields, then configOBUs.
    fn av1_sequence_start(&mut self, body: &mut Body<'_>) -> Result<Vec<MediaEvent>, FlvError> {
        let head = body.take(4, "av1C fields")?;
        if head[0] != 0x81 {
            return Err(body.invalid(format!("av1C marker/version byte {:#04x}", head[0])));
        }
        let obus = body.rest();
        let sequence_header = find_sequence_header_obu(obus)
            .ok_or_else(|| body.invalid("av1C configOBUs without a sequence header OBU".into()))?;
        // The av1C fields repeat the sequence header's; the sequence header is authoritative.
        let config = Av1Config::from_sequence_header(sequence_header)
            .map_err(Self::config_error(Codec::Av1, body.timestamp_ms))?;
        Ok(self.set_video(CodecConfig::Av1(config), 4))
    }

    /// `vpcC` VPCodecConfigurationRecord (VP Codec ISO-BMFF binding §2.2), with or without
    /// the FullBox version/flags in front.
    fn vp9_sequence_start(&mut self, body: &mut Body<'_>) -> Result<Vec<MediaEvent>, FlvError> {
        let rest = &body.data[body.pos.min(body.data.len())..];
        // A record starts with profile, level, then bitDepth (never 0) in the high nibble;
        // `01 00 00 00` can only be FullBox version 1 with flags 0.
        if rest.len() >= 4 && rest[..4] == [1, 0, 0, 0] {
            body.take(4, "vpcC version/flags")?;
        }
        let fields = body.take(3, "vpcC profile/level/bitDepth")?;
        let bit_depth = fields[2] >> 4;
        if !matches!(bit_depth, 8 | 10 | 12) {
            return Err(body.invalid(format!("vpcC bitDepth {bit_depth}")));
        }
        let config = Vp9Config {
            profile: fields[0],
            level: fields[1],
            bit_depth,
            chroma_subsampling: (fields[2] >> 1) & 0x07,
            full_range: fields[2] & 0x01 != 0,
            width: 0,
            height: 0,
        };
        Ok(self.set_video(CodecConfig::Vp9(config), 4))
    }

    /// H264/H265 coded frames: NAL units with `nal_length_size`-byte lengths → 4-byte lengths.
    fn nal_frames(
        &mut self,
        codec: Codec,
        frame_type: u8,
        cts: i32,
        body: &mut Body<'_>,
    ) -> Result<Vec<MediaEvent>, FlvError> {
        let length_size = match &self.video {
            Some(track) if track.config.codec() == codec => track.nal_length_size,
            _ => {
                return Err(FlvError::MissingConfig {
                    kind: TrackKind::Video,
                    timestamp_ms: body.timestamp_ms,
                })
            }
        };
        let mut out = BytesMut::with_capacity(body.data.len() + 16);
        while body.pos < body.data.len() {
            let len_bytes = body.take(length_size, "NAL unit length")?;
            let len = len_bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            let nal = body.take(len, "NAL unit")?;
            if nal.is_empty() {
                continue;
            }
            let len = u32::try_from(nal.len())
                .map_err(|_| body.invalid("NAL unit longer than 4 GiB".into()))?;
            out.put_u32(len);
            out.put_slice(nal);
        }
        if out.is_empty() {
            return Ok(Vec::new());
        }
        let dts = self.video_clock.unwrap(body.timestamp_ms);
        Ok(vec![MediaEvent::Frame(Frame {
            track: TrackKind::Video,
            pts: dts + i64::from(cts),
            dts,
            timescale: 1000,
            keyframe: frame_type == FRAME_TYPE_KEY,
            data: out.freeze(),
        })])
    }

    /// AV1 (OBUs in low-overhead format) and VP9 (one frame) are passed on unchanged.
    fn opaque_frame(
        &mut self,
        codec: Codec,
        frame_type: u8,
        body: &mut Body<'_>,
    ) -> Result<Vec<MediaEvent>, FlvError> {
        let timestamp_ms = body.timestamp_ms;
        let Some(track) = self.video.as_mut().filter(|t| t.config.codec() == codec) else {
            return Err(FlvError::MissingConfig {
                kind: TrackKind::Video,
                timestamp_ms,
            });
        };
        let data = body.rest();
        if data.is_empty() {
            return Ok(Vec::new());
        }
        let keyframe = frame_type == FRAME_TYPE_KEY;
        let mut events = Vec::new();
        if let CodecConfig::Vp9(config) = &mut track.config {
            if keyframe && config.width == 0 {
                // Only the size is taken: the vpcC fields are what the encoder declared.
                if let Ok(Some(parsed)) = Vp9Config::from_keyframe(data) {
                    config.width = parsed.width;
                    config.height = parsed.height;
                    events.push(MediaEvent::Config(track.config.clone()));
                }
            }
        }
        let dts = self.video_clock.unwrap(timestamp_ms);
        events.push(MediaEvent::Frame(Frame {
            track: TrackKind::Video,
            pts: dts,
            dts,
            timescale: 1000,
            keyframe,
            data: Bytes::copy_from_slice(data),
        }));
        Ok(events)
    }
}

/// Finds the first sequence header OBU (obu_type 1, AV1 spec §5.3.1) in a run of OBUs
/// that all carry obu_size, and returns it whole (header, size and payload).
fn find_sequence_header_obu(mut obus: &[u8]) -> Option<&[u8]> {
    while let Some(&header) = obus.first() {
        let obu_type = (header >> 3) & 0x0f;
        let has_extension = header & 0x04 != 0;
        let has_size = header & 0x02 != 0;
        let mut pos = 1 + usize::from(has_extension);
        if !has_size {
            // Without obu_size the OBU runs to the end.
            return (obu_type == 1 && obus.len() >= pos).then_some(obus);
        }
        let mut size = 0usize;
        for i in 0..8 {
            let byte = *obus.get(pos)?;
            pos += 1;
            size |= usize::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                break;
            }
        }
        let end = pos.checked_add(size)?;
        let obu = obus.get(..end)?;
        if obu_type == 1 {
            return Some(obu);
        }
        obus = &obus[end..];
    }
    None
}
