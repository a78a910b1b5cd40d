//! The init segment of one track: `ftyp` + `moov` with an `mvex` (ISO/IEC 14496-12 §8.8.1).
//!
//! Each track gets its own init segment and track id 1, as live777 lays recordings out
//! (`v_init.m4s`, `a_init.m4s`), so every segment file is a single-track fragment.

use super::codec;
use super::Fmp4Error;
use crate::{CodecConfig, TrackKind};
use mp4_atom::{
    Dinf, Dref, Encode, FixedPoint, Ftyp, Hdlr, Mdhd, Mdia, Minf, Moov, Mvex, Mvhd, Smhd, Stbl,
    Stco, Stsc, Stsd, Stsz, Stts, Tkhd, Trak, Trex, Url, Vmhd,
};

/// The track id of every track: one track per file.
pub(crate) const TRACK_ID: u32 = 1;

/// The brands of init and media segments: ISO BMFF v6 (signed composition offsets), DASH, CMAF.
pub(crate) fn brands() -> Vec<mp4_atom::FourCC> {
    vec![
        b"iso6".into(),
        b"mp41".into(),
        b"dash".into(),
        b"cmfc".into(),
    ]
}

/// Builds the init segment for a track of `config`, whose media timescale is `timescale`.
pub(crate) fn init_segment(config: &CodecConfig, timescale: u32) -> Result<Vec<u8>, Fmp4Error> {
    let kind = config.kind();
    let (width, height) = codec::dimensions(config);
    let ftyp = Ftyp {
        major_brand: b"iso6".into(),
        minor_version: 0,
        compatible_brands: brands(),
    };
    let (handler, name) = match kind {
        TrackKind::Video => (b"vide", "VideoHandler"),
        TrackKind::Audio => (b"soun", "SoundHandler"),
    };
    let trak = Trak {
        tkhd: Tkhd {
            track_id: TRACK_ID,
            enabled: true,
            in_movie: true,
            volume: match kind {
                TrackKind::Audio => FixedPoint::new(1, 0),
                TrackKind::Video => FixedPoint::new(0, 0),
            },
            width: FixedPoint::new(width, 0),
            height: FixedPoint::new(height, 0),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale,
                language: "und".into(),
                ..Default::default()
            },
            hdlr: Hdlr {
                handler: handler.into(),
                name: name.into(),
            },
            minf: Minf {
                vmhd: (kind == TrackKind::Video).then(Vmhd::default),
                smhd: (kind == TrackKind::Audio).then(Smhd::default),
                dinf: Dinf {
                    dref: Dref {
                        entries: vec![Url {
                            location: String::new(),
                        }
                        .into()],
                    },
                },
                stbl: Stbl {
                    stsd: Stsd {
                        codecs: vec![codec::sample_entry(config)],
                    },
                    stts: Stts::default(),
                    stsc: Stsc::default(),
                    stsz: Stsz::default(),
                    stco: Some(Stco::default()),
                    ..Default::default()
                },
                ..Default::default()
            },
        },
        ..Default::default()
    };
    let moov = Moov {
        mvhd: Mvhd {
            timescale: 1000,
            next_track_id: TRACK_ID + 1,
            ..Default::default()
        },
        mvex: Some(Mvex {
            mehd: None,
            trex: vec![Trex {
                track_id: TRACK_ID,
                default_sample_description_index: 1,
                ..Default::default()
            }],
        }),
        trak: vec![trak],
        ..Default::default()
    };
    let mut out = Vec::with_capacity(1024);
    ftyp.encode(&mut out)?;
    moov.encode(&mut out)?;
    Ok(out)
}
