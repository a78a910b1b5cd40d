//! Writing one object to the configured [`UploadTarget`]: an opendal operator, or a
//! presign service followed by a plain HTTP request.
//!
//! A file up to [`STREAM_ABOVE`] bytes is read whole and sent in one write (one PUT). A
//! larger one (a long recording's FLV) goes to an operator in [`CHUNK`]-sized pieces read
//! one at a time, so memory stays bounded: opendal turns that into a multipart upload on
//! S3-like stores, which still appears whole or not at all. The presigned mode always
//! sends one PUT of the whole file (a presigned URL covers one request).

use super::{
    init_http_transport, PresignRequest, PresignSettings, PresignedRequest, UploadError,
    UploadTarget,
};
use bytes::Bytes;
use opendal::Operator;
use std::time::Duration;

/// How long connecting to a presign service or a presigned URL may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the other side may stay silent while a request is in progress.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How much of an error response body goes into the error.
const BODY_EXCERPT: usize = 300;
/// Files larger than this are streamed to an operator in [`CHUNK`]s.
pub(crate) const STREAM_ABOVE: u64 = 32 * 1024 * 1024;
/// The piece size of a streamed upload (S3 parts must be at least 5 MiB).
pub(crate) const CHUNK: usize = 8 * 1024 * 1024;

/// A ready-to-use destination, shared by the upload workers.
#[derive(Debug, Clone)]
pub(crate) enum StorageClient {
    /// Through opendal.
    Operator(Operator),
    /// Through a presign service.
    Presigned {
        /// The service and token.
        settings: PresignSettings,
        /// The HTTP client for both requests.
        http: reqwest::Client,
    },
}

impl StorageClient {
    /// Builds the client for `target` (an HTTP client for the presigned mode).
    pub(crate) fn new(target: UploadTarget) -> Result<StorageClient, UploadError> {
        match target {
            UploadTarget::Operator(op) => Ok(StorageClient::Operator(op)),
            UploadTarget::Presigned(settings) => {
                init_http_transport();
                let http = reqwest::Client::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .read_timeout(READ_TIMEOUT)
                    .build()
                    .map_err(|e| UploadError::HttpClient(e.to_string()))?;
                Ok(StorageClient::Presigned { settings, http })
            }
        }
    }

    /// Whether a file of `size` bytes is streamed with [`StorageClient::put_chunks`]
    /// rather than read whole for [`StorageClient::put`].
    pub(crate) fn streams(&self, size: u64) -> bool {
        matches!(self, StorageClient::Operator(_)) && size > STREAM_ABOVE
    }

    /// Writes the object `key` from `next`, which yields the file's pieces in order
    /// (empty at the end); a failed upload is aborted. Operators only (see
    /// [`StorageClient::streams`]). Returns the bytes written.
    pub(crate) async fn put_chunks<F, Fut>(
        &self,
        key: &str,
        mut next: F,
    ) -> Result<u64, (UploadError, bool)>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Bytes, UploadError>>,
    {
        let StorageClient::Operator(op) = self else {
            return Err((
                UploadError::HttpClient("streamed uploads need an operator".into()),
                false,
            ));
        };
        let store_err = |source| {
            (
                UploadError::Store {
                    key: key.to_string(),
                    source,
                },
                true,
            )
        };
        let mut writer = op.writer_with(key).chunk(CHUNK).await.map_err(store_err)?;
        let mut total = 0u64;
        let result = async {
            loop {
                let piece = next().await.map_err(|e| (e, false))?;
                if piece.is_empty() {
                    break;
                }
                total += piece.len() as u64;
                writer.write(piece).await.map_err(store_err)?;
            }
            writer.close().await.map_err(store_err)
        }
        .await;
        match result {
            Ok(_) => Ok(total),
            Err(e) => {
                // Best effort: an unfinished multipart upload is also expired by S3 itself.
                let _ = writer.abort().await;
                Err(e)
            }
        }
    }

    /// Writes `data` as the object `key` (whole, in one request).
    pub(crate) async fn put(&self, key: &str, data: Bytes) -> Result<(), UploadError> {
        match self {
            StorageClient::Operator(op) => {
                op.write(key, data)
                    .await
                    .map(|_| ())
                    .map_err(|source| UploadError::Store {
                        key: key.to_string(),
                        source,
                    })
            }
            StorageClient::Presigned { settings, http } => {
                let signed = presign(http, settings, key).await?;
                send_presigned(http, key, signed, data).await
            }
        }
    }
}

fn excerpt(body: &str) -> String {
    let mut end = body.len().min(BODY_EXCERPT);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    body[..end].trim().to_string()
}

/// Asks the presign service for a PUT request for `key`.
async fn presign(
    http: &reqwest::Client,
    settings: &PresignSettings,
    key: &str,
) -> Result<PresignedRequest, UploadError> {
    let failed = |message: String| UploadError::Presign {
        key: key.to_string(),
        url: settings.url.clone(),
        message,
    };
    let body = PresignRequest {
        key: key.to_string(),
        method: "PUT".to_string(),
        ttl_seconds: settings.ttl.as_secs().max(1),
    };
    let mut request = http.post(&settings.url).json(&body);
    if let Some(token) = &settings.token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(failed(format!("HTTP {status}: {}", excerpt(&text))));
    }
    response
        .json::<PresignedRequest>()
        .await
        .map_err(|e| failed(format!("unreadable answer: {e}")))
}

/// Sends the object with exactly the presigned request.
async fn send_presigned(
    http: &reqwest::Client,
    key: &str,
    signed: PresignedRequest,
    data: Bytes,
) -> Result<(), UploadError> {
    let failed = |message: String| UploadError::PresignedWrite {
        key: key.to_string(),
        message,
    };
    let method = reqwest::Method::from_bytes(signed.method.as_bytes())
        .map_err(|_| failed(format!("the service answered method {:?}", signed.method)))?;
    let mut request = http.request(method, &signed.url).body(data);
    for (name, value) in &signed.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    // The signed URL is a bearer credential until it expires: keep it out of errors.
    let response = request
        .send()
        .await
        .map_err(|e| failed(e.without_url().to_string()))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(failed(format!("HTTP {status}: {}", excerpt(&text))));
    }
    Ok(())
}
