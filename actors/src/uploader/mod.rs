//! Uploads: finished files move from the local spool to the storage operator (opendal).
//!
//! The contract with recorders is [`UploaderMsg`]: a recorder enqueues each finished file
//! (a segment, an init segment, a manifest, the FLV, session.json) with the object key it
//! must have. Jobs are stored in the order they are enqueued, so a segment always reaches
//! storage before a manifest that lists it. The local file is deleted only after storage
//! confirms the write.

use ractor::RpcReplyPort;
use ractor_cluster_derive::RactorMessage;
use std::path::PathBuf;

#[allow(clippy::module_inception)]
mod uploader;

pub use uploader::{
    fs_operator, start_uploader, validate_key, UploadError, Uploader, UploaderArgs, UploaderState,
    UploaderStats, WorkerReport,
};

/// One file to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadJob {
    /// The finished local file in the spool.
    pub local: PathBuf,
    /// The object key, relative to the storage root (`{stream}/{record_id}/v_seg_0001.m4s`).
    pub key: String,
    /// Delete the local file once stored (false for files that will be rewritten, such as a live manifest).
    pub delete_after: bool,
}

/// Messages to the uploader.
#[derive(RactorMessage)]
pub enum UploaderMsg {
    /// Store a finished file; jobs are stored in the order they are enqueued.
    Enqueue(UploadJob),
    /// Replies once every job enqueued before this message is stored (shutdown and tests).
    Drain(RpcReplyPort<()>),
    /// Replies with the counters so far.
    Stats(RpcReplyPort<UploaderStats>),
    /// A worker task reports progress on the job in flight (sent by the uploader itself).
    #[doc(hidden)]
    Report(WorkerReport),
}
