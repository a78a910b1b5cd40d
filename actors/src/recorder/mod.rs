//! Recording sessions: one per active recording, writing fMP4 + DASH and FLV into the spool.
