//! The sans-IO media core of recnode.
//!
//! Bytes go in, frames or boxes come out. Nothing in this crate opens a file or a
//! socket, spawns a task or reads a clock: the caller (an actor in `recnode-actors`)
//! does the I/O and passes time in as an argument. (The `rtp` crate we build on pulls
//! in `tokio` transitively through `webrtc-util`; no code here uses it.)
//!
//! The pipeline, one stage per module:
//! - [`rtp`]: RTP packets → [`Frame`]s, through a bounded reorder buffer and one
//!   depacketizer per codec (RFC 6184, 7798, 7741, 9628, 7587). A sequence gap drops
//!   frames until the next keyframe and is counted; a corrupt frame is never emitted.
//! - [`flv`]: RTMP/FLV tag payloads → [`Frame`]s and codec configs, and the FLV file
//!   writer (FLV spec v10.1) with an `onMetaData` keyframe index.
//! - [`fmp4`]: [`Frame`]s → init segments and media segments of moof+mdat fragments,
//!   built with `mp4-atom` (ISO/IEC 14496-12 and -15).
//! - [`dash`]: finished segments → a DASH MPD with SegmentTemplate + SegmentTimeline.
//!
//! Time model: every [`Frame`] carries `pts`/`dts` in its own `timescale` (90 kHz for
//! RTP video, the sample rate for RTP audio, 1000 for RTMP). Writers rescale to their
//! track timescale. Sample data for H264/H265 is AVCC form: each NAL unit prefixed by a
//! 4-byte big-endian length.
//!
//! Codec configuration is typed ([`codec::CodecConfig`]) and parsed from the bitstream
//! in [`codec`], one module per codec.
#![deny(missing_docs)]

pub mod codec;
pub mod dash;
pub mod flv;
pub mod fmp4;
mod frame;
pub mod recover;
pub mod rtp;

pub use codec::{Codec, CodecConfig};
pub use frame::{Frame, MediaEvent, TrackKind};
