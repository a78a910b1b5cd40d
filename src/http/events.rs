//! `GET /api/events?since=SEQ&follow=BOOL`: the hook outbox as Server-Sent Events (under
//! `/api`, behind the admin token).
//!
//! Each event is one SSE message: `id: {seq}`, `event: {type}` (`record.started` …) and
//! `data: {canonical proto3 JSON of the HookEvent}`. The stream replays the outbox from
//! `since` (inclusive) and then, unless `follow=false`, tails it, with a `: keep-alive`
//! comment every 15 s while idle. Without `since` it starts after the newest event (or
//! after `Last-Event-ID`, as browsers send on reconnect).
//!
//! Events before the oldest one still in the outbox were compacted away; when `since`
//! asks for them, the stream starts with `event: gap` and
//! `data: {"since": SEQ, "first_seq": OLDEST}`.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{get, web, HttpRequest, HttpResponse};
use recnode_actors::hooks::{Outbox, StoredEvent};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::error::ApiError;
use super::ApiState;

/// Events read from the outbox per query.
const BATCH: usize = 500;
/// Idle time between keep-alive comments.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Registers the event stream route (mounted under `/api`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(events);
}

/// Query of `GET /api/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    /// The first seq to send.
    since: Option<u64>,
    /// Keep the stream open for new events (default true).
    follow: Option<bool>,
}

/// A response body fed by the producer task through a channel.
struct SseBody {
    rx: mpsc::Receiver<Bytes>,
}

impl MessageBody for SseBody {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.rx.poll_recv(cx).map(|chunk| chunk.map(Ok))
    }
}

/// One SSE message for a stored event.
fn message(event: &StoredEvent) -> Bytes {
    let data = event
        .decode()
        .ok()
        .and_then(|e| serde_json::to_string(&e).ok())
        .unwrap_or_else(|| "null".to_string());
    Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {data}\n\n",
        event.seq, event.kind
    ))
}

fn gap(since: u64, first_seq: u64) -> Bytes {
    Bytes::from(format!(
        "event: gap\ndata: {{\"since\":{since},\"first_seq\":{first_seq}}}\n\n"
    ))
}

/// Feeds the stream until the client goes away (or, without `follow`, until caught up).
async fn produce(outbox: Outbox, mut cursor: u64, follow: bool, tx: mpsc::Sender<Bytes>) {
    let mut committed = outbox.subscribe();
    let mut first_read = true;
    loop {
        let batch = match outbox.read_after(cursor, BATCH).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::error!("event stream: {e}");
                let _ = tx
                    .send(Bytes::from(format!(
                        "event: error\ndata: {}\n\n",
                        serde_json::json!({ "message": e.to_string() })
                    )))
                    .await;
                return;
            }
        };
        // Compaction removed events the client asked for: before the replay, or
        // between two reads of a slow client.
        let oldest = match batch.first() {
            Some(first) => Some(first.seq),
            None if first_read && outbox.last_seq() > cursor => Some(outbox.last_seq() + 1),
            None => None,
        };
        if let Some(oldest) = oldest.filter(|oldest| *oldest > cursor + 1) {
            if tx.send(gap(cursor + 1, oldest)).await.is_err() {
                return;
            }
        }
        first_read = false;
        for event in &batch {
            cursor = event.seq;
            if tx.send(message(event)).await.is_err() {
                return;
            }
        }
        if batch.len() == BATCH {
            continue;
        }
        if !follow {
            return;
        }
        loop {
            tokio::select! {
                changed = committed.wait_for(|last| *last > cursor) => {
                    if changed.is_err() {
                        return;
                    }
                    break;
                }
                _ = tokio::time::sleep(KEEP_ALIVE) => {
                    if tx.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// `GET /api/events`.
#[get("/events")]
async fn events(
    state: web::Data<ApiState>,
    query: web::Query<EventsQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let hooks = super::hooks::hooks(&state)?;
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let since = query.since.or(last_event_id.map(|id| id + 1));
    let cursor = match since {
        Some(since) => since.saturating_sub(1),
        None => hooks.outbox.last_seq(),
    };
    let (tx, rx) = mpsc::channel(64);
    let outbox = hooks.outbox.clone();
    let follow = query.follow.unwrap_or(true);
    actix_web::rt::spawn(produce(outbox, cursor, follow, tx));
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .body(SseBody { rx }))
}
