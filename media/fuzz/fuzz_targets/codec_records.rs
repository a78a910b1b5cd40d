//! Fuzzes the codec configuration parsers: decoder configuration records, parameter sets,
//! key frame headers and sequence headers. None may panic; a record that parses must
//! survive a `to_record` → `from_record` round trip unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recnode_media::codec::{h264, h265, Av1Config, AvcConfig, HevcConfig, Vp8Config, Vp9Config};

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = AvcConfig::from_record(data) {
        let record = config.to_record();
        assert_eq!(h264::record_length_size(&record), Ok(4));
        assert_eq!(AvcConfig::from_record(&record).as_ref(), Ok(&config));
    }
    if let Ok(config) = HevcConfig::from_record(data) {
        let record = config.to_record();
        assert_eq!(h265::record_length_size(&record), Ok(4));
        assert_eq!(HevcConfig::from_record(&record).as_ref(), Ok(&config));
    }
    let _ = h264::record_length_size(data);
    let _ = h265::record_length_size(data);

    // Parameter sets, with and without a valid NAL header in front.
    let _ = h264::parse_sps(data);
    let _ = h265::parse_sps(data);
    let mut sps = vec![0x67];
    sps.extend_from_slice(data);
    if let Ok(info) = h264::parse_sps(&sps) {
        assert!(info.width > 0 && info.height > 0);
    }
    let mut sps = vec![0x42, 0x01];
    sps.extend_from_slice(data);
    if let Ok(info) = h265::parse_sps(&sps) {
        assert!(info.width > 0 && info.height > 0);
    }

    if let Some(config) = Vp8Config::from_keyframe(data) {
        assert!(config.width > 0 && config.height > 0);
    }
    if let Ok(Some(config)) = Vp9Config::from_keyframe(data) {
        assert!(matches!(config.bit_depth, 8 | 10 | 12));
        assert!(config.chroma_subsampling <= 3);
    }
    if let Ok(config) = Av1Config::from_sequence_header(data) {
        // The stored copy has a size field and parses to the same config.
        assert_eq!(config.sequence_header[0] & 0x02, 0x02);
        assert_eq!(
            Av1Config::from_sequence_header(&config.sequence_header).as_ref(),
            Ok(&config)
        );
    }
    let mut obu = vec![0x0a];
    obu.extend_from_slice(data);
    let _ = Av1Config::from_sequence_header(&obu);
});
