//! The `EndpointDeliverer`: delivers one endpoint's events, in `seq` order.
//!
//! It owns the endpoint's cursor (the last event it handled) and a small queue read from
//! the outbox. Events are POSTed in queue order, signed per Standard Webhooks, one request
//! each. With [`HookSettings::pipeline_window`] above 1 they are pipelined on one
//! keep-alive connection by a [`PipelinedClient`]: up to that many requests are written
//! before the first response is read, and responses settle their events in order. With a
//! window of 1 (or a proxy set in the environment, which reqwest honours) the next event
//! is sent only when the head is settled, through reqwest. Either way, at the head:
//! - 2xx: delivered; the cursor moves on and the outbox is told (`ack`, coalesced);
//! - 410 Gone: the endpoint does not want events any more; the deliverer tells the
//!   [`Connector`](super::Connector), which disables the endpoint and stops it;
//! - anything else (other statuses, connection errors, timeouts): the head is retried
//!   after an exponential backoff with jitter (`min_backoff` doubling up to
//!   `max_backoff`), until it is older than `max_age`; then it moves to the endpoint's
//!   dead letters and the next event is tried.
//!
//! With pipelining, the events sent behind a failed one are sent again after it, in order
//! and with the same `webhook-id`, even if the endpoint took them; the window restarts at
//! one request after any failure (see [`PipelinedClient`]), so an outage is probed with
//! the head alone.
//!
//! Dead letters marked for replay are delivered before new events, and are forgotten
//! once delivered (or buried again after `max_age` more of failures).
//!
//! Events the endpoint's filter rejects are skipped (and acknowledged). The HTTP requests
//! run in a spawned task that sends a run of up to [`SEND_RUN`] queued events
//! (acknowledging them as they succeed) and reports back at the end of the run or at the
//! first failure, so the mailbox stays responsive without a message per event; the
//! pipelining client (and its connection) goes with the task and comes back with its
//! report. Waiting for new events is a task on the outbox's commit signal.
//!
//! Supervision: spawned linked by the [`Connector`](super::Connector), which restarts it
//! with backoff when it fails; it then resumes from the cursor stored in the outbox
//! (an event whose ack was not yet committed is delivered again, with the same id).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster_derive::RactorMessage;
use tracing::Instrument as _;

use super::config::HookFormat;
use super::connector::ConnectorMsg;
use super::filter::EventFilter;
use super::now_ms;
use super::outbox::{ops, DeadLetter, Outbox, OutboxError, StoredEvent};
use super::pipelined_client::{ClientOptions, OutgoingRequest, PipelinedClient, RunOutcome, Stop};
use super::signing::{WebhookSecret, HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use super::HookSettings;

/// How many events one read from the outbox takes.
const READ_BATCH: usize = 512;
/// How many events one sending task delivers, one after another, before reporting.
const SEND_RUN: usize = 256;
/// How many delivered events a pipelined run acknowledges at once (a kill -9 repeats at
/// most this many, plus what the outbox had not committed).
const ACK_EVERY: usize = 64;
/// The `User-Agent` of hook requests.
const USER_AGENT: &str = concat!("recnode/", env!("CARGO_PKG_VERSION"));

/// The result of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The endpoint answered 2xx.
    Delivered(u16),
    /// The endpoint answered 410 Gone.
    Gone(u16),
    /// Anything else, with what happened.
    Failed(String),
}

/// What an `EndpointDeliverer` starts with.
pub struct EndpointDelivererArgs {
    /// The endpoint's id.
    pub id: String,
    /// Where to POST.
    pub url: String,
    /// The signing secret (`whsec_…`, validated).
    pub secret: String,
    /// The body format.
    pub format: HookFormat,
    /// The filter patterns (validated).
    pub events: Vec<String>,
    /// The last event already handled.
    pub acked_seq: u64,
    /// The node's outbox.
    pub outbox: Outbox,
    /// Timeouts, backoff and `max_age`.
    pub settings: HookSettings,
    /// The supervisor, told about 410 Gone.
    pub connector: ActorRef<ConnectorMsg>,
}

/// Messages to an `EndpointDeliverer` (all sent by itself or its connector).
#[derive(RactorMessage)]
pub enum EndpointDelivererMsg {
    /// Make progress if idle.
    Pump,
    /// Dead letters were marked for replay.
    Replay,
    /// Events (or replayed dead letters) read from the outbox.
    #[doc(hidden)]
    Loaded(Result<Loaded, OutboxError>),
    /// A sending task finished: the first `delivered` events of the queue were
    /// delivered, and `failure` is what the next one got (none if the run was sent).
    #[doc(hidden)]
    Attempted {
        /// Events delivered, from the head.
        delivered: usize,
        /// The outcome of the attempt that stopped the run.
        failure: Option<DeliveryOutcome>,
        /// The pipelining client the run used, handed back.
        client: Option<Box<PipelinedClient>>,
    },
    /// A backoff delay ended, or new events were committed (for the sleep with this
    /// number; a stale wake-up is ignored).
    #[doc(hidden)]
    Wake(u64),
}

/// A batch read from the outbox.
#[doc(hidden)]
pub enum Loaded {
    /// Events after the cursor.
    Events(Vec<StoredEvent>),
    /// Dead letters being replayed.
    Replays(Vec<DeadLetter>),
}

/// One event waiting to be delivered.
struct Pending {
    event: StoredEvent,
    /// Set for a replayed dead letter: when its replay started.
    replay_at_ms: Option<u64>,
}

/// What the deliverer is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Busy {
    /// Nothing: a `Pump` makes progress.
    Idle,
    /// A read from the outbox.
    Loading,
    /// The head's HTTP request.
    Sending,
    /// A backoff delay, or new events (a `Wake`).
    Sleeping,
    /// The connector, after a 410.
    Gone,
}

/// The endpoint deliverer.
pub struct EndpointDeliverer;

/// Its state.
pub struct EndpointDelivererState {
    id: Arc<str>,
    url: String,
    secret: WebhookSecret,
    format: HookFormat,
    filter: EventFilter,
    /// One request at a time (a window of 1, or a proxy in the environment).
    client: reqwest::Client,
    /// The pipelining client: `Some` when pipelining and no run has it.
    pipelined: Option<Box<PipelinedClient>>,
    outbox: Outbox,
    settings: HookSettings,
    connector: ActorRef<ConnectorMsg>,
    cursor: u64,
    queue: VecDeque<Pending>,
    busy: Busy,
    attempts: u32,
    replay_pending: bool,
    /// Numbers sleeps, so only the current one's wake-up counts.
    sleep: u64,
}

impl EndpointDelivererState {
    /// Starts a sleep; returns the number its wake-up must carry.
    fn sleep(&mut self) -> u64 {
        self.busy = Busy::Sleeping;
        self.sleep += 1;
        self.sleep
    }

    /// Acknowledges every main-stream event before the next one still waiting (or
    /// through the cursor when none is): delivered, buried or filtered out.
    fn ack_settled(&self) {
        let through = self
            .queue
            .iter()
            .find(|p| p.replay_at_ms.is_none())
            .map_or(self.cursor, |next| next.event.seq - 1);
        self.outbox.ack(&self.id, through);
    }

    fn backoff(&self) -> Duration {
        let exp = self.attempts.saturating_sub(1).min(20);
        let base = self
            .settings
            .min_backoff
            .saturating_mul(1u32 << exp)
            .min(self.settings.max_backoff);
        // Jitter: between half and all of the delay, so endpoints that failed together
        // do not retry together.
        base.mul_f64(0.5 + fastrand::f64() * 0.5)
    }
}

/// The body of `event` in `format`.
fn body_for(format: HookFormat, event: &StoredEvent) -> Result<Bytes, String> {
    match format {
        HookFormat::Protobuf => Ok(event.body.clone()),
        HookFormat::Json => match event.decode() {
            Ok(decoded) => serde_json::to_vec(&decoded)
                .map(Bytes::from)
                .map_err(|e| format!("encoding JSON: {e}")),
            Err(e) => Err(format!("stored event is corrupt: {e}")),
        },
    }
}

/// One signed request for `event`, for the pipelining client.
fn request_for(
    secret: &WebhookSecret,
    format: HookFormat,
    event: &StoredEvent,
) -> Result<OutgoingRequest, String> {
    let body = body_for(format, event)?;
    let timestamp = now_ms() / 1000;
    let signature = secret.sign(&event.id, timestamp, &body);
    Ok(OutgoingRequest {
        headers: vec![
            ("content-type", format.content_type().to_string()),
            (HEADER_ID, event.id.clone()),
            (HEADER_TIMESTAMP, timestamp.to_string()),
            (HEADER_SIGNATURE, signature),
        ],
        body,
    })
}

/// What a pipelined run's stop means for the event it stopped at.
fn outcome_of(stop: Stop) -> DeliveryOutcome {
    match stop {
        Stop::Status(410) => DeliveryOutcome::Gone(410),
        Stop::Status(status) => match reqwest::StatusCode::from_u16(status) {
            // The same text as reqwest's answers: "HTTP 503 Service Unavailable".
            Ok(code) => DeliveryOutcome::Failed(format!("HTTP {code}")),
            Err(_) => DeliveryOutcome::Failed(format!("HTTP {status}")),
        },
        Stop::Failed(e) => DeliveryOutcome::Failed(error_chain(&e)),
    }
}

/// True when the environment names a proxy for `url`'s scheme. reqwest sends through it,
/// the pipelining client cannot, so such endpoints keep one request at a time.
fn proxy_in_env(url: &str) -> bool {
    let https = reqwest::Url::parse(url).is_ok_and(|u| u.scheme() == "https");
    let names: [&str; 4] = if https {
        ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
    } else {
        ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"]
    };
    names
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// Builds the body for `format` and POSTs it, signed, through reqwest; classifies the
/// answer.
async fn attempt(
    client: reqwest::Client,
    url: String,
    secret: WebhookSecret,
    format: HookFormat,
    event: StoredEvent,
) -> DeliveryOutcome {
    let body = match body_for(format, &event) {
        Ok(body) => body,
        Err(e) => return DeliveryOutcome::Failed(e),
    };
    let timestamp = now_ms() / 1000;
    let signature = secret.sign(&event.id, timestamp, &body);
    let result = client
        .post(&url)
        .header(reqwest::header::CONTENT_TYPE, format.content_type())
        .header(HEADER_ID, &event.id)
        .header(HEADER_TIMESTAMP, timestamp.to_string())
        .header(HEADER_SIGNATURE, signature)
        .body(body)
        .send()
        .await;
    match result {
        Ok(response) => {
            let status = response.status();
            // Read (and drop) the body so the connection can be reused.
            let _ = response.bytes().await;
            if status.is_success() {
                DeliveryOutcome::Delivered(status.as_u16())
            } else if status == reqwest::StatusCode::GONE {
                DeliveryOutcome::Gone(status.as_u16())
            } else {
                DeliveryOutcome::Failed(format!("HTTP {status}"))
            }
        }
        Err(e) => DeliveryOutcome::Failed(error_chain(&e)),
    }
}

/// An error with its sources, for logs and dead letters.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

impl EndpointDeliverer {
    fn pump(myself: &ActorRef<EndpointDelivererMsg>, state: &mut EndpointDelivererState) {
        if state.busy != Busy::Idle {
            return;
        }
        if let Some(head) = state.queue.front() {
            state.busy = Busy::Sending;
            // A run: one replayed dead letter, or up to SEND_RUN new events, each with
            // the seq its delivery acknowledges through (filtered events included).
            let run: Vec<(StoredEvent, Option<u64>)> = if head.replay_at_ms.is_some() {
                vec![(head.event.clone(), None)]
            } else {
                let mains: Vec<&Pending> = state
                    .queue
                    .iter()
                    .take_while(|p| p.replay_at_ms.is_none())
                    .take(SEND_RUN + 1)
                    .collect();
                let n = mains.len().min(SEND_RUN);
                (0..n)
                    .map(|i| {
                        let through = mains
                            .get(i + 1)
                            .map_or(state.cursor, |next| next.event.seq - 1);
                        (mains[i].event.clone(), Some(through))
                    })
                    .collect()
            };
            let (client, url, secret, format) = (
                state.client.clone(),
                state.url.clone(),
                state.secret.clone(),
                state.format,
            );
            let (outbox, id) = (state.outbox.clone(), state.id.clone());
            let me = myself.clone();
            let span = tracing::debug_span!("hook_run", endpoint = %id,
                first_seq = run[0].0.seq, events = run.len());
            if let Some(mut pipelined) = state.pipelined.take() {
                tokio::spawn(
                    async move {
                        // Acks go to the outbox's writer every ACK_EVERY events and at the
                        // end of the run, not at every read of answers.
                        let ack = |settled: usize| {
                            if let Some(through) = run[settled - 1].1 {
                                outbox.ack(&id, through);
                            }
                        };
                        let mut acked = 0;
                        let RunOutcome { delivered, stop } = pipelined
                            .run(
                                run.len(),
                                |i| request_for(&secret, format, &run[i].0),
                                |settled| {
                                    if settled - acked >= ACK_EVERY {
                                        ack(settled);
                                        acked = settled;
                                    }
                                },
                            )
                            .await;
                        if delivered > acked {
                            ack(delivered);
                        }
                        let _ = me.send_message(EndpointDelivererMsg::Attempted {
                            delivered,
                            failure: stop.map(outcome_of),
                            client: Some(pipelined),
                        });
                    }
                    .instrument(span),
                );
                return;
            }
            tokio::spawn(
                async move {
                    let mut delivered = 0;
                    let mut failure = None;
                    for (event, through) in run {
                        let outcome =
                            attempt(client.clone(), url.clone(), secret.clone(), format, event)
                                .await;
                        if !matches!(outcome, DeliveryOutcome::Delivered(_)) {
                            failure = Some(outcome);
                            break;
                        }
                        delivered += 1;
                        if let Some(through) = through {
                            outbox.ack(&id, through);
                        }
                    }
                    let _ = me.send_message(EndpointDelivererMsg::Attempted {
                        delivered,
                        failure,
                        client: None,
                    });
                }
                .instrument(span),
            );
            return;
        }
        state.busy = Busy::Loading;
        let outbox = state.outbox.clone();
        let me = myself.clone();
        let id = state.id.clone();
        let cursor = state.cursor;
        let replay = state.replay_pending;
        tokio::spawn(async move {
            let loaded = if replay {
                outbox
                    .dead_letters(&id, 0, READ_BATCH, Some(true))
                    .await
                    .map(Loaded::Replays)
            } else {
                outbox
                    .read_after(cursor, READ_BATCH)
                    .await
                    .map(Loaded::Events)
            };
            let _ = me.send_message(EndpointDelivererMsg::Loaded(loaded));
        });
    }

    /// Sleeps until an event after the cursor is committed.
    fn watch(myself: &ActorRef<EndpointDelivererMsg>, state: &mut EndpointDelivererState) {
        let token = state.sleep();
        let mut committed = state.outbox.subscribe();
        let cursor = state.cursor;
        let me = myself.clone();
        tokio::spawn(async move {
            if committed.wait_for(|last| *last > cursor).await.is_ok() {
                let _ = me.send_message(EndpointDelivererMsg::Wake(token));
            }
        });
    }

    async fn on_loaded(
        myself: &ActorRef<EndpointDelivererMsg>,
        state: &mut EndpointDelivererState,
        loaded: Loaded,
    ) {
        state.busy = Busy::Idle;
        match loaded {
            Loaded::Replays(rows) if rows.is_empty() => {
                state.replay_pending = false;
            }
            Loaded::Replays(rows) => {
                state.queue.extend(rows.into_iter().map(|dead| Pending {
                    event: dead.event,
                    replay_at_ms: dead.replay_at_ms,
                }));
            }
            // A replay asked for while this read ran goes first; sleeping until the next
            // commit would leave it waiting for an event that may never come.
            Loaded::Events(rows) if rows.is_empty() && !state.replay_pending => {
                Self::watch(myself, state);
                return;
            }
            Loaded::Events(rows) if rows.is_empty() => {}
            Loaded::Events(rows) => {
                let before = state.cursor;
                for event in rows {
                    state.cursor = state.cursor.max(event.seq);
                    if state.filter.matches(&event.kind) {
                        state.queue.push_back(Pending {
                            event,
                            replay_at_ms: None,
                        });
                    }
                }
                // Filtered events before the first waiting one are settled now; later
                // ones when the events before them are.
                let first = state.queue.front().map(|p| p.event.seq);
                if first.is_none_or(|seq| seq > before + 1) {
                    state.ack_settled();
                }
            }
        }
        Self::pump(myself, state);
    }

    async fn on_attempted(
        myself: &ActorRef<EndpointDelivererMsg>,
        state: &mut EndpointDelivererState,
        delivered: usize,
        failure: Option<DeliveryOutcome>,
    ) {
        state.busy = Busy::Idle;
        for _ in 0..delivered {
            let Some(done) = state.queue.pop_front() else {
                break;
            };
            state.attempts = 0;
            let seq = done.event.seq;
            tracing::trace!(endpoint = %state.id, seq, "hook delivered");
            // New events were acknowledged by the sending task; a replayed dead letter
            // is forgotten.
            if done.replay_at_ms.is_some() {
                let id = state.id.to_string();
                if let Err(e) = state
                    .outbox
                    .exec("forgetting a replayed dead letter", move |tx, _| {
                        ops::replayed(tx, &id, seq)
                    })
                    .await
                {
                    tracing::warn!(endpoint = %state.id, seq, "{e}");
                }
            }
        }
        let Some(outcome) = failure else {
            Self::pump(myself, state);
            return;
        };
        let Some(head) = state.queue.front() else {
            return;
        };
        let seq = head.event.seq;
        match outcome {
            DeliveryOutcome::Delivered(_) => Self::pump(myself, state),
            DeliveryOutcome::Gone(status) => {
                tracing::warn!(endpoint = %state.id, url = %state.url, seq, status,
                    "hook endpoint answered 410 Gone; disabling it");
                state.busy = Busy::Gone;
                let _ = state.connector.send_message(ConnectorMsg::Gone {
                    id: state.id.to_string(),
                    reason: format!("answered HTTP {status} Gone to event {seq}"),
                });
            }
            DeliveryOutcome::Failed(error) => {
                state.attempts += 1;
                let since = head.replay_at_ms.unwrap_or(head.event.ts_ms);
                let age = Duration::from_millis(now_ms().saturating_sub(since));
                if age >= state.settings.max_age {
                    Self::bury(state, error).await;
                    Self::pump(myself, state);
                } else {
                    let delay = state.backoff();
                    tracing::debug!(endpoint = %state.id, url = %state.url, seq,
                        attempt = state.attempts, retry_in = ?delay, "hook delivery failed: {error}");
                    let token = state.sleep();
                    drop(myself.send_after(delay, move || EndpointDelivererMsg::Wake(token)));
                }
            }
        }
    }

    /// Moves the head to the dead letters (or back to them, for a replay).
    async fn bury(state: &mut EndpointDelivererState, error: String) {
        let Some(head) = state.queue.pop_front() else {
            return;
        };
        let attempts = std::mem::take(&mut state.attempts);
        let id = state.id.to_string();
        let seq = head.event.seq;
        tracing::warn!(endpoint = %state.id, url = %state.url, seq, event_id = %head.event.id,
            kind = %head.event.kind, attempts, "hook event undeliverable for max_age; moved to dead letters: {error}");
        let result = match head.replay_at_ms {
            Some(_) => {
                state
                    .outbox
                    .exec("re-burying a dead letter", move |tx, _| {
                        ops::rebury(tx, &id, seq, attempts, &error)
                    })
                    .await
            }
            None => {
                let event = head.event;
                let buried = state
                    .outbox
                    .exec("moving an event to dead letters", move |tx, ws| {
                        ops::bury(tx, ws, &id, &event, attempts, &error)
                    })
                    .await;
                state.ack_settled();
                buried
            }
        };
        if let Err(e) = result {
            tracing::error!(endpoint = %state.id, seq, "{e}");
        }
    }
}

impl Actor for EndpointDeliverer {
    type Msg = EndpointDelivererMsg;
    type State = EndpointDelivererState;
    type Arguments = EndpointDelivererArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: EndpointDelivererArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        crate::uploader::init_http_transport();
        let secret = WebhookSecret::parse(&args.secret)?;
        let filter = EventFilter::parse(&args.events)?;
        let client = reqwest::Client::builder()
            .timeout(args.settings.request_timeout)
            .connect_timeout(args.settings.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .build()?;
        let pipelined = if args.settings.pipeline_window <= 1 {
            None
        } else if proxy_in_env(&args.url) {
            tracing::info!(endpoint = %args.id, url = %args.url,
                "a proxy is set in the environment: hook requests go one at a time through it");
            None
        } else {
            let options = ClientOptions {
                window: args.settings.pipeline_window,
                connect_timeout: args.settings.request_timeout,
                response_timeout: args.settings.request_timeout,
                user_agent: USER_AGENT.to_string(),
                tls: None,
            };
            Some(Box::new(PipelinedClient::new(&args.url, options)?))
        };
        let _ = myself.send_message(EndpointDelivererMsg::Pump);
        Ok(EndpointDelivererState {
            id: Arc::from(args.id),
            url: args.url,
            secret,
            format: args.format,
            filter,
            client,
            pipelined,
            outbox: args.outbox,
            settings: args.settings,
            connector: args.connector,
            cursor: args.acked_seq,
            queue: VecDeque::new(),
            busy: Busy::Idle,
            attempts: 0,
            // Replays marked before a restart are picked up by the first read.
            replay_pending: true,
            sleep: 0,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            EndpointDelivererMsg::Pump => Self::pump(&myself, state),
            EndpointDelivererMsg::Replay => {
                state.replay_pending = true;
                if state.busy == Busy::Sleeping && state.queue.is_empty() {
                    // Waiting for new events only: replays go first.
                    state.busy = Busy::Idle;
                    state.sleep += 1;
                }
                Self::pump(&myself, state);
            }
            EndpointDelivererMsg::Loaded(Ok(loaded)) => {
                Self::on_loaded(&myself, state, loaded).await;
            }
            EndpointDelivererMsg::Loaded(Err(e)) => {
                // The outbox failing is not this actor's fault; the supervisor restarts
                // it after a backoff.
                return Err(format!("reading the outbox for endpoint {}: {e}", state.id).into());
            }
            EndpointDelivererMsg::Attempted {
                delivered,
                failure,
                client,
            } => {
                if client.is_some() {
                    state.pipelined = client;
                }
                Self::on_attempted(&myself, state, delivered, failure).await;
            }
            EndpointDelivererMsg::Wake(token) => {
                if state.busy == Busy::Sleeping && token == state.sleep {
                    state.busy = Busy::Idle;
                    Self::pump(&myself, state);
                }
            }
        }
        Ok(())
    }
}
