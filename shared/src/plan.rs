//! The plan: packing a manifest's tasks into task-batch messages for the task queue.

/// SQS's message size limit (256 KiB) less room for attributes and the envelope.
pub const MAX_MESSAGE_BYTES: usize = 250 * 1024;

use crate::error::{Error, Result};
use crate::manifest::Task;

/// One message on the task queue: a batch of tasks of one job.
///
/// Body JSON: `{"JobId":"…","BatchId":"…","Tasks":[["bucket","key"],["bucket","key","versionId"],…]}`.
/// Batch ids are deterministic (position in the manifest), so a manifest planned twice yields the
/// same batches and the commit counts each once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskBatch {
    pub job_id: String,
    pub batch_id: String,
    pub tasks: Vec<Task>,
}

impl TaskBatch {
    pub fn to_body(&self) -> String {
        let _ = MAX_MESSAGE_BYTES;
        unimplemented_body()
    }

    pub fn from_body(_body: &str) -> Result<Self> {
        Err(Error::Message(
            "plan::TaskBatch::from_body is not implemented yet".into(),
        ))
    }
}

fn unimplemented_body() -> String {
    String::new()
}
