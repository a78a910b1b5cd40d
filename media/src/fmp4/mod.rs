//! Frames → fragmented MP4.
