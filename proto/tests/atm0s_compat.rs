//! An event encoded by recnode decodes with atm0s-media-server's `HookEvent`
//! definition (`schema/test/atm0s_hook.proto`, written from atm0s's field numbers), so an
//! atm0s consumer keeps working when pointed at recnode.

use prost::Message;
use recnode_proto::hook::v1 as recnode;

/// atm0s's schema as its consumers compile it (test-only).
mod atm0s {
    include!(concat!(env!("OUT_DIR"), "/atm0s_compat.rs"));
}

fn envelope(event: recnode::hook_event::Event) -> recnode::HookEvent {
    recnode::HookEvent {
        node: 42,
        ts: 1_700_000_000_123,
        event: Some(event),
        id: "msg_0123456789abcdef_7".into(),
        seq: 7,
        node_alias: "edge-a".into(),
    }
}

fn record(event: recnode::record_event::Event) -> recnode::hook_event::Event {
    recnode::hook_event::Event::Record(recnode::RecordEvent {
        room: "cam1".into(),
        app: "live".into(),
        record_id: "1700000000".into(),
        record_dir: "cam1/1700000000".into(),
        format: "dash".into(),
        event: Some(event),
    })
}

fn decode_as_atm0s(event: &recnode::HookEvent) -> atm0s::HookEvent {
    atm0s::HookEvent::decode(event.encode_to_vec().as_slice())
        .unwrap_or_else(|e| panic!("atm0s cannot decode {}: {e}", event.event_type()))
}

#[test]
fn record_started_decodes_as_atm0s_record_started() {
    let event = envelope(record(recnode::record_event::Event::Started(
        recnode::record_event::RecordStarted {
            path: "cam1/1700000000".into(),
            record_dir: "cam1/1700000000".into(),
            mpd_path: "cam1/1700000000/manifest.mpd".into(),
            flv_path: String::new(),
        },
    )));
    let old = decode_as_atm0s(&event);
    assert_eq!(old.node, 42);
    assert_eq!(old.ts, 1_700_000_000_123);
    let Some(atm0s::hook_event::Event::Record(rec)) = old.event else {
        panic!("expected a record event, got {:?}", old.event);
    };
    assert_eq!(rec.room, "cam1");
    assert_eq!(rec.app, "live");
    assert_eq!(
        rec.event,
        Some(atm0s::record_event::Event::Started(
            atm0s::record_event::RecordStarted {
                path: "cam1/1700000000".into()
            }
        ))
    );
}

#[test]
fn atm0s_variants_recnode_models_decode_unchanged() {
    let peer = envelope(recnode::hook_event::Event::Peer(recnode::PeerEvent {
        session_id: 99,
        app: "whip".into(),
        event: Some(recnode::peer_event::Event::RemoteTrackStarted(
            recnode::peer_event::RemoteTrackStarted {
                track: "video_main".into(),
                kind: recnode::Kind::Video as i32,
            },
        )),
    }));
    let Some(atm0s::hook_event::Event::Peer(p)) = decode_as_atm0s(&peer).event else {
        panic!("expected a peer event");
    };
    assert_eq!((p.session_id, p.app.as_str()), (99, "whip"));
    assert_eq!(
        p.event,
        Some(atm0s::peer_event::Event::RemoteTrackStarted(
            atm0s::peer_event::RemoteTrackStarted {
                track: "video_main".into(),
                kind: atm0s::Kind::Video as i32,
            }
        ))
    );

    let room = envelope(recnode::hook_event::Event::Room(recnode::RoomEvent {
        room: "cam1".into(),
        app: "live".into(),
        event: Some(recnode::room_event::Event::PeerLeaved(
            recnode::room_event::RoomPeerLeaved { peer: "p".into() },
        )),
    }));
    let Some(atm0s::hook_event::Event::Room(r)) = decode_as_atm0s(&room).event else {
        panic!("expected a room event");
    };
    assert_eq!((r.room.as_str(), r.app.as_str()), ("cam1", "live"));
    assert_eq!(
        r.event,
        Some(atm0s::room_event::Event::PeerLeaved(
            atm0s::room_event::RoomPeerLeaved { peer: "p".into() }
        ))
    );

    let compose = envelope(recnode::hook_event::Event::Compose(recnode::ComposeEvent {
        app: "live".into(),
        job_id: "j1".into(),
        event: Some(recnode::compose_event::Event::Completed(
            recnode::compose_event::RecordJobCompleted {
                compose: Some(
                    recnode::compose_event::record_job_completed::ComposeSummary {
                        media_uri: "s3://b/k.mp4".into(),
                        duration_ms: 5000,
                    },
                ),
            },
        )),
    }));
    let Some(atm0s::hook_event::Event::Compose(c)) = decode_as_atm0s(&compose).event else {
        panic!("expected a compose event");
    };
    let Some(atm0s::compose_event::Event::Completed(done)) = c.event else {
        panic!("expected compose completed");
    };
    assert_eq!(done.compose.map(|s| s.duration_ms), Some(5000));
}

#[test]
fn recnode_only_events_decode_as_an_envelope_without_an_event() {
    // An atm0s consumer sees who and when, and no event it knows: it can skip the
    // event instead of failing to decode.
    let events = [
        envelope(record(recnode::record_event::Event::Stopped(
            recnode::record_event::RecordStopped {
                duration_ms: 10_000,
                outcome: recnode::record_event::Outcome::Completed as i32,
                segments: 5,
            },
        ))),
        envelope(recnode::hook_event::Event::Stream(recnode::StreamEvent {
            stream: "cam1".into(),
            app: "live".into(),
            protocol: "rtmp".into(),
            event: Some(recnode::stream_event::Event::Started(
                recnode::stream_event::PublishStarted {
                    codecs: vec![recnode::Codec {
                        kind: recnode::Kind::Video as i32,
                        name: "h264".into(),
                        width: 320,
                        height: 240,
                        ..Default::default()
                    }],
                    remote_addr: "127.0.0.1:5000".into(),
                },
            )),
        })),
        envelope(recnode::hook_event::Event::Upload(recnode::UploadEvent {
            key: "cam1/1700000000/v_seg_0001.m4s".into(),
            event: Some(recnode::upload_event::Event::Stored(
                recnode::upload_event::ObjectStored {
                    bytes: 1234,
                    attempts: 1,
                    latency_ms: 5,
                },
            )),
        })),
        envelope(recnode::hook_event::Event::NodeEvent(recnode::NodeEvent {
            node: 42,
            node_alias: "edge-a".into(),
            event: Some(recnode::node_event::Event::Left(
                recnode::node_event::NodeLeft {
                    reason: "shutdown".into(),
                },
            )),
        })),
    ];
    for event in &events {
        let old = decode_as_atm0s(event);
        assert_eq!((old.node, old.ts), (42, 1_700_000_000_123));
        match (event.event_type(), old.event) {
            // A new record variant: the record envelope (room, app) is still read.
            ("record.stopped", Some(atm0s::hook_event::Event::Record(rec))) => {
                assert_eq!((rec.room.as_str(), rec.app.as_str()), ("cam1", "live"));
                assert_eq!(rec.event, None);
            }
            (_, None) => {}
            (kind, other) => panic!("{kind}: unexpected atm0s view {other:?}"),
        }
    }
}

#[test]
fn atm0s_events_decode_with_recnodes_schema() {
    // The other direction: recnode's schema reads what an atm0s node sends.
    let old = atm0s::HookEvent {
        node: 3,
        ts: 17,
        event: Some(atm0s::hook_event::Event::Record(atm0s::RecordEvent {
            app: "live".into(),
            room: "r".into(),
            event: Some(atm0s::record_event::Event::PeerJoined(
                atm0s::record_event::RecordPeerJoined {
                    peer: "p".into(),
                    path: "r/p".into(),
                },
            )),
        })),
    };
    let new = recnode::HookEvent::decode(old.encode_to_vec().as_slice()).expect("decodes");
    assert_eq!((new.node, new.ts), (3, 17));
    assert_eq!(new.event_type(), "record.peer_joined");
}
