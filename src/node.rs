//! Starting a node from a loaded [`Config`]: local directories, then the HTTP server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::config::{Config, StorageConfig};

/// Why the node could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A local directory could not be created.
    #[error("cannot create directory {} (key `{key}`)", path.display())]
    CreateDir {
        /// The config key that names the directory.
        key: &'static str,
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server could not bind its address.
    #[error("cannot listen for HTTP on {addr} (key `http.listen`)")]
    HttpBind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed while running.
    #[error("HTTP server failed")]
    HttpServe(#[source] std::io::Error),
}

/// Creates the local directories the config names: the data dir and, for `fs`
/// storage, the storage root.
pub fn prepare_dirs(config: &Config) -> Result<(), NodeError> {
    create_dir(&config.data.dir, "data.dir")?;
    if let StorageConfig::Fs(fs) = &config.recorder.storage {
        create_dir(&fs.root, "recorder.storage.root")?;
    }
    Ok(())
}

fn create_dir(path: &Path, key: &'static str) -> Result<(), NodeError> {
    std::fs::create_dir_all(path).map_err(|source| NodeError::CreateDir {
        key,
        path: path.to_path_buf(),
        source,
    })
}

/// Runs a node until SIGINT/SIGTERM: prepares directories, then serves HTTP.
pub async fn run(config: Config) -> Result<(), NodeError> {
    prepare_dirs(&config)?;
    let addr = config.http.listen;
    let server =
        crate::http::server(addr).map_err(|source| NodeError::HttpBind { addr, source })?;
    tracing::info!(
        http = %addr,
        storage = config.recorder.storage.kind(),
        data_dir = %config.data.dir.display(),
        "recnode started"
    );
    server.await.map_err(NodeError::HttpServe)?;
    tracing::info!("recnode stopped");
    Ok(())
}
