//! Frames → FLV file bytes (FLV spec v10.1 §E), with a seekable `onMetaData`.
//!
//! The file layout is: header (§E.2) + PreviousTagSize0, an `onMetaData` script tag
//! (§E.4.4, §E.5) of a fixed size, the sequence header tags, then one tag per frame in
//! call order. When the recording ends, [`FlvWriter::finish`] renders the final
//! `onMetaData` (duration, sizes, rates and a `keyframes` index
//! `{filepositions: [..], times: [..]}`, the convention of yamdi/flvtool2 that ffmpeg
//! reads) into exactly the same number of bytes, for the caller to write over the
//! placeholder. The slack is filled by a `_padding` strict array of AMF0 nulls inside
//! the ECMA array, which every AMF0 parser skips (ffmpeg's `amf_parse_object` included;
//! a long filler *string* would not do, ffmpeg rejects strings longer than its buffer).

use bytes::Bytes;

use super::amf::{encode_key, AmfValue};
use super::tag::{
    encode_file_header, encode_tag, TagKind, FILE_HEADER_LEN, PREVIOUS_TAG_SIZE_LEN, TAG_HEADER_LEN,
};
use super::FlvError;
use crate::codec::{Av1Config, Codec, Vp9Config};
use crate::{CodecConfig, Frame, TrackKind};

/// The smallest accepted metadata reservation; the fixed fields need about 400 bytes.
const MIN_METADATA_SIZE: usize = 1024;
/// Longest `encoder` string kept.
const MAX_ENCODER_LEN: usize = 256;
/// Largest body a tag can have (24-bit DataSize, §E.4.1).
const MAX_TAG_BODY: usize = 0x00ff_ffff;
/// Key of the filler property.
const PADDING_KEY: &str = "_padding";

/// Settings for [`FlvWriter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvWriterOptions {
    /// Bytes of AMF0 data reserved for `onMetaData` (the script tag body). Each indexed
    /// keyframe takes 18 bytes; when the index does not fit it is thinned evenly.
    /// Values below 1024 are raised to 1024.
    pub metadata_size: usize,
    /// The `encoder` metadata string.
    pub encoder: String,
}

impl Default for FlvWriterOptions {
    fn default() -> Self {
        FlvWriterOptions {
            metadata_size: 64 * 1024,
            encoder: "recnode".into(),
        }
    }
}

/// The final `onMetaData` tag to write over the placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvFinish {
    /// File offset of the placeholder tag (always 13: right after header and PreviousTagSize0).
    pub metadata_offset: u64,
    /// The complete tag (header, body, PreviousTagSize), exactly as long as the placeholder.
    pub metadata: Bytes,
    /// Size of the whole file in bytes.
    pub file_size: u64,
    /// Keyframes written to the file.
    pub keyframes_total: usize,
    /// Keyframes listed in the index (fewer than `keyframes_total` when thinned to fit).
    pub keyframes_indexed: usize,
}

/// Builds an FLV file from codec configs and frames, sans-IO: every call returns the
/// bytes to append, in order.
///
/// Timestamps are rescaled from each frame's timescale to milliseconds and rebased so
/// the first frame written (of either track) is at 0; earlier frames of the other track
/// are clamped to 0, and times past 2^32 ms wrap as the 32-bit FLV timestamp does.
/// H264 is written as legacy AVC (CodecID 7); H265, AV1 and VP9 use the Enhanced RTMP v1
/// extended video header (`hvc1`, `av01`, `vp09`); audio must be AAC.
#[derive(Debug, Clone)]
pub struct FlvWriter {
    video: Option<CodecConfig>,
    audio: Option<CodecConfig>,
    options: FlvWriterOptions,
    header_written: bool,
    /// Bytes returned so far = the file offset of the next tag.
    position: u64,
    base_ms: Option<i64>,
    /// Per track (video, audio): the last two tag timestamps, for the duration.
    last_timestamps: [Option<(u32, u32)>; 2],
    keyframes: Vec<(u32, u64)>,
    video_frames: u64,
    video_first_ms: Option<i64>,
    video_last_ms: i64,
    video_bytes: u64,
    audio_bytes: u64,
}

fn writable(config: &CodecConfig) -> Result<(), FlvError> {
    match config.codec() {
        Codec::H264 | Codec::H265 | Codec::Av1 | Codec::Vp9 | Codec::Aac => Ok(()),
        codec => Err(FlvError::UnwritableCodec { codec }),
    }
}

/// Milliseconds of `ticks` at `timescale`, floored.
fn to_ms(ticks: i64, timescale: u32) -> i64 {
    let ms = (i128::from(ticks) * 1000).div_euclid(i128::from(timescale));
    // |ticks| * 1000 / timescale ≤ |ticks| * 1000, which fits in i64 when clamped.
    ms.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn si24(value: i64) -> [u8; 3] {
    let clamped = value.clamp(-(1 << 23), (1 << 23) - 1) as i32;
    let b = clamped.to_be_bytes();
    [b[1], b[2], b[3]]
}

fn fourcc(codec: Codec) -> &'static [u8; 4] {
    match codec {
        Codec::H265 => b"hvc1",
        Codec::Av1 => b"av01",
        Codec::Vp9 => b"vp09",
        _ => b"avc1",
    }
}

fn av1c(config: &Av1Config) -> Vec<u8> {
    let mut out = vec![
        0x81,
        (config.seq_profile << 5) | (config.seq_level_idx_0 & 0x1f),
        (u8::from(config.seq_tier_0) << 7)
            | (u8::from(config.high_bitdepth) << 6)
            | (u8::from(config.twelve_bit) << 5)
            | (u8::from(config.monochrome) << 4)
            | (u8::from(config.chroma_subsampling_x) << 3)
            | (u8::from(config.chroma_subsampling_y) << 2)
            | (config.chroma_sample_position & 0x03),
        0,
    ];
    out.extend_from_slice(&config.sequence_header);
    out
}

fn vpcc(config: &Vp9Config) -> Vec<u8> {
    vec![
        config.profile,
        config.level,
        (config.bit_depth << 4)
            | ((config.chroma_subsampling & 0x07) << 1)
            | u8::from(config.full_range),
        2, // colourPrimaries: unspecified
        2, // transferCharacteristics: unspecified
        2, // matrixCoefficients: unspecified
        0,
        0, // codecIntializationDataSize
    ]
}

impl FlvWriter {
    /// A writer for at most one video and one audio track; fails for codecs FLV cannot
    /// carry (VP8, Opus) or a config on the wrong track.
    pub fn new(
        video: Option<CodecConfig>,
        audio: Option<CodecConfig>,
        options: FlvWriterOptions,
    ) -> Result<FlvWriter, FlvError> {
        for (config, kind) in [(&video, TrackKind::Video), (&audio, TrackKind::Audio)] {
            if let Some(config) = config {
                writable(config)?;
                if config.kind() != kind {
                    return Err(FlvError::UnwritableCodec {
                        codec: config.codec(),
                    });
                }
            }
        }
        // The fixed properties must leave room in the smallest reservation, so the
        // encoder string is capped.
        let mut encoder = options.encoder;
        if encoder.len() > MAX_ENCODER_LEN {
            let mut cut = MAX_ENCODER_LEN;
            while !encoder.is_char_boundary(cut) {
                cut -= 1;
            }
            encoder.truncate(cut);
        }
        let options = FlvWriterOptions {
            metadata_size: options.metadata_size.clamp(MIN_METADATA_SIZE, MAX_TAG_BODY),
            encoder,
        };
        Ok(FlvWriter {
            video,
            audio,
            options,
            header_written: false,
            position: 0,
            base_ms: None,
            last_timestamps: [None, None],
            keyframes: Vec::new(),
            video_frames: 0,
            video_first_ms: None,
            video_last_ms: 0,
            video_bytes: 0,
            audio_bytes: 0,
        })
    }

    /// File offset of the `onMetaData` placeholder tag.
    pub fn metadata_offset(&self) -> u64 {
        (FILE_HEADER_LEN + PREVIOUS_TAG_SIZE_LEN) as u64
    }

    /// Bytes returned so far (the current file size).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The file start: FLV header, PreviousTagSize0, the `onMetaData` placeholder and the
    /// sequence header tags. Returns nothing on a second call.
    pub fn header(&mut self) -> Bytes {
        if self.header_written {
            return Bytes::new();
        }
        self.header_written = true;
        let mut out = Vec::new();
        encode_file_header(self.audio.is_some(), self.video.is_some(), &mut out);
        out.extend_from_slice(&self.metadata_tag(false).0);
        if let Some(video) = &self.video {
            let mut body = Vec::new();
            match video {
                CodecConfig::H264(config) => {
                    body.extend_from_slice(&[0x17, 0, 0, 0, 0]);
                    body.extend_from_slice(&config.to_record());
                }
                CodecConfig::H265(config) => {
                    body.push(0x90);
                    body.extend_from_slice(b"hvc1");
                    body.extend_from_slice(&config.to_record());
                }
                CodecConfig::Av1(config) => {
                    body.push(0x90);
                    body.extend_from_slice(b"av01");
                    body.extend_from_slice(&av1c(config));
                }
                CodecConfig::Vp9(config) => {
                    body.push(0x90);
                    body.extend_from_slice(b"vp09");
                    body.extend_from_slice(&vpcc(config));
                }
                // `new` admits only the codecs above for video.
                _ => {}
            }
            encode_tag(TagKind::Video, 0, &body, &mut out);
        }
        if let Some(CodecConfig::Aac(config)) = &self.audio {
            let mut body = vec![0xaf, 0];
            body.extend_from_slice(&config.asc);
            encode_tag(TagKind::Audio, 0, &body, &mut out);
        }
        self.position += out.len() as u64;
        Bytes::from(out)
    }

    /// The tag for `frame` (preceded by [`FlvWriter::header`] if that was not called yet).
    pub fn write_frame(&mut self, frame: &Frame) -> Result<Bytes, FlvError> {
        let config = match frame.track {
            TrackKind::Video => self.video.as_ref(),
            TrackKind::Audio => self.audio.as_ref(),
        }
        .ok_or(FlvError::NoSuchTrack {
            kind: frame.track,
            dts: frame.dts,
        })?;
        if frame.timescale == 0 {
            return Err(FlvError::ZeroTimescale {
                kind: frame.track,
                dts: frame.dts,
            });
        }
        let codec = config.codec();
        let dts_ms = to_ms(frame.dts, frame.timescale);
        let cts_ms = to_ms(frame.pts, frame.timescale) - dts_ms;
        let mut body = Vec::with_capacity(frame.data.len() + 8);
        let frame_type = if frame.keyframe { 1u8 } else { 2 };
        match codec {
            Codec::H264 => {
                body.extend_from_slice(&[(frame_type << 4) | 7, 1]);
                body.extend_from_slice(&si24(cts_ms));
            }
            Codec::H265 if cts_ms != 0 => {
                body.push(0x80 | (frame_type << 4) | 1);
                body.extend_from_slice(fourcc(codec));
                body.extend_from_slice(&si24(cts_ms));
            }
            Codec::H265 => {
                body.push(0x80 | (frame_type << 4) | 3);
                body.extend_from_slice(fourcc(codec));
            }
            Codec::Av1 | Codec::Vp9 => {
                body.push(0x80 | (frame_type << 4) | 1);
                body.extend_from_slice(fourcc(codec));
            }
            _ => body.extend_from_slice(&[0xaf, 1]),
        }
        body.extend_from_slice(&frame.data);
        if body.len() > MAX_TAG_BODY {
            return Err(FlvError::InvalidBody {
                kind: frame.track,
                timestamp_ms: dts_ms as u32,
                offset: 0,
                what: format!("frame of {} bytes exceeds the 24-bit tag size", body.len()),
            });
        }

        let mut out = Vec::with_capacity(body.len() + 64);
        if !self.header_written {
            out.extend_from_slice(&self.header());
        }
        let base = *self.base_ms.get_or_insert(dts_ms);
        // FLV timestamps are 32-bit ms (§E.4.1); later times wrap, as RTMP's do.
        let timestamp_ms = (dts_ms - base).max(0) as u32;
        let slot = &mut self.last_timestamps[usize::from(frame.track == TrackKind::Audio)];
        *slot = Some((slot.map_or(timestamp_ms, |(_, last)| last), timestamp_ms));
        let tag_offset = self.position;
        match frame.track {
            TrackKind::Video => {
                self.video_frames += 1;
                self.video_first_ms.get_or_insert(dts_ms);
                self.video_last_ms = dts_ms;
                self.video_bytes += frame.data.len() as u64;
                if frame.keyframe {
                    self.keyframes.push((timestamp_ms, tag_offset));
                }
            }
            TrackKind::Audio => {
                self.audio_bytes += frame.data.len() as u64;
                // Audio-only files get an index entry at most once a second.
                let due = self
                    .keyframes
                    .last()
                    .is_none_or(|&(last, _)| timestamp_ms.wrapping_sub(last) >= 1000);
                if self.video.is_none() && due {
                    self.keyframes.push((timestamp_ms, tag_offset));
                }
            }
        }
        let kind = match frame.track {
            TrackKind::Video => TagKind::Video,
            TrackKind::Audio => TagKind::Audio,
        };
        let before = out.len();
        encode_tag(kind, timestamp_ms, &body, &mut out);
        self.position += (out.len() - before) as u64;
        Ok(Bytes::from(out))
    }

    /// The final `onMetaData` tag, to be written at `metadata_offset` over the placeholder.
    pub fn finish(&mut self) -> FlvFinish {
        let (tag, keyframes_indexed) = self.metadata_tag(true);
        FlvFinish {
            metadata_offset: self.metadata_offset(),
            metadata: Bytes::from(tag),
            file_size: self.position,
            keyframes_total: self.keyframes.len(),
            keyframes_indexed,
        }
    }

    fn framerate(&self) -> Option<f64> {
        let span = self.video_last_ms - self.video_first_ms?;
        (self.video_frames > 1 && span > 0)
            .then(|| (self.video_frames - 1) as f64 * 1000.0 / span as f64)
    }

    /// The end of the later track: its last timestamp plus its last frame interval.
    fn duration_seconds(&self) -> f64 {
        self.last_timestamps
            .iter()
            .flatten()
            .map(|&(previous, last)| {
                f64::from(last) / 1000.0 + f64::from(last.saturating_sub(previous)) / 1000.0
            })
            .fold(0.0, f64::max)
    }

    /// The `onMetaData` properties other than `keyframes` and the padding.
    fn properties(&self, final_values: bool) -> Vec<(String, AmfValue)> {
        let mut props = Vec::new();
        let mut number =
            |key: &str, value: f64| props.push((key.to_string(), AmfValue::Number(value)));
        let duration = if final_values {
            self.duration_seconds()
        } else {
            0.0
        };
        number("duration", duration);
        let rate = |bytes: u64| {
            if duration > 0.0 {
                bytes as f64 * 8.0 / 1000.0 / duration
            } else {
                0.0
            }
        };
        if let Some(video) = &self.video {
            let (width, height) = match video {
                CodecConfig::H264(c) => (c.width, c.height),
                CodecConfig::H265(c) => (c.width, c.height),
                CodecConfig::Av1(c) => (c.width, c.height),
                CodecConfig::Vp9(c) => (c.width, c.height),
                _ => (0, 0),
            };
            if width > 0 && height > 0 {
                number("width", f64::from(width));
                number("height", f64::from(height));
            }
            number("videodatarate", rate(self.video_bytes));
            if let Some(framerate) = self.framerate().filter(|_| final_values) {
                number("framerate", framerate);
            }
            let codec_id = match video.codec() {
                Codec::H264 => 7.0,
                // Enhanced RTMP: the FourCC as a number.
                codec => f64::from(u32::from_be_bytes(*fourcc(codec))),
            };
            number("videocodecid", codec_id);
        }
        if let Some(CodecConfig::Aac(aac)) = &self.audio {
            number("audiodatarate", rate(self.audio_bytes));
            number("audiosamplerate", f64::from(aac.sample_rate));
            number("audiosamplesize", 16.0);
            props.push(("stereo".into(), AmfValue::Boolean(aac.channels >= 2)));
            props.push(("audiocodecid".into(), AmfValue::Number(10.0)));
        }
        props.push((
            "encoder".into(),
            AmfValue::String(self.options.encoder.clone()),
        ));
        let filesize = if final_values {
            self.position as f64
        } else {
            0.0
        };
        props.push(("filesize".into(), AmfValue::Number(filesize)));
        props
    }

    /// `count` keyframes picked evenly (first and last included) from all of them.
    fn thinned_keyframes(&self, count: usize) -> AmfValue {
        let total = self.keyframes.len();
        let picked: Vec<(u32, u64)> = if count >= total {
            self.keyframes.clone()
        } else {
            (0..count)
                .filter_map(|i| {
                    self.keyframes
                        .get(i * (total - 1) / (count - 1).max(1))
                        .copied()
                })
                .collect()
        };
        let positions = picked
            .iter()
            .map(|&(_, pos)| AmfValue::Number(pos as f64))
            .collect();
        let times = picked
            .iter()
            .map(|&(ms, _)| AmfValue::Number(f64::from(ms) / 1000.0))
            .collect();
        AmfValue::Object(vec![
            ("filepositions".into(), AmfValue::StrictArray(positions)),
            ("times".into(), AmfValue::StrictArray(times)),
        ])
    }

    /// The whole `onMetaData` tag, `metadata_size` bytes of body, and how many keyframes
    /// it indexes.
    fn metadata_tag(&self, final_values: bool) -> (Vec<u8>, usize) {
        let reserved = self.options.metadata_size;
        let props = self.properties(final_values);
        let encode = |keyframes: Option<AmfValue>| {
            let mut props = props.clone();
            if let Some(index) = keyframes {
                props.push(("keyframes".into(), index));
            }
            let mut data = Vec::with_capacity(reserved);
            AmfValue::String("onMetaData".into()).encode(&mut data);
            AmfValue::EcmaArray(props).encode(&mut data);
            data
        };
        // Filler property overhead: key, strict-array marker and count.
        let padding_overhead = 2 + PADDING_KEY.len() + 1 + 4;
        let base = encode(None).len() + padding_overhead;
        // keyframes: key (2+9) + object marker (1) + "filepositions" (2+13) + array header (5)
        // + "times" (2+5) + array header (5) + object end (3) = 47, plus 18 per entry.
        let fits = reserved.saturating_sub(base + 47) / 18;
        let mut count = if final_values {
            fits.min(self.keyframes.len())
        } else {
            0
        };
        let mut data = loop {
            // ffmpeg ignores an index with fewer than two entries, so none is written then.
            let index = (count >= 2).then(|| self.thinned_keyframes(count));
            let data = encode(index);
            if data.len() + padding_overhead <= reserved || count < 2 {
                break data;
            }
            count -= 1;
        };
        if count < 2 {
            count = 0;
        }
        // Insert the filler before the ECMA array's end marker (00 00 09).
        let end_marker = data.split_off(data.len().saturating_sub(3));
        let nulls = reserved.saturating_sub(data.len() + padding_overhead + end_marker.len());
        encode_key(PADDING_KEY, &mut data);
        data.push(0x0a);
        // Bounded by metadata_size, which `new` caps at 2^24 − 1.
        data.extend_from_slice(&(nulls as u32).to_be_bytes());
        data.resize(data.len() + nulls, 0x05);
        data.extend_from_slice(&end_marker);
        // The ECMA array's approximate count (body bytes 14..18, after the
        // 13-byte "onMetaData" string and the 0x08 marker) gains the filler.
        if let Some(count_field) = data.get_mut(14..18) {
            let current = u32::from_be_bytes([
                count_field[0],
                count_field[1],
                count_field[2],
                count_field[3],
            ]);
            count_field.copy_from_slice(&(current + 1).to_be_bytes());
        }
        debug_assert_eq!(
            data.len(),
            reserved,
            "onMetaData must fill its reservation exactly"
        );
        let mut tag = Vec::with_capacity(TAG_HEADER_LEN + data.len() + PREVIOUS_TAG_SIZE_LEN);
        encode_tag(TagKind::Script, 0, &data, &mut tag);
        (tag, count)
    }
}
