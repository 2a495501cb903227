//! Hostile input, as a user (or an attacker, or bad luck) would give it: every case names what it
//! gives batchops and asserts the exact outcome: the CLI's exit code and message, the job's final
//! status and FailureReasons, the report's rows. All against moto server; the CLI cases run the
//! real `batchops` binary.

use crate::common;

use aws_sdk_s3::primitives::ByteStream;
use batchops::control;
use batchops::job::{CreateJobRequest, Job, JobStatus};
use batchops::report::TaskStatus;
use common::stack::{csv_job, stack, tagging, Stack};
use serde_json::{json, Value};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// The CLI against a stack of its own.

/// The `batchops` binary, pointed at the stack through the environment as a deployed CLI is.
fn cli(s: &Stack) -> Command {
    let settings = &s.ctx.settings;
    let mut command = Command::new(env!("CARGO_BIN_EXE_batchops"));
    command
        .arg("--endpoint-url")
        .arg(common::moto_endpoint())
        .env("BATCHOPS_TABLE", &settings.table)
        .env("BATCHOPS_PLAN_QUEUE_URL", &settings.plan_queue_url)
        .env("BATCHOPS_TASK_QUEUE_URL", &settings.task_queue_url)
        .env("BATCHOPS_REPORT_QUEUE_URL", &settings.report_queue_url)
        .env("BATCHOPS_SYSTEM_BUCKET", &settings.system_bucket)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("RUST_LOG", "error");
    command
}

fn run(mut command: Command) -> Output {
    command.output().expect("run batchops")
}

/// Asserts exit code 1 and a message on stderr containing `message`; returns stderr.
fn refused(out: &Output, message: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit code 1; stdout {} stderr {stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains(message),
        "stderr should contain {message:?}: {stderr}"
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one clear line, not a dump: {stderr}"
    );
    stderr
}

fn succeeded(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "batchops failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// `create-job --cli-input-json file://…` with these bytes as the file.
fn create_job_bytes(s: &Stack, bytes: &[u8]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.json");
    std::fs::write(&path, bytes).unwrap();
    let mut command = cli(s);
    command
        .arg("create-job")
        .arg("--cli-input-json")
        .arg(format!("file://{}", path.display()));
    run(command)
}

/// A valid tagging job over a manifest that exists.
async fn valid_job(s: &Stack) -> Value {
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    s.put(&data, "obj", "x").await;
    let etag = s
        .put_manifest(&data, "m.csv", &[(data.clone(), "obj".into())])
        .await;
    csv_job(
        &data,
        "m.csv",
        &etag,
        tagging(&[("k", "v")]),
        &data,
        "AllTasks",
    )
}

fn with(mut job: Value, path: &[&str], value: Value) -> Value {
    let mut at = &mut job;
    for (i, name) in path.iter().enumerate() {
        if i + 1 == path.len() {
            at[*name] = value;
            break;
        }
        at = &mut at[*name];
    }
    job
}

fn without(mut job: Value, name: &str) -> Value {
    job.as_object_mut().unwrap().remove(name);
    job
}

#[tokio::test]
async fn job_json_that_is_malformed_truncated_or_of_the_wrong_shape_is_refused() {
    let s = stack().await;
    let job = valid_job(&s).await.to_string();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("malformed", b"{\"Operation\": }".to_vec(), "cannot parse CreateJob JSON: expected value at line 1 column 15"),
        ("truncated", job.as_bytes()[..job.len() / 2].to_vec(), "cannot parse CreateJob JSON: EOF while parsing"),
        ("empty file", Vec::new(), "cannot parse CreateJob JSON: EOF while parsing a value at line 1 column 0"),
        ("an array", format!("[{job}]").into_bytes(), "the CreateJob JSON must be an object (with Operation, Manifest, Report, ...), got an array"),
        ("a string", b"\"job\"".to_vec(), "got a string"),
        ("binary", vec![0xff, 0xfe, 0x00, 0x01], "cannot read --cli-input-json file"),
    ];
    for (name, bytes, message) in cases {
        eprintln!("case: {name}");
        refused(&create_job_bytes(&s, &bytes), message);
    }
}

#[tokio::test]
async fn job_json_with_a_byte_order_mark_is_read() {
    let s = stack().await;
    let mut bytes = "\u{feff}".as_bytes().to_vec();
    bytes.extend_from_slice(valid_job(&s).await.to_string().as_bytes());
    let created = succeeded(&create_job_bytes(&s, &bytes));
    assert!(created["JobId"].as_str().is_some_and(|id| !id.is_empty()));
}

#[tokio::test]
async fn job_fields_of_the_wrong_type_or_out_of_range_are_refused() {
    let s = stack().await;
    let job = valid_job(&s).await;
    let long = "d".repeat(257);
    let huge = "d".repeat(500_000);
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "Priority of the wrong type",
            with(job.clone(), &["Priority"], json!("high")),
            "invalid type: string \"high\", expected i32",
        ),
        (
            "negative Priority",
            with(job.clone(), &["Priority"], json!(-5)),
            "Priority must be 0 or greater, got -5",
        ),
        (
            "Priority beyond i32",
            with(job.clone(), &["Priority"], json!(4_294_967_296u64)),
            "invalid value: integer `4294967296`, expected i32",
        ),
        (
            "unknown operation",
            with(job.clone(), &["Operation"], json!({"S3Frobnicate": {}})),
            "S3Frobnicate",
        ),
        (
            "two operations",
            with(
                job.clone(),
                &["Operation"],
                json!({"S3DeleteObjectTagging": {}, "S3PutObjectLegalHold": {"LegalHold": {"Status": "ON"}}}),
            ),
            "Operation must name exactly one operation",
        ),
        (
            "unknown field",
            with(job.clone(), &["Frobnicate"], json!(1)),
            "unknown field `Frobnicate`",
        ),
        (
            "no RoleArn",
            without(job.clone(), "RoleArn"),
            "RoleArn is required",
        ),
        (
            "RoleArn not a role",
            with(
                job.clone(),
                &["RoleArn"],
                json!("arn:aws:iam::123456789012:user/bob"),
            ),
            "is not the ARN of an IAM role",
        ),
        (
            "RoleArn of a short account",
            with(
                job.clone(),
                &["RoleArn"],
                json!("arn:aws:iam::1234:role/batch"),
            ),
            "is not the ARN of an IAM role",
        ),
        (
            "RoleArn plain text",
            with(job.clone(), &["RoleArn"], json!("batch-role")),
            "is not the ARN of an IAM role",
        ),
        (
            "report without a bucket",
            with(job.clone(), &["Report", "Bucket"], Value::Null),
            "Report.Bucket is required when Report.Enabled is true",
        ),
        (
            "duplicate tag keys",
            with(
                job.clone(),
                &["Operation"],
                tagging(&[("k", "1"), ("k", "2")]),
            ),
            "tag key \"k\" is given more than once",
        ),
        (
            "Description of 257 characters",
            with(job.clone(), &["Description"], json!(long)),
            "Description has 257 characters; S3 allows at most 256",
        ),
        (
            "Description of 500 KB",
            with(job.clone(), &["Description"], json!(huge)),
            "Description has 500000 characters; S3 allows at most 256",
        ),
        (
            "job Tags with a repeated key",
            with(
                job.clone(),
                &["Tags"],
                json!([{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]),
            ),
            "Tags: tag key \"a\" is given more than once",
        ),
        (
            "manifest without a location",
            with(job.clone(), &["Manifest", "Location"], Value::Null),
            "Location",
        ),
    ];
    for (name, request, message) in cases {
        eprintln!("case: {name}");
        refused(
            &create_job_bytes(&s, request.to_string().as_bytes()),
            message,
        );
    }
    // Nothing was stored by any of them.
    let listed = s.ctx.store().list_jobs(&[]).await.unwrap();
    assert!(listed.is_empty(), "{} jobs stored", listed.len());
}

#[tokio::test]
async fn a_client_request_token_reused_with_another_request_is_refused() {
    let s = stack().await;
    let job = with(
        valid_job(&s).await,
        &["ClientRequestToken"],
        json!("token-1"),
    );
    let first = succeeded(&create_job_bytes(&s, job.to_string().as_bytes()));
    let again = succeeded(&create_job_bytes(&s, job.to_string().as_bytes()));
    assert_eq!(
        first["JobId"], again["JobId"],
        "the same request: the same job"
    );
    let other = with(job, &["Priority"], json!(99));
    let out = create_job_bytes(&s, other.to_string().as_bytes());
    refused(
        &out,
        "IdempotencyException: ClientRequestToken \"token-1\" was used for job",
    );
    let listed = s.ctx.store().list_jobs(&[]).await.unwrap();
    assert_eq!(listed.len(), 1, "the second request created nothing");
    assert_eq!(listed[0].priority, 10, "and changed nothing");
}

#[tokio::test]
async fn status_and_priority_updates_that_make_no_sense_are_refused() {
    let s = stack().await;
    let job = valid_job(&s).await;
    let job_id = s
        .create_job(with(job, &["ConfirmationRequired"], json!(true)))
        .await;
    let mut command = cli(&s);
    command.args([
        "update-job-priority",
        "--job-id",
        &job_id,
        "--priority",
        "-5",
    ]);
    refused(&run(command), "Priority must be 0 or greater, got -5");

    let mut command = cli(&s);
    command.args([
        "describe-job",
        "--job-id",
        "00000000-0000-0000-0000-000000000000",
    ]);
    refused(
        &run(command),
        "job 00000000-0000-0000-0000-000000000000 not found",
    );

    // Cancel it, then ask for Ready: a terminal job cannot be confirmed.
    let mut command = cli(&s);
    command.args([
        "update-job-status",
        "--job-id",
        &job_id,
        "--requested-job-status",
        "Cancelled",
    ]);
    succeeded(&run(command));
    s.run_job(&job_id).await;
    let mut command = cli(&s);
    command.args([
        "update-job-status",
        "--job-id",
        &job_id,
        "--requested-job-status",
        "Ready",
    ]);
    refused(
        &run(command),
        &format!("job {job_id}: cannot change status from Cancelled to Ready"),
    );
    let mut command = cli(&s);
    command.args([
        "update-job-status",
        "--job-id",
        &job_id,
        "--requested-job-status",
        "Active",
    ]);
    refused(
        &run(command),
        "invalid job request: RequestedJobStatus must be Ready or Cancelled, got Active",
    );
}

#[tokio::test]
async fn settings_no_job_could_run_with_stop_the_cli_at_once() {
    let s = stack().await;
    let cases = [
        ("BATCHOPS_MAX_MESSAGE_BYTES", "10000000", "environment variable BATCHOPS_MAX_MESSAGE_BYTES=10000000 is out of range"),
        ("BATCHOPS_MAX_MESSAGE_BYTES", "100", "BATCHOPS_MAX_MESSAGE_BYTES=100 is out of range"),
        ("BATCHOPS_PLANNER_BUDGET_MS", "-1", "environment variable BATCHOPS_PLANNER_BUDGET_MS=\"-1\" is not a number of milliseconds"),
        ("BATCHOPS_EXECUTOR_CONCURRENCY", "0", "BATCHOPS_EXECUTOR_CONCURRENCY=0 is out of range: it must be at least 1"),
        ("BATCHOPS_EXECUTOR_BUDGET_MS", "soon", "BATCHOPS_EXECUTOR_BUDGET_MS=\"soon\" is not a number of milliseconds"),
        // Read with the other settings, not when the first copy runs (it used to fall back to
        // the default with a warning).
        ("BATCHOPS_COPY_PART_SIZE", "5MB", "environment variable BATCHOPS_COPY_PART_SIZE=\"5MB\" is not valid"),
    ];
    for (name, value, message) in cases {
        eprintln!("case: {name}={value}");
        let mut command = cli(&s);
        command
            .env(name, value)
            .args(["local", "run", "--timeout-seconds", "5"]);
        refused(&run(command), message);
    }
}

#[tokio::test]
async fn no_credentials_are_said_plainly() {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_batchops"))
        .args([
            "--endpoint-url",
            common::moto_endpoint(),
            "describe-job",
            "--job-id",
            "x",
        ])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("HOME", home.path())
        .env_remove("AWS_CONFIG_FILE")
        .env_remove("AWS_SHARED_CREDENTIALS_FILE")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap();
    let stderr = refused(
        &out,
        "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    );
    assert!(!stderr.contains("IMDS"), "{stderr}");
}

#[tokio::test]
async fn an_endpoint_that_never_answers_makes_calls_time_out() {
    // Accepts every connection and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_batchops"))
        .args([
            "--endpoint-url",
            &format!("http://127.0.0.1:{port}"),
            "describe-job",
            "--job-id",
            "x",
        ])
        .env("BATCHOPS_TABLE", "t")
        .env("BATCHOPS_PLAN_QUEUE_URL", "http://q/plan")
        .env("BATCHOPS_TASK_QUEUE_URL", "http://q/task")
        .env("BATCHOPS_REPORT_QUEUE_URL", "http://q/report")
        .env("BATCHOPS_SYSTEM_BUCKET", "b")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let took = started.elapsed();
    refused(&out, "DynamoDB GetItem failed: ");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("timeout") || stderr.contains("timed out"),
        "{stderr}"
    );
    // The operation timeout is 60 s; without one the SDK waited for minutes.
    assert!(took < Duration::from_secs(90), "took {took:?}");
}

// ---------------------------------------------------------------------------------------------
// Manifests and what their jobs end as.

/// Runs a tagging job over a CSV manifest with exactly these bytes; objects named in `objects`
/// exist in the data bucket.
async fn run_csv(s: &Stack, manifest: &[u8], objects: &[&str]) -> (Job, String) {
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    for key in objects {
        s.put(&data, key, "x").await;
    }
    let etag = put_bytes(s, &data, "m.csv", manifest.to_vec()).await;
    let job_id = s
        .create_job(csv_job(
            &data,
            "m.csv",
            &etag,
            tagging(&[("t", "1")]),
            &data,
            "AllTasks",
        ))
        .await;
    (s.run_job(&job_id).await, data)
}

async fn put_bytes(s: &Stack, bucket: &str, key: &str, body: Vec<u8>) -> String {
    let out = s
        .ctx
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap();
    out.e_tag.unwrap_or_default().trim_matches('"').to_string()
}

fn assert_failed(job: &Job, code: &str, reason: &str) {
    assert_eq!(job.status, JobStatus::Failed, "{:?}", job.failure_reasons);
    assert_eq!(job.failure_reasons.len(), 1, "{:?}", job.failure_reasons);
    assert_eq!(job.failure_reasons[0].failure_code, code);
    assert!(
        job.failure_reasons[0].failure_reason.contains(reason),
        "FailureReason should contain {reason:?}: {}",
        job.failure_reasons[0].failure_reason
    );
    assert_eq!(job.progress.succeeded, 0, "no task ran");
}

#[tokio::test]
async fn a_missing_manifest_fails_the_job() {
    let s = stack().await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    let request = csv_job(
        &data,
        "nope.csv",
        "0123",
        tagging(&[("t", "1")]),
        &data,
        "AllTasks",
    );
    let job_id = s.create_job(request).await;
    let job = s.run_job(&job_id).await;
    assert_failed(&job, "ManifestReadFailed", &format!("s3://{data}/nope.csv"));
}

#[tokio::test]
async fn an_empty_manifest_completes_with_no_task() {
    let s = stack().await;
    for body in [&b""[..], b"\n\n", b"\xEF\xBB\xBF"] {
        let (job, _) = run_csv(&s, body, &[]).await;
        assert_eq!(job.status, JobStatus::Complete, "{body:?}");
        assert_eq!(job.progress.total_tasks, Some(0));
    }
}

#[tokio::test]
async fn malformed_manifests_fail_the_job_with_the_line() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "binary",
            vec![0x00, 0x9f, 0x92, 0x96, 0xff, b'\n'],
            "line 1: expected 2 columns (Bucket, Key), found 1",
        ),
        (
            "invalid UTF-8 in the key",
            b"BUCKET,ok\nBUCKET,caf\xe9\n".to_vec(),
            "line 2:",
        ),
        (
            "one column",
            b"BUCKET,a\nBUCKET\n".to_vec(),
            "line 2: expected 2 columns (Bucket, Key), found 1",
        ),
        (
            "four columns",
            b"BUCKET,a\nBUCKET,b,v,x\n".to_vec(),
            "line 2: expected 2 columns (Bucket, Key), found 4",
        ),
        (
            "unterminated quote",
            b"BUCKET,a.txt\nBUCKET,\"a.txt\nBUCKET,a.txt\n".to_vec(),
            "line 2: a quoted field opened on this line is never closed",
        ),
        ("bad percent escape", b"BUCKET,a%zz\n".to_vec(), "line 1:"),
        (
            "empty key",
            b"BUCKET,a\nBUCKET,\n".to_vec(),
            "line 2: the key is empty",
        ),
    ];
    for (name, body, reason) in cases {
        eprintln!("case: {name}");
        let s = stack().await;
        let data = s.bucket("data");
        let body = String::from_utf8_lossy(&body)
            .replace("BUCKET", &data)
            .into_bytes();
        // Invalid UTF-8 must stay invalid: substitute in bytes.
        let body = if name == "invalid UTF-8 in the key" {
            format!("{data},ok\n{data},caf")
                .into_bytes()
                .into_iter()
                .chain(*b"\xe9\n")
                .collect()
        } else {
            body
        };
        let (job, _) = run_csv(&s, &body, &["a", "a.txt", "ok"]).await;
        assert_failed(&job, "ManifestReadFailed", reason);
        let tags = s.tags(&data, "a.txt").await;
        assert!(tags.is_empty(), "{name}: no object was changed");
    }
}

#[tokio::test]
async fn awkward_keys_are_the_keys_they_say() {
    let s = stack().await;
    // moto's HTTP layer cannot store a key with a line break (real S3 can): that one is in the
    // manifest and must reach the report as exactly that key, a failed task on moto.
    let keys = [
        "quote\"d",
        "com,ma",
        "../up/../and/back",
        "/leading-slash",
        "dir//double",
        "percent%41",
        "plus+space here",
    ];
    let data = s.bucket("data");
    // URL-encoded as S3 expects, and one row quoted with a raw comma and quotes as CSV allows.
    let mut manifest: String = keys
        .iter()
        .map(|k| format!("{data},{}\n", batchops::manifest::encode_key(k)))
        .collect();
    manifest.push_str(&format!("{data},\"raw,\"\"q\"\"\"\n"));
    manifest.push_str(&format!("{data},line%0Abreak\n"));
    let mut objects: Vec<&str> = keys.to_vec();
    objects.push("raw,\"q\"");
    let (job, data) = run_csv(&s, manifest.as_bytes(), &objects).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!(job.progress.total_tasks, Some(objects.len() as u64 + 1));
    assert_eq!(
        (job.progress.succeeded, job.progress.failed),
        (objects.len() as u64, 1)
    );
    for key in &objects {
        assert_eq!(
            s.tags(&data, key).await.get("t").map(String::as_str),
            Some("1"),
            "{key:?}"
        );
    }
    let (_, rows) = s.report(&data, "reports", &job.job_id).await;
    let mut reported: Vec<&str> = rows.iter().map(|r| r.task.key.as_str()).collect();
    reported.sort_unstable();
    let mut expected = objects.clone();
    expected.push("line\nbreak");
    expected.sort_unstable();
    assert_eq!(reported, expected, "every key reported as it is");
}

#[tokio::test]
async fn a_key_longer_than_s3_allows_is_a_failed_task_not_a_failed_job() {
    let s = stack().await;
    let data = s.bucket("data");
    let long = "k".repeat(1025);
    let manifest = format!("{data},ok\n{data},{long}\n");
    let (job, data) = run_csv(&s, manifest.as_bytes(), &["ok"]).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!((job.progress.succeeded, job.progress.failed), (1, 1));
    let (_, rows) = s.report(&data, "reports", &job.job_id).await;
    let failed: Vec<_> = rows
        .iter()
        .filter(|r| r.status == TaskStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].task.key, long);
    assert_eq!(
        failed[0].error_code.as_deref(),
        Some("KeyTooLongError"),
        "{:?}",
        failed[0]
    );
}

#[tokio::test]
async fn duplicate_manifest_rows_are_each_a_task() {
    let s = stack().await;
    let data = s.bucket("data");
    let manifest = format!("{data},a\n{data},a\n{data},b\n{data},a\n");
    let (job, data) = run_csv(&s, manifest.as_bytes(), &["a", "b"]).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!(job.progress.total_tasks, Some(4));
    assert_eq!(job.progress.succeeded, 4);
    let (_, rows) = s.report(&data, "reports", &job.job_id).await;
    assert_eq!(rows.iter().filter(|r| r.task.key == "a").count(), 3);
}

#[tokio::test]
async fn a_bucket_that_does_not_exist_fails_its_tasks() {
    let s = stack().await;
    let data = s.bucket("data");
    let ghost = s.bucket("ghost");
    let manifest = format!("{data},ok\n{ghost},x\n{ghost},y\n");
    let (job, data) = run_csv(&s, manifest.as_bytes(), &["ok"]).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!((job.progress.succeeded, job.progress.failed), (1, 2));
    let (_, rows) = s.report(&data, "reports", &job.job_id).await;
    for row in rows.iter().filter(|r| r.task.bucket == ghost) {
        assert_eq!(row.error_code.as_deref(), Some("NoSuchBucket"), "{row:?}");
        assert_eq!(row.http_status, Some(404));
    }
}

#[tokio::test]
async fn a_report_bucket_that_does_not_exist_fails_the_job_before_any_task() {
    let s = stack().await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    s.put(&data, "obj", "x").await;
    let etag = s
        .put_manifest(&data, "m.csv", &[(data.clone(), "obj".into())])
        .await;
    let missing = s.bucket("no-report-here");
    let request = csv_job(
        &data,
        "m.csv",
        &etag,
        tagging(&[("k", "v")]),
        &missing,
        "AllTasks",
    );
    let job_id = s.create_job(request).await;
    let job = s.run_job(&job_id).await;
    assert_failed(
        &job,
        "ReportNotWritten",
        &format!("the report bucket {missing} does not exist"),
    );
    assert!(
        s.tags(&data, "obj").await.is_empty(),
        "no object was changed"
    );
    assert_eq!(job.progress.total_tasks, Some(0));
}

// ---------------------------------------------------------------------------------------------
// Inventory reports that lie.

/// Writes one gzipped inventory data file and a manifest.json (built by `manifest_json` from the
/// data file's key, size and MD5) and runs a tagging job over it.
async fn run_inventory(
    s: &Stack,
    data_file: Vec<u8>,
    manifest_json: impl FnOnce(&str, usize, String) -> Vec<u8>,
) -> Job {
    let bucket = s.bucket("inv");
    s.create_bucket(&bucket).await;
    s.put(&bucket, "obj", "x").await;
    let md5 = common::md5_hex(&data_file);
    let size = data_file.len();
    put_bytes(s, &bucket, "inv/data/1.csv.gz", data_file).await;
    let manifest = manifest_json(&bucket, size, md5);
    let etag = put_bytes(s, &bucket, "inv/manifest.json", manifest).await;
    let mut request = csv_job(
        &bucket,
        "inv/manifest.json",
        &etag,
        tagging(&[("t", "1")]),
        &bucket,
        "AllTasks",
    );
    request["Manifest"]["Spec"] = json!({"Format": "S3InventoryReport_CSV_20161130"});
    let job_id = s.create_job(request).await;
    s.run_job(&job_id).await
}

fn inventory_json(bucket: &str, format: &str, files: Value) -> Vec<u8> {
    json!({
        "sourceBucket": bucket, "destinationBucket": format!("arn:aws:s3:::{bucket}"),
        "version": "2016-11-30", "fileFormat": format, "fileSchema": "Bucket, Key",
        "files": files
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn inventory_manifests_that_lie_fail_the_job_clearly() {
    type Case = (
        &'static str,
        Box<dyn Fn(&str) -> Vec<u8>>,
        Box<dyn Fn(&str, usize, String) -> Vec<u8>>,
        &'static str,
    );
    let good_data = |bucket: &str| common::gzip(format!("\"{bucket}\",\"obj\"\n").as_bytes());
    let cases: Vec<Case> = vec![
        (
            "manifest.json not JSON",
            Box::new(good_data),
            Box::new(|_, _, _| b"<xml/>".to_vec()),
            "not a valid S3 Inventory manifest.json: expected value",
        ),
        (
            "manifest.json an array",
            Box::new(good_data),
            Box::new(|_, _, _| b"[]".to_vec()),
            "expected an object with sourceBucket, fileFormat, fileSchema and files, got an array",
        ),
        (
            "unknown fileFormat",
            Box::new(good_data),
            Box::new(|b, size, md5| {
                inventory_json(
                    b,
                    "Avro",
                    json!([{"key": "inv/data/1.csv.gz", "size": size, "MD5checksum": md5}]),
                )
            }),
            "Avro",
        ),
        (
            "missing data file",
            Box::new(good_data),
            Box::new(|b, size, md5| {
                inventory_json(
                    b,
                    "CSV",
                    json!([{"key": "inv/data/gone.csv.gz", "size": size, "MD5checksum": md5}]),
                )
            }),
            "inv/data/gone.csv.gz",
        ),
        (
            "wrong MD5",
            Box::new(good_data),
            Box::new(|b, size, _| {
                inventory_json(
                    b,
                    "CSV",
                    json!([{"key": "inv/data/1.csv.gz", "size": size, "MD5checksum": "0123456789abcdef0123456789abcdef"}]),
                )
            }),
            "MD5 mismatch",
        ),
        (
            "truncated gzip",
            Box::new(move |b: &str| {
                let gz = good_data(b);
                gz[..gz.len() - 6].to_vec()
            }),
            Box::new(|b, size, md5| {
                inventory_json(
                    b,
                    "CSV",
                    json!([{"key": "inv/data/1.csv.gz", "size": size, "MD5checksum": md5}]),
                )
            }),
            "inv/data/1.csv.gz",
        ),
    ];
    for (name, data_file, manifest, reason) in cases {
        eprintln!("case: {name}");
        let s = stack().await;
        let bucket = s.bucket("inv");
        let job = run_inventory(&s, data_file(&bucket), manifest).await;
        assert_failed(&job, "ManifestReadFailed", reason);
        assert!(
            s.tags(&bucket, "obj").await.is_empty(),
            "{name}: no object was changed"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Messages nobody sent.

async fn send(s: &Stack, queue_url: &str, body: &str) {
    s.ctx
        .sqs
        .send_message()
        .queue_url(queue_url)
        .message_body(body)
        .send()
        .await
        .unwrap();
}

/// A job of `n` tasks over objects that exist; returns its id and the data bucket.
async fn tagging_job(s: &Stack, n: usize) -> (String, String) {
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    let mut rows = Vec::new();
    for i in 0..n {
        let key = format!("k{i:04}");
        s.put(&data, &key, "x").await;
        rows.push((data.clone(), key));
    }
    let etag = s.put_manifest(&data, "m.csv", &rows).await;
    let id = s
        .create_job(csv_job(
            &data,
            "m.csv",
            &etag,
            tagging(&[("t", "1")]),
            &data,
            "AllTasks",
        ))
        .await;
    (id, data)
}

#[tokio::test]
async fn garbage_on_every_queue_is_dead_lettered_and_no_task_is_lost() {
    let s = stack().await;
    let (job_id, data) = tagging_job(&s, 40).await;
    let settings = s.ctx.settings.clone();
    for url in [
        &settings.plan_queue_url,
        &settings.task_queue_url,
        &settings.report_queue_url,
    ] {
        send(&s, url, "this is not JSON").await;
        send(&s, url, "{\"JobId\": 17}").await;
    }
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!(
        (
            job.progress.total_tasks,
            job.progress.succeeded,
            job.progress.failed
        ),
        (Some(40), 40, 0)
    );
    let (_, rows) = s.report(&data, "reports", &job_id).await;
    assert_eq!(rows.len(), 40);
    // The garbage ends in the dead-letter queues, where an operator (and the alarm) sees it.
    s.run_until_idle().await;
    let mut dead = 0;
    for url in [
        &settings.plan_queue_url,
        &settings.task_queue_url,
        &settings.report_queue_url,
    ] {
        let dlq = format!("{url}-dlq");
        dead += common::drain_queue(&s.ctx, &dlq).await.len();
        assert!(
            common::drain_queue(&s.ctx, url).await.is_empty(),
            "{url} is empty"
        );
    }
    assert_eq!(dead, 6, "every garbage message is dead-lettered");
}

#[tokio::test]
async fn a_batch_the_planner_never_sent_is_refused() {
    let s = stack().await;
    let (job_id, data) = tagging_job(&s, 100).await;
    // Planned (the job is Active, its one batch on the queue), then the forged batches arrive
    // first: a well-formed id the planner did not reach, and an id of no plan at all.
    let requests = common::drain_queue(&s.ctx, &s.ctx.settings.plan_queue_url).await;
    assert_eq!(requests.len(), 1);
    batchops::planner::plan_job(&s.ctx, &job_id).await.unwrap();
    let forged = json!({"JobId": job_id, "BatchId": "b00000077",
                        "Tasks": [[data, "k0001"], [data, "k0002"]]});
    let also = json!({"JobId": job_id, "BatchId": "evil", "Tasks": [[data, "k0003"]]});
    for body in [forged, also] {
        let result = batchops::executor::process_message(&s.ctx, &body.to_string())
            .await
            .unwrap();
        assert!(
            !matches!(result, batchops::executor::BatchResult::Committed(_)),
            "{body}: {result:?}"
        );
        assert_eq!(format!("{result:?}"), "Refused");
    }
    send(
        &s,
        &s.ctx.settings.task_queue_url.clone(),
        &json!({"JobId": job_id, "BatchId": "b00000078", "Tasks": [[data, "k0004"]]}).to_string(),
    )
    .await;
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!(job.progress.total_tasks, Some(100));
    assert_eq!(
        (job.progress.succeeded, job.progress.failed),
        (100, 0),
        "not 102 of 100"
    );
    let (_, rows) = s.report(&data, "reports", &job_id).await;
    assert_eq!(rows.len(), 100);
    let batches = s.ctx.store().list_batches(&job_id).await.unwrap();
    assert!(batches
        .iter()
        .all(|b| b.batch_id != "b00000077" && b.batch_id != "evil"));
}

// ---------------------------------------------------------------------------------------------
// Two runners, and runners killed.

fn local_run(s: &Stack, job_id: &str) -> Command {
    let mut command = cli(s);
    command
        .args([
            "local",
            "run",
            "--job-id",
            job_id,
            "--timeout-seconds",
            "240",
            "--progress-seconds",
            "0",
            "--sweep-seconds",
            "2",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

async fn assert_exact(s: &Stack, job_id: &str, data: &str, n: u64) {
    let job = s.ctx.store().get_job(job_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Complete, "{:?}", job.failure_reasons);
    assert_eq!(job.progress.total_tasks, Some(n));
    assert_eq!((job.progress.succeeded, job.progress.failed), (n, 0));
    let (manifest, rows) = s.report(data, "reports", job_id).await;
    assert_eq!(rows.len() as u64, n, "{manifest:?}");
    let mut keys: Vec<&str> = rows.iter().map(|r| r.task.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len() as u64, n, "no task reported twice");
}

#[tokio::test]
async fn two_local_runs_on_the_same_job_count_every_task_once() {
    let s = stack().await;
    let (job_id, data) = tagging_job(&s, 300).await;
    let a = local_run(&s, &job_id).spawn().unwrap();
    let b = local_run(&s, &job_id).spawn().unwrap();
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_exact(&s, &job_id, &data, 300).await;
}

#[tokio::test]
async fn local_run_killed_at_random_points_and_started_again_finishes_exactly() {
    let s = stack().await;
    let (job_id, data) = tagging_job(&s, 600).await;
    // Seeded so that a failure can be replayed: the kill points in milliseconds.
    let seed: u64 = std::env::var("HOSTILE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(11);
    let mut state = seed;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        200 + (state >> 33) % 1500
    };
    eprintln!("kill seed {seed}");
    for round in 0..5 {
        let mut child = local_run(&s, &job_id).spawn().unwrap();
        let wait = Duration::from_millis(next());
        std::thread::sleep(wait);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        eprintln!("round {round}: killed after {wait:?}");
    }
    let out = local_run(&s, &job_id).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_exact(&s, &job_id, &data, 600).await;
    // Every object tagged once is enough to prove the effect; the counts prove once.
    assert_eq!(
        s.tags(&data, "k0599").await.get("t").map(String::as_str),
        Some("1")
    );
}

#[tokio::test]
async fn create_job_parses_what_the_cli_reads() {
    // The library entry point refuses the same shapes as the CLI.
    let err = CreateJobRequest::parse("[]").unwrap_err().to_string();
    assert!(err.contains("got an array"), "{err}");
    let s = stack().await;
    let request = CreateJobRequest::parse(&valid_job(&s).await.to_string()).unwrap();
    assert!(control::create_job(&s.ctx, request, None).await.is_ok());
}
