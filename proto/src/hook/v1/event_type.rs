//! Dotted names of hook events (`record.started`), used by endpoint filters, SSE
//! `event:` lines and logs.

use super::{
    compose_event, hook_event, node_event, peer_event, record_event, room_event, stream_event,
    upload_event, HookEvent,
};

/// The families of event types: the part before the dot.
pub const EVENT_TYPE_FAMILIES: &[&str] = &[
    "room", "peer", "record", "compose", "stream", "upload", "node",
];

/// Every event type [`HookEvent::event_type`] can return (except `unknown`).
pub const EVENT_TYPES: &[&str] = &[
    "room.started",
    "room.peer_joined",
    "room.peer_leaved",
    "room.all_peers_leaved",
    "room.stopped",
    "peer.connected",
    "peer.disconnected",
    "peer.join",
    "peer.leave",
    "peer.remote_track_started",
    "peer.remote_track_ended",
    "record.started",
    "record.peer_joined",
    "record.segment",
    "record.rotated",
    "record.stopped",
    "record.failed",
    "record.restarted",
    "compose.started",
    "compose.failed",
    "compose.completed",
    "stream.started",
    "stream.stopped",
    "upload.stored",
    "upload.retrying",
    "upload.disk_low",
    "node.joined",
    "node.left",
];

impl HookEvent {
    /// The event's dotted type (`record.started`); `unknown` when the event (or its
    /// family's inner event) is not set, e.g. a variant from a newer schema.
    pub fn event_type(&self) -> &'static str {
        use hook_event::Event;
        match &self.event {
            Some(Event::Room(e)) => match &e.event {
                Some(room_event::Event::Started(_)) => "room.started",
                Some(room_event::Event::PeerJoined(_)) => "room.peer_joined",
                Some(room_event::Event::PeerLeaved(_)) => "room.peer_leaved",
                Some(room_event::Event::AllPeersLeaved(_)) => "room.all_peers_leaved",
                Some(room_event::Event::Stopped(_)) => "room.stopped",
                None => "unknown",
            },
            Some(Event::Peer(e)) => match &e.event {
                Some(peer_event::Event::Connected(_)) => "peer.connected",
                Some(peer_event::Event::Disconnected(_)) => "peer.disconnected",
                Some(peer_event::Event::Join(_)) => "peer.join",
                Some(peer_event::Event::Leave(_)) => "peer.leave",
                Some(peer_event::Event::RemoteTrackStarted(_)) => "peer.remote_track_started",
                Some(peer_event::Event::RemoteTrackEnded(_)) => "peer.remote_track_ended",
                None => "unknown",
            },
            Some(Event::Record(e)) => match &e.event {
                Some(record_event::Event::Started(_)) => "record.started",
                Some(record_event::Event::PeerJoined(_)) => "record.peer_joined",
                Some(record_event::Event::Segment(_)) => "record.segment",
                Some(record_event::Event::Rotated(_)) => "record.rotated",
                Some(record_event::Event::Stopped(_)) => "record.stopped",
                Some(record_event::Event::Failed(_)) => "record.failed",
                Some(record_event::Event::Restarted(_)) => "record.restarted",
                None => "unknown",
            },
            Some(Event::Compose(e)) => match &e.event {
                Some(compose_event::Event::Started(_)) => "compose.started",
                Some(compose_event::Event::Failed(_)) => "compose.failed",
                Some(compose_event::Event::Completed(_)) => "compose.completed",
                None => "unknown",
            },
            Some(Event::Stream(e)) => match &e.event {
                Some(stream_event::Event::Started(_)) => "stream.started",
                Some(stream_event::Event::Stopped(_)) => "stream.stopped",
                None => "unknown",
            },
            Some(Event::Upload(e)) => match &e.event {
                Some(upload_event::Event::Stored(_)) => "upload.stored",
                Some(upload_event::Event::Retrying(_)) => "upload.retrying",
                Some(upload_event::Event::DiskLow(_)) => "upload.disk_low",
                None => "unknown",
            },
            Some(Event::NodeEvent(e)) => match &e.event {
                Some(node_event::Event::Joined(_)) => "node.joined",
                Some(node_event::Event::Left(_)) => "node.left",
                None => "unknown",
            },
            None => "unknown",
        }
    }
}
