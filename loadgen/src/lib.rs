//! The reusable part of `recnode-loadgen`: a WHIP publisher on webrtc-rs that replays
//! pre-encoded files at real-time pace ([`whip`]). The end-to-end tests publish with it,
//! and `recnode-loadgen whip` runs N of them at once.
#![deny(missing_docs)]

pub mod whip;
