//! Ingest: the RTMP listener and one connection actor per publisher socket.
//!
//! [`start_rtmp`] binds the RTMP port and spawns an [`RtmpListener`], which spawns one
//! connection actor per accepted socket. A connection completes the RTMP handshake, runs
//! an `rml_rtmp` server session, applies the publish policy below, asks the stream
//! supervisor ([`StreamSupervisorMsg::Publish`]) for the stream actor and then forwards the
//! demuxed codec configs and frames ([`StreamMsg::Media`]) until the publisher leaves, when
//! it sends [`StreamMsg::Unpublish`] exactly once.
//!
//! [`StreamMsg::Media`]: crate::stream::StreamMsg::Media
//! [`StreamMsg::Unpublish`]: crate::stream::StreamMsg::Unpublish
//!
//! Publish policy, in order (every refusal is logged with the stream name and the remote
//! address, and the publisher gets an RTMP error status before the socket is closed):
//! 1. `connect` must name an app in [`RtmpIngestArgs::apps`] (`NetConnection.Connect.Rejected`);
//! 2. the publish name is split at `?`: the part before is the stream name, checked with
//!    [`validate_stream_name`](crate::stream::validate_stream_name)
//!    (`NetStream.Publish.BadName`); the query may carry `key=...`;
//! 3. the first [`StreamKeyRule`] whose pattern matches the stream name decides: the key must
//!    equal its `key` (`NetStream.Publish.Denied`); a name that no rule matches needs no key;
//! 4. the stream supervisor must accept it; `AlreadyLive` is `NetStream.Publish.BadName`,
//!    anything else (shutting down, no answer within 5 s) is `NetStream.Publish.Denied`.

mod rtmp_connection;
mod rtmp_listener;
pub mod whip;

use std::net::SocketAddr;

use ractor::{Actor, ActorRef, SpawnErr};

use crate::stream::{glob_matches, StreamSupervisorMsg};

pub use rtmp_listener::{RtmpListener, RtmpListenerMsg, RtmpListenerState};

/// Everything the RTMP ingest needs: where to listen, what to accept and whom to ask.
#[derive(Clone)]
pub struct RtmpIngestArgs {
    /// The address to bind (port 0 picks a free port; [`start_rtmp`] returns the bound one).
    pub listen: SocketAddr,
    /// RTMP app names publishers may `connect` to (`live`); an empty list refuses every app.
    pub apps: Vec<String>,
    /// Stream key rules; the first rule whose pattern matches the stream name applies.
    pub stream_keys: Vec<StreamKeyRule>,
    /// The stream supervisor that turns an accepted publish into a stream actor.
    pub streams: ActorRef<StreamSupervisorMsg>,
}

impl std::fmt::Debug for RtmpIngestArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtmpIngestArgs")
            .field("listen", &self.listen)
            .field("apps", &self.apps)
            .field("stream_keys", &self.stream_keys)
            .field("streams", &self.streams.get_id())
            .finish()
    }
}

/// A stream key requirement: streams whose name matches `pattern` must publish with `?key=<key>`.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamKeyRule {
    /// An exact stream name, or a glob where `*` matches any run of characters (`cam-*`, `*`).
    pub pattern: String,
    /// The key the publisher must send in the publish name's query (`cam1?key=...`).
    pub key: String,
}

impl std::fmt::Debug for StreamKeyRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret; never print it.
        f.debug_struct("StreamKeyRule")
            .field("pattern", &self.pattern)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Why the RTMP ingest could not start, or why one connection ended in error.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The listen address could not be bound.
    #[error("cannot bind RTMP listener on {listen}: {source}")]
    Bind {
        /// The address from the configuration.
        listen: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The listener actor did not start or did not answer.
    #[error("RTMP listener did not start: {message}")]
    Spawn {
        /// What ractor reported.
        message: String,
    },
    /// The RTMP handshake bytes from a publisher were invalid.
    #[error("RTMP handshake with {remote} failed: {source}")]
    Handshake {
        /// The publisher's address.
        remote: SocketAddr,
        /// What rml_rtmp reported.
        source: rml_rtmp::handshake::HandshakeError,
    },
    /// The RTMP session (chunks, messages, commands) failed.
    #[error("RTMP session with {remote} (stream {stream:?}) failed: {source}")]
    Session {
        /// The publisher's address.
        remote: SocketAddr,
        /// The stream name, once a publish was requested.
        stream: Option<String>,
        /// What rml_rtmp reported.
        source: rml_rtmp::sessions::ServerSessionError,
    },
    /// rml_rtmp panicked on input from the publisher; the session state is no longer trusted.
    #[error(
        "RTMP {stage} with {remote} (stream {stream:?}) panicked on malformed input: {message}"
    )]
    Malformed {
        /// The publisher's address.
        remote: SocketAddr,
        /// The stream name, once a publish was requested.
        stream: Option<String>,
        /// `handshake` or `session`.
        stage: &'static str,
        /// The panic message.
        message: String,
    },
    /// Writing to the publisher's socket failed or timed out.
    #[error("writing to {remote} failed: {source}")]
    Write {
        /// The publisher's address.
        remote: SocketAddr,
        /// The I/O error (`TimedOut` when the publisher stopped reading).
        source: std::io::Error,
    },
}

/// Binds `args.listen`, starts an unsupervised [`RtmpListener`] and returns it with the bound
/// address (useful when `listen` has port 0).
///
/// Link it under a supervisor with `listener.get_cell().link(supervisor)`, or spawn
/// [`RtmpListener`] with `spawn_linked` directly and ask [`RtmpListenerMsg::LocalAddr`].
pub async fn start_rtmp(
    args: RtmpIngestArgs,
) -> Result<(ActorRef<RtmpListenerMsg>, SocketAddr), IngestError> {
    let (listener, _join) =
        Actor::spawn(None, RtmpListener, args)
            .await
            .map_err(|err| match err {
                SpawnErr::StartupFailed(inner) => match inner.downcast::<IngestError>() {
                    Ok(ingest) => *ingest,
                    Err(other) => IngestError::Spawn {
                        message: other.to_string(),
                    },
                },
                other => IngestError::Spawn {
                    message: other.to_string(),
                },
            })?;
    let bound = listener
        .call(
            RtmpListenerMsg::LocalAddr,
            Some(ractor::concurrency::Duration::from_secs(5)),
        )
        .await;
    match bound {
        Ok(ractor::rpc::CallResult::Success(addr)) => Ok((listener, addr)),
        Ok(other) => {
            listener.stop(None);
            Err(IngestError::Spawn {
                message: format!("no local address from the listener: {other:?}"),
            })
        }
        Err(err) => {
            listener.stop(None);
            Err(IngestError::Spawn {
                message: err.to_string(),
            })
        }
    }
}

/// The publish policy shared by the listener and all its connections.
pub(crate) struct IngestPolicy {
    pub(crate) apps: Vec<String>,
    pub(crate) stream_keys: Vec<StreamKeyRule>,
    pub(crate) streams: ActorRef<StreamSupervisorMsg>,
}

impl IngestPolicy {
    /// Whether publishers may `connect` to `app`.
    pub(crate) fn app_allowed(&self, app: &str) -> bool {
        self.apps.iter().any(|allowed| allowed == app)
    }

    /// Checks `key` against the first rule matching `stream`; no matching rule means allowed.
    pub(crate) fn key_allowed(&self, stream: &str, key: Option<&str>) -> bool {
        stream_key_allowed(&self.stream_keys, stream, key)
    }
}

/// Checks `key` against the first of `rules` whose pattern matches `stream`; none means allowed.
pub(crate) fn stream_key_allowed(rules: &[StreamKeyRule], stream: &str, key: Option<&str>) -> bool {
    match rules
        .iter()
        .find(|rule| glob_matches(&rule.pattern, stream))
    {
        None => true,
        Some(rule) => key.is_some_and(|key| constant_time_eq(key.as_bytes(), rule.key.as_bytes())),
    }
}

/// An RTMP publish name split into the stream name and the `key=` of its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PublishName<'a> {
    /// Everything before the first `?`.
    pub(crate) stream: &'a str,
    /// The value of the first `key=` parameter of the query, as sent (no percent-decoding).
    pub(crate) key: Option<&'a str>,
}

/// Splits `cam1?key=abc&x=y` into `cam1` and `Some("abc")`.
pub(crate) fn parse_publish_name(name: &str) -> PublishName<'_> {
    match name.split_once('?') {
        None => PublishName {
            stream: name,
            key: None,
        },
        Some((stream, query)) => PublishName {
            stream,
            key: query
                .split('&')
                .find_map(|param| param.strip_prefix("key=")),
        },
    }
}

/// Compares two secrets without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::{glob_matches, parse_publish_name, stream_key_allowed, PublishName, StreamKeyRule};

    #[test]
    fn the_first_matching_key_rule_decides_and_unmatched_names_need_no_key() {
        let rule = |pattern: &str, key: &str| StreamKeyRule {
            pattern: pattern.to_string(),
            key: key.to_string(),
        };
        let rules = [
            rule("vip-1", "one"),
            rule("vip-*", "all"),
            rule("*.hd", "hd"),
        ];
        assert!(stream_key_allowed(&rules, "vip-1", Some("one")));
        assert!(
            !stream_key_allowed(&rules, "vip-1", Some("all")),
            "first rule wins"
        );
        assert!(stream_key_allowed(&rules, "vip-2", Some("all")));
        assert!(!stream_key_allowed(&rules, "vip-2", None));
        assert!(!stream_key_allowed(&rules, "vip-2", Some("al")));
        assert!(!stream_key_allowed(&rules, "vip-2", Some("alll")));
        assert!(stream_key_allowed(&rules, "show.hd", Some("hd")));
        assert!(stream_key_allowed(&rules, "open", None), "no rule matches");
        assert!(stream_key_allowed(&rules, "open", Some("anything")));
        assert!(stream_key_allowed(&[], "cam1", None));
    }

    #[test]
    fn globs_match_exact_names_prefixes_suffixes_and_everything() {
        assert!(glob_matches("cam1", "cam1"));
        assert!(!glob_matches("cam1", "cam10"));
        assert!(glob_matches("cam-*", "cam-7"));
        assert!(glob_matches("cam-*", "cam-"));
        assert!(!glob_matches("cam-*", "cam"));
        assert!(glob_matches("*.hd", "show.hd"));
        assert!(!glob_matches("*.hd", "show.sd"));
        assert!(glob_matches("*", ""));
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches("a*b*c", "aXXbYYbc"));
        assert!(!glob_matches("a*b*c", "aXXbYYb"));
        assert!(glob_matches("**", "x"));
    }

    #[test]
    fn publish_names_are_split_into_stream_and_key() {
        assert_eq!(
            parse_publish_name("cam1"),
            PublishName {
                stream: "cam1",
                key: None
            }
        );
        assert_eq!(
            parse_publish_name("cam1?key=abc"),
            PublishName {
                stream: "cam1",
                key: Some("abc")
            }
        );
        assert_eq!(
            parse_publish_name("cam1?foo=1&key=abc&key=def"),
            PublishName {
                stream: "cam1",
                key: Some("abc")
            }
        );
        assert_eq!(
            parse_publish_name("cam1?monkey=abc"),
            PublishName {
                stream: "cam1",
                key: None
            }
        );
        assert_eq!(
            parse_publish_name("?key="),
            PublishName {
                stream: "",
                key: Some("")
            }
        );
    }
}
