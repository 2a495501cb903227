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
    #[serde(rename = "1.0")]
    V1,
    #[serde(rename = "2.0")]
    V2,
}

impl SchemaVersion {
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
    pub invocation_schema_version: SchemaVersion,
    pub invocation_id: String,
    pub job: InvocationJob,
    pub tasks: Vec<InvocationTask>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationJob {
    pub id: String,
    /// Schema 2.0 only: the job's `UserArguments`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_arguments: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvocationTask {
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
    Succeeded,
    TemporaryFailure,
    PermanentFailure,
}

impl ResultCode {
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
    pub invocation_schema_version: SchemaVersion,
    /// What to make of a task that `results` leaves out; `PermanentFailure` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub treat_missing_keys_as: Option<ResultCode>,
    pub invocation_id: String,
    pub results: Vec<TaskResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    pub task_id: String,
    pub result_code: ResultCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_string: Option<String>,
}

impl TaskResult {
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
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn task(key: &str, version: Option<&str>) -> Task {
        Task {
            bucket: "amzn-s3-demo-bucket".into(),
            key: key.into(),
            version_id: version.map(str::to_string),
            size: None,
        }
    }

    fn request(schema: SchemaVersion, task_ids: &[&str]) -> InvocationRequest {
        let tasks = task_ids
            .iter()
            .map(|id| InvocationTask::new(schema, *id, &task("k", None)))
            .collect();
        InvocationRequest::new(schema, "inv-1", "job-1", None, tasks)
    }

    fn violation(payload: &Value, sent: &InvocationRequest) -> String {
        let bytes = serde_json::to_vec(payload).unwrap();
        interpret_response(&bytes, sent).unwrap_err().to_string()
    }

    #[test]
    fn request_1_0_matches_the_documented_example() {
        // AWS Lambda developer guide, "Example Amazon S3 batch request event".
        let documented = json!({
            "invocationSchemaVersion": "1.0",
            "invocationId": "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo",
            "job": {"id": "f3cc4f60-61f6-4a2b-8a21-d07600c373ce"},
            "tasks": [{
                "taskId": "dGFza2lkZ29lc2hlcmUK",
                "s3Key": "customerImage1.jpg",
                "s3VersionId": "1",
                "s3BucketArn": "arn:aws:s3:::amzn-s3-demo-bucket"
            }]
        });
        let mut args = BTreeMap::new();
        args.insert("ignored".to_string(), "in 1.0".to_string());
        let built = InvocationRequest::new(
            SchemaVersion::V1,
            "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo",
            "f3cc4f60-61f6-4a2b-8a21-d07600c373ce",
            Some(&args),
            vec![InvocationTask::new(
                SchemaVersion::V1,
                "dGFza2lkZ29lc2hlcmUK",
                &task("customerImage1.jpg", Some("1")),
            )],
        );
        assert_eq!(serde_json::to_value(&built).unwrap(), documented);
        let parsed: InvocationRequest = serde_json::from_value(documented).unwrap();
        assert_eq!(parsed, built);
        assert_eq!(
            parsed.tasks[0].bucket().as_deref(),
            Some("amzn-s3-demo-bucket")
        );
    }

    #[test]
    fn request_2_0_matches_the_documented_example() {
        // S3 user guide, request example for invocation schema 2.0.
        let documented = json!({
            "invocationSchemaVersion": "2.0",
            "invocationId": "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo",
            "job": {
                "id": "f3cc4f60-61f6-4a2b-8a21-d07600c373ce",
                "userArguments": {"k1": "v1", "k2": "v2"}
            },
            "tasks": [{
                "taskId": "dGFza2lkZ29lc2hlcmUK",
                "s3Key": "customerImage1.jpg",
                "s3VersionId": null,
                "s3Bucket": "amzn-s3-demo-bucket"
            }]
        });
        let args: BTreeMap<String, String> = [("k1", "v1"), ("k2", "v2")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let built = InvocationRequest::new(
            SchemaVersion::V2,
            "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo",
            "f3cc4f60-61f6-4a2b-8a21-d07600c373ce",
            Some(&args),
            vec![InvocationTask::new(
                SchemaVersion::V2,
                "dGFza2lkZ29lc2hlcmUK",
                &task("customerImage1.jpg", None),
            )],
        );
        // Compare the text too: `s3VersionId` must be an explicit null, field order as documented.
        assert_eq!(serde_json::to_value(&built).unwrap(), documented);
        assert_eq!(
            serde_json::to_string(&built).unwrap(),
            concat!(
                r#"{"invocationSchemaVersion":"2.0","invocationId":"YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo","#,
                r#""job":{"id":"f3cc4f60-61f6-4a2b-8a21-d07600c373ce","userArguments":{"k1":"v1","k2":"v2"}},"#,
                r#""tasks":[{"taskId":"dGFza2lkZ29lc2hlcmUK","s3Key":"customerImage1.jpg","s3VersionId":null,"#,
                r#""s3Bucket":"amzn-s3-demo-bucket"}]}"#
            )
        );
        let parsed: InvocationRequest = serde_json::from_value(documented).unwrap();
        assert_eq!(parsed, built);
        assert_eq!(
            parsed.tasks[0].bucket().as_deref(),
            Some("amzn-s3-demo-bucket")
        );
    }

    #[test]
    fn request_2_0_without_user_arguments_omits_them() {
        let built = request(SchemaVersion::V2, &["t"]);
        let value = serde_json::to_value(&built).unwrap();
        assert_eq!(value["job"], json!({"id": "job-1"}));
        assert_eq!(value["tasks"][0]["s3Bucket"], "amzn-s3-demo-bucket");
        assert!(value["tasks"][0].get("s3BucketArn").is_none());
    }

    #[test]
    fn response_matches_the_documented_example() {
        let documented = json!({
            "invocationSchemaVersion": "1.0",
            "treatMissingKeysAs": "PermanentFailure",
            "invocationId": "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo",
            "results": [{
                "taskId": "dGFza2lkZ29lc2hlcmUK",
                "resultCode": "Succeeded",
                "resultString": "[\"Mary Major\", \"John Stiles\"]"
            }]
        });
        let built = InvocationResponse {
            invocation_schema_version: SchemaVersion::V1,
            treat_missing_keys_as: Some(ResultCode::PermanentFailure),
            invocation_id: "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo".into(),
            results: vec![TaskResult::new(
                "dGFza2lkZ29lc2hlcmUK",
                ResultCode::Succeeded,
                "[\"Mary Major\", \"John Stiles\"]",
            )],
        };
        assert_eq!(serde_json::to_value(&built).unwrap(), documented);
        assert_eq!(
            serde_json::from_value::<InvocationResponse>(documented).unwrap(),
            built
        );
    }

    #[test]
    fn keys_are_url_encoded_and_decode_back() {
        for key in [
            "customerImage1.jpg",
            "dir/a b+c%d,e.txt",
            "ünï/cödé 1.txt",
            "a~b_c-d.e",
        ] {
            let encoded = encode_s3_key(key);
            assert_eq!(decode_s3_key(&encoded), key, "{encoded}");
        }
        assert_eq!(
            encode_s3_key("dir/a b+c%d,e.txt"),
            "dir/a%20b%2Bc%25d%2Ce.txt"
        );
        // S3 event style (`+` for a space) decodes too.
        assert_eq!(decode_s3_key("a+b%2Bc"), "a b+c");
        let t = InvocationTask::new(SchemaVersion::V1, "t", &task("x y", None));
        assert_eq!(t.s3_key, "x%20y");
        assert_eq!(t.key(), "x y");
    }

    #[test]
    fn schema_versions_parse() {
        assert_eq!(SchemaVersion::parse("1.0").unwrap(), SchemaVersion::V1);
        assert_eq!(SchemaVersion::parse("2.0").unwrap(), SchemaVersion::V2);
        assert!(SchemaVersion::parse("3.0").is_err());
    }

    #[test]
    fn results_come_back_in_the_order_of_the_sent_tasks() {
        let sent = request(SchemaVersion::V1, &["a", "b"]);
        let payload = json!({
            "invocationSchemaVersion": "1.0",
            "invocationId": "inv-1",
            "results": [
                {"taskId": "b", "resultCode": "PermanentFailure", "resultString": "nope"},
                {"taskId": "a", "resultCode": "Succeeded", "resultString": "ok"}
            ]
        });
        let results = interpret_response(&serde_json::to_vec(&payload).unwrap(), &sent).unwrap();
        assert_eq!(
            results[0],
            TaskResult::new("a", ResultCode::Succeeded, "ok")
        );
        assert_eq!(
            results[1],
            TaskResult::new("b", ResultCode::PermanentFailure, "nope")
        );
    }

    #[test]
    fn a_missing_result_string_is_accepted() {
        let sent = request(SchemaVersion::V1, &["a"]);
        let payload = json!({"invocationSchemaVersion": "1.0", "invocationId": "inv-1",
            "results": [{"taskId": "a", "resultCode": "Succeeded", "resultString": null}]});
        let results = interpret_response(&serde_json::to_vec(&payload).unwrap(), &sent).unwrap();
        assert_eq!(results[0].result_string, None);
    }

    #[test]
    fn missing_tasks_default_to_permanent_failure() {
        let sent = request(SchemaVersion::V2, &["a", "b"]);
        let payload = json!({"invocationSchemaVersion": "2.0", "invocationId": "inv-1",
            "results": [{"taskId": "a", "resultCode": "Succeeded", "resultString": "ok"}]});
        let results = interpret_response(&serde_json::to_vec(&payload).unwrap(), &sent).unwrap();
        assert_eq!(results[1].result_code, ResultCode::PermanentFailure);
        assert!(results[1]
            .result_string
            .as_deref()
            .unwrap()
            .contains("treatMissingKeysAs is PermanentFailure"));
    }

    #[test]
    fn missing_tasks_follow_treat_missing_keys_as() {
        let sent = request(SchemaVersion::V1, &["a"]);
        for code in [
            ResultCode::Succeeded,
            ResultCode::TemporaryFailure,
            ResultCode::PermanentFailure,
        ] {
            let payload = json!({"invocationSchemaVersion": "1.0", "invocationId": "inv-1",
                "treatMissingKeysAs": code.as_str(), "results": []});
            let results =
                interpret_response(&serde_json::to_vec(&payload).unwrap(), &sent).unwrap();
            assert_eq!(results[0].result_code, code);
            assert_eq!(results[0].task_id, "a");
        }
    }

    #[test]
    fn invalid_json_breaks_the_contract() {
        let sent = request(SchemaVersion::V1, &["a"]);
        let err = interpret_response(b"not json", &sent)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(CONTRACT_VIOLATION), "{err}");
        let err = interpret_response(b"", &sent).unwrap_err().to_string();
        assert!(err.starts_with(CONTRACT_VIOLATION), "{err}");
    }

    #[test]
    fn a_response_without_results_breaks_the_contract() {
        let sent = request(SchemaVersion::V1, &["a"]);
        let err = violation(&json!({"hello": "world"}), &sent);
        assert!(err.starts_with(CONTRACT_VIOLATION), "{err}");
        assert!(err.contains("missing field"), "{err}");
        let err = violation(
            &json!({"invocationSchemaVersion": "1.0", "invocationId": "inv-1"}),
            &sent,
        );
        assert!(err.contains("missing field `results`"), "{err}");
    }

    #[test]
    fn an_unknown_result_code_breaks_the_contract() {
        let sent = request(SchemaVersion::V1, &["a"]);
        let err = violation(
            &json!({"invocationSchemaVersion": "1.0", "invocationId": "inv-1",
                "results": [{"taskId": "a", "resultCode": "Done", "resultString": ""}]}),
            &sent,
        );
        assert!(err.starts_with(CONTRACT_VIOLATION), "{err}");
        assert!(err.contains("Done"), "{err}");
    }

    #[test]
    fn an_unknown_treat_missing_keys_as_or_schema_breaks_the_contract() {
        let sent = request(SchemaVersion::V1, &["a"]);
        let err = violation(
            &json!({"invocationSchemaVersion": "1.0", "invocationId": "inv-1",
                "treatMissingKeysAs": "Ignore", "results": []}),
            &sent,
        );
        assert!(err.contains("Ignore"), "{err}");
        let err = violation(
            &json!({"invocationSchemaVersion": "9.9", "invocationId": "inv-1", "results": []}),
            &sent,
        );
        assert!(err.contains("9.9"), "{err}");
    }

    #[test]
    fn a_task_that_was_not_sent_breaks_the_contract() {
        let sent = request(SchemaVersion::V1, &["a"]);
        let err = violation(
            &json!({"invocationSchemaVersion": "1.0", "invocationId": "inv-1",
            "results": [
                {"taskId": "a", "resultCode": "Succeeded", "resultString": ""},
                {"taskId": "zzz", "resultCode": "Succeeded", "resultString": ""}
            ]}),
            &sent,
        );
        assert!(err.starts_with(CONTRACT_VIOLATION), "{err}");
        assert!(err.contains("\"zzz\", which was not sent"), "{err}");
    }

    #[test]
    fn a_task_answered_twice_breaks_the_contract() {
        let sent = request(SchemaVersion::V1, &["a"]);
        let err = violation(
            &json!({"invocationSchemaVersion": "1.0", "invocationId": "inv-1",
            "results": [
                {"taskId": "a", "resultCode": "Succeeded", "resultString": ""},
                {"taskId": "a", "resultCode": "PermanentFailure", "resultString": ""}
            ]}),
            &sent,
        );
        assert!(err.contains("more than once"), "{err}");
    }

    #[test]
    fn another_invocation_id_breaks_the_contract() {
        let sent = request(SchemaVersion::V1, &["a"]);
        let err = violation(
            &json!({"invocationSchemaVersion": "1.0", "invocationId": "other",
                "results": [{"taskId": "a", "resultCode": "Succeeded", "resultString": ""}]}),
            &sent,
        );
        assert!(err.starts_with(CONTRACT_VIOLATION), "{err}");
        assert!(
            err.contains("invocationId \"other\" does not match"),
            "{err}"
        );
    }

    #[test]
    fn judge_maps_result_codes_to_report_rows() {
        let t = task("k", None);
        let sent = request(SchemaVersion::V1, &["a"]);
        let answer = |code: &str, s: &str| {
            serde_json::to_vec(
                &json!({"invocationSchemaVersion": "1.0", "invocationId": "inv-1",
                "results": [{"taskId": "a", "resultCode": code, "resultString": s}]}),
            )
            .unwrap()
        };
        assert_eq!(
            judge(&t, &sent, &answer("Succeeded", "abc123")),
            Judgement::Final(TaskOutcome {
                task: t.clone(),
                status: TaskStatus::Succeeded,
                error_code: None,
                http_status: Some(200),
                result_message: "abc123".into(),
            })
        );
        assert_eq!(
            judge(&t, &sent, &answer("PermanentFailure", "no such thing")),
            Judgement::Final(TaskOutcome {
                task: t.clone(),
                status: TaskStatus::Failed,
                error_code: Some("PermanentFailure".into()),
                http_status: Some(200),
                result_message: "no such thing".into(),
            })
        );
        assert_eq!(
            judge(&t, &sent, &answer("TemporaryFailure", "busy")),
            Judgement::Retry("busy".into())
        );
    }

    #[test]
    fn judge_fails_the_task_on_a_contract_violation() {
        let t = task("k", None);
        let sent = request(SchemaVersion::V2, &["a"]);
        match judge(&t, &sent, br#"{"hello":"world"}"#) {
            Judgement::Final(outcome) => {
                assert_eq!(outcome.status, TaskStatus::Failed);
                assert_eq!(outcome.error_code.as_deref(), Some("PermanentFailure"));
                assert_eq!(outcome.http_status, Some(200));
                assert!(outcome.result_message.starts_with(CONTRACT_VIOLATION));
            }
            other => panic!("expected a final outcome, got {other:?}"),
        }
    }

    #[test]
    fn judge_applies_treat_missing_keys_as() {
        let t = task("k", None);
        let sent = request(SchemaVersion::V2, &["a"]);
        let omitted = br#"{"invocationSchemaVersion":"2.0","invocationId":"inv-1","results":[]}"#;
        match judge(&t, &sent, omitted) {
            Judgement::Final(outcome) => {
                assert_eq!(outcome.status, TaskStatus::Failed);
                assert_eq!(outcome.error_code.as_deref(), Some("PermanentFailure"));
            }
            other => panic!("expected a final outcome, got {other:?}"),
        }
        let retry = br#"{"invocationSchemaVersion":"2.0","invocationId":"inv-1","treatMissingKeysAs":"TemporaryFailure","results":[]}"#;
        assert!(matches!(judge(&t, &sent, retry), Judgement::Retry(_)));
    }

    #[test]
    fn function_errors_are_permanent_failures_with_lambdas_payload() {
        let t = task("k", None);
        let outcome = function_error_outcome(
            &t,
            br#"{"errorMessage":"Task timed out after 3.00 seconds"}"#,
        );
        assert_eq!(outcome.status, TaskStatus::Failed);
        assert_eq!(outcome.error_code.as_deref(), Some("PermanentFailure"));
        assert_eq!(outcome.http_status, Some(200));
        assert_eq!(
            outcome.result_message,
            r#"Lambda returned function error: {"errorMessage":"Task timed out after 3.00 seconds"}"#
        );
    }

    #[test]
    fn exhausted_temporary_failures_note_the_attempts() {
        let t = task("k", None);
        let outcome = temporary_failure_outcome(&t, 5, "busy");
        assert_eq!(outcome.status, TaskStatus::Failed);
        assert_eq!(outcome.error_code.as_deref(), Some("TemporaryFailure"));
        assert_eq!(outcome.http_status, Some(200));
        assert!(
            outcome.result_message.contains("5 attempts"),
            "{}",
            outcome.result_message
        );
        assert!(outcome.result_message.contains("busy"));
    }

    #[test]
    fn bounded_keeps_a_message_of_exactly_the_limit() {
        let exact = "a".repeat(MAX_MESSAGE_CHARS);
        assert_eq!(bounded(exact.clone()), exact);
        let multi = "é".repeat(MAX_MESSAGE_CHARS);
        assert_eq!(bounded(multi.clone()), multi);
        assert_eq!(bounded(String::new()), "");
    }

    #[test]
    fn bounded_cuts_one_over_the_limit_to_the_limit_with_a_marker() {
        let over = format!("{}Z", "a".repeat(MAX_MESSAGE_CHARS));
        let cut = bounded(over);
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS);
        assert_eq!(
            cut,
            format!("{}{CUT_MARKER}", "a".repeat(MAX_MESSAGE_CHARS - 3))
        );
    }

    #[test]
    fn bounded_never_splits_a_multi_byte_character() {
        // 2-, 3- and 4-byte characters, with the cut landing right after each kind.
        for ch in ["é", "€", "😀"] {
            for prefix in 0..4 {
                let message = format!("{}{}", "a".repeat(prefix), ch.repeat(2 * MAX_MESSAGE_CHARS));
                let cut = bounded(message.clone());
                assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS, "{ch} {prefix}");
                let kept = cut.strip_suffix(CUT_MARKER).unwrap();
                assert!(message.starts_with(kept), "{ch} {prefix}");
                assert!(kept.ends_with(ch), "{ch} {prefix}");
            }
        }
    }

    #[test]
    fn function_error_messages_are_bounded_but_result_strings_are_not() {
        let t = task("k", None);
        let trace = format!(
            r#"{{"errorMessage":"boom","stackTrace":"{}"}}"#,
            "é".repeat(5000)
        );
        let outcome = function_error_outcome(&t, trace.as_bytes());
        assert_eq!(outcome.result_message.chars().count(), MAX_MESSAGE_CHARS);
        assert!(outcome
            .result_message
            .starts_with(r#"Lambda returned function error: {"errorMessage":"boom""#));
        assert!(outcome.result_message.ends_with(CUT_MARKER));
        // The function's own resultString goes to the report as returned, as AWS documents.
        let long = "é".repeat(5000);
        assert_eq!(
            permanent_failure_outcome(&t, long.clone()).result_message,
            long
        );
        assert_eq!(succeeded_outcome(&t, long.clone()).result_message, long);
        assert!(temporary_failure_outcome(&t, 2, &long)
            .result_message
            .ends_with(&long));
    }

    #[test]
    fn a_payload_that_is_not_json_is_named_as_s3_names_it() {
        let sent = request(SchemaVersion::V1, &["a"]);
        let err = interpret_response(b"<html>oops</html>", &sent)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "{CONTRACT_VIOLATION}: Invalid JSON returned in Lambda payload ("
            )),
            "{err}"
        );
        // JSON of the wrong shape is a different reason.
        let err = interpret_response(b"[1,2]", &sent).unwrap_err().to_string();
        assert!(
            err.contains("cannot read the response as an invocation response"),
            "{err}"
        );
    }
}
