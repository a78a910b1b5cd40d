//! AAC configuration (ISO/IEC 14496-3 §1.6.2.1 AudioSpecificConfig).

use bytes::Bytes;

use super::{Codec, CodecError};

/// An AudioSpecificConfig and the fields parsed out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacConfig {
    /// The raw AudioSpecificConfig, as carried in `esds` and the FLV AAC sequence header.
    pub asc: Bytes,
    /// `audioObjectType` (2 = AAC-LC).
    pub object_type: u8,
    /// Sampling frequency in Hz.
    pub sample_rate: u32,
    /// Channel count (from `channelConfiguration`).
    pub channels: u8,
}

/// ISO/IEC 14496-3 §1.6.3.4 Table 1.18, `samplingFrequencyIndex` 0..=12.
const SAMPLE_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

/// `channelConfiguration` → channel count (ISO/IEC 14496-3 §1.6.3.5 Table 1.19 and
/// ISO/IEC 23001-8). `0` means "defined in a program_config_element" and maps to 0.
fn channels_from_config(config: u8) -> Option<u8> {
    match config {
        0..=6 => Some(config),
        7 => Some(8),
        11 => Some(7),
        12 | 14 => Some(8),
        13 => Some(24),
        _ => None,
    }
}

/// A big-endian bit reader over a byte slice that reports running out instead of panicking.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn read(&mut self, bits: u32) -> Option<u32> {
        let mut value = 0u32;
        for _ in 0..bits {
            let byte = *self.data.get(self.pos / 8)?;
            let bit = (byte >> (7 - (self.pos % 8))) & 1;
            value = (value << 1) | u32::from(bit);
            self.pos += 1;
        }
        Some(value)
    }
}

/// A big-endian bit writer; [`BitWriter::finish`] pads the last byte with zeros.
struct BitWriter {
    out: Vec<u8>,
    bits: usize,
}

impl BitWriter {
    fn write(&mut self, value: u32, bits: u32) {
        for i in (0..bits).rev() {
            if self.bits.is_multiple_of(8) {
                self.out.push(0);
            }
            let bit = ((value >> i) & 1) as u8;
            if let Some(last) = self.out.last_mut() {
                *last |= bit << (7 - (self.bits % 8));
            }
            self.bits += 1;
        }
    }

    fn finish(self) -> Vec<u8> {
        self.out
    }
}

fn truncated(what: &'static str) -> CodecError {
    CodecError::Truncated {
        codec: Codec::Aac,
        what,
    }
}

fn invalid(what: String) -> CodecError {
    CodecError::Invalid {
        codec: Codec::Aac,
        what,
    }
}

impl AacConfig {
    /// Parses an AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1), including the escaped
    /// object type (31 → 32 + 6 bits) and the explicit 24-bit sampling frequency (index 15).
    ///
    /// `object_type` is the signalled `audioObjectType` (5 or 29 for explicitly signalled
    /// SBR/PS, in which case `sample_rate` is the core rate); `channels` is 0 when the
    /// layout lives in a program_config_element.
    pub fn from_asc(asc: &[u8]) -> Result<AacConfig, CodecError> {
        let mut reader = BitReader { data: asc, pos: 0 };
        let mut object_type = reader.read(5).ok_or_else(|| truncated("audioObjectType"))?;
        if object_type == 31 {
            object_type = 32
                + reader
                    .read(6)
                    .ok_or_else(|| truncated("audioObjectTypeExt"))?;
        }
        if object_type == 0 {
            return Err(invalid("audioObjectType 0 (null object)".into()));
        }
        let frequency_index = reader
            .read(4)
            .ok_or_else(|| truncated("samplingFrequencyIndex"))?;
        let sample_rate = match frequency_index {
            15 => reader
                .read(24)
                .ok_or_else(|| truncated("samplingFrequency"))?,
            i => *SAMPLE_RATES
                .get(i as usize)
                .ok_or_else(|| invalid(format!("reserved samplingFrequencyIndex {i}")))?,
        };
        if sample_rate == 0 {
            return Err(invalid("samplingFrequency 0".into()));
        }
        let channel_config = reader
            .read(4)
            .ok_or_else(|| truncated("channelConfiguration"))?;
        // The value fits in 4 bits, so the cast is lossless.
        let channels = channels_from_config(channel_config as u8)
            .ok_or_else(|| invalid(format!("reserved channelConfiguration {channel_config}")))?;
        Ok(AacConfig {
            asc: Bytes::copy_from_slice(asc),
            // At most 32 + 63 = 95, so the cast is lossless.
            object_type: object_type as u8,
            sample_rate,
            channels,
        })
    }

    /// Builds a minimal AudioSpecificConfig (no extensions) for `object_type` (2 = AAC-LC),
    /// `sample_rate` in Hz and `channels` (1–6 or 8), and parses it back.
    pub fn from_params(
        object_type: u8,
        sample_rate: u32,
        channels: u8,
    ) -> Result<AacConfig, CodecError> {
        if object_type == 0 || object_type > 95 {
            return Err(invalid(format!(
                "audioObjectType {object_type} out of range"
            )));
        }
        if sample_rate == 0 || sample_rate >= 1 << 24 {
            return Err(invalid(format!("sample rate {sample_rate} out of range")));
        }
        let channel_config = match channels {
            1..=6 => channels,
            8 => 7,
            _ => {
                return Err(invalid(format!(
                    "no channelConfiguration for {channels} channels"
                )))
            }
        };
        let mut writer = BitWriter {
            out: Vec::new(),
            bits: 0,
        };
        if object_type >= 31 {
            writer.write(31, 5);
            writer.write(u32::from(object_type - 32), 6);
        } else {
            writer.write(u32::from(object_type), 5);
        }
        match SAMPLE_RATES.iter().position(|&rate| rate == sample_rate) {
            // The table has 13 entries, so the index fits in 4 bits.
            Some(index) => writer.write(index as u32, 4),
            None => {
                writer.write(15, 4);
                writer.write(sample_rate, 24);
            }
        }
        writer.write(u32::from(channel_config), 4);
        // GASpecificConfig: frameLengthFlag, dependsOnCoreCoder, extensionFlag all 0.
        writer.write(0, 3);
        AacConfig::from_asc(&writer.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aac_lc_44100_stereo_asc_parses() {
        let config = AacConfig::from_asc(&[0x12, 0x10]).unwrap();
        assert_eq!(config.object_type, 2);
        assert_eq!(config.sample_rate, 44_100);
        assert_eq!(config.channels, 2);
        assert_eq!(&config.asc[..], &[0x12, 0x10]);
    }

    #[test]
    fn escaped_object_type_and_explicit_rate_parse() {
        // aot 31 + ext 10 = 42 (USAC), index 15, rate 0x00BB80 = 48000, channels 1.
        let mut writer = BitWriter {
            out: Vec::new(),
            bits: 0,
        };
        writer.write(31, 5);
        writer.write(10, 6);
        writer.write(15, 4);
        writer.write(48_000, 24);
        writer.write(1, 4);
        let config = AacConfig::from_asc(&writer.finish()).unwrap();
        assert_eq!(config.object_type, 42);
        assert_eq!(config.sample_rate, 48_000);
        assert_eq!(config.channels, 1);
    }

    #[test]
    fn channel_configuration_seven_means_eight_channels() {
        let config = AacConfig::from_params(2, 48_000, 8).unwrap();
        assert_eq!(config.channels, 8);
    }

    #[test]
    fn from_params_round_trips_common_and_odd_rates() {
        let config = AacConfig::from_params(2, 48_000, 2).unwrap();
        assert_eq!(&config.asc[..], &[0x11, 0x90]);
        let odd = AacConfig::from_params(2, 50_000, 1).unwrap();
        assert_eq!(odd.sample_rate, 50_000);
        assert_eq!(odd.channels, 1);
        let escaped = AacConfig::from_params(33, 16_000, 1).unwrap();
        assert_eq!(escaped.object_type, 33);
    }

    #[test]
    fn truncated_and_reserved_ascs_are_errors() {
        assert!(matches!(
            AacConfig::from_asc(&[]),
            Err(CodecError::Truncated { .. })
        ));
        assert!(matches!(
            AacConfig::from_asc(&[0x12]),
            Err(CodecError::Truncated { .. })
        ));
        // Frequency index 13 is reserved.
        assert!(matches!(
            AacConfig::from_asc(&[0x16, 0x90]),
            Err(CodecError::Invalid { .. })
        ));
        assert!(AacConfig::from_params(2, 44_100, 7).is_err());
    }
}
