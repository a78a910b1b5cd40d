//! VP8 configuration (RFC 6386 §9.1, the key frame header).

/// What a `vp08` sample entry needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vp8Config {
    /// Frame width in pixels.
    pub width: u16,
    /// Frame height in pixels.
    pub height: u16,
}
