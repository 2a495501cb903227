//! The completion report, in S3 Batch Operations' own format.

use crate::manifest::Task;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Succeeded,
    Failed,
}

/// What happened to one task: one row of the completion report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskOutcome {
    pub task: Task,
    pub status: TaskStatus,
    /// S3's error code (`NoSuchKey`, `AccessDenied`, ...) or the Lambda result code of a failure.
    pub error_code: Option<String>,
    pub http_status: Option<u16>,
    pub result_message: String,
}

/// Encodes outcomes as completion-report CSV rows (the format of result parts and report files).
pub fn encode_rows(_outcomes: &[TaskOutcome]) -> Vec<u8> {
    Vec::new()
}
