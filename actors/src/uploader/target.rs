//! Writing one object to the configured [`UploadTarget`]: an opendal operator, or a
//! presign service followed by a plain HTTP request.
//!
//! A file up to [`STREAM_ABOVE`] bytes is read whole and sent in one write (one PUT). A
//! larger one (a long recording's FLV) goes to an operator in [`CHUNK`]-sized pieces read
//! one at a time, so memory stays bounded: opendal turns that into a multipart upload on
//! S3-like stores, which still appears whole or not at all. The presigned mode always
//! sends one PUT of the whole file (a presigned URL covers one request).
//!
//! On the filesystem backend a spool file that is deleted once stored is not copied at
//! all: it is hard-linked into the storage root (see [`LinkRoot`]), when the spool and the
//! root share a filesystem. The recorder never rewrites a spool file in place after
//! queueing it (it replaces files by renaming a new one over them), so the stored object
//! keeps exactly the bytes that were queued.

use super::{
    init_http_transport, PresignRequest, PresignSettings, PresignedRequest, UploadError,
    UploadTarget,
};
use bytes::Bytes;
use opendal::Operator;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
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
    /// Through opendal; `link` is set for a filesystem operator.
    Operator {
        /// The operator.
        op: Operator,
        /// The filesystem root files can be hard-linked into, on the fs backend.
        link: Option<Arc<LinkRoot>>,
    },
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
            UploadTarget::Operator(op) => {
                let info = op.info();
                let link = (info.scheme() == "fs")
                    .then(|| Arc::new(LinkRoot::new(PathBuf::from(&*info.root()))));
                Ok(StorageClient::Operator { op, link })
            }
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
        matches!(self, StorageClient::Operator { .. }) && size > STREAM_ABOVE
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
        let StorageClient::Operator { op, .. } = self else {
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
            StorageClient::Operator { op, .. } => {
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

    /// Stores the spool file `local` as `key` by hard-linking it into the filesystem root,
    /// off the async loop. `None` when that is not possible here (not the fs backend,
    /// another filesystem, an odd key, or a failed step): then the caller copies.
    pub(crate) async fn link(&self, key: &str, local: &Path) -> Option<u64> {
        let StorageClient::Operator {
            link: Some(root), ..
        } = self
        else {
            return None;
        };
        if !root.enabled.load(Ordering::Relaxed) {
            return None;
        }
        let dest = root.dest(key)?;
        let (task_root, local) = (root.clone(), local.to_path_buf());
        let linked = tokio::task::spawn_blocking(move || task_root.link(&local, &dest))
            .await
            .unwrap_or_else(|join| Err(io::Error::other(join.to_string())));
        match linked {
            Ok(size) => Some(size),
            Err(error) => {
                // Another filesystem is for good; a permission error may be an outage
                // (or a filesystem without links, which then costs a failed call a file).
                let permanent = matches!(
                    error.kind(),
                    io::ErrorKind::CrossesDevices | io::ErrorKind::Unsupported
                );
                if permanent && root.enabled.swap(false, Ordering::Relaxed) {
                    tracing::warn!(root = %root.root.display(), %error,
                        "spool files can't be hard-linked into the storage root; copying them instead");
                } else if !permanent {
                    tracing::debug!(%key, %error, "hard link failed; copying instead");
                }
                None
            }
        }
    }
}

/// A filesystem storage root that spool files are hard-linked into rather than copied:
/// one directory entry instead of a second write of every byte and its fsync.
#[derive(Debug)]
pub(crate) struct LinkRoot {
    /// The operator's root directory.
    root: PathBuf,
    /// Cleared for good once a link fails because the filesystems differ.
    enabled: AtomicBool,
}

/// Makes the temporary names of concurrent links unique within the process.
static LINK_SEQ: AtomicU64 = AtomicU64::new(0);

impl LinkRoot {
    /// A root at `root`, enabled until a link across filesystems fails.
    pub(crate) fn new(root: PathBuf) -> LinkRoot {
        LinkRoot {
            root,
            enabled: AtomicBool::new(true),
        }
    }

    /// The path of `key` below the root, or `None` for a key that is not a plain
    /// relative path (the caller then leaves it to opendal, which checks it its own way).
    fn dest(&self, key: &str) -> Option<PathBuf> {
        let plain = !key.is_empty()
            && !key.starts_with('/')
            && !key.contains('\\')
            && !key.contains('\0')
            && key.split('/').all(|part| !matches!(part, "" | "." | ".."));
        plain.then(|| self.root.join(key))
    }

    /// Links `local` to `dest` atomically (a hard link under a temporary name renamed over
    /// `dest`), then fsyncs the directories it changed, so the entry is durable before the
    /// caller deletes the spool's name. The file's data was fsynced by the recorder.
    /// Returns the file's size.
    fn link(&self, local: &Path, dest: &Path) -> io::Result<u64> {
        let parent = dest
            .parent()
            .ok_or_else(|| io::Error::other("a key names the root itself"))?;
        self.create_dirs(parent)?;
        let size = std::fs::metadata(local)?.len();
        let mut tmp = dest.as_os_str().to_owned();
        tmp.push(format!(
            ".link-{}-{}.tmp",
            std::process::id(),
            LINK_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let tmp = PathBuf::from(tmp);
        std::fs::hard_link(local, &tmp)?;
        let renamed = std::fs::rename(&tmp, dest);
        // rename() of a name onto another name of the same file (a retry after a crash
        // that came between the link and the spool delete) succeeds and leaves both.
        let _ = std::fs::remove_file(&tmp);
        renamed?;
        std::fs::File::open(parent)?.sync_all()?;
        Ok(size)
    }

    /// Creates `dir` and its missing ancestors below the root, fsyncing the parent of
    /// each directory it creates.
    fn create_dirs(&self, dir: &Path) -> io::Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        let mut missing = Vec::new();
        let mut at = dir;
        while !at.is_dir() {
            if !at.starts_with(&self.root) || at == self.root {
                break;
            }
            missing.push(at.to_path_buf());
            match at.parent() {
                Some(p) => at = p,
                None => break,
            }
        }
        for d in missing.iter().rev() {
            match std::fs::create_dir(d) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
            if let Some(p) = d.parent() {
                std::fs::File::open(p)?.sync_all()?;
            }
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn spool_file(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, data).unwrap();
        path
    }

    #[test]
    fn a_linked_file_is_the_spool_file_under_its_key() {
        let spool = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let local = spool_file(spool.path(), "seg.m4s", b"fragment bytes");
        let links = LinkRoot::new(root.path().to_path_buf());
        let dest = links.dest("cam/1700000000/v_seg_0001.m4s").unwrap();
        assert_eq!(links.link(&local, &dest).unwrap(), 14);
        assert_eq!(std::fs::read(&dest).unwrap(), b"fragment bytes");
        let (a, b) = (
            std::fs::metadata(&local).unwrap(),
            std::fs::metadata(&dest).unwrap(),
        );
        assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()));
        // A retry (the spool name still there) stores the same thing and leaves no
        // temporary name behind.
        assert_eq!(links.link(&local, &dest).unwrap(), 14);
        let names: Vec<_> = std::fs::read_dir(dest.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("v_seg_0001.m4s")]);
    }

    #[test]
    fn a_link_replaces_an_older_object() {
        let spool = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let links = LinkRoot::new(root.path().to_path_buf());
        let dest = links.dest("cam/1/manifest.mpd").unwrap();
        links
            .link(&spool_file(spool.path(), "m1", b"old"), &dest)
            .unwrap();
        links
            .link(&spool_file(spool.path(), "m2", b"newer"), &dest)
            .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"newer");
    }

    #[test]
    fn keys_that_are_not_plain_relative_paths_are_not_linked() {
        let links = LinkRoot::new(PathBuf::from("/srv/recordings"));
        for key in [
            "",
            "/etc/passwd",
            "a/../../b",
            "a//b",
            "./a",
            "a\\b",
            "a/\0",
        ] {
            assert!(links.dest(key).is_none(), "{key:?}");
        }
        assert_eq!(
            links.dest("cam/1/a.m4s").unwrap(),
            PathBuf::from("/srv/recordings/cam/1/a.m4s")
        );
    }

    #[test]
    fn a_missing_spool_file_is_an_error_not_an_object() {
        let root = tempfile::tempdir().unwrap();
        let links = LinkRoot::new(root.path().to_path_buf());
        let dest = links.dest("cam/1/a.m4s").unwrap();
        let err = links
            .link(Path::new("/nonexistent/a.m4s"), &dest)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(!dest.exists());
    }
}
