//! Re-timing the fragments of a restarted recorder session onto its recording's timeline.
//!
//! [`recnode_media::fmp4::Fmp4Muxer`] starts every recording at time zero (its first
//! frame) and numbers fragments from 1. A session that resumes a recording after a failure
//! runs a fresh muxer, so each of its fragments is shifted here: `tfdt` (ISO/IEC 14496-12
//! §8.8.12) gains the track's offset and `mfhd` (§8.8.5) continues the sequence. Only the
//! `moof` is rewritten; `styp` and `mdat` are copied as they are.

use bytes::Bytes;
use mp4_atom::{Decode, Encode, Moof};

/// Returns `data` (`[styp] moof mdat`) with `tfdt` moved by `tfdt_offset` and `mfhd` set to `sequence`.
pub(crate) fn retime_fragment(
    data: &[u8],
    tfdt_offset: i64,
    sequence: u32,
) -> Result<Bytes, String> {
    let mut out = Vec::with_capacity(data.len() + 8);
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < 8 {
            return Err(format!("{} trailing bytes after the last box", rest.len()));
        }
        let size = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let kind = &rest[4..8];
        if size < 8 || size > rest.len() {
            return Err(format!(
                "box {:?} of size {size} does not fit in {} bytes",
                String::from_utf8_lossy(kind),
                rest.len()
            ));
        }
        let (this, next) = rest.split_at(size);
        if kind == b"moof" {
            let mut body: &[u8] = this;
            let mut moof = Moof::decode(&mut body).map_err(|e| format!("moof: {e}"))?;
            moof.mfhd.sequence_number = sequence;
            for traf in &mut moof.traf {
                if let Some(tfdt) = traf.tfdt.as_mut() {
                    let t = i128::from(tfdt.base_media_decode_time) + i128::from(tfdt_offset);
                    tfdt.base_media_decode_time = u64::try_from(t.max(0)).unwrap_or(u64::MAX);
                }
            }
            // `trun.data_offset` is relative to the moof start (default-base-is-moof): it
            // moves by as much as the moof's size changes.
            let mut encoded = Vec::with_capacity(size + 8);
            moof.encode(&mut encoded)
                .map_err(|e| format!("moof: {e}"))?;
            let grow = encoded.len() as i64 - size as i64;
            if grow != 0 {
                for traf in &mut moof.traf {
                    for trun in &mut traf.trun {
                        if let Some(off) = trun.data_offset.as_mut() {
                            *off = i32::try_from(i64::from(*off) + grow)
                                .map_err(|_| "data offset out of range".to_string())?;
                        }
                    }
                }
                encoded.clear();
                moof.encode(&mut encoded)
                    .map_err(|e| format!("moof: {e}"))?;
            }
            out.extend_from_slice(&encoded);
        } else {
            out.extend_from_slice(this);
        }
        rest = next;
    }
    Ok(Bytes::from(out))
}
