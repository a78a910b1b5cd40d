//! FLV file structure: header (FLV spec v10.1 §E.2), body (§E.3) and tag header (§E.4.1).

use super::FlvError;

/// Size of the FLV file header (§E.2) with DataOffset 9.
pub(crate) const FILE_HEADER_LEN: usize = 9;
/// Size of a tag header (§E.4.1).
pub(crate) const TAG_HEADER_LEN: usize = 11;
/// Size of a PreviousTagSize field (§E.3).
pub(crate) const PREVIOUS_TAG_SIZE_LEN: usize = 4;

/// The TagType of an FLV tag (§E.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagKind {
    /// TagType 8: AUDIODATA (§E.4.2).
    Audio,
    /// TagType 9: VIDEODATA (§E.4.3).
    Video,
    /// TagType 18: SCRIPTDATA (§E.4.4).
    Script,
}

impl TagKind {
    /// The 5-bit TagType value.
    pub fn tag_type(self) -> u8 {
        match self {
            TagKind::Audio => 8,
            TagKind::Video => 9,
            TagKind::Script => 18,
        }
    }

    fn from_tag_type(tag_type: u8) -> Option<TagKind> {
        match tag_type {
            8 => Some(TagKind::Audio),
            9 => Some(TagKind::Video),
            18 => Some(TagKind::Script),
            _ => None,
        }
    }
}

/// One tag of an FLV file, borrowing its body from the file bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlvTag<'a> {
    /// Audio, video or script data.
    pub kind: TagKind,
    /// Timestamp in ms: the 24-bit Timestamp plus TimestampExtended as the upper 8 bits.
    pub timestamp_ms: u32,
    /// The tag body (what an RTMP message of the same type carries).
    pub data: &'a [u8],
    /// File offset of the tag header.
    pub offset: u64,
}

/// Iterates the tags of an FLV file held in memory, checking every PreviousTagSize.
///
/// Yields `Err` once at the first malformed tag and then ends. The Filter bit (encrypted
/// content, FLV spec v10.1 §E.4.1) is ignored; such bodies reach the caller as they are.
#[derive(Debug, Clone)]
pub struct FlvReader<'a> {
    data: &'a [u8],
    pos: usize,
    has_audio: bool,
    has_video: bool,
    failed: bool,
}

fn read_u32(data: &[u8], pos: usize) -> Option<u32> {
    let b = data.get(pos..pos.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

impl<'a> FlvReader<'a> {
    /// Validates the FLV header and PreviousTagSize0 (§E.2, §E.3).
    pub fn new(data: &'a [u8]) -> Result<FlvReader<'a>, FlvError> {
        if data.len() < FILE_HEADER_LEN {
            return Err(FlvError::BadHeader {
                what: "shorter than 9 bytes",
            });
        }
        if &data[..3] != b"FLV" {
            return Err(FlvError::BadHeader {
                what: "signature is not \"FLV\"",
            });
        }
        if data[3] != 1 {
            return Err(FlvError::BadHeader {
                what: "version is not 1",
            });
        }
        let flags = data[4];
        // The length was checked above.
        let data_offset = read_u32(data, 5).unwrap_or(0) as usize;
        if data_offset < FILE_HEADER_LEN {
            return Err(FlvError::BadHeader {
                what: "DataOffset smaller than 9",
            });
        }
        let previous = read_u32(data, data_offset).ok_or(FlvError::TruncatedTag {
            offset: data_offset as u64,
            what: "PreviousTagSize0",
        })?;
        if previous != 0 {
            return Err(FlvError::PreviousTagSize {
                offset: data_offset as u64,
                found: previous,
                expected: 0,
            });
        }
        Ok(FlvReader {
            data,
            pos: data_offset + PREVIOUS_TAG_SIZE_LEN,
            has_audio: flags & 0x04 != 0,
            has_video: flags & 0x01 != 0,
            failed: false,
        })
    }

    /// TypeFlagsAudio from the header.
    pub fn has_audio(&self) -> bool {
        self.has_audio
    }

    /// TypeFlagsVideo from the header.
    pub fn has_video(&self) -> bool {
        self.has_video
    }

    fn next_tag(&mut self) -> Result<FlvTag<'a>, FlvError> {
        let offset = self.pos as u64;
        let header =
            self.data
                .get(self.pos..self.pos + TAG_HEADER_LEN)
                .ok_or(FlvError::TruncatedTag {
                    offset,
                    what: "tag header",
                })?;
        let tag_type = header[0] & 0x1f;
        let kind =
            TagKind::from_tag_type(tag_type).ok_or(FlvError::BadTagType { offset, tag_type })?;
        let size = u32::from_be_bytes([0, header[1], header[2], header[3]]);
        let timestamp_ms = u32::from_be_bytes([header[7], header[4], header[5], header[6]]);
        let body_start = self.pos + TAG_HEADER_LEN;
        let body_end = body_start + size as usize;
        let data = self
            .data
            .get(body_start..body_end)
            .ok_or(FlvError::TruncatedTag {
                offset,
                what: "tag body",
            })?;
        let previous = read_u32(self.data, body_end).ok_or(FlvError::TruncatedTag {
            offset: body_end as u64,
            what: "PreviousTagSize",
        })?;
        let expected = size + TAG_HEADER_LEN as u32;
        if previous != expected {
            return Err(FlvError::PreviousTagSize {
                offset: body_end as u64,
                found: previous,
                expected,
            });
        }
        self.pos = body_end + PREVIOUS_TAG_SIZE_LEN;
        Ok(FlvTag {
            kind,
            timestamp_ms,
            data,
            offset,
        })
    }
}

impl<'a> Iterator for FlvReader<'a> {
    type Item = Result<FlvTag<'a>, FlvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let tag = self.next_tag();
        self.failed = tag.is_err();
        Some(tag)
    }
}

/// Appends the FLV file header (§E.2) and PreviousTagSize0 (§E.3).
pub(crate) fn encode_file_header(has_audio: bool, has_video: bool, out: &mut Vec<u8>) {
    let flags = (u8::from(has_audio) << 2) | u8::from(has_video);
    out.extend_from_slice(b"FLV");
    out.extend_from_slice(&[1, flags, 0, 0, 0, FILE_HEADER_LEN as u8]);
    out.extend_from_slice(&[0, 0, 0, 0]);
}

/// Appends one tag (§E.4.1 header, body, PreviousTagSize). Bodies are at most 2^24 − 1
/// bytes (the DataSize field); callers never build larger ones from valid frames, and a
/// larger one is cut rather than written with a wrong size.
pub(crate) fn encode_tag(kind: TagKind, timestamp_ms: u32, body: &[u8], out: &mut Vec<u8>) {
    let body = &body[..body.len().min(0x00ff_ffff)];
    // At most 2^24 − 1 after the cut above, so it fits in u32 and in 24 bits.
    let size = body.len() as u32;
    let ts = timestamp_ms.to_be_bytes();
    let sz = size.to_be_bytes();
    out.extend_from_slice(&[
        kind.tag_type(),
        sz[1],
        sz[2],
        sz[3],
        ts[1],
        ts[2],
        ts[3],
        ts[0],
    ]);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(body);
    out.extend_from_slice(&(size + TAG_HEADER_LEN as u32).to_be_bytes());
}
