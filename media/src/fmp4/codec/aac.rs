//! `mp4a` + `esds` (ISO/IEC 14496-14 §5.6, ISO/IEC 14496-1 §7.2.6.5 ES_Descriptor).

use super::audio;
use crate::codec::AacConfig;
use mp4_atom::esds::{DecoderConfig, DecoderSpecific, EsDescriptor, SLConfig};
use mp4_atom::{Codec, Esds, Mp4a};

/// `objectTypeIndication` for MPEG-4 Audio (ISO/IEC 14496-1 Table 5).
const OTI_MPEG4_AUDIO: u8 = 0x40;
/// `streamType` AudioStream (ISO/IEC 14496-1 Table 6).
const STREAM_TYPE_AUDIO: u8 = 0x05;

pub(super) fn sample_entry(c: &AacConfig) -> Codec {
    Mp4a {
        audio: audio(c.channels, c.sample_rate),
        esds: Esds {
            es_desc: EsDescriptor {
                es_id: 1,
                depends_on_es_id: None,
                url: None,
                ocr_es_id: None,
                stream_priority: 0,
                dec_config: DecoderConfig {
                    object_type_indication: OTI_MPEG4_AUDIO,
                    stream_type: STREAM_TYPE_AUDIO,
                    up_stream: 0,
                    buffer_size_db: Default::default(),
                    max_bitrate: 0,
                    avg_bitrate: 0,
                    dec_specific: Some(DecoderSpecific {
                        profile: c.object_type,
                        freq_index: 0,
                        chan_conf: c.channels,
                        raw: c.asc.to_vec(),
                    }),
                },
                sl_config: SLConfig {},
            },
        },
        btrt: None,
        taic: None,
    }
    .into()
}
