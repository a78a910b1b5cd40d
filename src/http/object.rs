//! The object proxy, live777-compatible: `GET /api/record/object/{path}` (and `HEAD`)
//! serves a stored object through the node's storage operator, so players need no
//! storage credentials.
//!
//! - The path is an object key relative to the storage root and is checked with
//!   [`validate_key`] (400 `invalid_key`): no `..`, no absolute path, nothing that could
//!   leave the root.
//! - `Range: bytes=a-b`, `bytes=a-` and `bytes=-n` answer 206 with `Content-Range`; a
//!   range past the end answers 416 with `Content-Range: bytes */{len}`. Other forms
//!   (several ranges, another unit, bad syntax) are ignored and the whole object is sent,
//!   as RFC 9110 §14.2 allows.
//! - Small objects (manifests, session.json) are read whole, so a manifest rewritten
//!   between the size check and the read is still answered consistently; larger ones are
//!   streamed from storage, reading only the requested range.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody, SizedStream};
use actix_web::http::{header, Method, StatusCode};
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use opendal::ErrorKind;
use recnode_actors::uploader::validate_key;

use super::error::ApiError;
use super::ApiState;

/// Objects up to this size are read whole and sliced; larger ones are streamed.
const READ_WHOLE_MAX: u64 = 1 << 20;

/// Registers `GET` and `HEAD /record/object/{path}` (mounted under `/api`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/record/object/{path:.*}")
            .route(web::get().to(get_object))
            .route(web::head().to(get_object))
            .default_service(web::to(method_not_allowed)),
    );
}

async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let mut response = ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        code: "method_not_allowed",
        message: format!("{} is not allowed here; use GET or HEAD", req.method()),
    }
    .error_response();
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
    response
}

/// The answer to a `Range` header for an object of a given length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// No usable range: send the whole object (200).
    Full,
    /// Send bytes `start..=end` (206).
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// The range starts past the end (416).
    Unsatisfiable,
}

/// Reads a `Range` header value (RFC 9110 §14.1.2) against an object of `len` bytes.
pub fn parse_range(value: &str, len: u64) -> RangeAnswer {
    let value = value.trim();
    let Some(spec) = value
        .get(..6)
        .filter(|unit| unit.eq_ignore_ascii_case("bytes="))
        .map(|_| value[6..].trim())
    else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return RangeAnswer::Full;
    };
    let number = |s: &str| {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    if first.trim().is_empty() {
        // `bytes=-n`: the last n bytes.
        return match number(last) {
            None => RangeAnswer::Full,
            Some(0) => RangeAnswer::Unsatisfiable,
            Some(_) if len == 0 => RangeAnswer::Unsatisfiable,
            Some(n) => RangeAnswer::Partial {
                start: len.saturating_sub(n),
                end: len - 1,
            },
        };
    }
    let Some(start) = number(first) else {
        return RangeAnswer::Full;
    };
    let end = if last.trim().is_empty() {
        u64::MAX
    } else {
        match number(last) {
            Some(end) if end >= start => end,
            _ => return RangeAnswer::Full,
        }
    };
    if start >= len {
        return RangeAnswer::Unsatisfiable;
    }
    RangeAnswer::Partial {
        start,
        end: end.min(len - 1),
    }
}

/// The media type of an object, from its extension.
pub fn content_type(key: &str) -> &'static str {
    let ext = key
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "mpd" => "application/dash+xml",
        "m4s" => "video/iso.segment",
        "mp4" => "video/mp4",
        "flv" => "video/x-flv",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

fn storage_error(key: &str, e: &opendal::Error) -> ApiError {
    if e.kind() == ErrorKind::NotFound {
        return object_not_found(key);
    }
    tracing::warn!(key, error = %e, "object proxy: storage read failed");
    ApiError {
        status: StatusCode::BAD_GATEWAY,
        code: "storage_error",
        message: format!("storage could not read {key}: {e}"),
    }
}

fn object_not_found(key: &str) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "object_not_found",
        message: format!("no object {key}"),
    }
}

/// 416 with `Content-Range: bytes */{len}`.
fn unsatisfiable(key: &str, len: u64) -> HttpResponse {
    let mut response = ApiError {
        status: StatusCode::RANGE_NOT_SATISFIABLE,
        code: "range_not_satisfiable",
        message: format!("{key} has {len} bytes; the range starts past its end"),
    }
    .error_response();
    if let Ok(value) = header::HeaderValue::from_str(&format!("bytes */{len}")) {
        response.headers_mut().insert(header::CONTENT_RANGE, value);
    }
    response
}

/// The status and headers of a 200/206 answer for bytes `start..=end` of `len`.
fn head_of(key: &str, answer: RangeAnswer, len: u64) -> actix_web::HttpResponseBuilder {
    let mut builder = match answer {
        RangeAnswer::Partial { start, end } => {
            let mut b = HttpResponse::PartialContent();
            b.insert_header((header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}")));
            b
        }
        _ => HttpResponse::Ok(),
    };
    builder
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .content_type(content_type(key));
    builder
}

/// The bytes `answer` selects out of `len`, as a half-open range.
fn byte_span(answer: RangeAnswer, len: u64) -> std::ops::Range<u64> {
    match answer {
        RangeAnswer::Partial { start, end } => start..end + 1,
        _ => 0..len,
    }
}

/// The body of a `HEAD` answer: declares the length, sends nothing.
struct HeadBody(u64);

impl MessageBody for HeadBody {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.0)
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Poll::Ready(None)
    }
}

/// `GET`/`HEAD /api/record/object/{path}`.
async fn get_object(
    req: HttpRequest,
    state: web::Data<ApiState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = path.into_inner();
    validate_key(&key).map_err(|e| ApiError {
        status: StatusCode::BAD_REQUEST,
        code: "invalid_key",
        message: e.to_string(),
    })?;
    let op = &state.operator;
    let meta = op.stat(&key).await.map_err(|e| storage_error(&key, &e))?;
    if meta.is_dir() {
        return Err(object_not_found(&key));
    }
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let answer_for = |len| range.map_or(RangeAnswer::Full, |r| parse_range(r, len));

    let stat_len = meta.content_length();
    if req.method() == Method::HEAD {
        let answer = answer_for(stat_len);
        if answer == RangeAnswer::Unsatisfiable {
            return Ok(unsatisfiable(&key, stat_len));
        }
        let span = byte_span(answer, stat_len);
        return Ok(head_of(&key, answer, stat_len).body(HeadBody(span.end - span.start)));
    }

    if stat_len <= READ_WHOLE_MAX {
        // Read whole: the range is taken from what was read, so an object rewritten
        // since `stat` (a live manifest) is still answered consistently.
        let data = op
            .read(&key)
            .await
            .map_err(|e| storage_error(&key, &e))?
            .to_bytes();
        let len = data.len() as u64;
        let answer = answer_for(len);
        if answer == RangeAnswer::Unsatisfiable {
            return Ok(unsatisfiable(&key, len));
        }
        let span = byte_span(answer, len);
        // `span` lies within `0..len` by construction of `parse_range`.
        let body = data.slice(span.start as usize..span.end as usize);
        return Ok(head_of(&key, answer, len).body(body));
    }

    let answer = answer_for(stat_len);
    if answer == RangeAnswer::Unsatisfiable {
        return Ok(unsatisfiable(&key, stat_len));
    }
    let span = byte_span(answer, stat_len);
    let size = span.end - span.start;
    let stream = op
        .reader(&key)
        .await
        .map_err(|e| storage_error(&key, &e))?
        .into_bytes_stream(span)
        .await
        .map_err(|e| storage_error(&key, &e))?;
    Ok(head_of(&key, answer, stat_len).body(SizedStream::new(size, stream)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        use RangeAnswer::*;
        let cases = [
            ("bytes=0-9", 100, Partial { start: 0, end: 9 }),
            ("bytes=10-", 100, Partial { start: 10, end: 99 }),
            ("bytes=-10", 100, Partial { start: 90, end: 99 }),
            ("bytes=-1000", 100, Partial { start: 0, end: 99 }),
            ("bytes=90-1000", 100, Partial { start: 90, end: 99 }),
            ("BYTES= 5-5", 100, Partial { start: 5, end: 5 }),
            ("bytes=99-99", 100, Partial { start: 99, end: 99 }),
            ("bytes=100-", 100, Unsatisfiable),
            ("bytes=100-200", 100, Unsatisfiable),
            ("bytes=-0", 100, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=-5", 0, Unsatisfiable),
            ("bytes=9-5", 100, Full),
            ("bytes=0-1,5-6", 100, Full),
            ("items=0-5", 100, Full),
            ("bytes=a-b", 100, Full),
            ("bytes=-", 100, Full),
            ("bytes=+1-2", 100, Full),
            ("bytes=1", 100, Full),
            ("bytes=99999999999999999999-", 100, Full),
            ("", 100, Full),
        ];
        for (value, len, want) in cases {
            assert_eq!(parse_range(value, len), want, "{value:?} of {len}");
        }
    }

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("a/1/manifest.mpd"), "application/dash+xml");
        assert_eq!(content_type("a/1/v_seg_0001.m4s"), "video/iso.segment");
        assert_eq!(content_type("a/live_a_20240101_000000.FLV"), "video/x-flv");
        assert_eq!(content_type("a/1/session.json"), "application/json");
        assert_eq!(content_type("a/1/notes"), "application/octet-stream");
    }
}
