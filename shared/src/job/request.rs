//! The CreateJob request as S3 Control's JSON has it (plus batchops' `BatchOps` member): the
//! manifest, the report, the role, tags and description, and the checks S3 Control makes.

use super::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{json_kind, Error, Result};

/// The only report `Format` accepted: S3 Batch Operations' completion report CSV.
pub const REPORT_FORMAT: &str = "Report_CSV_20180820";

/// A CreateJob request, exactly as `aws s3control create-job --cli-input-json` takes it.
/// Unknown fields are kept out on purpose: a typo in a field name must not pass silently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateJobRequest {
    /// `AccountId`: the account the job belongs to; used in the job's ARN (all zeros when
    /// absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// `ConfirmationRequired`: when true, the job waits in Suspended after preparing until it
    /// is confirmed (status Ready); required for `S3DeleteObject`. `None` means false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_required: Option<bool>,
    /// `Operation`: what each task does; exactly one supported operation.
    pub operation: JobOperation,
    /// `Report`: whether and where the completion report is written.
    pub report: JobReport,
    /// `ClientRequestToken`: makes CreateJob idempotent; a repeat with the same token and
    /// request returns the existing job, with a different request it fails. `None`: no check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_request_token: Option<String>,
    /// `Manifest`: the list of objects to act on; give this or `ManifestGenerator`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<JobManifest>,
    /// `Description`: free text for people, at most 256 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `Priority`: 0 or greater (default 0); between Active jobs, higher runs first.
    #[serde(default)]
    pub priority: i32,
    /// `RoleArn`: the IAM role the tasks run as (`arn:aws:iam::ACCOUNT:role/NAME`); required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// `Tags`: the job's own tags (not the objects'), at most 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<S3Tag>>,
    /// Builds the task list from a bucket listing instead of a manifest (`manifest_generator`; run by `crate::generator`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_generator: Option<Value>,
    /// batchops' own settings of the job, beside S3 Control's fields (which stay unchanged).
    #[serde(rename = "BatchOps", default, skip_serializing_if = "Option::is_none")]
    pub batch_ops: Option<BatchOpsOptions>,
}

/// The `"BatchOps"` member of a job: what batchops does beyond S3 Batch Operations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct BatchOpsOptions {
    /// At most this many tasks start per second, across every executor (`crate::rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tasks_per_second: Option<u32>,
    /// Runs the first this many tasks, writes their report (under `canary/`) and waits in
    /// Suspended for confirmation before the rest (`create-job --canary N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_tasks: Option<u64>,
}

/// The most tasks a canary may run: a canary is a sample of the job, not most of it.
pub const MAX_CANARY_TASKS: u64 = 1_000_000;

/// The highest rate limit a job may set: above it, the limiter's own writes would cost more
/// than the limit saves.
pub const MAX_TASKS_PER_SECOND: u32 = 100_000;

/// Checks a job's rate limit (`field`: where it was given).
pub fn validate_rate(field: &str, rate: u32) -> Result<()> {
    if !(1..=MAX_TASKS_PER_SECOND).contains(&rate) {
        return Err(Error::InvalidRequest(format!(
            "{field} must be between 1 and {MAX_TASKS_PER_SECOND} tasks per second, got {rate}"
        )));
    }
    Ok(())
}

impl CreateJobRequest {
    /// Parses a request and checks what serde cannot: one supported operation, a manifest, a
    /// report destination when the report is enabled.
    pub fn parse(json: &str) -> Result<Self> {
        // Editors on Windows save JSON with a byte order mark; it is not part of the document.
        let json = json.strip_prefix('\u{feff}').unwrap_or(json);
        let value: Value = serde_json::from_str(json)
            .map_err(|e| Error::InvalidRequest(format!("cannot parse CreateJob JSON: {e}")))?;
        if !value.is_object() {
            return Err(Error::InvalidRequest(format!(
                "the CreateJob JSON must be an object (with Operation, Manifest, Report, ...), got {}",
                json_kind(&value)
            )));
        }
        serde_json::from_value(value)
            .map_err(|e| Error::InvalidRequest(format!("CreateJob JSON: {e}")))
    }

    /// Checks the request as S3 Control does at CreateJob: one of `Manifest` and
    /// `ManifestGenerator`, the operation and its confirmation rule, the report, the role, the
    /// description, tags, priority and `BatchOps` limits. Fails with `Error::InvalidRequest`.
    pub fn validate(&self) -> Result<()> {
        match (&self.manifest, &self.manifest_generator) {
            (Some(manifest), None) => manifest.validate()?,
            (None, Some(generator)) => manifest_generator::validate(generator)?,
            (Some(_), Some(_)) => {
                return Err(Error::InvalidRequest(
                    "give either Manifest or ManifestGenerator, not both".into(),
                ))
            }
            (None, None) => {
                return Err(Error::InvalidRequest(
                    "a Manifest or a ManifestGenerator is required".into(),
                ))
            }
        }
        self.operation.validate()?;
        self.operation
            .check_confirmation(self.confirmation_required.unwrap_or(false))?;
        self.report.validate()?;
        validate_role_arn(self.role_arn.as_deref())?;
        if let Some(description) = &self.description {
            let chars = description.chars().count();
            if chars > MAX_DESCRIPTION_CHARS {
                return Err(Error::InvalidRequest(format!(
                    "Description has {chars} characters; S3 allows at most {MAX_DESCRIPTION_CHARS}"
                )));
            }
        }
        if let Some(tags) = &self.tags {
            validate_job_tags(tags)?;
        }
        if self.priority < 0 {
            return Err(Error::InvalidRequest(format!(
                "Priority must be 0 or greater, got {}",
                self.priority
            )));
        }
        if let Some(rate) = self.batch_ops.as_ref().and_then(|b| b.max_tasks_per_second) {
            validate_rate("BatchOps.MaxTasksPerSecond", rate)?;
        }
        if let Some(tasks) = self.batch_ops.as_ref().and_then(|b| b.canary_tasks) {
            if !(1..=MAX_CANARY_TASKS).contains(&tasks) {
                return Err(Error::InvalidRequest(format!(
                    "BatchOps.CanaryTasks must be between 1 and {MAX_CANARY_TASKS}, got {tasks}"
                )));
            }
        }
        Ok(())
    }
}

/// S3 Control's `S3Tag`: one key-value tag, of an object or of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct S3Tag {
    /// `Key`: 1 to 128 characters, once per tag set.
    pub key: String,
    /// `Value`: up to 256 characters; may be empty.
    pub value: String,
}

/// S3 Control's limit on a job's Description.
pub const MAX_DESCRIPTION_CHARS: usize = 256;

/// S3 Control requires the ARN of the IAM role the job's tasks run as:
/// `arn:<partition>:iam::<12-digit account>:role/<path/name>`.
pub(super) fn validate_role_arn(role_arn: Option<&str>) -> Result<()> {
    let Some(arn) = role_arn else {
        return Err(Error::InvalidRequest(
            "RoleArn is required: the ARN of the IAM role the job's tasks run as (arn:aws:iam::ACCOUNT:role/NAME)".into(),
        ));
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let valid = matches!(
        parts.as_slice(),
        ["arn", partition, "iam", "", account, resource]
            if partition.starts_with("aws")
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource.strip_prefix("role/").is_some_and(|name| {
                    !name.is_empty()
                        && !name.ends_with('/')
                        && name.len() <= 512
                        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b))
                })
    ) && arn.len() <= 2048;
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "RoleArn {arn:?} is not the ARN of an IAM role (arn:aws:iam::ACCOUNT:role/NAME)"
        )))
    }
}

/// S3 Control's limits on a job's own tags: at most 50, keys 1 to 128 characters, values up to
/// 256, no key twice.
pub fn validate_job_tags(tags: &[S3Tag]) -> Result<()> {
    if tags.len() > 50 {
        return Err(Error::InvalidRequest(format!(
            "Tags has {} tags; S3 allows at most 50 per job",
            tags.len()
        )));
    }
    check_tag_entries("Tags", tags)
}

/// S3's object tag limits, checked once at creation instead of failing every task.
pub(super) fn validate_tags(field: &str, tags: &[S3Tag]) -> Result<()> {
    if tags.len() > 10 {
        return Err(Error::InvalidRequest(format!(
            "{field} has {} tags; S3 allows at most 10",
            tags.len()
        )));
    }
    check_tag_entries(field, tags)
}

/// Each key 1 to 128 characters and given once, each value up to 256 characters.
pub(super) fn check_tag_entries(field: &str, tags: &[S3Tag]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for tag in tags {
        if !seen.insert(tag.key.as_str()) {
            return Err(Error::InvalidRequest(format!(
                "{field}: tag key {:?} is given more than once; S3 refuses a tag set with a repeated key",
                tag.key
            )));
        }
        if tag.key.is_empty() || tag.key.chars().count() > 128 {
            return Err(Error::InvalidRequest(format!(
                "{field}: tag key {:?} must be 1 to 128 characters",
                tag.key
            )));
        }
        if tag.value.chars().count() > 256 {
            return Err(Error::InvalidRequest(format!(
                "{field}: tag value of key {:?} is longer than 256 characters",
                tag.key
            )));
        }
    }
    Ok(())
}

/// S3 Control's `JobReport`: the completion report, written under
/// `<Prefix>/job-<JobId>/` in `Bucket` (see `crate::report`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct JobReport {
    /// `Bucket`: ARN of the bucket the report goes to; required when `Enabled` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// `Format`: must be `Report_CSV_20180820` ([`REPORT_FORMAT`]) when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// `Enabled`: whether a completion report is written at all.
    pub enabled: bool,
    /// `Prefix`: key prefix of the report's files; `None` writes them under `job-<JobId>/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// `ReportScope`: which tasks the report lists; `None`: all of them (see `scope`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_scope: Option<ReportScope>,
    /// Sent with every write of the report (and its preflight): S3 refuses it with 403 when the
    /// bucket belongs to another account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_bucket_owner: Option<String>,
}

impl JobReport {
    pub(super) fn validate(&self) -> Result<()> {
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

    /// Which tasks the report lists: `ReportScope`, or `AllTasks` when not given.
    pub fn scope(&self) -> ReportScope {
        self.report_scope.unwrap_or(ReportScope::AllTasks)
    }
}

/// S3 Control's `ReportScope` of a job report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportScope {
    /// `AllTasks`: succeeded and failed tasks, in separate files.
    AllTasks,
    /// `FailedTasksOnly`: only the failed tasks.
    FailedTasksOnly,
}
