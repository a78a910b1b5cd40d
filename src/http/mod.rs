//! The HTTP API (actix-web), one file per API area.
//!
//! Handlers hold only actor references and shared handles ([`ApiState`]), never locks
//! around shared state. Areas: [`health`] (`/healthz`, `/readyz`, no auth), and under
//! `/api`, behind the admin token when one is configured: [`record`] (the recording API),
//! [`object`] (the object proxy), [`presign`] (the presign service), [`hooks`] and
//! [`events`] (hook endpoints, the event stream), [`rules`] (auto-record rules) and
//! [`cluster`] (members). Every error
//! answers in the JSON shape of [`error::ApiError`], unknown routes included.

use std::net::SocketAddr;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpServer, ResponseError};
use opendal::Operator;
use ractor::ActorRef;
use recnode_actors::stream::StreamSupervisorMsg;
use recnode_actors::uploader::StorageHealth;

pub mod cluster;
#[cfg(feature = "fault-injection")]
pub mod debug;
pub mod error;
pub mod events;
pub mod health;
pub mod hooks;
pub mod metrics;
pub mod object;
pub mod presign;
pub mod record;
pub mod rules;
pub mod whip;

use error::ApiError;

/// What every handler may reach: actor references and immutable settings.
#[derive(Clone)]
pub struct ApiState {
    /// The registry of live streams, which answers the recording API.
    pub streams: ActorRef<StreamSupervisorMsg>,
    /// When set, `/api/*` needs `Authorization: Bearer <admin_token>`.
    pub admin_token: Option<String>,
    /// Whether storage accepts writes (`/readyz`).
    pub storage: StorageHealth,
    /// The `[recorder.storage]` operator: the object proxy reads and the presign
    /// service signs through it.
    pub operator: Operator,
    /// The upload queue, for `/metrics` (`None` leaves its metrics out).
    pub uploader: Option<ActorRef<recnode_actors::uploader::UploaderMsg>>,
    /// Free space under the spool, for `/metrics`.
    pub disk: Option<recnode_actors::disk_guard::DiskStatus>,
    /// The hook connector and outbox (`/api/hooks`, `/api/events`); `None` answers 503.
    pub hooks: Option<recnode_actors::hooks::Hooks>,
    /// The WHIP ingest (`/whip`, outside `/api`); `None` when `[whip] enabled = false`.
    pub whip: Option<ActorRef<recnode_actors::ingest::whip::WhipIngestMsg>>,
    /// The cluster layer (`/api/cluster`, forwarding); `None` without `[cluster] enabled`.
    pub cluster: Option<recnode_cluster::Cluster>,
    /// The auto-record rules (`/api/rules`); `None` answers 503.
    pub rules: Option<rules::RulesApi>,
}

/// Registers the routes outside `/api` that need no auth: health checks and metrics.
pub fn routes(cfg: &mut web::ServiceConfig) {
    health::routes(cfg);
    metrics::routes(cfg);
}

/// Registers the test hooks of `debug.rs` under `/api` (feature `fault-injection` only).
fn debug_routes(_cfg: &mut web::ServiceConfig) {
    #[cfg(feature = "fault-injection")]
    debug::routes(_cfg);
}

/// The application: health checks, the `/api` scope behind the admin token, and a JSON 404.
pub fn app(
    state: ApiState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(web::Data::new(state))
        .configure(routes)
        .configure(whip::routes)
        .service(
            web::scope("/api")
                .wrap(from_fn(require_admin_token))
                .configure(record::routes)
                .configure(object::routes)
                .configure(presign::routes)
                .configure(hooks::routes)
                .configure(events::routes)
                .configure(cluster::routes)
                .configure(rules::routes)
                .configure(debug_routes),
        )
        .default_service(web::to(error::unknown_route))
}

/// Refuses `/api` calls without the configured bearer token (401, JSON).
async fn require_admin_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let expected = req
        .app_data::<web::Data<ApiState>>()
        .and_then(|s| s.admin_token.clone());
    if let Some(expected) = expected {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|given| constant_time_eq(given.as_bytes(), expected.as_bytes())) {
            let refusal = ApiError {
                status: StatusCode::UNAUTHORIZED,
                code: "unauthorized",
                message: "this API needs Authorization: Bearer <admin_token>".to_string(),
            };
            return Ok(req
                .into_response(refusal.error_response())
                .map_into_right_body());
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Compares secrets in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Binds `addr` and returns the running server; await it to serve until a signal.
pub fn server(addr: SocketAddr, state: ApiState) -> std::io::Result<Server> {
    Ok(HttpServer::new(move || app(state.clone()))
        .bind(addr)?
        .disable_signals()
        .run())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test;
    use ractor::{Actor, ActorProcessingErr};
    use recnode_actors::stream::{RecordError, RecordingInfo};

    /// Answers the recording API like a supervisor with one live stream, `cam`, that is
    /// already being recorded when its name is `busy`.
    struct FakeStreams;

    impl Actor for FakeStreams {
        type Msg = StreamSupervisorMsg;
        type State = ();
        type Arguments = ();

        async fn pre_start(&self, _: ActorRef<Self::Msg>, _: ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }

        async fn handle(
            &self,
            _: ActorRef<Self::Msg>,
            msg: Self::Msg,
            _: &mut (),
        ) -> Result<(), ActorProcessingErr> {
            if let StreamSupervisorMsg::StartRecording {
                stream,
                base_dir,
                reply,
            } = msg
            {
                let result = match (stream.as_str(), base_dir) {
                    ("busy", _) => Err(RecordError::AlreadyRecording { stream }),
                    ("cam", Some(dir)) if dir.contains("..") => Err(RecordError::InvalidBaseDir {
                        base_dir: dir,
                        reason: "must not contain '..'",
                    }),
                    ("cam", _) => Ok(RecordingInfo {
                        id: "cam".into(),
                        record_id: "1700000000".into(),
                        record_dir: "cam/1700000000".into(),
                        mpd_path: "cam/1700000000/manifest.mpd".into(),
                    }),
                    _ => Err(RecordError::NotFound { stream }),
                };
                let _ = reply.send(result);
            }
            Ok(())
        }
    }

    /// An API over the fake streams and `fs` storage in `root`.
    async fn state(token: Option<&str>, root: &std::path::Path) -> ApiState {
        let (streams, _) = Actor::spawn(None, FakeStreams, ())
            .await
            .expect("spawn fake");
        ApiState {
            streams,
            admin_token: token.map(str::to_string),
            storage: StorageHealth::default(),
            operator: recnode_actors::uploader::fs_operator(root).expect("fs operator"),
            uploader: None,
            disk: None,
            hooks: None,
            whip: None,
            cluster: None,
            rules: None,
        }
    }

    /// Sends `req` to an app over `state`: status, headers and raw body.
    async fn send(
        state: ApiState,
        req: test::TestRequest,
    ) -> (StatusCode, actix_web::http::header::HeaderMap, web::Bytes) {
        let app = test::init_service(app(state)).await;
        let response = test::call_service(&app, req.to_request()).await;
        let status = response.status();
        let headers = response.headers().clone();
        (status, headers, test::read_body(response).await)
    }

    async fn call(token: Option<&str>, req: test::TestRequest) -> (StatusCode, serde_json::Value) {
        let root = tempfile::tempdir().expect("temp dir");
        let (status, _, body) = send(state(token, root.path()).await, req).await;
        (status, serde_json::from_slice(&body).unwrap_or_default())
    }

    #[actix_web::test]
    async fn readyz_follows_storage_health() {
        let root = tempfile::tempdir().expect("temp dir");
        let state = state(None, root.path()).await;
        let health = state.storage.clone();
        health.report_error("connection refused");
        let get = || test::TestRequest::get().uri("/readyz");
        let (status, _, body) = send(state.clone(), get()).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(body["storage"]["error"], "connection refused");
        health.report_ok();
        let (status, _, body) = send(state, get()).await;
        assert_eq!(status, StatusCode::OK);
        let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(body["ready"], true);
    }

    #[actix_web::test]
    async fn the_object_proxy_serves_ranges_of_stored_objects() {
        let root = tempfile::tempdir().expect("temp dir");
        let data: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        std::fs::create_dir_all(root.path().join("cam/1")).expect("mkdir");
        std::fs::write(root.path().join("cam/1/v_seg_0001.m4s"), &data).expect("write");
        let state = state(None, root.path()).await;
        let uri = "/api/record/object/cam/1/v_seg_0001.m4s";

        let (status, headers, body) = send(state.clone(), test::TestRequest::get().uri(uri)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, data);
        assert_eq!(headers.get("content-type").unwrap(), "video/iso.segment");
        assert_eq!(headers.get("accept-ranges").unwrap(), "bytes");

        let ranged = test::TestRequest::get()
            .uri(uri)
            .insert_header(("Range", "bytes=100-199"));
        let (status, headers, body) = send(state.clone(), ranged).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(body, data[100..200]);
        assert_eq!(headers.get("content-range").unwrap(), "bytes 100-199/5000");

        let past = test::TestRequest::get()
            .uri(uri)
            .insert_header(("Range", "bytes=5000-"));
        let (status, headers, _) = send(state.clone(), past).await;
        assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(headers.get("content-range").unwrap(), "bytes */5000");

        for (uri, want) in [
            (
                "/api/record/object/cam/1/missing.m4s",
                StatusCode::NOT_FOUND,
            ),
            ("/api/record/object/cam/1", StatusCode::NOT_FOUND),
            (
                "/api/record/object/cam/../../etc/passwd",
                StatusCode::BAD_REQUEST,
            ),
            ("/api/record/object/", StatusCode::BAD_REQUEST),
        ] {
            let (status, _, _) = send(state.clone(), test::TestRequest::get().uri(uri)).await;
            assert_eq!(status, want, "{uri}");
        }
    }

    #[actix_web::test]
    async fn fs_storage_cannot_presign() {
        let body = r#"{"key":"cam/1/v_seg_0001.m4s","method":"PUT","ttl_seconds":60}"#;
        let req = test::TestRequest::post()
            .uri("/api/storage/presign")
            .set_payload(body);
        let (status, json) = call(None, req).await;
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
        assert_eq!(json["error"]["code"], "presign_unsupported");
        for (body, code) in [
            (
                r#"{"key":"../x","method":"PUT","ttl_seconds":60}"#,
                "invalid_key",
            ),
            (
                r#"{"key":"a/b","method":"GET","ttl_seconds":60}"#,
                "unsupported_method",
            ),
            (
                r#"{"key":"a/b","method":"PUT","ttl_seconds":60,"x":1}"#,
                "invalid_body",
            ),
        ] {
            let req = test::TestRequest::post()
                .uri("/api/storage/presign")
                .set_payload(body);
            let (status, json) = call(None, req).await;
            assert_eq!(
                (status, json["error"]["code"].as_str()),
                (StatusCode::BAD_REQUEST, Some(code))
            );
        }
    }

    #[actix_web::test]
    async fn an_unknown_route_gets_a_json_404() {
        let (status, body) = call(None, test::TestRequest::get().uri("/api/nope")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "not_found");
        assert_eq!(body["error"]["message"], "no route for GET /api/nope");
    }

    #[actix_web::test]
    async fn starting_a_recording_answers_in_live777_shape() {
        let (status, body) = call(None, test::TestRequest::post().uri("/api/record/cam")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["record_dir"], "cam/1700000000");
        assert_eq!(body["mpd_path"], "cam/1700000000/manifest.mpd");
        assert_eq!(body["record_id"], "1700000000");
        assert_eq!(body["id"], "cam");
    }

    #[actix_web::test]
    async fn each_recording_error_has_its_status_and_code() {
        let cases = [
            (
                "/api/record/ghost",
                "",
                StatusCode::NOT_FOUND,
                "stream_not_found",
            ),
            (
                "/api/record/busy",
                "",
                StatusCode::CONFLICT,
                "already_recording",
            ),
            (
                "/api/record/bad$name",
                "",
                StatusCode::BAD_REQUEST,
                "invalid_stream_name",
            ),
            (
                "/api/record/cam",
                "{\"base_dir\":\"../x\"}",
                StatusCode::BAD_REQUEST,
                "invalid_base_dir",
            ),
            (
                "/api/record/cam",
                "{not json",
                StatusCode::BAD_REQUEST,
                "invalid_body",
            ),
            (
                "/api/record/cam",
                "{\"dir\":1}",
                StatusCode::BAD_REQUEST,
                "invalid_body",
            ),
        ];
        for (uri, body, want_status, want_code) in cases {
            let req = test::TestRequest::post().uri(uri).set_payload(body);
            let (status, json) = call(None, req).await;
            assert_eq!(
                (status, json["error"]["code"].as_str()),
                (want_status, Some(want_code)),
                "{uri} {body}"
            );
        }
    }

    #[actix_web::test]
    async fn the_admin_token_guards_the_api_but_not_health_checks() {
        let token = Some("s3cret");
        let (status, body) = call(token, test::TestRequest::post().uri("/api/record/cam")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"]["code"], "unauthorized");
        let wrong = test::TestRequest::post()
            .uri("/api/record/cam")
            .insert_header(("Authorization", "Bearer nope"));
        assert_eq!(call(token, wrong).await.0, StatusCode::UNAUTHORIZED);
        let right = test::TestRequest::post()
            .uri("/api/record/cam")
            .insert_header(("Authorization", "Bearer s3cret"));
        assert_eq!(call(token, right).await.0, StatusCode::OK);
        assert_eq!(
            call(token, test::TestRequest::get().uri("/healthz"))
                .await
                .0,
            StatusCode::OK
        );
    }
}
