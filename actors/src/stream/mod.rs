//! Live streams: the [`StreamSupervisorMsg`] registry of live streams and one stream actor
//! per published stream, which owns the codec configuration and the frames since the last
//! keyframe and fans frames out to its recorder sessions.
//!
//! The contract with ingest (RTMP now, WHIP later) is the two message types below: an
//! ingest connection asks the supervisor to [`StreamSupervisorMsg::Publish`], receives the
//! stream actor's reference, sends it [`StreamMsg::Media`] in arrival order and finally
//! [`StreamMsg::Unpublish`].

use ractor::{ActorRef, RpcReplyPort};
use ractor_cluster_derive::RactorMessage;
use recnode_media::MediaEvent;

/// How a publisher reached the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestProtocol {
    /// RTMP (`rtmp://host/{app}/{stream}`).
    Rtmp,
    /// WebRTC over WHIP (`POST /whip/{stream}`).
    Whip,
}

impl IngestProtocol {
    /// The `app` recorded in hook events and FLV names for this protocol when it has none of its own.
    pub fn default_app(self) -> &'static str {
        match self {
            IngestProtocol::Rtmp => "live",
            IngestProtocol::Whip => "whip",
        }
    }
}

/// A publisher asking to go live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// The RTMP app (`live`), or `whip`.
    pub app: String,
    /// The stream name, already checked with [`validate_stream_name`].
    pub stream: String,
    /// RTMP or WHIP.
    pub protocol: IngestProtocol,
    /// The publisher's address, for logs.
    pub remote: String,
}

/// Why a publish was refused; ingest reports it to the publisher and logs it with the stream name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishRejected {
    /// The stream name is already live on this node (the first publisher keeps it).
    #[error("stream {stream:?} is already live")]
    AlreadyLive {
        /// The stream name.
        stream: String,
    },
    /// The node is shutting down and takes no new publishers.
    #[error("node is shutting down")]
    ShuttingDown,
}

/// Messages to the stream supervisor, which owns the registry of live streams.
///
/// More variants (the recording API) are added by the recording pipeline.
#[derive(RactorMessage)]
pub enum StreamSupervisorMsg {
    /// An ingest connection wants to publish; the reply is the stream actor to send media to.
    Publish(
        PublishRequest,
        RpcReplyPort<Result<ActorRef<StreamMsg>, PublishRejected>>,
    ),
}

/// Messages to one live stream's actor.
#[derive(RactorMessage)]
pub enum StreamMsg {
    /// A codec configuration or a frame from the publisher, in arrival order.
    Media(MediaEvent),
    /// The publisher left (unpublish, socket closed or session timed out); recordings close cleanly.
    Unpublish,
}

/// Why a stream name is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stream name {name:?}: {reason}")]
pub struct InvalidStreamName {
    /// The name as given (truncated to 200 characters).
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Checks a stream name from outside: 1–128 characters of `[A-Za-z0-9._-]`, not `.` or `..`,
/// so that it can never escape the storage root when used as a path component.
pub fn validate_stream_name(name: &str) -> Result<(), InvalidStreamName> {
    let invalid = |reason| InvalidStreamName {
        name: name.chars().take(200).collect(),
        reason,
    };
    if name.is_empty() || name.len() > 128 {
        return Err(invalid("must be 1 to 128 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(invalid("only A-Z, a-z, 0-9, '.', '_' and '-' are allowed"));
    }
    if name == "." || name == ".." {
        return Err(invalid("'.' and '..' are not stream names"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate_stream_name;

    #[test]
    fn stream_names_that_could_escape_the_storage_root_are_refused() {
        for bad in [
            "",
            "..",
            ".",
            "a/b",
            "a\\b",
            "../x",
            "a b",
            "é",
            &"x".repeat(129),
        ] {
            assert!(validate_stream_name(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "cam-1", "show_2.hd", &"x".repeat(128)] {
            assert!(validate_stream_name(good).is_ok(), "{good:?}");
        }
    }
}
