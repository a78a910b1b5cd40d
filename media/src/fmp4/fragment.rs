//! One fragment of one track: `moof` (`mfhd`, `traf` with `tfhd`, `tfdt`, `trun`) + `mdat`
//! (ISO/IEC 14496-12 §8.8.4–8.8.8, §8.8.12).

use super::init::TRACK_ID;
use super::Fmp4Error;
use bytes::Bytes;
use mp4_atom::{
    Atom, Encode, Header, Mdat, Mfhd, Moof, Styp, Tfdt, Tfhd, Traf, Trun, TrunEntry, TrunSamples,
};

/// `sample_depends_on = 2`: an independent (sync) sample (ISO/IEC 14496-12 §8.8.3.1).
const FLAGS_SYNC: u32 = 0x0200_0000;
/// `sample_depends_on = 1` and `sample_is_non_sync_sample = 1`.
const FLAGS_NON_SYNC: u32 = 0x0101_0000;

/// One sample ready to be written: its decode time, duration and composition offset in track units.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub dts: u64,
    pub duration: u32,
    pub cts: i32,
    pub keyframe: bool,
    pub data: Bytes,
}

/// Encodes `samples` as one fragment with sequence number `sequence`; `styp` starts a segment file.
pub(crate) fn encode(sequence: u32, samples: &[Sample], styp: bool) -> Result<Vec<u8>, Fmp4Error> {
    let payload: usize = samples.iter().map(|s| s.data.len()).sum();
    let any_cts = samples.iter().any(|s| s.cts != 0);
    let entries = samples
        .iter()
        .map(|s| TrunEntry {
            duration: Some(s.duration),
            size: Some(u32::try_from(s.data.len()).unwrap_or(u32::MAX)),
            flags: Some(if s.keyframe {
                FLAGS_SYNC
            } else {
                FLAGS_NON_SYNC
            }),
            cts: any_cts.then_some(i64::from(s.cts)),
        })
        .collect();
    let mut moof = Moof {
        mfhd: Mfhd {
            sequence_number: sequence,
        },
        traf: vec![Traf {
            tfhd: Tfhd {
                track_id: TRACK_ID,
                default_base_is_moof: true,
                ..Default::default()
            },
            tfdt: Some(Tfdt {
                base_media_decode_time: samples.first().map_or(0, |s| s.dts),
            }),
            trun: vec![Trun {
                data_offset: Some(0),
                samples: TrunSamples::Explicit(entries),
            }],
            ..Default::default()
        }],
    };
    // The data offset is relative to the moof start (default-base-is-moof) and points
    // past the mdat header; its value does not change the moof's size.
    let mut probe = Vec::new();
    moof.encode(&mut probe)?;
    let offset = i32::try_from(probe.len() + 8).map_err(|_| Fmp4Error::TooLarge)?;
    moof.traf[0].trun[0].data_offset = Some(offset);

    let mut out = Vec::with_capacity(probe.len() + payload + 64);
    if styp {
        Styp {
            major_brand: b"msdh".into(),
            minor_version: 0,
            compatible_brands: vec![b"msdh".into(), b"msix".into()],
        }
        .encode(&mut out)?;
    }
    moof.encode(&mut out)?;
    if payload > u32::MAX as usize - 8 {
        return Err(Fmp4Error::TooLarge);
    }
    // mp4-atom encodes the mdat header; the payload is appended after it so each sample
    // is copied once, rather than gathered into an `Mdat` first.
    Header {
        kind: Mdat::KIND,
        size: Some(payload),
    }
    .encode(&mut out)?;
    for s in samples {
        out.extend_from_slice(&s.data);
    }
    Ok(out)
}
