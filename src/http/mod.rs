//! The HTTP API (actix-web), one file per API area.
//!
//! Handlers hold only actor references ([`ApiState`]), never locks around shared state.
//! Areas: [`health`] (`/healthz`, `/readyz`, no auth) and [`record`] (the recording API
//! under `/api`, behind the admin token when one is configured). Every error answers in
//! the JSON shape of [`error::ApiError`], unknown routes included.

use std::net::SocketAddr;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpServer, ResponseError};
use ractor::ActorRef;
use recnode_actors::stream::StreamSupervisorMsg;

#[cfg(feature = "fault-injection")]
pub mod debug;
pub mod error;
pub mod health;
pub mod record;

use error::ApiError;

/// What every handler may reach: actor references and immutable settings.
#[derive(Clone)]
pub struct ApiState {
    /// The registry of live streams, which answers the recording API.
    pub streams: ActorRef<StreamSupervisorMsg>,
    /// When set, `/api/*` needs `Authorization: Bearer <admin_token>`.
    pub admin_token: Option<String>,
}

/// Registers the health routes (no auth).
pub fn routes(cfg: &mut web::ServiceConfig) {
    health::routes(cfg);
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
        .service(
            web::scope("/api")
                .wrap(from_fn(require_admin_token))
                .configure(record::routes)
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

    async fn call(token: Option<&str>, req: test::TestRequest) -> (StatusCode, serde_json::Value) {
        let (streams, _) = Actor::spawn(None, FakeStreams, ())
            .await
            .expect("spawn fake");
        let state = ApiState {
            streams,
            admin_token: token.map(str::to_string),
        };
        let app = test::init_service(app(state)).await;
        let response = test::call_service(&app, req.to_request()).await;
        let status = response.status();
        let body = test::read_body(response).await;
        (status, serde_json::from_slice(&body).unwrap_or_default())
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
