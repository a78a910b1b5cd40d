//! `GET /metrics`: the node's gauges and counters in the Prometheus text format.
//!
//! Node-level only (no per-stream labels, so stream names never leak and the series
//! count stays fixed): live streams and recordings, the upload queue (length, in flight,
//! age of the oldest job, stored objects and bytes, retries), whether storage is
//! reachable, free space under the spool with the disk guard's level and, in a cluster,
//! this node's `stream/*` process group joins and leaves. Like `/healthz`, it needs no
//! token: it carries counts, not data.

use std::fmt::Write as _;
use std::time::Duration;

use actix_web::{get, web, HttpResponse};
use ractor::rpc::CallResult;
use recnode_actors::disk_guard::DiskLevel;
use recnode_actors::stream::StreamSupervisorMsg;
use recnode_actors::uploader::UploaderMsg;

use super::ApiState;

/// How long each actor may take to answer before its metrics are left out.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// Registers `/metrics` (no auth).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(metrics);
}

/// Appends one metric with its help and type lines.
fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {value}");
}

/// `GET /metrics`.
#[get("/metrics")]
async fn metrics(state: web::Data<ApiState>) -> HttpResponse {
    let mut out = String::with_capacity(2048);

    // The supervisor's counters: one answer, whatever the number of streams.
    if let Ok(CallResult::Success(counts)) = state
        .streams
        .call(StreamSupervisorMsg::Counts, Some(ASK_TIMEOUT))
        .await
    {
        metric(
            &mut out,
            "recnode_streams_live",
            "gauge",
            "Streams being published to this node.",
            counts.live_streams,
        );
        metric(
            &mut out,
            "recnode_recordings_active",
            "gauge",
            "Streams being recorded now.",
            counts.recordings,
        );
    }

    if let Some(uploader) = &state.uploader {
        if let Ok(CallResult::Success(s)) =
            uploader.call(UploaderMsg::Stats, Some(ASK_TIMEOUT)).await
        {
            metric(
                &mut out,
                "recnode_upload_queue_length",
                "gauge",
                "Files waiting for or in upload (durable queue).",
                s.queued,
            );
            metric(
                &mut out,
                "recnode_upload_in_flight",
                "gauge",
                "Uploads running now.",
                s.in_flight,
            );
            let age = s.oldest_pending_age.map_or(0.0, |d| d.as_secs_f64());
            metric(
                &mut out,
                "recnode_upload_oldest_pending_seconds",
                "gauge",
                "Age of the oldest unfinished upload.",
                age,
            );
            metric(
                &mut out,
                "recnode_upload_stored_total",
                "counter",
                "Objects storage confirmed since start.",
                s.stored,
            );
            metric(
                &mut out,
                "recnode_upload_stored_bytes_total",
                "counter",
                "Bytes of those objects.",
                s.bytes_stored,
            );
            metric(
                &mut out,
                "recnode_upload_retries_total",
                "counter",
                "Failed upload attempts that were retried.",
                s.retries,
            );
        }
    }

    let storage = state.storage.status();
    metric(
        &mut out,
        "recnode_storage_reachable",
        "gauge",
        "1 while storage accepts writes, else 0.",
        u8::from(storage.reachable),
    );

    if let Some(disk) = &state.disk {
        let free = disk.free_bytes();
        if free != u64::MAX {
            metric(
                &mut out,
                "recnode_disk_free_bytes",
                "gauge",
                "Free bytes under the spool at the last measurement.",
                free,
            );
        }
        metric(
            &mut out,
            "recnode_disk_min_free_bytes",
            "gauge",
            "Below this, new recordings are refused.",
            disk.min_free_bytes(),
        );
        let level = match disk.level() {
            DiskLevel::Ok => 0,
            DiskLevel::Low => 1,
            DiskLevel::Critical => 2,
        };
        metric(
            &mut out,
            "recnode_disk_level",
            "gauge",
            "0 ok, 1 low (new recordings refused), 2 critical (recordings closed).",
            level,
        );
    }

    if let Some(cluster) = &state.cluster {
        let changes = cluster.stream_group_changes();
        metric(
            &mut out,
            "recnode_cluster_stream_group_joins_total",
            "counter",
            "Times this node joined a stream/{name} process group (a stream went live here); each is one update to every peer.",
            changes.joins(),
        );
        metric(
            &mut out,
            "recnode_cluster_stream_group_leaves_total",
            "counter",
            "Times this node left a stream/{name} process group (a stream ended here).",
            changes.leaves(),
        );
    }

    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(out)
}
