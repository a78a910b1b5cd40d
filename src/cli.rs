//! Command-line arguments, and the `events` subcommand: a client of a running node's
//! `GET /api/events` stream.
//!
//! `recnode [--config FILE]` (or `recnode run`) runs a node;
//! `recnode events [--follow] [--since N] [--format text|json]` prints hook events.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::Config;

/// recnode: records live streams (RTMP/WHIP in, fMP4+DASH and FLV out).
#[derive(Debug, Clone, Parser)]
#[command(name = "recnode", version, about)]
pub struct Cli {
    /// TOML config file; without it the built-in defaults are used. `RECNODE_<SECTION>__<KEY>`
    /// environment variables override either.
    #[arg(short, long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// What to do (default: run the node).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the node (the default without a subcommand).
    Run,
    /// Print the hook events of a running node (its `GET /api/events` stream).
    Events(EventsArgs),
}

/// How `recnode events` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventsFormat {
    /// One line per event: seq, type and the event as JSON, tab-separated.
    Text,
    /// One line per event: the event as canonical proto3 JSON.
    Json,
}

/// `recnode events`.
#[derive(Debug, Clone, Args)]
pub struct EventsArgs {
    /// Keep printing new events as they happen (without it: print what the node still
    /// holds and exit).
    #[arg(short, long)]
    pub follow: bool,
    /// The first seq to print (default: only new events with --follow, everything the
    /// node still holds without).
    #[arg(long, value_name = "SEQ")]
    pub since: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = EventsFormat::Text)]
    pub format: EventsFormat,
    /// The node's base URL (default: `http.listen` from the config, with 0.0.0.0 read as
    /// 127.0.0.1).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The admin token (default: `auth.admin_token` from the config).
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
}

/// Why `recnode events` stopped.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
    /// The node could not be reached, or the stream broke.
    #[error("GET {url}")]
    Request {
        /// The URL.
        url: String,
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
    /// The node refused the request.
    #[error("GET {url} answered {status}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// The error body.
        body: String,
    },
    /// Writing to stdout failed.
    #[error("writing to stdout")]
    Output(#[source] std::io::Error),
}

/// The `/api/events` URL for `args` on a node configured by `config`.
pub fn events_url(args: &EventsArgs, config: &Config) -> String {
    let base = match &args.url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let mut addr = config.http.listen;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}")
        }
    };
    // Without --follow and --since: everything the node still holds.
    let since = args.since.or((!args.follow).then_some(1));
    let mut url = format!("{base}/api/events?follow={}", args.follow);
    if let Some(since) = since {
        url.push_str(&format!("&since={since}"));
    }
    url
}

/// One parsed Server-Sent Events message.
#[derive(Debug, Default, PartialEq, Eq)]
struct SseMessage {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

/// Takes every complete message (ended by a blank line) off the front of `buf`.
fn take_messages(buf: &mut String) -> Vec<SseMessage> {
    let mut out = Vec::new();
    while let Some(end) = buf.find("\n\n") {
        let block: String = buf.drain(..end + 2).collect();
        let mut message = SseMessage::default();
        let mut any = false;
        for line in block.lines() {
            if line.starts_with(':') || line.is_empty() {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            any = true;
            match field {
                "id" => message.id = Some(value.to_string()),
                "event" => message.event = Some(value.to_string()),
                "data" => {
                    if !message.data.is_empty() {
                        message.data.push('\n');
                    }
                    message.data.push_str(value);
                }
                _ => {}
            }
        }
        if any {
            out.push(message);
        }
    }
    out
}

/// Prints one message; false when stdout is closed (e.g. piped into `head`).
fn print(message: &SseMessage, format: EventsFormat) -> Result<bool, EventsError> {
    let kind = message.event.as_deref().unwrap_or("message");
    if kind == "gap" || kind == "error" {
        eprintln!("recnode events: {kind}: {}", message.data);
        return Ok(true);
    }
    let line = match format {
        EventsFormat::Json => format!("{}\n", message.data),
        EventsFormat::Text => format!(
            "{}\t{kind}\t{}\n",
            message.id.as_deref().unwrap_or("-"),
            message.data
        ),
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(line.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(EventsError::Output(e)),
    }
}

/// Runs `recnode events`: streams a running node's events to stdout.
pub async fn events(args: &EventsArgs, config: &Config) -> Result<(), EventsError> {
    recnode_actors::uploader::init_http_transport();
    let url = events_url(args, config);
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(EventsError::Client)?;
    let mut request = client.get(&url).header("accept", "text/event-stream");
    if let Some(token) = args.token.as_ref().or(config.auth.admin_token.as_ref()) {
        request = request.bearer_auth(token);
    }
    let request_err = |source| EventsError::Request {
        url: url.clone(),
        source,
    };
    let mut response = request.send().await.map_err(request_err)?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(EventsError::Status {
            url,
            status: status.as_u16(),
            body,
        });
    }
    let mut buf = String::new();
    while let Some(chunk) = response.chunk().await.map_err(request_err)? {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        for message in take_messages(&mut buf) {
            if !print(&message, args.format)? {
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).expect("valid arguments")
    }

    #[test]
    fn no_subcommand_runs_the_node_and_config_is_global() {
        let cli = parse(&["recnode", "--config", "x.toml"]);
        assert!(cli.command.is_none());
        assert_eq!(cli.config, Some(PathBuf::from("x.toml")));
        let cli = parse(&["recnode", "events", "--follow", "--config", "y.toml"]);
        assert_eq!(cli.config, Some(PathBuf::from("y.toml")));
        assert!(matches!(cli.command, Some(Command::Events(ref a)) if a.follow));
    }

    #[test]
    fn events_url_follows_the_flags_and_the_config() {
        let config = Config::default();
        let Some(Command::Events(args)) = parse(&[
            "recnode", "events", "--follow", "--since", "5", "--format", "json",
        ])
        .command
        else {
            panic!("events");
        };
        assert_eq!(args.format, EventsFormat::Json);
        assert_eq!(
            events_url(&args, &config),
            "http://127.0.0.1:7777/api/events?follow=true&since=5"
        );
        let Some(Command::Events(args)) = parse(&["recnode", "events"]).command else {
            panic!("events");
        };
        assert_eq!(
            events_url(&args, &config),
            "http://127.0.0.1:7777/api/events?follow=false&since=1"
        );
        let Some(Command::Events(args)) =
            parse(&["recnode", "events", "-f", "--url", "http://h:1/"]).command
        else {
            panic!("events");
        };
        assert_eq!(
            events_url(&args, &config),
            "http://h:1/api/events?follow=true"
        );
    }

    #[test]
    fn sse_messages_are_split_on_blank_lines() {
        let mut buf = String::from(
            ": keep-alive\n\nid: 3\nevent: record.started\ndata: {\"a\":1}\n\nid: 4\nev",
        );
        let messages = take_messages(&mut buf);
        assert_eq!(
            messages,
            [SseMessage {
                id: Some("3".into()),
                event: Some("record.started".into()),
                data: "{\"a\":1}".into()
            }]
        );
        assert_eq!(buf, "id: 4\nev");
    }
}
