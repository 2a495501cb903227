//! The LambdaInvoke operation against a scripted Lambda endpoint: answers that real AWS Lambda
//! gives and `cargo lambda watch` cannot (a 200 with `X-Amz-Function-Error: Handled` or
//! `Unhandled`, throttling, service errors), driven through `operation::run_tasks` (what the
//! executor calls), with the report rows compared and the requests checked as the server got them.
//!
//! No moto and no cargo lambda here: the endpoint is a small HTTP server on 127.0.0.1:0 that
//! records every request and answers from a script, keyed on the task's object key and attempt.

use batchops::context::Settings;
use batchops::invocation::{CONTRACT_VIOLATION, CUT_MARKER, MAX_MESSAGE_CHARS};
use batchops::job::{CreateJobRequest, Job, JobStatus, Progress};
use batchops::manifest::Task;
use batchops::operation;
use batchops::report::{encode_rows, TaskOutcome, TaskStatus};
use batchops::Context;
use serde_json::{json, Value};
use std::time::Duration;

const ATTEMPTS: u32 = 3;
const BUCKET: &str = "amzn-s3-demo-bucket";
const FUNCTION: &str = "arn:aws:lambda:us-east-1:123456789012:function:batch-fn";

/// The common scripted endpoint, playing Lambda's Invoke API.
mod scripted {
    use super::*;
    pub use crate::common::scripted::{Log, Reply, Request};

    /// The decoded object key of a request's (single) task.
    pub trait TaskKey {
        fn key(&self) -> String;
    }

    impl TaskKey for Request {
        fn key(&self) -> String {
            let s3_key = self.json["tasks"][0]["s3Key"].as_str().unwrap_or_default();
            batchops::invocation::decode_s3_key(s3_key)
        }
    }

    /// Starts the endpoint: `script` decides the reply to a request given how many times its
    /// key was asked for (1-based).
    pub async fn start(
        script: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static,
    ) -> (String, Log) {
        crate::common::scripted::start(move |request, seen| {
            let key = request.key();
            let attempt = seen.iter().filter(|r| r.key() == key).count();
            script(request, attempt)
        })
        .await
    }

    fn json_reply(status: u16, headers: &[(&str, &str)], body: String) -> Reply {
        let mut reply = Reply::new(status, headers, body);
        reply
            .headers
            .insert(0, ("content-type".into(), "application/json".into()));
        reply
    }

    /// The function's answer for the request's task, as the contract has it.
    pub fn result(request: &Request, code: &str, result_string: &str) -> Reply {
        let body = json!({
            "invocationSchemaVersion": request.json["invocationSchemaVersion"],
            "treatMissingKeysAs": "PermanentFailure",
            "invocationId": request.json["invocationId"],
            "results": [{
                "taskId": request.json["tasks"][0]["taskId"],
                "resultCode": code,
                "resultString": result_string
            }]
        });
        json_reply(
            200,
            &[("x-amz-executed-version", "$LATEST")],
            body.to_string(),
        )
    }

    /// A 200 whose payload is whatever the function returned.
    pub fn raw(body: &str) -> Reply {
        json_reply(200, &[("x-amz-executed-version", "$LATEST")], body.into())
    }

    /// A function error as real Lambda reports it: HTTP 200, `X-Amz-Function-Error`, and the
    /// error document as the payload.
    pub fn function_error(kind: &str, error_type: &str, message: &str) -> Reply {
        let doc = json!({"errorMessage": message, "errorType": error_type});
        json_reply(
            200,
            &[
                ("x-amz-function-error", kind),
                ("x-amz-executed-version", "$LATEST"),
            ],
            doc.to_string(),
        )
    }

    /// An error of the Invoke API itself, in Lambda's restJson1 shape.
    pub fn api_error(status: u16, error_type: &str, message: &str) -> Reply {
        let body = json!({"Type": "User", "message": message});
        json_reply(
            status,
            &[("x-amzn-errortype", error_type)],
            body.to_string(),
        )
    }
}

use scripted::{api_error, function_error, raw, result, Reply, Request, TaskKey};

fn job(operation: Value) -> Job {
    let request = json!({
        "AccountId": "123456789012",
        "ConfirmationRequired": false,
        "Operation": operation,
        "Report": {"Enabled": false},
        "Manifest": {
            "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key", "VersionId"]},
            "Location": {"ObjectArn": "arn:aws:s3:::manifests/m.csv", "ETag": "x"}
        },
        "Priority": 1,
        "RoleArn": "arn:aws:iam::123456789012:role/batch"
    });
    let request = CreateJobRequest::parse(&request.to_string()).unwrap();
    request.validate().unwrap();
    Job {
        job_id: "job-1".into(),
        priority: request.priority,
        request,
        status: JobStatus::Active,
        creation_time: chrono::Utc::now(),
        termination_date: None,
        suspended_date: None,
        active_since: None,
        elapsed_active_seconds: 0,
        status_update_reason: None,
        failure_reasons: Vec::new(),
        progress: Progress::default(),
        finalize_sent: false,
        tags: Vec::new(),
        max_tasks_per_second: None,
        tracking: Default::default(),
    }
}

fn invoke_op(function_arn: &str, schema: &str, user_arguments: Option<Value>) -> Value {
    let mut op = json!({"FunctionArn": function_arn, "InvocationSchemaVersion": schema});
    if let Some(args) = user_arguments {
        op["UserArguments"] = args;
    }
    json!({ "LambdaInvoke": op })
}

fn task(key: &str, version: Option<&str>) -> Task {
    Task {
        bucket: BUCKET.into(),
        key: key.into(),
        version_id: version.map(String::from),
        size: None,
    }
}

/// Runs `tasks` of a LambdaInvoke job against a scripted endpoint: the outcomes, their report
/// rows and every request the endpoint received.
async fn run(
    operation: Value,
    tasks: &[Task],
    script: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static,
) -> (Vec<TaskOutcome>, Vec<String>, Vec<Request>) {
    let (url, log) = scripted::start(script).await;
    let config = crate::common::sdk_config_on(&url).await;
    let settings = Settings {
        lambda_max_attempts: ATTEMPTS,
        lambda_retry_base: Duration::from_millis(1),
        ..Settings::default()
    };
    let ctx = Context::from_config(&config, settings).with_lambda_endpoint(&config, &url);
    let outcomes = operation::run_tasks(&ctx, &job(operation), "batch-1", tasks).await;
    assert_eq!(outcomes.len(), tasks.len());
    let rows = String::from_utf8(encode_rows(&outcomes))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let seen = log.lock().unwrap().clone();
    (outcomes, rows, seen)
}

fn calls(seen: &[Request], key: &str) -> usize {
    seen.iter().filter(|r| r.key() == key).count()
}

fn v1() -> Value {
    invoke_op(FUNCTION, "1.0", None)
}

#[tokio::test]
async fn function_errors_handled_unhandled_and_timeouts_fail_the_task_once_with_lambdas_document() {
    let tasks = [
        task("handled", None),
        task("unhandled", None),
        task("timeout", None),
    ];
    let (outcomes, rows, seen) = run(v1(), &tasks, |request, _| match request.key().as_str() {
        "handled" => function_error("Handled", "ValueError", "cannot parse object"),
        "unhandled" => function_error(
            "Unhandled",
            "Runtime.ExitError",
            "RequestId: 1f0a Error: Runtime exited with error: signal: killed",
        ),
        _ => function_error(
            "Unhandled",
            "Sandbox.Timedout",
            "2019-04-05T17:35:21.155Z 2845ca0d Task timed out after 3.00 seconds",
        ),
    })
    .await;
    assert_eq!(
        rows,
        vec![
            format!(
                r#"{BUCKET},handled,,failed,200,PermanentFailure,"Lambda returned function error: {{""errorMessage"":""cannot parse object"",""errorType"":""ValueError""}}""#
            ),
            format!(
                r#"{BUCKET},unhandled,,failed,200,PermanentFailure,"Lambda returned function error: {{""errorMessage"":""RequestId: 1f0a Error: Runtime exited with error: signal: killed"",""errorType"":""Runtime.ExitError""}}""#
            ),
            format!(
                r#"{BUCKET},timeout,,failed,200,PermanentFailure,"Lambda returned function error: {{""errorMessage"":""2019-04-05T17:35:21.155Z 2845ca0d Task timed out after 3.00 seconds"",""errorType"":""Sandbox.Timedout""}}""#
            ),
        ]
    );
    assert!(outcomes.iter().all(|o| o.status == TaskStatus::Failed));
    // A function error is final: the same function would fail the same way.
    for key in ["handled", "unhandled", "timeout"] {
        assert_eq!(calls(&seen, key), 1, "{key}: {seen:?}");
    }
}

#[tokio::test]
async fn throttling_is_retried_and_fails_the_task_only_when_attempts_run_out() {
    let tasks = [task("throttled-once", None), task("throttled-always", None)];
    let (outcomes, rows, seen) = run(v1(), &tasks, |request, attempt| {
        match request.key().as_str() {
            "throttled-once" if attempt == 1 => {
                api_error(429, "TooManyRequestsException", "Rate Exceeded.")
            }
            "throttled-once" => result(request, "Succeeded", "done"),
            _ => api_error(429, "TooManyRequestsException", "Rate Exceeded."),
        }
    })
    .await;
    assert_eq!(
        rows[0],
        format!("{BUCKET},throttled-once,,succeeded,200,,done")
    );
    assert_eq!(calls(&seen, "throttled-once"), 2, "{seen:?}");
    // Failed (counted, reported), not lost; the reason says it was throttling.
    assert_eq!(outcomes[1].status, TaskStatus::Failed);
    assert_eq!(
        outcomes[1].error_code.as_deref(),
        Some("TooManyRequestsException")
    );
    assert_eq!(outcomes[1].http_status, Some(429));
    assert_eq!(
        outcomes[1].result_message,
        "Lambda throttled the invocation (TooManyRequestsException) on all 3 attempts: Rate Exceeded."
    );
    assert_eq!(calls(&seen, "throttled-always"), ATTEMPTS as usize);
}

#[tokio::test]
async fn service_errors_are_retried_and_client_errors_are_not() {
    let tasks = [
        task("service-error", None),
        task("bad-gateway-once", None),
        task("no-such-function", None),
    ];
    let (outcomes, rows, seen) = run(v1(), &tasks, |request, attempt| {
        match request.key().as_str() {
            "service-error" => api_error(500, "ServiceException", "Lambda had an internal error"),
            "bad-gateway-once" if attempt == 1 => Reply::new(502, &[], ""),
            "bad-gateway-once" => result(request, "Succeeded", "second time lucky"),
            _ => api_error(
                404,
                "ResourceNotFoundException",
                "Function not found: arn:aws:lambda:us-east-1:123456789012:function:batch-fn",
            ),
        }
    })
    .await;
    assert_eq!(
        rows[0],
        format!("{BUCKET},service-error,,failed,500,ServiceException,Lambda Invoke failed (ServiceException) on all 3 attempts: Lambda had an internal error")
    );
    assert_eq!(calls(&seen, "service-error"), ATTEMPTS as usize);
    assert_eq!(
        rows[1],
        format!("{BUCKET},bad-gateway-once,,succeeded,200,,second time lucky")
    );
    assert_eq!(calls(&seen, "bad-gateway-once"), 2);
    assert_eq!(outcomes[2].status, TaskStatus::Failed);
    assert_eq!(
        outcomes[2].error_code.as_deref(),
        Some("ResourceNotFoundException")
    );
    assert_eq!(outcomes[2].http_status, Some(404));
    assert!(outcomes[2].result_message.starts_with("Function not found"));
    assert_eq!(calls(&seen, "no-such-function"), 1);
}

#[tokio::test]
async fn a_payload_that_breaks_the_contract_fails_the_task_without_retrying() {
    let tasks = [
        task("not-json", None),
        task("missing-task", None),
        task("other-invocation", None),
    ];
    let (outcomes, rows, seen) = run(v1(), &tasks, |request, _| match request.key().as_str() {
        "not-json" => raw("<html>Internal error</html>"),
        "missing-task" => raw(&json!({"invocationSchemaVersion": "1.0",
                "invocationId": request.json["invocationId"], "results": []})
        .to_string()),
        _ => raw(
            &json!({"invocationSchemaVersion": "1.0", "invocationId": "someone-else",
                "results": []})
            .to_string(),
        ),
    })
    .await;
    for outcome in &outcomes {
        assert_eq!(outcome.status, TaskStatus::Failed);
        assert_eq!(outcome.error_code.as_deref(), Some("PermanentFailure"));
        assert_eq!(outcome.http_status, Some(200));
    }
    assert!(
        outcomes[0].result_message.starts_with(&format!(
            "{CONTRACT_VIOLATION}: Invalid JSON returned in Lambda payload ("
        )),
        "{}",
        outcomes[0].result_message
    );
    assert_eq!(
        rows[1],
        format!("{BUCKET},missing-task,,failed,200,PermanentFailure,the Lambda response has no result for this task; treatMissingKeysAs is PermanentFailure")
    );
    assert!(
        outcomes[2]
            .result_message
            .contains("invocationId \"someone-else\" does not match"),
        "{}",
        outcomes[2].result_message
    );
    for key in ["not-json", "missing-task", "other-invocation"] {
        assert_eq!(calls(&seen, key), 1, "{key}");
    }
}

#[tokio::test]
async fn every_result_code_maps_to_its_report_row() {
    let tasks = [
        task("succeeded", None),
        task("temporary-once", None),
        task("permanent", None),
        task("temporary-always", None),
    ];
    let (_, rows, seen) = run(v1(), &tasks, |request, attempt| {
        match request.key().as_str() {
            "succeeded" => result(request, "Succeeded", "[\"Mary Major\", \"John Stiles\"]"),
            "temporary-once" if attempt == 1 => result(request, "TemporaryFailure", "busy"),
            "temporary-once" => result(request, "Succeeded", "after a retry"),
            "permanent" => result(request, "PermanentFailure", "corrupt object"),
            _ => result(request, "TemporaryFailure", "still busy"),
        }
    })
    .await;
    assert_eq!(
        rows,
        vec![
            format!(r#"{BUCKET},succeeded,,succeeded,200,,"[""Mary Major"", ""John Stiles""]""#),
            format!("{BUCKET},temporary-once,,succeeded,200,,after a retry"),
            format!("{BUCKET},permanent,,failed,200,PermanentFailure,corrupt object"),
            format!("{BUCKET},temporary-always,,failed,200,TemporaryFailure,still TemporaryFailure after 3 attempts; last result: still busy"),
        ]
    );
    assert_eq!(calls(&seen, "succeeded"), 1);
    assert_eq!(calls(&seen, "permanent"), 1);
    assert_eq!(calls(&seen, "temporary-always"), ATTEMPTS as usize);
    // One request per attempt and nothing else: the endpoint serves every service here, so an S3
    // call of a LambdaInvoke task would have shown up too.
    assert_eq!(seen.len(), 1 + 2 + 1 + ATTEMPTS as usize, "{seen:?}");
    assert!(
        seen.iter()
            .all(|r| r.method == "POST" && r.path().ends_with("/invocations")),
        "{seen:?}"
    );
    // Each attempt is its own invocation (fresh invocationId) of the same task (same taskId).
    let retried: Vec<&Request> = seen
        .iter()
        .filter(|r| r.key() == "temporary-once")
        .collect();
    assert_eq!(retried.len(), 2);
    assert_ne!(
        retried[0].json["invocationId"],
        retried[1].json["invocationId"]
    );
    assert_eq!(
        retried[0].json["tasks"][0]["taskId"],
        retried[1].json["tasks"][0]["taskId"]
    );
}

fn echo(request: &Request) -> Reply {
    result(request, "Succeeded", "ok")
}

/// The task ids of a batch are `<batch id>-<index>`; the invocation id is fresh per Invoke.
fn assert_invocation_id(body: &Value) {
    let id = body["invocationId"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}

#[tokio::test]
async fn schema_1_0_payload_as_the_function_receives_it() {
    let tasks = [task("dir/a b+c.txt", Some("v1")), task("plain.txt", None)];
    let (outcomes, _, seen) = run(v1(), &tasks, |request, _| echo(request)).await;
    assert!(outcomes.iter().all(|o| o.status == TaskStatus::Succeeded));
    assert_eq!(seen.len(), 2);
    let mut bodies: Vec<Value> = seen.iter().map(|r| r.json.clone()).collect();
    bodies.sort_by_key(|b| b["tasks"][0]["taskId"].as_str().unwrap().to_string());
    for body in &bodies {
        assert_invocation_id(body);
    }
    assert_ne!(bodies[0]["invocationId"], bodies[1]["invocationId"]);
    for body in &mut bodies {
        body["invocationId"] = json!("ID");
    }
    assert_eq!(
        bodies,
        vec![
            json!({
                "invocationSchemaVersion": "1.0",
                "invocationId": "ID",
                "job": {"id": "job-1"},
                "tasks": [{
                    "taskId": "batch-1-0",
                    "s3Key": "dir/a%20b%2Bc.txt",
                    "s3VersionId": "v1",
                    "s3BucketArn": format!("arn:aws:s3:::{BUCKET}")
                }]
            }),
            json!({
                "invocationSchemaVersion": "1.0",
                "invocationId": "ID",
                "job": {"id": "job-1"},
                "tasks": [{
                    "taskId": "batch-1-1",
                    "s3Key": "plain.txt",
                    "s3VersionId": null,
                    "s3BucketArn": format!("arn:aws:s3:::{BUCKET}")
                }]
            }),
        ]
    );
    // A synchronous invocation, as S3 makes it.
    for request in &seen {
        assert_eq!(request.method, "POST");
        assert_ne!(
            request
                .headers
                .get("x-amz-invocation-type")
                .map(String::as_str),
            Some("Event")
        );
    }
}

#[tokio::test]
async fn schema_2_0_payload_carries_user_arguments_and_the_bucket_name() {
    let op = invoke_op(
        FUNCTION,
        "2.0",
        Some(json!({"k1": "v1", "dest": "archive/"})),
    );
    let tasks = [task("dir/a b+c.txt", Some("v1"))];
    let (outcomes, _, seen) = run(op, &tasks, |request, _| echo(request)).await;
    assert_eq!(outcomes[0].status, TaskStatus::Succeeded);
    let mut body = seen[0].json.clone();
    assert_invocation_id(&body);
    body["invocationId"] = json!("ID");
    assert_eq!(
        body,
        json!({
            "invocationSchemaVersion": "2.0",
            "invocationId": "ID",
            "job": {"id": "job-1", "userArguments": {"k1": "v1", "dest": "archive/"}},
            "tasks": [{
                "taskId": "batch-1-0",
                "s3Key": "dir/a%20b%2Bc.txt",
                "s3VersionId": "v1",
                "s3Bucket": BUCKET
            }]
        })
    );
}

#[tokio::test]
async fn a_version_or_alias_in_the_function_arn_reaches_lambda_as_the_qualifier() {
    for (function_arn, function, qualifier) in [
        (format!("{FUNCTION}:prod"), FUNCTION, Some("prod")),
        (format!("{FUNCTION}:7"), FUNCTION, Some("7")),
        (format!("{FUNCTION}:$LATEST"), FUNCTION, Some("%24LATEST")),
        (FUNCTION.to_string(), FUNCTION, None),
        ("batch-fn:live".to_string(), "batch-fn", Some("live")),
    ] {
        let op = invoke_op(&function_arn, "1.0", None);
        let (outcomes, _, seen) = run(op, &[task("k", None)], |request, _| echo(request)).await;
        assert_eq!(outcomes[0].status, TaskStatus::Succeeded, "{function_arn}");
        let request = &seen[0];
        assert_eq!(
            request.path(),
            format!("/2015-03-31/functions/{function}/invocations"),
            "{function_arn}: {request:?}"
        );
        let expected_query = qualifier
            .map(|q| format!("Qualifier={q}"))
            .unwrap_or_default();
        assert_eq!(request.query, expected_query, "{function_arn}");
    }
}

#[tokio::test]
async fn result_strings_reach_the_report_whole_and_function_error_documents_are_bounded() {
    let long_result = "é,\"x\"".repeat(1000);
    let long_trace = "€".repeat(3 * MAX_MESSAGE_CHARS);
    let tasks = [task("long-result", None), task("long-trace", None)];
    let (result_string, trace) = (long_result.clone(), long_trace.clone());
    let (outcomes, _, _) = run(v1(), &tasks, move |request, _| {
        match request.key().as_str() {
            "long-result" => result(request, "Succeeded", &result_string),
            _ => function_error("Handled", "Exception", &trace),
        }
    })
    .await;
    assert_eq!(outcomes[0].result_message, long_result);
    let message = &outcomes[1].result_message;
    assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS);
    assert!(message.ends_with(CUT_MARKER), "{message}");
    assert!(message.starts_with(r#"Lambda returned function error: {"errorMessage":"€€€"#));
    // Read back through the report's own CSV, nothing is split or lost.
    let csv = encode_rows(&outcomes);
    let read = batchops::report::decode_rows(&csv).unwrap();
    assert_eq!(read[0].result_message, long_result);
    assert_eq!(&read[1].result_message, message);
}
