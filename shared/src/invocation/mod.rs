//! The Lambda invocation contract of S3 Batch Operations (`invocationSchemaVersion` 1.0 and 2.0).
//!
//! The request is what S3 Batch Operations sends to the function, the response is what the function
//! must answer. Both mirror AWS's JSON field for field:
//!
//! - Request 1.0: `{"invocationSchemaVersion":"1.0","invocationId":..,"job":{"id":..},"tasks":[{"taskId":..,
//!   "s3Key":..,"s3VersionId":null|"..","s3BucketArn":"arn:aws:s3:::bucket"}]}`.
//! - Request 2.0: as 1.0, but `job.userArguments` carries the job's `UserArguments` and every task names
//!   its bucket with `s3Bucket` (a bucket name) instead of `s3BucketArn`.
//! - Response: `{"invocationSchemaVersion":..,"treatMissingKeysAs":..(optional),"invocationId":..,
//!   "results":[{"taskId":..,"resultCode":"Succeeded"|"TemporaryFailure"|"PermanentFailure",
//!   "resultString":..}]}`.
//!
//! As in S3, `s3Key` is URL-encoded (functions are expected to decode it, e.g. with Python's
//! `unquote_plus`); [`encode_s3_key`] and [`decode_s3_key`] are the two directions.
//!
//! [`interpret_response`] checks a raw response against the tasks that were sent; the `*_outcome`
//! functions turn what it found into rows of the completion report, the way S3 Batch Operations
//! writes them.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use crate::error::{Error, Result};
use crate::manifest::Task;
use crate::report::{TaskOutcome, TaskStatus};

/// The start of every reason given for a response that breaks the contract.
pub const CONTRACT_VIOLATION: &str =
    "Lambda response does not follow the S3 Batch Operations invocation contract";

/// The error code S3 Batch Operations writes for a permanently failed Lambda task.
pub const PERMANENT_FAILURE_CODE: &str = "PermanentFailure";
/// The error code of a task that still answered TemporaryFailure when its attempts ran out.
pub const TEMPORARY_FAILURE_CODE: &str = "TemporaryFailure";

/// The longest ResultMessage that batchops composes around a payload it did not choose (Lambda's
/// error document of a function error, which can carry a whole stack trace, or the reason a
/// response breaks the contract), in characters, the cut marked with `...`.
///
/// The function's own `resultString` is never cut: AWS documents that it goes to the completion
/// report as returned — "Amazon S3 saves the resultString values in the completion report"
/// (AWS Lambda Developer Guide, "Invoke a Lambda function with Amazon S3 batch events",
/// <https://docs.aws.amazon.com/lambda/latest/dg/services-s3-batch.html>), "the task's result
/// string is included in the report" (Amazon S3 User Guide, "Invoke AWS Lambda function",
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-invoke-lambda.html>) — and
/// neither page nor the completion-report examples give a length limit; Lambda's own 6 MB cap on
/// a response bounds it. The 1,024 here is batchops' choice, not AWS's.
pub const MAX_MESSAGE_CHARS: usize = 1024;
/// What marks a message cut at [`MAX_MESSAGE_CHARS`].
pub const CUT_MARKER: &str = "...";

/// `invocationSchemaVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SchemaVersion {
    /// `1.0`: each task names its bucket by ARN (`s3BucketArn`); no user arguments.
    #[serde(rename = "1.0")]
    V1,
    /// `2.0`: each task names its bucket by name (`s3Bucket`); the job carries `userArguments`.
    #[serde(rename = "2.0")]
    V2,
}

impl SchemaVersion {
    /// The version as the JSON spells it: `1.0` or `2.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaVersion::V1 => "1.0",
            SchemaVersion::V2 => "2.0",
        }
    }

    /// Takes the job's `InvocationSchemaVersion` (see `LambdaInvokeOperation::schema_version`).
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "1.0" => Ok(SchemaVersion::V1),
            "2.0" => Ok(SchemaVersion::V2),
            other => Err(Error::InvalidRequest(format!(
                "InvocationSchemaVersion must be 1.0 or 2.0, got {other}"
            ))),
        }
    }
}

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The event S3 Batch Operations sends to the function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationRequest {
    /// `invocationSchemaVersion`: the job's schema version.
    pub invocation_schema_version: SchemaVersion,
    /// `invocationId`: the invocation's id, which the response must repeat (batchops makes a
    /// fresh UUID for every attempt).
    pub invocation_id: String,
    /// `job`: the job's id and, in schema 2.0, its user arguments.
    pub job: InvocationJob,
    /// `tasks`: the objects to act on (batchops sends one task per invocation, as S3 does).
    pub tasks: Vec<InvocationTask>,
}

/// The request's `job` member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationJob {
    /// `id`: the job's id.
    pub id: String,
    /// Schema 2.0 only: the job's `UserArguments`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_arguments: Option<BTreeMap<String, String>>,
}

/// One entry of the request's `tasks`: an object to act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationTask {
    /// `taskId`: the task's id, which the function's result for it must repeat.
    pub task_id: String,
    /// URL-encoded, as S3 sends it: use [`InvocationTask::key`] for the object key itself.
    pub s3_key: String,
    /// Always present, `null` for an object without a version, as in S3's examples.
    #[serde(default)]
    pub s3_version_id: Option<String>,
    /// Schema 1.0: `arn:aws:s3:::bucket`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_bucket_arn: Option<String>,
    /// Schema 2.0: the bucket name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_bucket: Option<String>,
}

impl InvocationTask {
    /// Describes `task` the way the given schema version does.
    pub fn new(schema: SchemaVersion, task_id: impl Into<String>, task: &Task) -> Self {
        let (s3_bucket_arn, s3_bucket) = match schema {
            SchemaVersion::V1 => (Some(format!("arn:aws:s3:::{}", task.bucket)), None),
            SchemaVersion::V2 => (None, Some(task.bucket.clone())),
        };
        InvocationTask {
            task_id: task_id.into(),
            s3_key: encode_s3_key(&task.key),
            s3_version_id: task.version_id.clone(),
            s3_bucket_arn,
            s3_bucket,
        }
    }

    /// The bucket name, whichever schema named it.
    pub fn bucket(&self) -> Option<String> {
        match (&self.s3_bucket, &self.s3_bucket_arn) {
            (Some(bucket), _) => Some(bucket.clone()),
            (None, Some(arn)) => Some(crate::job::bucket_from_arn(arn)),
            (None, None) => None,
        }
    }

    /// The decoded object key.
    pub fn key(&self) -> String {
        decode_s3_key(&self.s3_key)
    }
}

impl InvocationRequest {
    /// The request for one invocation. `user_arguments` are sent in schema 2.0 only (S3 Control refuses
    /// them with 1.0 at job creation).
    pub fn new(
        schema: SchemaVersion,
        invocation_id: impl Into<String>,
        job_id: impl Into<String>,
        user_arguments: Option<&BTreeMap<String, String>>,
        tasks: Vec<InvocationTask>,
    ) -> Self {
        let user_arguments = match schema {
            SchemaVersion::V1 => None,
            SchemaVersion::V2 => user_arguments.cloned(),
        };
        InvocationRequest {
            invocation_schema_version: schema,
            invocation_id: invocation_id.into(),
            job: InvocationJob {
                id: job_id.into(),
                user_arguments,
            },
            tasks,
        }
    }
}

/// `resultCode` (and `treatMissingKeysAs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ResultCode {
    /// `Succeeded`: the task is done; its `resultString` goes to the completion report.
    Succeeded,
    /// `TemporaryFailure`: failed for now; batchops invokes again until its attempts run out.
    TemporaryFailure,
    /// `PermanentFailure`: failed for good; the task is reported failed.
    PermanentFailure,
}

impl ResultCode {
    /// The code as the JSON spells it, e.g. `TemporaryFailure`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultCode::Succeeded => "Succeeded",
            ResultCode::TemporaryFailure => "TemporaryFailure",
            ResultCode::PermanentFailure => "PermanentFailure",
        }
    }
}

impl fmt::Display for ResultCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the function answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationResponse {
    /// `invocationSchemaVersion`: the schema version the function answers with.
    pub invocation_schema_version: SchemaVersion,
    /// What to make of a task that `results` leaves out; `PermanentFailure` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub treat_missing_keys_as: Option<ResultCode>,
    /// `invocationId`: must repeat the request's, or the response breaks the contract.
    pub invocation_id: String,
    /// `results`: at most one result per task sent.
    pub results: Vec<TaskResult>,
}

/// One entry of the response's `results`: the function's result for one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    /// `taskId`: the id of a task the request sent.
    pub task_id: String,
    /// `resultCode`: how the task went.
    pub result_code: ResultCode,
    /// `resultString`: free text that goes to the completion report as returned; optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_string: Option<String>,
}

impl TaskResult {
    /// A result for task `task_id` with the code and a result string.
    pub fn new(
        task_id: impl Into<String>,
        code: ResultCode,
        result_string: impl Into<String>,
    ) -> Self {
        TaskResult {
            task_id: task_id.into(),
            result_code: code,
            result_string: Some(result_string.into()),
        }
    }
}

/// A response that cannot be trusted for any task of its invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractViolation(pub String);

impl fmt::Display for ContractViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{CONTRACT_VIOLATION}: {}", self.0)
    }
}

impl std::error::Error for ContractViolation {}

/// Reads the function's raw response for the request `sent` and returns one result per sent task, in
/// the order of `sent.tasks`. A task that `results` leaves out gets `treatMissingKeysAs` (default
/// `PermanentFailure`). Anything that breaks the contract (not JSON, a missing field, an unknown
/// result code, another invocation's id, a task that was not sent or is answered twice) fails every
/// task of the invocation.
pub fn interpret_response(
    payload: &[u8],
    sent: &InvocationRequest,
) -> std::result::Result<Vec<TaskResult>, ContractViolation> {
    // The S3 user guide's wording for a payload that is not JSON at all.
    let value: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|e| ContractViolation(format!("Invalid JSON returned in Lambda payload ({e})")))?;
    let response: InvocationResponse = serde_json::from_value(value).map_err(|e| {
        ContractViolation(format!(
            "cannot read the response as an invocation response: {e}"
        ))
    })?;
    if response.invocation_id != sent.invocation_id {
        return Err(ContractViolation(format!(
            "invocationId {:?} does not match the invocation's {:?}",
            response.invocation_id, sent.invocation_id
        )));
    }
    let sent_ids: HashSet<&str> = sent.tasks.iter().map(|t| t.task_id.as_str()).collect();
    let mut answered: HashMap<&str, &TaskResult> = HashMap::new();
    for result in &response.results {
        if !sent_ids.contains(result.task_id.as_str()) {
            return Err(ContractViolation(format!(
                "results name taskId {:?}, which was not sent in this invocation",
                result.task_id
            )));
        }
        if answered.insert(result.task_id.as_str(), result).is_some() {
            return Err(ContractViolation(format!(
                "results answer taskId {:?} more than once",
                result.task_id
            )));
        }
    }
    let missing_as = response
        .treat_missing_keys_as
        .unwrap_or(ResultCode::PermanentFailure);
    Ok(sent
        .tasks
        .iter()
        .map(|task| match answered.get(task.task_id.as_str()) {
            Some(result) => (*result).clone(),
            None => missing_result(&task.task_id, missing_as),
        })
        .collect())
}

fn missing_result(task_id: &str, code: ResultCode) -> TaskResult {
    let result_string = match code {
        ResultCode::Succeeded => None,
        _ => Some(format!(
            "the Lambda response has no result for this task; treatMissingKeysAs is {code}"
        )),
    };
    TaskResult {
        task_id: task_id.to_string(),
        result_code: code,
        result_string,
    }
}

/// The function ran and answered with a final result, or asked to be retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// A final row for the report: succeeded, failed for good, or failed by a contract violation.
    Final(TaskOutcome),
    /// `TemporaryFailure`, with its result string: the caller retries, then uses
    /// [`temporary_failure_outcome`] when attempts run out.
    Retry(String),
}

/// Judges a single-task invocation (as batchops and S3 send them): the raw payload of a response
/// that Lambda did not flag as a function error.
pub fn judge(task: &Task, sent: &InvocationRequest, payload: &[u8]) -> Judgement {
    let results = match interpret_response(payload, sent) {
        Ok(results) => results,
        Err(violation) => return Judgement::Final(contract_violation_outcome(task, &violation)),
    };
    match results.into_iter().next() {
        Some(result) => match result.result_code {
            ResultCode::Succeeded => Judgement::Final(succeeded_outcome(
                task,
                result.result_string.unwrap_or_default(),
            )),
            ResultCode::PermanentFailure => Judgement::Final(permanent_failure_outcome(
                task,
                result.result_string.unwrap_or_default(),
            )),
            ResultCode::TemporaryFailure => {
                Judgement::Retry(result.result_string.unwrap_or_default())
            }
        },
        None => Judgement::Final(contract_violation_outcome(
            task,
            &ContractViolation("the invocation carried no task".into()),
        )),
    }
}

/// `Succeeded`: the result string goes to the report.
pub fn succeeded_outcome(task: &Task, result_string: String) -> TaskOutcome {
    TaskOutcome {
        task: task.clone(),
        status: TaskStatus::Succeeded,
        error_code: None,
        http_status: Some(200),
        result_message: result_string,
    }
}

/// `PermanentFailure`: the result string goes to the report as the failure's message.
pub fn permanent_failure_outcome(task: &Task, result_string: String) -> TaskOutcome {
    failed(task, PERMANENT_FAILURE_CODE, result_string)
}

/// A task still answered `TemporaryFailure` on its last attempt.
pub fn temporary_failure_outcome(
    task: &Task,
    attempts: u32,
    last_result_string: &str,
) -> TaskOutcome {
    let plural = if attempts == 1 { "" } else { "s" };
    let message = if last_result_string.is_empty() {
        format!("still TemporaryFailure after {attempts} attempt{plural}")
    } else {
        format!("still TemporaryFailure after {attempts} attempt{plural}; last result: {last_result_string}")
    };
    failed(task, TEMPORARY_FAILURE_CODE, message)
}

/// Lambda reported a function error (`FunctionError` set on Invoke's answer, e.g. an unhandled
/// exception or a timeout); the payload is Lambda's error document.
pub fn function_error_outcome(task: &Task, payload: &[u8]) -> TaskOutcome {
    failed(
        task,
        PERMANENT_FAILURE_CODE,
        bounded(format!(
            "Lambda returned function error: {}",
            String::from_utf8_lossy(payload).trim()
        )),
    )
}

/// The response broke the contract: the task fails with the reason.
pub fn contract_violation_outcome(task: &Task, violation: &ContractViolation) -> TaskOutcome {
    failed(task, PERMANENT_FAILURE_CODE, bounded(violation.to_string()))
}

fn failed(task: &Task, code: &str, message: String) -> TaskOutcome {
    TaskOutcome {
        task: task.clone(),
        status: TaskStatus::Failed,
        error_code: Some(code.to_string()),
        http_status: Some(200),
        result_message: message,
    }
}

/// `message` if it has at most [`MAX_MESSAGE_CHARS`] characters; otherwise its start and
/// [`CUT_MARKER`], [`MAX_MESSAGE_CHARS`] characters in all, cut between characters (never inside
/// a multi-byte one).
pub fn bounded(message: String) -> String {
    if message.chars().nth(MAX_MESSAGE_CHARS).is_none() {
        return message;
    }
    let keep = MAX_MESSAGE_CHARS - CUT_MARKER.chars().count();
    let cut = message
        .char_indices()
        .nth(keep)
        .map_or(message.len(), |(i, _)| i);
    format!("{}{CUT_MARKER}", &message[..cut])
}

/// URL-encodes an object key for `s3Key` (`crate::manifest::encode_key`).
pub fn encode_s3_key(key: &str) -> String {
    crate::manifest::encode_key(key)
}

/// Decodes `s3Key` the way S3's examples do (`unquote_plus`: `+` is a space; lenient).
pub fn decode_s3_key(s3_key: &str) -> String {
    crate::manifest::decode_key_lossy(s3_key)
}

#[cfg(test)]
mod tests;
