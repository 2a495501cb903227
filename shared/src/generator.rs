//! The manifest generator (`ManifestGenerator.S3JobManifestGenerator`): the task list of a job built
//! from a bucket listing with S3 Batch Operations' filters instead of a manifest file.

use crate::error::{Error, Result};
use crate::manifest::Task;

/// Streams the tasks that the job's `ManifestGenerator` selects into `tx`, in listing order, and
/// returns how many there were; with `EnableManifestOutput`, also writes them as a CSV manifest.
pub async fn read_tasks(
    _s3: &aws_sdk_s3::Client,
    _generator: &serde_json::Value,
    _job_id: &str,
    _tx: tokio::sync::mpsc::Sender<Vec<Task>>,
) -> Result<u64> {
    Err(Error::InvalidRequest(
        "ManifestGenerator is not supported yet: give a Manifest".into(),
    ))
}
