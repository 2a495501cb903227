//! Manifests: the CSV manifest of S3 Batch Operations and S3 Inventory reports, read as streams.

use serde::{Deserialize, Serialize};

/// One object to act on: a task of the job.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Task {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
}

use crate::error::{Error, Result};
use crate::job::JobManifest;

/// Streams the tasks of a manifest into `tx` in chunks, in manifest order, and returns how many
/// tasks there were. Errors are `Error::Manifest` with a reason fit for the job's FailureReasons.
pub async fn read_tasks(
    _s3: &aws_sdk_s3::Client,
    _manifest: &JobManifest,
    _tx: tokio::sync::mpsc::Sender<Vec<Task>>,
) -> Result<u64> {
    Err(Error::Manifest(
        "manifest::read_tasks is not implemented yet".into(),
    ))
}
