//! Manifests: the CSV manifest of S3 Batch Operations and S3 Inventory reports, read as streams.
//!
//! Parsing is synchronous over `std::io::Read` so it is fast and testable without a network; the
//! async entry point [`read_tasks`] bridges the S3 object body into it on a blocking thread and
//! hands tasks to the planner in chunks, so memory stays constant whatever the manifest's size.

pub mod columnar;
mod csv_reader;
mod inventory;
mod key;
#[cfg(test)]
mod line_tests;
mod s3;
/// `read_tasks` against a real S3 API. Ignored by default: start `moto_server -p PORT` and run
/// `BATCHOPS_TEST_S3_ENDPOINT=http://127.0.0.1:PORT cargo test -p batchops --lib manifest -- --ignored`.
#[cfg(test)]
mod s3_tests;
mod spec;
#[cfg(test)]
mod tests;

pub use csv_reader::*;
pub use inventory::*;
pub use key::*;
pub use s3::*;
pub use spec::*;

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc::Sender;

use crate::error::{Error, Result};

/// One object to act on: a task of the job.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Task {
    /// Bucket that holds the object.
    pub bucket: String,
    /// The object's key, URL-decoded from the manifest.
    pub key: String,
    /// Version to act on; `None` when the manifest gives none: the task acts on the latest
    /// version.
    pub version_id: Option<String>,
    /// The object's size in bytes, when the manifest says it (an inventory's `Size` column):
    /// what the planner sizes the batches of copies and checksums by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// Tasks per chunk sent to the planner: large enough to amortise channel traffic, small enough
/// that memory stays flat.
pub const CHUNK_TASKS: usize = 1000;

/// The identity of a manifest object as planning first read it. Every later read names it (the
/// version, or the ETag as `If-Match`), so a job never mixes two versions of its manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestPin {
    /// The manifest's ETag as first read; later reads without a version send it as `If-Match`.
    pub etag: Option<String>,
    /// The manifest's version id as first read, when it has one; later reads ask for it.
    pub version_id: Option<String>,
}

/// Where reading a CSV manifest can start again: before its task number `task` (counted from the
/// start of the file), at byte `byte`, after `line` newlines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResumePoint {
    /// Tasks before this point, counted from the start of the file.
    pub task: u64,
    /// Byte offset in the file where reading starts again (a ranged GET from here).
    pub byte: u64,
    /// Newlines before `byte`, so that error messages give the right line numbers.
    pub line: u64,
}

/// The most recent resume points of a CSV manifest being read, one per chunk of tasks sent: the
/// planner saves the latest one at or before its checkpoint, so that a continuation starts with
/// a ranged GET there instead of reading from byte 0.
#[derive(Debug, Clone, Default)]
pub struct ResumePoints(Arc<Mutex<VecDeque<ResumePoint>>>);

/// Resume points kept: the reader runs at most a few chunks ahead of what is sent.
const RESUME_POINTS_KEPT: usize = 64;

impl ResumePoints {
    fn record(&self, point: ResumePoint) {
        let mut points = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if points.len() >= RESUME_POINTS_KEPT {
            points.pop_front();
        }
        points.push_back(point);
    }

    /// The latest point at or before task `task`.
    pub fn at_or_before(&self, task: u64) -> Option<ResumePoint> {
        let points = self.0.lock().unwrap_or_else(|p| p.into_inner());
        points.iter().rev().find(|p| p.task <= task).copied()
    }
}

/// How to read a manifest: the pinned object, and (CSV manifests) where to start and where to
/// record resume points.
#[derive(Debug, Clone, Default)]
pub struct ReadFrom {
    /// The manifest object as planning first read it; every read names it.
    pub pin: ManifestPin,
    /// Where a CSV manifest's reading starts; the default starts at byte 0.
    pub start: ResumePoint,
    /// Where resume points are recorded as chunks are sent; `None` records none.
    pub points: Option<ResumePoints>,
}

/// Streams the tasks of a manifest into `tx` in chunks, in manifest order, and returns how many
/// tasks there were. Errors are `Error::Manifest` with a reason fit for the job's FailureReasons.
///
/// If the receiver is dropped the reading stops quietly and the count so far is returned.
/// Each inventory data file is copied and its MD5 checked before any of its tasks is sent.
pub async fn read_tasks(
    s3: &aws_sdk_s3::Client,
    manifest: &JobManifest,
    tx: Sender<Vec<Task>>,
) -> Result<u64> {
    read_tasks_from(s3, manifest, &ReadFrom::default(), tx).await
}

/// [`read_tasks`] of the pinned manifest; a CSV manifest from `from.start` on.
pub async fn read_tasks_from(
    s3: &aws_sdk_s3::Client,
    manifest: &JobManifest,
    from: &ReadFrom,
    tx: Sender<Vec<Task>>,
) -> Result<u64> {
    match manifest.spec.format.as_str() {
        CSV_MANIFEST_FORMAT => read_csv_manifest(s3, manifest, from, tx).await,
        INVENTORY_CSV_FORMAT => {
            let inventory = fetch_inventory_manifest_pinned(s3, manifest, &from.pin).await?;
            let mut total = 0;
            for file in &inventory.files {
                if tx.is_closed() {
                    break;
                }
                total += read_inventory_file(s3, &inventory, file, tx.clone()).await?;
            }
            Ok(total)
        }
        other => Err(Error::Manifest(format!(
            "manifest {}: format {other} is not supported; use {CSV_MANIFEST_FORMAT} or {INVENTORY_CSV_FORMAT}",
            manifest.location.object_arn
        ))),
    }
}

/// Collects tasks into chunks and sends each with `blocking_send`; reports a dropped receiver so
/// the parser can stop. With `points`, records where reading could resume after each chunk.
pub(crate) struct ChunkSender {
    tx: Sender<Vec<Task>>,
    chunk: Vec<Task>,
    open: bool,
    points: Option<ResumePoints>,
    last_point: Option<ResumePoint>,
}

impl ChunkSender {
    pub(crate) fn new(tx: Sender<Vec<Task>>) -> Self {
        ChunkSender {
            tx,
            chunk: Vec::with_capacity(CHUNK_TASKS),
            open: true,
            points: None,
            last_point: None,
        }
    }

    pub(crate) fn push(&mut self, task: Task) -> bool {
        self.chunk.push(task);
        if self.chunk.len() >= CHUNK_TASKS {
            return self.flush();
        }
        self.open
    }

    /// Pushes a task and where reading could resume after it.
    fn push_at(&mut self, task: Task, point: Option<ResumePoint>) -> bool {
        self.last_point = point.or(self.last_point);
        self.push(task)
    }

    pub(crate) fn flush(&mut self) -> bool {
        if self.chunk.is_empty() || !self.open {
            return self.open;
        }
        // Recorded before the chunk is sent, so it exists when the planner reaches it.
        if let (Some(points), Some(point)) = (&self.points, self.last_point) {
            points.record(point);
        }
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK_TASKS));
        self.open = self.tx.blocking_send(chunk).is_ok();
        self.open
    }
}
