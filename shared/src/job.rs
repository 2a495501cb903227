//! The job: the CreateJob request in S3 Control's JSON, the job's status machine, its progress and
//! the failure-threshold rule.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

use crate::error::{Error, Result};

pub const CSV_MANIFEST_FORMAT: &str = "S3BatchOperations_CSV_20180820";
pub const INVENTORY_CSV_FORMAT: &str = "S3InventoryReport_CSV_20161130";
pub const REPORT_FORMAT: &str = "Report_CSV_20180820";

/// A CreateJob request, exactly as `aws s3control create-job --cli-input-json` takes it.
/// Unknown fields are kept out on purpose: a typo in a field name must not pass silently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateJobRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_required: Option<bool>,
    pub operation: JobOperation,
    pub report: JobReport,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_request_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<JobManifest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub priority: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<S3Tag>>,
    /// Accepted so that files written for S3 Control parse; refused by validation until supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_generator: Option<Value>,
}

impl CreateJobRequest {
    /// Parses a request and checks what serde cannot: one supported operation, a manifest, a
    /// report destination when the report is enabled.
    pub fn parse(json: &str) -> Result<Self> {
        let req: CreateJobRequest = serde_json::from_str(json)
            .map_err(|e| Error::InvalidRequest(format!("cannot parse CreateJob JSON: {e}")))?;
        Ok(req)
    }

    pub fn validate(&self) -> Result<()> {
        if self.manifest_generator.is_some() {
            return Err(Error::InvalidRequest(
                "ManifestGenerator is not supported yet: give a Manifest".into(),
            ));
        }
        let manifest = self
            .manifest
            .as_ref()
            .ok_or_else(|| Error::InvalidRequest("Manifest is required".into()))?;
        manifest.validate()?;
        self.operation.validate()?;
        self.report.validate()?;
        if self.priority < 0 {
            return Err(Error::InvalidRequest(format!(
                "Priority must be 0 or greater, got {}",
                self.priority
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct S3Tag {
    pub key: String,
    pub value: String,
}

/// The operation of a job. S3 Control's JSON is an object with exactly one member named after the
/// operation; batchops refuses names it does not run yet with a message that lists the ones it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Map<String, Value>", into = "Map<String, Value>")]
pub enum JobOperation {
    LambdaInvoke(LambdaInvokeOperation),
    S3PutObjectTagging(PutObjectTaggingOperation),
    S3DeleteObjectTagging(DeleteObjectTaggingOperation),
}

/// Every operation name S3 Control knows; the ones batchops does not run yet are refused clearly.
const KNOWN_OPERATIONS: &[&str] = &[
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
];
const SUPPORTED_OPERATIONS: &[&str] = &[
    "LambdaInvoke",
    "S3PutObjectTagging",
    "S3DeleteObjectTagging",
];

impl JobOperation {
    pub fn name(&self) -> &'static str {
        match self {
            JobOperation::LambdaInvoke(_) => "LambdaInvoke",
            JobOperation::S3PutObjectTagging(_) => "S3PutObjectTagging",
            JobOperation::S3DeleteObjectTagging(_) => "S3DeleteObjectTagging",
        }
    }

    pub fn validate(&self) -> Result<()> {
        match self {
            JobOperation::LambdaInvoke(op) => op.validate(),
            JobOperation::S3PutObjectTagging(op) => op.validate(),
            JobOperation::S3DeleteObjectTagging(_) => Ok(()),
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
        let parsed = match name.as_str() {
            "LambdaInvoke" => serde_json::from_value(body).map(JobOperation::LambdaInvoke),
            "S3PutObjectTagging" => {
                serde_json::from_value(body).map(JobOperation::S3PutObjectTagging)
            }
            "S3DeleteObjectTagging" => {
                serde_json::from_value(body).map(JobOperation::S3DeleteObjectTagging)
            }
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
            JobOperation::S3PutObjectTagging(o) => serde_json::to_value(o),
            JobOperation::S3DeleteObjectTagging(o) => serde_json::to_value(o),
        }
        .unwrap_or(Value::Object(Map::new()));
        let mut map = Map::new();
        map.insert(name, body);
        map
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct LambdaInvokeOperation {
    pub function_arn: String,
    /// "1.0" (the default, as in S3) or "2.0".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_schema_version: Option<String>,
    /// Passed to the function in schema 2.0 as `job.userArguments`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_arguments: Option<BTreeMap<String, String>>,
}

impl LambdaInvokeOperation {
    pub fn schema_version(&self) -> &str {
        self.invocation_schema_version.as_deref().unwrap_or("1.0")
    }

    fn validate(&self) -> Result<()> {
        if self.function_arn.trim().is_empty() {
            return Err(Error::InvalidRequest(
                "Operation.LambdaInvoke.FunctionArn is required".into(),
            ));
        }
        match self.schema_version() {
            "1.0" => {
                if self.user_arguments.is_some() {
                    return Err(Error::InvalidRequest(
                        "Operation.LambdaInvoke.UserArguments needs InvocationSchemaVersion 2.0"
                            .into(),
                    ));
                }
                Ok(())
            }
            "2.0" => Ok(()),
            other => Err(Error::InvalidRequest(format!(
                "Operation.LambdaInvoke.InvocationSchemaVersion must be 1.0 or 2.0, got {other}"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PutObjectTaggingOperation {
    #[serde(default)]
    pub tag_set: Vec<S3Tag>,
}

impl PutObjectTaggingOperation {
    fn validate(&self) -> Result<()> {
        // S3's own object tag limits, checked once at creation instead of failing every task.
        if self.tag_set.len() > 10 {
            return Err(Error::InvalidRequest(format!(
                "Operation.S3PutObjectTagging.TagSet has {} tags; S3 allows at most 10",
                self.tag_set.len()
            )));
        }
        for tag in &self.tag_set {
            if tag.key.is_empty() || tag.key.chars().count() > 128 {
                return Err(Error::InvalidRequest(format!(
                    "tag key {:?} must be 1 to 128 characters",
                    tag.key
                )));
            }
            if tag.value.chars().count() > 256 {
                return Err(Error::InvalidRequest(format!(
                    "tag value of key {:?} is longer than 256 characters",
                    tag.key
                )));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteObjectTaggingOperation {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct JobManifest {
    pub spec: ManifestSpec,
    pub location: ManifestLocation,
}

impl JobManifest {
    pub fn validate(&self) -> Result<()> {
        self.spec.validate()?;
        parse_object_arn(&self.location.object_arn)?;
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ManifestSpec {
    pub format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
}

impl ManifestSpec {
    pub fn validate(&self) -> Result<()> {
        match self.format.as_str() {
            CSV_MANIFEST_FORMAT => {
                let fields = self.fields.as_deref().unwrap_or_default();
                let count = |name: &str| fields.iter().filter(|f| f.as_str() == name).count();
                if let Some(bad) = fields
                    .iter()
                    .find(|f| !matches!(f.as_str(), "Ignore" | "Bucket" | "Key" | "VersionId"))
                {
                    return Err(Error::InvalidRequest(format!(
                        "Manifest.Spec.Fields: {bad} is not one of Ignore, Bucket, Key, VersionId"
                    )));
                }
                if count("Bucket") != 1 || count("Key") != 1 || count("VersionId") > 1 {
                    return Err(Error::InvalidRequest(
                        "Manifest.Spec.Fields must name Bucket and Key once each (and VersionId at most once), e.g. [\"Bucket\", \"Key\"]".into(),
                    ));
                }
                Ok(())
            }
            INVENTORY_CSV_FORMAT => Ok(()),
            other => Err(Error::InvalidRequest(format!(
                "Manifest.Spec.Format {other} is not supported; use {CSV_MANIFEST_FORMAT} or {INVENTORY_CSV_FORMAT}"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ManifestLocation {
    pub object_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_version_id: Option<String>,
    #[serde(rename = "ETag", default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// Splits `arn:aws:s3:::bucket/key` into bucket and key.
pub fn parse_object_arn(arn: &str) -> Result<(String, String)> {
    let rest = arn
        .strip_prefix("arn:aws:s3:::")
        .or_else(|| arn.split_once(":s3:::").map(|(_, r)| r))
        .ok_or_else(|| {
            Error::InvalidRequest(format!(
                "{arn:?} is not an S3 object ARN (arn:aws:s3:::bucket/key)"
            ))
        })?;
    match rest.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
            Ok((bucket.to_string(), key.to_string()))
        }
        _ => Err(Error::InvalidRequest(format!(
            "{arn:?} is not an S3 object ARN (arn:aws:s3:::bucket/key)"
        ))),
    }
}

/// Takes a bucket ARN (`arn:aws:s3:::bucket`) or a plain bucket name.
pub fn bucket_from_arn(arn: &str) -> String {
    arn.rsplit(":::").next().unwrap_or(arn).to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct JobReport {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_scope: Option<ReportScope>,
    /// Accepted for compatibility; batchops always writes to the account that runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_bucket_owner: Option<String>,
}

impl JobReport {
    fn validate(&self) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        if self.bucket.as_deref().unwrap_or("").is_empty() {
            return Err(Error::InvalidRequest(
                "Report.Bucket is required when Report.Enabled is true".into(),
            ));
        }
        match self.format.as_deref() {
            None | Some(REPORT_FORMAT) => {}
            Some(other) => {
                return Err(Error::InvalidRequest(format!(
                    "Report.Format {other} is not supported; use {REPORT_FORMAT}"
                )))
            }
        }
        Ok(())
    }

    pub fn scope(&self) -> ReportScope {
        self.report_scope.unwrap_or(ReportScope::AllTasks)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportScope {
    AllTasks,
    FailedTasksOnly,
}

/// Job statuses, spelled as S3 Control spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobStatus {
    New,
    Preparing,
    Suspended,
    Ready,
    Active,
    Pausing,
    Paused,
    Complete,
    Cancelling,
    Cancelled,
    Failing,
    Failed,
}

pub const ALL_STATUSES: &[JobStatus] = &[
    JobStatus::New,
    JobStatus::Preparing,
    JobStatus::Suspended,
    JobStatus::Ready,
    JobStatus::Active,
    JobStatus::Pausing,
    JobStatus::Paused,
    JobStatus::Complete,
    JobStatus::Cancelling,
    JobStatus::Cancelled,
    JobStatus::Failing,
    JobStatus::Failed,
];

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::New => "New",
            JobStatus::Preparing => "Preparing",
            JobStatus::Suspended => "Suspended",
            JobStatus::Ready => "Ready",
            JobStatus::Active => "Active",
            JobStatus::Pausing => "Pausing",
            JobStatus::Paused => "Paused",
            JobStatus::Complete => "Complete",
            JobStatus::Cancelling => "Cancelling",
            JobStatus::Cancelled => "Cancelled",
            JobStatus::Failing => "Failing",
            JobStatus::Failed => "Failed",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        ALL_STATUSES
            .iter()
            .copied()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Error::InvalidRequest(format!("unknown job status {s:?}")))
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Complete | JobStatus::Cancelled | JobStatus::Failed
        )
    }

    /// Batches of a job in these states are not run: their tasks are counted as not run.
    pub fn stops_execution(self) -> bool {
        matches!(
            self,
            JobStatus::Cancelling | JobStatus::Cancelled | JobStatus::Failing | JobStatus::Failed
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one place that says which status changes are allowed.
pub fn can_transition(from: JobStatus, to: JobStatus) -> bool {
    use JobStatus::*;
    matches!(
        (from, to),
        (New, Preparing)
            | (New, Failed)
            | (New, Cancelled)
            | (Preparing, Suspended)
            | (Preparing, Ready)
            | (Preparing, Active)
            | (Preparing, Failed)
            | (Preparing, Cancelling)
            | (Preparing, Cancelled)
            | (Suspended, Ready)
            | (Suspended, Cancelled)
            | (Ready, Active)
            | (Ready, Cancelling)
            | (Ready, Cancelled)
            | (Ready, Failed)
            | (Active, Complete)
            | (Active, Cancelling)
            | (Active, Failing)
            | (Active, Failed)
            | (Active, Pausing)
            | (Pausing, Paused)
            | (Paused, Active)
            | (Pausing, Cancelling)
            | (Paused, Cancelling)
            | (Cancelling, Cancelled)
            | (Failing, Failed)
    )
}

pub fn check_transition(job_id: &str, from: JobStatus, to: JobStatus) -> Result<()> {
    if can_transition(from, to) {
        Ok(())
    } else {
        Err(Error::InvalidTransition {
            job_id: job_id.to_string(),
            from: from.to_string(),
            to: to.to_string(),
        })
    }
}

/// S3 Batch Operations' failure threshold: after the first 1,000 tasks, a job whose failure rate
/// exceeds 50% is stopped.
pub const FAILURE_THRESHOLD_MIN_TASKS: u64 = 1000;

pub fn failure_threshold_exceeded(succeeded: u64, failed: u64) -> bool {
    let done = succeeded + failed;
    done >= FAILURE_THRESHOLD_MIN_TASKS && failed * 2 > done
}

pub const THRESHOLD_FAILURE_CODE: &str = "TaskFailureThresholdExceeded";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FailureReason {
    pub failure_code: String,
    pub failure_reason: String,
}

/// Progress counters, kept in the job record and updated only by batch commits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Known once the manifest has been read through.
    pub total_tasks: Option<u64>,
    pub succeeded: u64,
    pub failed: u64,
    /// Tasks of batches that were not run (job cancelled or failing).
    pub not_run: u64,
    /// Known once planning is complete.
    pub batches_planned: Option<u64>,
    pub batches_committed: u64,
}

impl Progress {
    /// True when planning is finished and every planned batch has committed.
    pub fn all_batches_committed(&self) -> bool {
        self.batches_planned
            .is_some_and(|planned| self.batches_committed >= planned)
    }
}

/// A job as stored: the request that made it plus everything that happened since.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub job_id: String,
    pub request: CreateJobRequest,
    pub status: JobStatus,
    pub priority: i32,
    pub creation_time: DateTime<Utc>,
    pub termination_date: Option<DateTime<Utc>>,
    pub suspended_date: Option<DateTime<Utc>>,
    pub active_since: Option<DateTime<Utc>>,
    pub elapsed_active_seconds: i64,
    pub status_update_reason: Option<String>,
    pub failure_reasons: Vec<FailureReason>,
    pub progress: Progress,
    pub finalize_sent: bool,
}

impl Job {
    pub fn manifest(&self) -> Result<&JobManifest> {
        self.request
            .manifest
            .as_ref()
            .ok_or_else(|| Error::InvalidRequest(format!("job {} has no manifest", self.job_id)))
    }

    pub fn confirmation_required(&self) -> bool {
        self.request.confirmation_required.unwrap_or(false)
    }

    pub fn job_arn(&self) -> String {
        format!(
            "arn:aws:s3:{}:{}:job/{}",
            std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
            self.request.account_id.as_deref().unwrap_or("000000000000"),
            self.job_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAGGING_JOB: &str = r#"{
        "AccountId": "123456789012",
        "ConfirmationRequired": false,
        "Operation": {"S3PutObjectTagging": {"TagSet": [{"Key": "project", "Value": "x"}]}},
        "Report": {"Bucket": "arn:aws:s3:::reports", "Format": "Report_CSV_20180820",
                   "Enabled": true, "Prefix": "batch", "ReportScope": "AllTasks"},
        "ClientRequestToken": "token-1",
        "Manifest": {"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
                     "Location": {"ObjectArn": "arn:aws:s3:::manifests/m.csv", "ETag": "abc"}},
        "Description": "tag things",
        "Priority": 10,
        "RoleArn": "arn:aws:iam::123456789012:role/batch"
    }"#;

    #[test]
    fn parses_an_s3_control_create_job_file_unchanged() {
        let req = CreateJobRequest::parse(TAGGING_JOB).unwrap();
        req.validate().unwrap();
        assert_eq!(req.priority, 10);
        assert_eq!(req.operation.name(), "S3PutObjectTagging");
        let manifest = req.manifest.as_ref().unwrap();
        assert_eq!(manifest.location.etag.as_deref(), Some("abc"));
        assert_eq!(req.report.scope(), ReportScope::AllTasks);
        // Round trip keeps S3 Control's field names.
        let back = serde_json::to_value(&req).unwrap();
        assert_eq!(
            back["Operation"]["S3PutObjectTagging"]["TagSet"][0]["Key"],
            "project"
        );
        assert_eq!(back["Manifest"]["Location"]["ETag"], "abc");
    }

    #[test]
    fn refuses_unsupported_and_unknown_operations_clearly() {
        let copy = TAGGING_JOB.replace(
            r#""S3PutObjectTagging": {"TagSet": [{"Key": "project", "Value": "x"}]}"#,
            r#""S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::b"}"#,
        );
        let err = CreateJobRequest::parse(&copy).unwrap_err().to_string();
        assert!(
            err.contains("S3PutObjectCopy is not supported by batchops yet"),
            "{err}"
        );
        let bogus = TAGGING_JOB.replace("S3PutObjectTagging", "S3Frobnicate");
        let err = CreateJobRequest::parse(&bogus).unwrap_err().to_string();
        assert!(err.contains("unknown operation S3Frobnicate"), "{err}");
    }

    #[test]
    fn refuses_two_operations_and_bad_lambda_schema() {
        let two = TAGGING_JOB.replace(
            r#""S3PutObjectTagging": {"TagSet": [{"Key": "project", "Value": "x"}]}"#,
            r#""S3PutObjectTagging": {"TagSet": []}, "S3DeleteObjectTagging": {}"#,
        );
        let err = CreateJobRequest::parse(&two).unwrap_err().to_string();
        assert!(err.contains("exactly one operation"), "{err}");
        let lambda = TAGGING_JOB.replace(
            r#""S3PutObjectTagging": {"TagSet": [{"Key": "project", "Value": "x"}]}"#,
            r#""LambdaInvoke": {"FunctionArn": "arn:aws:lambda:us-east-1:1:function:f", "InvocationSchemaVersion": "3.0"}"#,
        );
        let err = CreateJobRequest::parse(&lambda)
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("must be 1.0 or 2.0"), "{err}");
    }

    #[test]
    fn refuses_misnamed_fields() {
        let typo = TAGGING_JOB.replace("\"Priority\"", "\"Priorty\"");
        assert!(CreateJobRequest::parse(&typo).is_err());
    }

    #[test]
    fn manifest_fields_must_name_bucket_and_key() {
        let bad = TAGGING_JOB.replace(r#"["Bucket", "Key"]"#, r#"["Key"]"#);
        let err = CreateJobRequest::parse(&bad)
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(
            err.to_string().contains("must name Bucket and Key"),
            "{err}"
        );
    }

    #[test]
    fn object_arns() {
        assert_eq!(
            parse_object_arn("arn:aws:s3:::b/dir/m.csv").unwrap(),
            ("b".to_string(), "dir/m.csv".to_string())
        );
        assert!(parse_object_arn("s3://b/k").is_err());
        assert!(parse_object_arn("arn:aws:s3:::b").is_err());
        assert_eq!(bucket_from_arn("arn:aws:s3:::reports"), "reports");
        assert_eq!(bucket_from_arn("reports"), "reports");
    }

    #[test]
    fn status_machine() {
        use JobStatus::*;
        assert!(can_transition(New, Preparing));
        assert!(can_transition(Preparing, Suspended));
        assert!(can_transition(Suspended, Ready));
        assert!(can_transition(Ready, Active));
        assert!(can_transition(Active, Complete));
        assert!(can_transition(Active, Failing));
        assert!(can_transition(Failing, Failed));
        assert!(can_transition(Active, Cancelling));
        assert!(can_transition(Cancelling, Cancelled));
        assert!(!can_transition(Complete, Active));
        assert!(!can_transition(Failed, Cancelled));
        assert!(!can_transition(Suspended, Active));
        assert!(!can_transition(Cancelled, Ready));
        for s in ALL_STATUSES {
            if s.is_terminal() {
                assert!(ALL_STATUSES.iter().all(|t| !can_transition(*s, *t)));
            }
            assert_eq!(JobStatus::parse(s.as_str()).unwrap(), *s);
        }
        assert!(check_transition("j", Complete, Ready).is_err());
    }

    #[test]
    fn failure_threshold() {
        assert!(!failure_threshold_exceeded(0, 999));
        assert!(failure_threshold_exceeded(0, 1000));
        assert!(!failure_threshold_exceeded(500, 500));
        assert!(failure_threshold_exceeded(499, 501));
        assert!(!failure_threshold_exceeded(10_000, 1_000));
    }
}
