//! Ingest: the RTMP listener and one connection actor per publisher socket.
