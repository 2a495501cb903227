//! The job's operation: S3 Control's one-member object, read into [`JobOperation`], with the
//! operations batchops refuses named and explained.

use super::*;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The operation of a job. S3 Control's JSON is an object with exactly one member named after the
/// operation; batchops refuses names it cannot run with a message that says why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Map<String, Value>", into = "Map<String, Value>")]
pub enum JobOperation {
    /// `LambdaInvoke`: calls a Lambda function for each object.
    LambdaInvoke(LambdaInvokeOperation),
    /// Boxed: by far the largest operation, and jobs are moved around whole.
    S3PutObjectCopy(Box<CopyObjectOperation>),
    /// `S3PutObjectAcl`: replaces each object's ACL.
    S3PutObjectAcl(SetObjectAclOperation),
    /// `S3PutObjectTagging`: replaces each object's tag set.
    S3PutObjectTagging(PutObjectTaggingOperation),
    /// `S3DeleteObjectTagging`: removes every tag from each object.
    S3DeleteObjectTagging(DeleteObjectTaggingOperation),
    /// `S3InitiateRestoreObject`: starts a restore of each archived object.
    S3InitiateRestoreObject(InitiateRestoreObjectOperation),
    /// `S3PutObjectLegalHold`: turns each object's Object Lock legal hold on or off.
    S3PutObjectLegalHold(SetObjectLegalHoldOperation),
    /// `S3PutObjectRetention`: sets each object's Object Lock retention mode and date.
    S3PutObjectRetention(SetObjectRetentionOperation),
    /// `S3ComputeObjectChecksum`: reads each object and reports a full-object checksum.
    S3ComputeObjectChecksum(ComputeObjectChecksumOperation),
    /// `S3UpdateObjectEncryption`: re-encrypts each object with SSE-KMS (a copy onto itself).
    S3UpdateObjectEncryption(UpdateObjectEncryptionOperation),
    /// A batchops extension: S3 Batch Operations has no delete operation.
    S3DeleteObject(DeleteObjectOperation),
}

/// Every operation name S3 Control knows, plus batchops' own `S3DeleteObject`.
pub(super) const KNOWN_OPERATIONS: &[&str] = &[
    "LambdaInvoke",
    "S3PutObjectCopy",
    "S3PutObjectAcl",
    "S3PutObjectTagging",
    "S3DeleteObjectTagging",
    "S3InitiateRestoreObject",
    "S3PutObjectLegalHold",
    "S3PutObjectRetention",
    "S3ReplicateObject",
    "S3ComputeObjectChecksum",
    "S3UpdateObjectEncryption",
    "S3DeleteObject",
];

pub(super) const SUPPORTED_OPERATIONS: &[&str] = &[
    "LambdaInvoke",
    "S3PutObjectCopy",
    "S3PutObjectAcl",
    "S3PutObjectTagging",
    "S3DeleteObjectTagging",
    "S3InitiateRestoreObject",
    "S3PutObjectLegalHold",
    "S3PutObjectRetention",
    "S3ComputeObjectChecksum",
    "S3UpdateObjectEncryption",
    "S3DeleteObject",
];

/// Why S3ReplicateObject is refused: it is not an API call batchops could make per object.
pub const REPLICATE_OBJECT_REFUSAL: &str = "operation S3ReplicateObject is not supported by batchops: Batch Replication runs inside S3's replication engine (it needs the bucket's replication configuration and S3's internal replication of versions, delete markers and metadata), which no public API exposes. Use S3 Batch Replication in S3 itself, or S3PutObjectCopy to copy the objects to another bucket";

impl JobOperation {
    /// The operation's member name in S3 Control's JSON, such as `"S3PutObjectCopy"`.
    pub fn name(&self) -> &'static str {
        match self {
            JobOperation::LambdaInvoke(_) => "LambdaInvoke",
            JobOperation::S3PutObjectCopy(_) => "S3PutObjectCopy",
            JobOperation::S3PutObjectAcl(_) => "S3PutObjectAcl",
            JobOperation::S3PutObjectTagging(_) => "S3PutObjectTagging",
            JobOperation::S3DeleteObjectTagging(_) => "S3DeleteObjectTagging",
            JobOperation::S3InitiateRestoreObject(_) => "S3InitiateRestoreObject",
            JobOperation::S3PutObjectLegalHold(_) => "S3PutObjectLegalHold",
            JobOperation::S3PutObjectRetention(_) => "S3PutObjectRetention",
            JobOperation::S3ComputeObjectChecksum(_) => "S3ComputeObjectChecksum",
            JobOperation::S3UpdateObjectEncryption(_) => "S3UpdateObjectEncryption",
            JobOperation::S3DeleteObject(_) => "S3DeleteObject",
        }
    }

    /// Checks the operation's parameters; fails with `Error::InvalidRequest` naming the first
    /// member that is missing or wrong.
    pub fn validate(&self) -> Result<()> {
        match self {
            JobOperation::LambdaInvoke(op) => op.validate(),
            JobOperation::S3PutObjectCopy(op) => op.validate(),
            JobOperation::S3PutObjectAcl(op) => op.validate(),
            JobOperation::S3PutObjectTagging(op) => op.validate(),
            JobOperation::S3DeleteObjectTagging(_) => Ok(()),
            JobOperation::S3InitiateRestoreObject(op) => op.validate(),
            JobOperation::S3PutObjectLegalHold(_) => Ok(()),
            JobOperation::S3PutObjectRetention(op) => op.validate(),
            JobOperation::S3ComputeObjectChecksum(op) => op.validate(),
            JobOperation::S3UpdateObjectEncryption(op) => op.validate(),
            JobOperation::S3DeleteObject(_) => Ok(()),
        }
    }

    /// Operations that destroy data run only in jobs that wait for a person to confirm them.
    pub fn check_confirmation(&self, confirmation_required: bool) -> Result<()> {
        match self {
            JobOperation::S3DeleteObject(_) if !confirmation_required => {
                Err(Error::InvalidRequest(
                    "Operation S3DeleteObject deletes objects: it is accepted only with \"ConfirmationRequired\": true, so that the job waits for confirmation (batchops update-job-status --requested-job-status Ready) before it deletes anything".into(),
                ))
            }
            _ => Ok(()),
        }
    }
}

impl TryFrom<Map<String, Value>> for JobOperation {
    type Error = String;

    fn try_from(map: Map<String, Value>) -> std::result::Result<Self, String> {
        let mut entries = map.into_iter();
        let (name, body) = match (entries.next(), entries.next()) {
            (Some(entry), None) => entry,
            (None, _) => return Err("Operation must name exactly one operation, found none".into()),
            (Some((a, _)), Some((b, _))) => {
                return Err(format!(
                    "Operation must name exactly one operation, found {a} and {b}"
                ))
            }
        };
        use serde_json::from_value;
        let parsed = match name.as_str() {
            "LambdaInvoke" => from_value(body).map(JobOperation::LambdaInvoke),
            "S3PutObjectCopy" => from_value(body).map(JobOperation::S3PutObjectCopy),
            "S3PutObjectAcl" => from_value(body).map(JobOperation::S3PutObjectAcl),
            "S3PutObjectTagging" => from_value(body).map(JobOperation::S3PutObjectTagging),
            "S3DeleteObjectTagging" => from_value(body).map(JobOperation::S3DeleteObjectTagging),
            "S3InitiateRestoreObject" => {
                from_value(body).map(JobOperation::S3InitiateRestoreObject)
            }
            "S3PutObjectLegalHold" => from_value(body).map(JobOperation::S3PutObjectLegalHold),
            "S3PutObjectRetention" => from_value(body).map(JobOperation::S3PutObjectRetention),
            "S3ComputeObjectChecksum" => {
                from_value(body).map(JobOperation::S3ComputeObjectChecksum)
            }
            "S3UpdateObjectEncryption" => {
                from_value(body).map(JobOperation::S3UpdateObjectEncryption)
            }
            "S3DeleteObject" => from_value(body).map(JobOperation::S3DeleteObject),
            "S3ReplicateObject" => return Err(REPLICATE_OBJECT_REFUSAL.into()),
            other if KNOWN_OPERATIONS.contains(&other) => {
                return Err(format!(
                    "operation {other} is not supported by batchops yet; supported operations: {}",
                    SUPPORTED_OPERATIONS.join(", ")
                ))
            }
            other => {
                return Err(format!(
                    "unknown operation {other}; supported operations: {}",
                    SUPPORTED_OPERATIONS.join(", ")
                ))
            }
        };
        parsed.map_err(|e| format!("Operation.{name}: {e}"))
    }
}

impl From<JobOperation> for Map<String, Value> {
    fn from(op: JobOperation) -> Self {
        let name = op.name().to_string();
        let body = match op {
            JobOperation::LambdaInvoke(o) => serde_json::to_value(o),
            JobOperation::S3PutObjectCopy(o) => serde_json::to_value(o),
            JobOperation::S3PutObjectAcl(o) => serde_json::to_value(o),
            JobOperation::S3PutObjectTagging(o) => serde_json::to_value(o),
            JobOperation::S3DeleteObjectTagging(o) => serde_json::to_value(o),
            JobOperation::S3InitiateRestoreObject(o) => serde_json::to_value(o),
            JobOperation::S3PutObjectLegalHold(o) => serde_json::to_value(o),
            JobOperation::S3PutObjectRetention(o) => serde_json::to_value(o),
            JobOperation::S3ComputeObjectChecksum(o) => serde_json::to_value(o),
            JobOperation::S3UpdateObjectEncryption(o) => serde_json::to_value(o),
            JobOperation::S3DeleteObject(o) => serde_json::to_value(o),
        }
        .unwrap_or(Value::Object(Map::new()));
        let mut map = Map::new();
        map.insert(name, body);
        map
    }
}
