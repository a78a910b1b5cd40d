//! VP9 configuration (VP9 bitstream spec §6.2 uncompressed header; VP Codec ISO-BMFF binding `vpcC`).

/// What a `vp09` sample entry and its `vpcC` need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vp9Config {
    /// Profile 0–3.
    pub profile: u8,
    /// Level as in the VP9 levels table (10 = 1.0 …); 0 when unknown.
    pub level: u8,
    /// 8, 10 or 12.
    pub bit_depth: u8,
    /// `vpcC` chromaSubsampling: 0 = 4:2:0 vertical, 1 = 4:2:0 colocated, 2 = 4:2:2, 3 = 4:4:4.
    pub chroma_subsampling: u8,
    /// Full-range video.
    pub full_range: bool,
    /// Frame width in pixels.
    pub width: u16,
    /// Frame height in pixels.
    pub height: u16,
}
