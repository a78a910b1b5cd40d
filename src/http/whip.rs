//! WHIP ([RFC 9725]): WebRTC publishing over HTTP, outside `/api` (publishers use their
//! stream key, not the admin token).
//!
//! - `POST /whip/{stream}` with `Content-Type: application/sdp`: the offer. `201 Created`
//!   with the SDP answer (every server candidate in it), `Location: /whip/{stream}/{session}`,
//!   an `ETag` and `Accept-Patch: application/trickle-ice-sdpfrag`.
//! - `PATCH {Location}` with `application/trickle-ice-sdpfrag`: the publisher's trickled
//!   candidates (`204`); an ICE restart is refused with `422`, a stale `If-Match` with `412`.
//! - `DELETE {Location}`: ends the session (`200`); the stream's recordings close cleanly.
//! - `OPTIONS` on both: CORS preflight (`204`), so a page on another origin can publish.
//!   Every WHIP response carries `Access-Control-Allow-Origin: *` and exposes `Location`
//!   and `ETag`.
//!
//! Auth: `Authorization: Bearer <key>` against `[auth] stream_keys`, as RTMP's `?key=`.
//! Every refusal is JSON (`{"error":{"code","message"}}`): a body over 64 KiB is `413`,
//! another content type `415`, a body that is not an offer `400`, an offer without a codec
//! this node records `422`, a stream already live `409`.
//!
//! [RFC 9725]: https://www.rfc-editor.org/rfc/rfc9725

use std::time::Duration;

use actix_web::http::{header, Method, StatusCode};
use actix_web::middleware::DefaultHeaders;
use actix_web::{web, HttpRequest, HttpResponse};
use ractor::rpc::CallResult;
use ractor::{ActorRef, RpcReplyPort};
use recnode_actors::ingest::whip::{WhipError, WhipIngestMsg, WhipOffer, MAX_SDP_BYTES};
use recnode_actors::stream::PublishRejected;

use super::error::ApiError;
use super::ApiState;

/// How long a WHIP request waits for the ingest (negotiation included).
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// The methods a WHIP resource answers.
const ALLOW_METHODS: &str = "POST, PATCH, DELETE, OPTIONS";

/// Registers `/whip` (mount outside `/api`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/whip")
            .wrap(
                DefaultHeaders::new()
                    .add((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
                    .add((
                        header::ACCESS_CONTROL_EXPOSE_HEADERS,
                        "Location, ETag, Link, Accept-Patch, Accept-Post",
                    )),
            )
            .service(
                web::resource("/{stream}")
                    .route(web::post().to(offer))
                    .route(web::method(Method::OPTIONS).to(preflight))
                    .default_service(web::to(method_not_allowed)),
            )
            .service(
                web::resource("/{stream}/{session}")
                    .route(web::patch().to(patch))
                    .route(web::delete().to(delete))
                    .route(web::method(Method::OPTIONS).to(preflight))
                    .default_service(web::to(method_not_allowed)),
            ),
    );
}

fn api_error(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code,
        message: message.into(),
    }
}

/// The status and code of each refusal.
fn whip_error(e: WhipError) -> ApiError {
    let (status, code) = match &e {
        WhipError::InvalidStreamName(_) => (StatusCode::BAD_REQUEST, "invalid_stream_name"),
        WhipError::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, "unauthorized"),
        WhipError::Rejected(PublishRejected::AlreadyLive { .. }) => {
            (StatusCode::CONFLICT, "stream_live")
        }
        WhipError::Rejected(PublishRejected::ShuttingDown) => {
            (StatusCode::SERVICE_UNAVAILABLE, "shutting_down")
        }
        WhipError::MalformedSdp { .. } => (StatusCode::BAD_REQUEST, "malformed_sdp"),
        WhipError::NoUsableCodec { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "no_usable_codec"),
        WhipError::SessionNotFound { .. } => (StatusCode::NOT_FOUND, "session_not_found"),
        WhipError::EtagMismatch { .. } => (StatusCode::PRECONDITION_FAILED, "etag_mismatch"),
        WhipError::IceRestartUnsupported => {
            (StatusCode::UNPROCESSABLE_ENTITY, "ice_restart_unsupported")
        }
        WhipError::MalformedFragment { .. } => (StatusCode::BAD_REQUEST, "malformed_fragment"),
        WhipError::Internal { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "whip_failed"),
    };
    api_error(status, code, e.to_string())
}

/// The WHIP ingest, or 404 when `[whip] enabled = false`.
fn ingest(state: &ApiState) -> Result<ActorRef<WhipIngestMsg>, ApiError> {
    state.whip.clone().ok_or_else(|| {
        api_error(
            StatusCode::NOT_FOUND,
            "whip_disabled",
            "WHIP is disabled on this node ([whip] enabled = false)",
        )
    })
}

/// Asks the WHIP ingest; a missing or late answer is 503.
async fn ask<T: Send + 'static>(
    whip: &ActorRef<WhipIngestMsg>,
    msg: impl FnOnce(RpcReplyPort<T>) -> WhipIngestMsg,
) -> Result<T, ApiError> {
    let unavailable = |what: &str| {
        api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("the WHIP ingest {what}"),
        )
    };
    match whip.call(msg, Some(CALL_TIMEOUT)).await {
        Ok(CallResult::Success(value)) => Ok(value),
        Ok(CallResult::Timeout) => Err(unavailable("did not answer in time")),
        Ok(CallResult::SenderError) | Err(_) => Err(unavailable("dropped the request")),
    }
}

/// The bearer token of the request, if any.
fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// Refuses a request whose media type is not `want` (parameters such as charset allowed).
fn require_content_type(req: &HttpRequest, want: &str) -> Result<(), ApiError> {
    let given = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = given.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case(want) {
        Ok(())
    } else {
        Err(api_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type must be {want}, got {:?}", truncate(given)),
        ))
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(100).collect()
}

/// Reads a text body of at most [`MAX_SDP_BYTES`].
async fn text_body(payload: web::Payload, what: &str) -> Result<String, ApiError> {
    let bytes = match payload.to_bytes_limited(MAX_SDP_BYTES).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            return Err(api_error(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("reading the {what}: {e}"),
            ))
        }
        Err(_) => {
            return Err(api_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the {what} exceeds {MAX_SDP_BYTES} bytes"),
            ))
        }
    };
    String::from_utf8(bytes.to_vec()).map_err(|_| {
        api_error(
            StatusCode::BAD_REQUEST,
            "malformed_sdp",
            format!("the {what} is not UTF-8 text"),
        )
    })
}

/// `POST /whip/{stream}`: offer in, answer out.
async fn offer(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let whip = ingest(&state)?;
    require_content_type(&req, "application/sdp")?;
    let sdp = text_body(payload, "SDP offer").await?;
    let stream = path.into_inner();
    let offer = WhipOffer {
        stream: stream.clone(),
        sdp,
        key: bearer(&req),
        remote: req
            .peer_addr()
            .map_or_else(|| "unknown".to_string(), |a| a.to_string()),
    };
    let answer = ask(&whip, |reply| WhipIngestMsg::Offer(offer, reply))
        .await?
        .map_err(whip_error)?;
    Ok(HttpResponse::Created()
        .content_type("application/sdp")
        .insert_header((
            header::LOCATION,
            format!("/whip/{stream}/{}", answer.session),
        ))
        .insert_header((header::ETAG, answer.etag))
        .insert_header(("Accept-Patch", "application/trickle-ice-sdpfrag"))
        .body(answer.sdp))
}

/// `PATCH /whip/{stream}/{session}`: trickle ICE.
async fn patch(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let whip = ingest(&state)?;
    require_content_type(&req, "application/trickle-ice-sdpfrag")?;
    let fragment = text_body(payload, "trickle ICE fragment").await?;
    let (stream, session) = path.into_inner();
    let if_match = req
        .headers()
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let key = bearer(&req);
    ask(&whip, |reply| WhipIngestMsg::Patch {
        stream,
        session,
        key,
        if_match,
        fragment,
        reply,
    })
    .await?
    .map_err(whip_error)?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /whip/{stream}/{session}`: the publisher is done.
async fn delete(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, ApiError> {
    let whip = ingest(&state)?;
    let (stream, session) = path.into_inner();
    let key = bearer(&req);
    ask(&whip, |reply| WhipIngestMsg::Delete {
        stream,
        session,
        key,
        reply,
    })
    .await?
    .map_err(whip_error)?;
    Ok(HttpResponse::Ok().finish())
}

/// `OPTIONS`: CORS preflight (and what the resource accepts).
async fn preflight(req: HttpRequest) -> HttpResponse {
    let session = req.match_info().get("session").is_some();
    let mut response = HttpResponse::NoContent();
    response
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS))
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "Authorization, Content-Type, If-Match",
        ))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
        .insert_header((header::ALLOW, ALLOW_METHODS));
    if session {
        response.insert_header(("Accept-Patch", "application/trickle-ice-sdpfrag"));
    } else {
        response.insert_header(("Accept-Post", "application/sdp"));
    }
    response.finish()
}

/// Any other method on a WHIP resource.
async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(api_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.path()),
    ))
}
