//! Segments → DASH MPD.
