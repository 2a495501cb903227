//! End-to-end jobs against a real moto server: the planner, executor and reporter handlers run
//! in-process through `batchops::local`, exactly as `batchops local run` runs them.

use crate::common;

use aws_sdk_s3::primitives::ByteStream;
use batchops::control;
use batchops::executor::{self, BatchResult};
use batchops::job::{CreateJobRequest, JobStatus};
use batchops::manifest::encode_key;
use batchops::report::TaskStatus;
use common::stack::{csv_job, stack, stack_with, tagging, Stack};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const TRICKY_KEYS: &[&str] = &[
    "plain.txt",
    "dir/with space.txt",
    "dir/plus+sign.txt",
    "dir/100% done.txt",
    "dir/ünïcødé ☃.txt",
    "dir/comma, separated.txt",
    "dir/quote\"d.txt",
];

#[tokio::test]
async fn csv_manifest_tagging_job_tags_every_object_and_reports_it() {
    let s = stack().await;
    let (data, reports) = (s.bucket("data"), s.bucket("reports"));
    s.create_bucket(&data).await;
    s.create_bucket(&reports).await;
    let mut keys: Vec<String> = TRICKY_KEYS.iter().map(|k| k.to_string()).collect();
    keys.extend((0..60).map(|i| format!("bulk/object-{i:03}")));
    for key in &keys {
        s.put(&data, key, "x").await;
        s.ctx
            .s3
            .put_object_tagging()
            .bucket(&data)
            .key(key)
            .tagging(
                aws_sdk_s3::types::Tagging::builder()
                    .tag_set(
                        aws_sdk_s3::types::Tag::builder()
                            .key("old")
                            .value("1")
                            .build()
                            .unwrap(),
                    )
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
    let rows: Vec<(String, String)> = keys.iter().map(|k| (data.clone(), k.clone())).collect();
    let etag = s.put_manifest(&data, "manifest.csv", &rows).await;
    let job_id = s
        .create_job(csv_job(
            &data,
            "manifest.csv",
            &etag,
            tagging(&[("project", "blue"), ("tier", "2")]),
            &reports,
            "AllTasks",
        ))
        .await;

    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!(job.progress.total_tasks, Some(keys.len() as u64));
    assert_eq!(
        (job.progress.succeeded, job.progress.failed),
        (keys.len() as u64, 0)
    );

    // Replace all tags: the old tag is gone, the new ones are there, on every object.
    let expected: BTreeMap<String, String> = [("project", "blue"), ("tier", "2")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for key in &keys {
        assert_eq!(s.tags(&data, key).await, expected, "tags of {key:?}");
    }

    let (manifest, rows) = s.report(&reports, "reports", &job_id).await;
    assert_eq!(manifest.format, "Report_CSV_20180820");
    assert_eq!(rows.len(), keys.len());
    let mut reported: Vec<String> = rows.iter().map(|r| r.task.key.clone()).collect();
    reported.sort();
    let mut wanted = keys.clone();
    wanted.sort();
    assert_eq!(
        reported, wanted,
        "every task reported exactly once, keys decoded back"
    );
    assert!(rows
        .iter()
        .all(|r| r.status == TaskStatus::Succeeded && r.http_status == Some(200)));

    let described = s.describe(&job_id).await;
    assert_eq!(described["Job"]["Status"], "Complete");
    assert_eq!(
        described["Job"]["ProgressSummary"]["NumberOfTasksSucceeded"],
        keys.len() as u64
    );
    assert!(described["Job"]["TerminationDate"].is_string());
}

#[tokio::test]
async fn missing_objects_fail_with_no_such_key_and_failed_only_report_lists_just_them() {
    let s = stack().await;
    let (data, reports) = (s.bucket("data"), s.bucket("reports"));
    s.create_bucket(&data).await;
    s.create_bucket(&reports).await;
    let mut rows = Vec::new();
    for i in 0..10 {
        let key = format!("present-{i}");
        s.put(&data, &key, "x").await;
        rows.push((data.clone(), key));
    }
    for i in 0..4 {
        rows.push((data.clone(), format!("missing-{i}")));
    }
    let etag = s.put_manifest(&data, "m.csv", &rows).await;
    let job_id = s
        .create_job(csv_job(
            &data,
            "m.csv",
            &etag,
            tagging(&[("k", "v")]),
            &reports,
            "FailedTasksOnly",
        ))
        .await;
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!((job.progress.succeeded, job.progress.failed), (10, 4));

    let (manifest, rows) = s.report(&reports, "reports", &job_id).await;
    assert!(manifest
        .results
        .iter()
        .all(|r| r.task_execution_status == TaskStatus::Failed));
    assert_eq!(rows.len(), 4, "FailedTasksOnly lists only the failed tasks");
    for row in &rows {
        assert!(row.task.key.starts_with("missing-"));
        assert_eq!(row.error_code.as_deref(), Some("NoSuchKey"));
        assert_eq!(row.http_status, Some(404));
    }
}

/// The usual nightly job: FailedTasksOnly, and nothing fails. Every batch then writes no result
/// part, and the job must still end Complete with a report that lists no files.
#[tokio::test]
async fn failed_tasks_only_report_of_a_job_where_nothing_fails_completes() {
    let s = stack().await;
    let (data, reports) = (s.bucket("data"), s.bucket("reports"));
    s.create_bucket(&data).await;
    s.create_bucket(&reports).await;
    let mut rows = Vec::new();
    for i in 0..12 {
        let key = format!("fine-{i}");
        s.put(&data, &key, "x").await;
        rows.push((data.clone(), key));
    }
    let etag = s.put_manifest(&data, "m.csv", &rows).await;
    let job_id = s
        .create_job(csv_job(
            &data,
            "m.csv",
            &etag,
            tagging(&[("k", "v")]),
            &reports,
            "FailedTasksOnly",
        ))
        .await;
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete, "{:?}", job.failure_reasons);
    assert!(job.failure_reasons.is_empty(), "{:?}", job.failure_reasons);
    assert_eq!((job.progress.succeeded, job.progress.failed), (12, 0));
    let (manifest, rows) = s.report(&reports, "reports", &job_id).await;
    assert!(manifest.results.is_empty(), "{:?}", manifest.results);
    assert!(rows.is_empty());
}

#[tokio::test]
async fn wrong_manifest_etag_fails_the_job_with_a_clear_reason() {
    let s = stack().await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    s.put(&data, "a", "x").await;
    s.put_manifest(&data, "m.csv", &[(data.clone(), "a".to_string())])
        .await;
    let job_id = s
        .create_job(csv_job(
            &data,
            "m.csv",
            "0123456789abcdef0123456789abcdef",
            json!({"S3DeleteObjectTagging": {}}),
            &data,
            "AllTasks",
        ))
        .await;
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Failed);
    let reason = &job
        .failure_reasons
        .first()
        .expect("a failure reason")
        .failure_reason;
    assert!(reason.contains("ETag"), "{reason}");
    assert!(
        reason.contains("0123456789abcdef0123456789abcdef"),
        "{reason}"
    );
    assert_eq!(job.progress.succeeded + job.progress.failed, 0);
}

#[tokio::test]
async fn a_batch_delivered_twice_counts_once() {
    let s = stack_with(false, |st| st.max_message_bytes = 300).await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    let mut rows = Vec::new();
    for i in 0..30 {
        let key = format!("obj-{i:02}");
        s.put(&data, &key, "x").await;
        rows.push((data.clone(), key));
    }
    let etag = s.put_manifest(&data, "m.csv", &rows).await;
    let job_id = s
        .create_job(csv_job(
            &data,
            "m.csv",
            &etag,
            json!({"S3DeleteObjectTagging": {}}),
            &data,
            "AllTasks",
        ))
        .await;
    // Run only the planner, then take the task messages off the queue ourselves.
    plan_only(&s, &job_id).await;
    let bodies = common::drain_queue(&s.ctx, &s.ctx.settings.task_queue_url).await;
    assert!(
        bodies.len() > 2,
        "small messages give several batches, got {}",
        bodies.len()
    );
    let mut committed = 0;
    for body in &bodies {
        // Every batch arrives twice, the second time while nothing else changed.
        let first = executor::process_message(&s.ctx, body).await.unwrap();
        let second = executor::process_message(&s.ctx, body).await.unwrap();
        assert!(matches!(first, BatchResult::Committed(_)), "{first:?}");
        assert_eq!(second, BatchResult::Duplicate);
        if let BatchResult::Committed(c) = first {
            committed += c.succeeded;
        }
    }
    assert_eq!(committed, 30);
    s.run_until_idle().await;
    let job = s.ctx.store().get_job(&job_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!((job.progress.succeeded, job.progress.failed), (30, 0));
    assert_eq!(job.progress.batches_committed, bodies.len() as u64);
    let (_, rows) = s.report(&data, "reports", &job_id).await;
    assert_eq!(rows.len(), 30, "the report has each task once");
}

#[tokio::test]
async fn failure_threshold_stops_a_job_where_every_task_fails() {
    // About 100 tasks per batch, so the threshold trips long before the 3,000th task.
    let s = stack_with(false, |st| st.max_message_bytes = 4000).await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    let rows: Vec<(String, String)> = (0..3000)
        .map(|i| (data.clone(), format!("nothing-here-{i:05}")))
        .collect();
    let etag = s.put_manifest(&data, "m.csv", &rows).await;
    let job_id = s
        .create_job(csv_job(
            &data,
            "m.csv",
            &etag,
            tagging(&[("k", "v")]),
            &data,
            "FailedTasksOnly",
        ))
        .await;
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Failed);
    let p = &job.progress;
    assert_eq!(p.total_tasks, Some(3000));
    assert_eq!(p.succeeded, 0);
    assert!(
        p.failed >= 1000,
        "ran at least the first 1,000 tasks: {p:?}"
    );
    assert!(p.not_run > 0, "remaining batches were not run: {p:?}");
    assert_eq!(
        p.failed + p.not_run,
        3000,
        "every task accounted for exactly once: {p:?}"
    );
    let reason = &job.failure_reasons[0];
    assert_eq!(reason.failure_code, batchops::job::THRESHOLD_FAILURE_CODE);
    let (_, report_rows) = s.report(&data, "reports", &job_id).await;
    assert_eq!(report_rows.len() as u64, p.failed);
}

#[tokio::test]
async fn confirmation_suspends_the_job_with_its_task_count_until_confirmed() {
    let s = stack().await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    let mut rows = Vec::new();
    for i in 0..5 {
        let key = format!("c-{i}");
        s.put(&data, &key, "x").await;
        rows.push((data.clone(), key));
    }
    let etag = s.put_manifest(&data, "m.csv", &rows).await;
    let mut request = csv_job(
        &data,
        "m.csv",
        &etag,
        tagging(&[("confirmed", "yes")]),
        &data,
        "AllTasks",
    );
    request["ConfirmationRequired"] = json!(true);
    let job_id = s.create_job(request.clone()).await;
    s.run_until_idle().await;
    let described = s.describe(&job_id).await;
    assert_eq!(described["Job"]["Status"], "Suspended");
    assert_eq!(described["Job"]["ProgressSummary"]["TotalNumberOfTasks"], 5);
    assert!(
        s.tags(&data, "c-0").await.is_empty(),
        "nothing runs before confirmation"
    );

    control::update_job_status(&s.ctx, &job_id, JobStatus::Ready, None)
        .await
        .unwrap();
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!(job.progress.succeeded, 5);
    assert_eq!(
        s.tags(&data, "c-4")
            .await
            .get("confirmed")
            .map(String::as_str),
        Some("yes")
    );

    // A second suspended job is cancelled instead: it ends Cancelled and touches nothing.
    request["Operation"] = tagging(&[("cancelled", "no")]);
    let cancelled = s.create_job(request).await;
    s.run_until_idle().await;
    control::update_job_status(
        &s.ctx,
        &cancelled,
        JobStatus::Cancelled,
        Some("changed my mind".into()),
    )
    .await
    .unwrap();
    let job = s.run_job(&cancelled).await;
    assert_eq!(job.status, JobStatus::Cancelled);
    assert!(!s.tags(&data, "c-0").await.contains_key("cancelled"));
}

#[tokio::test]
async fn cancelling_a_queued_job_runs_none_of_its_tasks() {
    let s = stack().await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    let mut rows = Vec::new();
    for i in 0..5 {
        let key = format!("k-{i}");
        s.put(&data, &key, "x").await;
        rows.push((data.clone(), key));
    }
    let etag = s.put_manifest(&data, "m.csv", &rows).await;
    let job_id = s
        .create_job(csv_job(
            &data,
            "m.csv",
            &etag,
            tagging(&[("ran", "yes")]),
            &data,
            "AllTasks",
        ))
        .await;
    control::update_job_status(&s.ctx, &job_id, JobStatus::Cancelled, None)
        .await
        .unwrap();
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Cancelled);
    assert_eq!(job.progress.succeeded + job.progress.failed, 0);
    assert!(s.tags(&data, "k-0").await.is_empty());
}

#[tokio::test]
async fn an_inventory_arrival_starts_the_templated_job_automatically() {
    let s = stack_with(true, |_| {}).await;
    let inventory = format!("inventory-{}", s.id);
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    let keys: Vec<String> = (0..20)
        .map(|i| format!("photos/{i:02}.jpg"))
        .chain(["photos/a b+c%d ☃.jpg".to_string()])
        .collect();
    for key in &keys {
        s.put(&data, key, "x").await;
    }

    let template = json!({
        "AccountId": "123456789012",
        "Operation": {"S3PutObjectTagging": {"TagSet": [{"Key": "inventoried", "Value": "yes"}]}},
        "Report": {"Bucket": format!("arn:aws:s3:::{data}"), "Format": "Report_CSV_20180820",
                   "Enabled": true, "Prefix": "inventory-jobs", "ReportScope": "AllTasks"},
        "Priority": 5,
        "RoleArn": "arn:aws:iam::123456789012:role/batch"
    });
    let template = CreateJobRequest::parse(&template.to_string()).unwrap();
    control::put_job_template(
        &s.ctx,
        "nightly-tags",
        &format!("s3://{inventory}/inv/{data}/"),
        template,
    )
    .await
    .unwrap();

    // An S3 Inventory delivery: a gzipped CSV data file (all fields quoted, keys URL-encoded,
    // one delete marker that is not a task), then its manifest.json, which S3 writes last.
    let mut csv = String::new();
    for key in &keys {
        csv.push_str(&format!(
            "\"{data}\",\"{}\",\"false\",\"1\"\n",
            encode_key(key)
        ));
    }
    csv.push_str(&format!(
        "\"{data}\",\"photos/deleted.jpg\",\"true\",\"\"\n"
    ));
    let gz = common::gzip(csv.as_bytes());
    let data_key = format!("inv/{data}/daily/data/5f1e3c.csv.gz");
    s.ctx
        .s3
        .put_object()
        .bucket(&inventory)
        .key(&data_key)
        .body(ByteStream::from(gz.clone()))
        .send()
        .await
        .unwrap();
    let manifest = json!({
        "sourceBucket": data,
        "destinationBucket": format!("arn:aws:s3:::{inventory}"),
        "version": "2016-11-30",
        "creationTimestamp": "1732500000000",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, IsDeleteMarker, Size",
        "files": [{"key": data_key, "size": gz.len(), "MD5checksum": common::md5_hex(&gz)}]
    });
    s.put(
        &inventory,
        &format!("inv/{data}/daily/2026-11-24T01-00Z/manifest.json"),
        &manifest.to_string(),
    )
    .await;

    s.run_until_idle().await;
    let jobs = control::list_jobs(&s.ctx, &Default::default())
        .await
        .unwrap();
    let jobs = serde_json::to_value(jobs).unwrap();
    let jobs = jobs["Jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "one job per arrival: {jobs:?}");
    assert_eq!(jobs[0]["Status"], "Complete");
    assert_eq!(
        jobs[0]["ProgressSummary"]["NumberOfTasksSucceeded"],
        keys.len() as u64
    );
    for key in &keys {
        assert_eq!(
            s.tags(&data, key)
                .await
                .get("inventoried")
                .map(String::as_str),
            Some("yes"),
            "{key}"
        );
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
}

fn lambda_job(data: &str, etag: &str, schema: &str, user_arguments: Option<Value>) -> Value {
    let mut op = json!({
        // cargo lambda serves functions by bare name; S3 Control accepts a name as well as an ARN.
        "FunctionArn": "example-task-handler",
        "InvocationSchemaVersion": schema
    });
    if let Some(args) = user_arguments {
        op["UserArguments"] = args;
    }
    csv_job(
        data,
        "m.csv",
        etag,
        json!({"LambdaInvoke": op}),
        data,
        "AllTasks",
    )
}

async fn objects(s: &Stack, data: &str, keys: &[&str]) -> String {
    s.create_bucket(data).await;
    for key in keys {
        s.put(data, key, &format!("body of {key}")).await;
    }
    let rows: Vec<(String, String)> = keys
        .iter()
        .map(|k| (data.to_string(), k.to_string()))
        .collect();
    s.put_manifest(data, "m.csv", &rows).await
}

#[tokio::test]
async fn lambda_invoke_schema_1_0_returns_each_objects_sha256() {
    let s = stack().await.with_lambda().await;
    let data = s.bucket("data");
    let keys = ["a.txt", "dir/b c.txt", "simulate-function-error/c.txt"];
    let etag = objects(&s, &data, &keys).await;
    let job_id = s.create_job(lambda_job(&data, &etag, "1.0", None)).await;
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!((job.progress.succeeded, job.progress.failed), (2, 1));
    let (_, rows) = s.report(&data, "reports", &job_id).await;
    for row in rows {
        if row.task.key.starts_with("simulate-function-error/") {
            assert_eq!(row.status, TaskStatus::Failed);
            assert_eq!(row.error_code.as_deref(), Some("PermanentFailure"));
            assert!(
                row.result_message
                    .contains("Lambda returned function error"),
                "{}",
                row.result_message
            );
        } else {
            assert_eq!(row.status, TaskStatus::Succeeded);
            let body = format!("body of {}", row.task.key);
            assert_eq!(
                row.result_message,
                sha256_hex(body.as_bytes()),
                "{}",
                row.task.key
            );
        }
    }
}

#[tokio::test]
async fn lambda_invoke_schema_2_0_retries_temporary_failures_then_succeeds() {
    let s = stack().await.with_lambda().await;
    let data = s.bucket("data");
    let keys = ["one", "two", "three"];
    let etag = objects(&s, &data, &keys).await;
    let args = json!({"simulate": "temporary-once"});
    let job_id = s
        .create_job(lambda_job(&data, &etag, "2.0", Some(args)))
        .await;
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!((job.progress.succeeded, job.progress.failed), (3, 0));
    let (_, rows) = s.report(&data, "reports", &job_id).await;
    for row in rows {
        let body = format!("body of {}", row.task.key);
        assert_eq!(row.result_message, sha256_hex(body.as_bytes()));
    }
}

#[tokio::test]
async fn lambda_invoke_response_that_breaks_the_contract_fails_its_tasks_clearly() {
    let s = stack().await.with_lambda().await;
    let data = s.bucket("data");
    let etag = objects(&s, &data, &["x", "y"]).await;
    let job_id = s
        .create_job(lambda_job(
            &data,
            &etag,
            "2.0",
            Some(json!({"simulate": "malformed"})),
        ))
        .await;
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!((job.progress.succeeded, job.progress.failed), (0, 2));
    let (_, rows) = s.report(&data, "reports", &job_id).await;
    for row in rows {
        assert_eq!(row.status, TaskStatus::Failed);
        assert!(
            row.result_message.contains("invocation contract"),
            "{}",
            row.result_message
        );
    }
}

#[tokio::test]
async fn a_manifest_generator_job_acts_on_the_filtered_listing_and_writes_its_manifest() {
    let s = stack().await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    for key in [
        "logs/a.gz",
        "logs/b.gz",
        "logs/c.txt",
        "other/d.gz",
        "logs/big.gz",
    ] {
        let body = if key == "logs/big.gz" {
            "x".repeat(5000)
        } else {
            "x".to_string()
        };
        s.put(&data, key, &body).await;
    }
    let job = json!({
        "AccountId": "123456789012",
        "ConfirmationRequired": false,
        "Operation": tagging(&[("generated", "yes")]),
        "ManifestGenerator": {"S3JobManifestGenerator": {
            "SourceBucket": format!("arn:aws:s3:::{data}"),
            "EnableManifestOutput": true,
            "ManifestOutputLocation": {"Bucket": format!("arn:aws:s3:::{data}"),
                                       "ManifestPrefix": "generated",
                                       "ManifestFormat": "S3InventoryReport_CSV_20211130"},
            "Filter": {"KeyNameConstraint": {"MatchAnyPrefix": ["logs/"], "MatchAnySuffix": [".gz"]},
                       "ObjectSizeLessThanBytes": 1000}
        }},
        "Report": {"Bucket": format!("arn:aws:s3:::{data}"), "Format": "Report_CSV_20180820",
                   "Enabled": true, "Prefix": "reports", "ReportScope": "AllTasks"},
        "Priority": 1,
        "RoleArn": "arn:aws:iam::123456789012:role/batch"
    });
    let job_id = s.create_job(job).await;
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete, "{:?}", job.failure_reasons);
    assert_eq!(job.progress.total_tasks, Some(2));
    assert_eq!(job.progress.succeeded, 2);
    for (key, tagged) in [
        ("logs/a.gz", true),
        ("logs/b.gz", true),
        ("logs/c.txt", false),
        ("other/d.gz", false),
        ("logs/big.gz", false),
    ] {
        assert_eq!(
            s.tags(&data, key).await.contains_key("generated"),
            tagged,
            "{key}"
        );
    }
    // The generated manifest, as S3 writes one: manifest.json naming a gzipped CSV data file.
    let manifest: Value = serde_json::from_slice(
        &s.get(&data, &format!("generated/job-{job_id}/manifest.json"))
            .await,
    )
    .unwrap();
    assert_eq!(manifest["fileSchema"], "Bucket, Key");
    let file = &manifest["files"][0];
    let gz = s.get(&data, file["key"].as_str().unwrap()).await;
    assert_eq!(file["size"], gz.len());
    let mut rows = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut rows).unwrap();
    assert_eq!(
        rows,
        format!("\"{data}\",\"logs/a.gz\"\n\"{data}\",\"logs/b.gz\"\n")
    );
}

#[tokio::test]
async fn a_copy_job_copies_every_object_to_the_target_prefix_and_reports_missing_sources() {
    let s = stack().await;
    let (data, target) = (s.bucket("src"), s.bucket("dst"));
    s.create_bucket(&data).await;
    s.create_bucket(&target).await;
    let mut rows = Vec::new();
    for key in ["a.txt", "dir/b c+d.txt"] {
        s.put(&data, key, &format!("content of {key}")).await;
        rows.push((data.clone(), key.to_string()));
    }
    rows.push((data.clone(), "gone.txt".to_string()));
    let etag = s.put_manifest(&data, "m.csv", &rows).await;
    let copy = json!({"S3PutObjectCopy": {"TargetResource": format!("arn:aws:s3:::{target}"),
                                         "TargetKeyPrefix": "copied/"}});
    let job_id = s
        .create_job(csv_job(&data, "m.csv", &etag, copy, &data, "AllTasks"))
        .await;
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!((job.progress.succeeded, job.progress.failed), (2, 1));
    for key in ["a.txt", "dir/b c+d.txt"] {
        let body = s.get(&target, &format!("copied/{key}")).await;
        assert_eq!(body, format!("content of {key}").into_bytes(), "{key}");
    }
    let (_, rows) = s.report(&data, "reports", &job_id).await;
    let missing = rows.iter().find(|r| r.task.key == "gone.txt").unwrap();
    assert_eq!(
        (missing.error_code.as_deref(), missing.http_status),
        (Some("NoSuchKey"), Some(404))
    );
}

#[tokio::test]
async fn lambda_invoke_maps_every_result_code_and_a_response_missing_a_task() {
    let mut s = stack_with(false, |st| st.lambda_max_attempts = 1).await;
    s = s.with_lambda().await;
    let data = s.bucket("data");
    let etag = objects(&s, &data, &["p", "q"]).await;

    // The function answers without the task: treatMissingKeysAs defaults to PermanentFailure.
    let omitted = s
        .create_job(lambda_job(
            &data,
            &etag,
            "2.0",
            Some(json!({"simulate": "omit-results"})),
        ))
        .await;
    // TemporaryFailure with a single attempt allowed: the task fails as TemporaryFailure.
    let temporary = s
        .create_job(lambda_job(
            &data,
            &etag,
            "2.0",
            Some(json!({"simulate": "temporary-once"})),
        ))
        .await;
    for (job_id, code) in [
        (omitted, "PermanentFailure"),
        (temporary, "TemporaryFailure"),
    ] {
        let job = s.run_job(&job_id).await;
        assert_eq!(
            (job.progress.succeeded, job.progress.failed),
            (0, 2),
            "{code}"
        );
        let (_, rows) = s.report(&data, "reports", &job_id).await;
        assert_eq!(rows.len(), 2);
        for row in rows {
            assert_eq!(row.status, TaskStatus::Failed);
            assert_eq!(
                row.error_code.as_deref(),
                Some(code),
                "{}",
                row.result_message
            );
            assert_eq!(row.http_status, Some(200));
        }
    }

    // A missing object: the function itself answers PermanentFailure, with its reason.
    let rows = vec![
        (data.clone(), "p".to_string()),
        (data.clone(), "absent".to_string()),
    ];
    let etag = s.put_manifest(&data, "m.csv", &rows).await;
    let job_id = s.create_job(lambda_job(&data, &etag, "1.0", None)).await;
    let job = s.run_job(&job_id).await;
    assert_eq!((job.progress.succeeded, job.progress.failed), (1, 1));
    let (_, rows) = s.report(&data, "reports", &job_id).await;
    let absent = rows.iter().find(|r| r.task.key == "absent").unwrap();
    assert_eq!(absent.error_code.as_deref(), Some("PermanentFailure"));
    assert!(
        absent.result_message.contains("NoSuchKey"),
        "{}",
        absent.result_message
    );
    let present = rows.iter().find(|r| r.task.key == "p").unwrap();
    assert_eq!(present.result_message, sha256_hex(b"body of p"));
}

#[tokio::test]
async fn lambda_invoke_a_panicking_function_fails_its_tasks_as_an_unhandled_error_and_serves_on() {
    let s = stack().await.with_lambda().await;
    let data = s.bucket("data");
    let plain = ["a.txt", "dir/b c.txt", "e.txt"];
    let panicking = ["simulate-panic/c.txt", "simulate-panic/d e.txt"];
    let keys: Vec<&str> = plain.iter().chain(&panicking).copied().collect();
    let etag = objects(&s, &data, &keys).await;
    let job_id = s.create_job(lambda_job(&data, &etag, "1.0", None)).await;
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!((job.progress.succeeded, job.progress.failed), (3, 2));

    let (manifest, rows) = s.report(&data, "reports", &job_id).await;
    assert_eq!(rows.len(), keys.len());
    for row in &rows {
        if !row.task.key.starts_with("simulate-panic/") {
            assert_eq!(row.status, TaskStatus::Succeeded, "{}", row.task.key);
            let body = format!("body of {}", row.task.key);
            assert_eq!(row.result_message, sha256_hex(body.as_bytes()));
            continue;
        }
        // The runtime caught the panic and reported it as the invocation's error: Lambda's error
        // document, whose message carries the panic's.
        assert_eq!(row.status, TaskStatus::Failed, "{}", row.task.key);
        assert_eq!(row.http_status, Some(200));
        assert_eq!(row.error_code.as_deref(), Some("PermanentFailure"));
        let document = row
            .result_message
            .strip_prefix("Lambda returned function error: ")
            .unwrap_or_else(|| panic!("{}", row.result_message));
        let document: Value = serde_json::from_str(document).unwrap();
        assert_eq!(
            document["errorMessage"],
            "Lambda panicked: panic requested by the test knob `panic`"
        );
        assert!(document["errorType"].is_string(), "{document}");
    }

    // The rows as written: `failed,200,PermanentFailure,"Lambda returned function error: {...}"`.
    let mut failed_csv = String::new();
    for result in &manifest.results {
        if result.task_execution_status == TaskStatus::Failed {
            failed_csv
                .push_str(&String::from_utf8(s.get(&result.bucket, &result.key).await).unwrap());
        }
    }
    assert_eq!(failed_csv.lines().count(), panicking.len(), "{failed_csv}");
    for key in panicking {
        let prefix = format!(
            "{data},{},,failed,200,PermanentFailure,\"Lambda returned function error: {{\"\"errorType\"\":",
            encode_key(key)
        );
        let line = failed_csv
            .lines()
            .find(|line| line.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no row starting {prefix:?} in {failed_csv}"));
        assert!(
            line.ends_with(
                ",\"\"errorMessage\"\":\"\"Lambda panicked: panic requested by the test knob `panic`\"\"}\""
            ),
            "{line}"
        );
    }

    // The function survived its panics (or was restarted): a later job is served in full.
    let rows: Vec<(String, String)> = plain
        .iter()
        .map(|k| (data.clone(), k.to_string()))
        .collect();
    let etag = s.put_manifest(&data, "m.csv", &rows).await;
    let job_id = s.create_job(lambda_job(&data, &etag, "2.0", None)).await;
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!((job.progress.succeeded, job.progress.failed), (3, 0));
    let (_, rows) = s.report(&data, "reports", &job_id).await;
    assert_eq!(rows.len(), plain.len());
    for row in rows {
        assert_eq!(row.status, TaskStatus::Succeeded, "{}", row.result_message);
        let body = format!("body of {}", row.task.key);
        assert_eq!(row.result_message, sha256_hex(body.as_bytes()));
    }
}

/// Plans a job in place of the plan request that CreateJob queued; its batches stay queued.
async fn plan_only(s: &Stack, job_id: &str) {
    let requests = common::drain_queue(&s.ctx, &s.ctx.settings.plan_queue_url).await;
    assert_eq!(requests.len(), 1, "CreateJob queues one plan request");
    batchops::planner::plan_job(&s.ctx, job_id).await.unwrap();
}

/// Runs a job's planner and executor by hand and takes the finalize request off the report
/// queue, so that a test can change the result parts before the reporter reads them.
async fn plan_and_execute_without_reporting(s: &Stack, job_id: &str) {
    plan_only(s, job_id).await;
    for body in common::drain_queue(&s.ctx, &s.ctx.settings.task_queue_url).await {
        let result = executor::process_message(&s.ctx, &body).await.unwrap();
        assert!(matches!(result, BatchResult::Committed(_)), "{result:?}");
    }
    let finalize = common::drain_queue(&s.ctx, &s.ctx.settings.report_queue_url).await;
    assert_eq!(
        finalize.len(),
        1,
        "the last commit asks for the report once"
    );
}

#[tokio::test]
async fn a_report_over_more_parts_than_are_read_at_once_keeps_manifest_order_and_a_lost_part_fails_the_job(
) {
    // Small messages: many batches, more than the reporter reads at a time.
    let s = stack_with(false, |st| {
        st.max_message_bytes = 600;
        st.report_read_concurrency = 8;
    })
    .await;
    let (data, reports) = (s.bucket("data"), s.bucket("reports"));
    s.create_bucket(&data).await;
    s.create_bucket(&reports).await;
    let keys: Vec<String> = (0..300).map(|i| format!("ordered/object-{i:03}")).collect();
    let missing = |i: usize| i % 9 == 4;
    for (i, key) in keys.iter().enumerate() {
        if !missing(i) {
            s.put(&data, key, "x").await;
        }
    }
    let rows: Vec<(String, String)> = keys.iter().map(|k| (data.clone(), k.clone())).collect();
    let etag = s.put_manifest(&data, "m.csv", &rows).await;
    let request = csv_job(
        &data,
        "m.csv",
        &etag,
        tagging(&[("k", "v")]),
        &reports,
        "AllTasks",
    );

    let job_id = s.create_job(request.clone()).await;
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert!(
        job.progress.batches_committed > s.ctx.settings.report_read_concurrency as u64,
        "more parts than one read-ahead window: {}",
        job.progress.batches_committed
    );
    let (_, reported) = s.report(&reports, "reports", &job_id).await;
    let in_order = |status: TaskStatus| -> Vec<String> {
        reported
            .iter()
            .filter(|r| r.status == status)
            .map(|r| r.task.key.clone())
            .collect()
    };
    let listed = |want_missing: bool| -> Vec<String> {
        let picked = keys
            .iter()
            .enumerate()
            .filter(|(i, _)| missing(*i) == want_missing);
        picked.map(|(_, k)| k.clone()).collect()
    };
    assert_eq!(in_order(TaskStatus::Succeeded), listed(false));
    assert_eq!(in_order(TaskStatus::Failed), listed(true));

    // The same job again, but one result part in the middle is gone before the reporter runs.
    let job_id = s.create_job(request).await;
    plan_and_execute_without_reporting(&s, &job_id).await;
    let store = s.ctx.store();
    let mut batches = store.list_batches(&job_id).await.unwrap();
    batches.sort_by(|a, b| a.batch_id.cmp(&b.batch_id));
    let lost = batches[batches.len() / 2].parts[0].clone();
    s.ctx
        .s3
        .delete_object()
        .bucket(&s.ctx.settings.system_bucket)
        .key(&lost)
        .send()
        .await
        .unwrap();
    batchops::reporter::finalize_job(&s.ctx, &job_id)
        .await
        .unwrap();
    let job = store.get_job(&job_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    let failure = job.failure_reasons.first().expect("a failure reason");
    assert_eq!(
        failure.failure_code,
        batchops::reporter::PART_UNREADABLE_CODE
    );
    let object = format!("s3://{}/{lost}", s.ctx.settings.system_bucket);
    assert!(
        failure.failure_reason.contains(&object) && failure.failure_reason.contains("NoSuchKey"),
        "{}",
        failure.failure_reason
    );
}

/// The bucket's notification configuration, one line per entry.
async fn notifications(s: &Stack, bucket: &str) -> Vec<String> {
    let out = s
        .ctx
        .s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    batchops::trigger::describe(
        &aws_sdk_s3::types::NotificationConfiguration::builder()
            .set_queue_configurations(out.queue_configurations)
            .set_topic_configurations(out.topic_configurations)
            .set_lambda_function_configurations(out.lambda_function_configurations)
            .set_event_bridge_configuration(out.event_bridge_configuration)
            .build(),
    )
}

#[tokio::test]
async fn connect_inventory_keeps_the_buckets_other_notifications_and_eventbridge_arrivals_start_jobs(
) {
    use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
    use batchops::trigger::{connect_inventory, Via};
    let s = stack().await;
    let inventory = s.bucket("inventory");
    s.create_bucket(&inventory).await;
    // The bucket already notifies someone else's queue.
    let audit = common::create_queue(&s.ctx.sqs, &format!("audit-{}", s.id)).await;
    let audit_arn = batchops::local::queue_arn(&s.ctx.sqs, &audit)
        .await
        .unwrap();
    s.ctx
        .s3
        .put_bucket_notification_configuration()
        .bucket(&inventory)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .id("audit")
                        .queue_arn(&audit_arn)
                        .events(Event::S3ObjectRemoved)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let theirs = notifications(&s, &inventory).await;
    assert_eq!(theirs.len(), 1);
    let plan_arn = batchops::local::queue_arn(&s.ctx.sqs, &s.ctx.settings.plan_queue_url)
        .await
        .unwrap();

    // A preview shows the change and writes nothing.
    let preview = connect_inventory(&s.ctx, &inventory, &plan_arn, Via::Queue, false)
        .await
        .unwrap();
    assert!(!preview.applied);
    assert_eq!(preview.diff.len(), 1, "{:?}", preview.diff);
    assert!(preview.diff[0].starts_with("+ queue batchops-inventory-arrival -> "));
    assert_eq!(notifications(&s, &inventory).await, theirs);

    // Applied: batchops' entry added, the audit queue's kept; applying again changes nothing.
    let applied = connect_inventory(&s.ctx, &inventory, &plan_arn, Via::Queue, true)
        .await
        .unwrap();
    assert!(applied.applied);
    let now = notifications(&s, &inventory).await;
    assert_eq!(now.len(), 2);
    assert!(now.contains(&theirs[0]));
    let again = connect_inventory(&s.ctx, &inventory, &plan_arn, Via::Queue, true)
        .await
        .unwrap();
    assert!(again.diff.is_empty() && !again.applied);

    // EventBridge instead: switched on beside the others, and batchops' queue entry removed
    // so that an arrival does not come twice.
    // moto stores the switch but leaves it out of GetBucketNotificationConfiguration: the fault
    // layer (a no-op rule) sees it in the request written.
    use batchops::fault::{Fault, FaultPlan, FaultRule};
    let seen = FaultPlan::new(
        1,
        vec![FaultRule::new(
            "S3",
            "PutBucketNotificationConfiguration",
            Fault::Delay { millis: 0 },
        )
        .containing("<EventBridgeConfiguration")],
    );
    let watched = s.ctx.clone().with_faults(&s.config, seen.clone()).unwrap();
    let bridged = connect_inventory(&watched, &inventory, &plan_arn, Via::EventBridge, true)
        .await
        .unwrap();
    assert_eq!(bridged.diff.len(), 2, "{:?}", bridged.diff);
    assert!(bridged.diff[0].starts_with("- queue batchops-inventory-arrival -> "));
    assert_eq!(bridged.diff[1], "+ eventbridge on");
    assert_eq!(
        seen.fired(0),
        1,
        "the configuration written switches EventBridge on"
    );
    assert_eq!(notifications(&s, &inventory).await, theirs);

    // What the template's rule delivers to the plan queue starts the templated job.
    let template = json!({
        "AccountId": "123456789012",
        "Operation": {"S3PutObjectTagging": {"TagSet": [{"Key": "k", "Value": "v"}]}},
        "Report": {"Enabled": false},
        "Priority": 5,
        "RoleArn": "arn:aws:iam::123456789012:role/batch"
    });
    control::put_job_template(
        &s.ctx,
        "bridged",
        &format!("s3://{inventory}/inv/"),
        CreateJobRequest::parse(&template.to_string()).unwrap(),
    )
    .await
    .unwrap();
    let key = "inv/src/daily/2026-12-01T01-00Z/manifest.json";
    let body = s.put(&inventory, key, "{}").await;
    let event = json!({
        "version": "0", "id": "e1", "detail-type": "Object Created", "source": "aws.s3",
        "account": "123456789012", "region": "us-east-1",
        "resources": [format!("arn:aws:s3:::{inventory}")],
        "detail": {"version": "0", "bucket": {"name": inventory},
                   "object": {"key": key, "size": 2, "etag": body}, "reason": "PutObject"}
    });
    s.ctx
        .sqs
        .send_message()
        .queue_url(&s.ctx.settings.plan_queue_url)
        .message_body(event.to_string())
        .send()
        .await
        .unwrap();
    s.run_until_idle().await;
    let jobs = control::list_jobs(&s.ctx, &Default::default())
        .await
        .unwrap();
    let listed = serde_json::to_value(&jobs).unwrap();
    let created = listed["Jobs"].as_array().unwrap();
    assert_eq!(created.len(), 1, "{listed}");
    let job_id = created[0]["JobId"].as_str().unwrap();
    let job = s.ctx.store().get_job(job_id).await.unwrap();
    assert_eq!(
        job.manifest().unwrap().location.object_arn,
        format!("arn:aws:s3:::{inventory}/{key}")
    );
}

/// One look at two jobs: status and tasks done of each.
#[derive(Debug, Clone, Copy)]
struct Look {
    first: (JobStatus, u64),
    second: (JobStatus, u64),
}

/// Looks at two jobs every 20 ms until both have ended.
fn watch_two(s: &Stack, first: &str, second: &str) -> tokio::task::JoinHandle<Vec<Look>> {
    let store = s.ctx.store();
    let (first, second) = (first.to_string(), second.to_string());
    tokio::spawn(async move {
        let mut looks = Vec::new();
        loop {
            let a = store.get_job(&first).await.unwrap();
            let b = store.get_job(&second).await.unwrap();
            let done = |j: &batchops::job::Job| j.progress.succeeded + j.progress.failed;
            looks.push(Look {
                first: (a.status, done(&a)),
                second: (b.status, done(&b)),
            });
            if a.status.is_terminal() && b.status.is_terminal() {
                return looks;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
}

/// Waits until the job has done at least `n` tasks.
async fn until_done(s: &Stack, job_id: &str, n: u64) {
    let store = s.ctx.store();
    for _ in 0..3000 {
        let job = store.get_job(job_id).await.unwrap();
        if job.progress.succeeded + job.progress.failed >= n {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("job {job_id} never did {n} tasks");
}

/// The most tasks in one batch of the job.
async fn batch_size(s: &Stack, job_id: &str) -> u64 {
    let batches = s.ctx.store().list_batches(job_id).await.unwrap();
    batches.iter().map(|b| b.tasks).max().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_of_a_higher_priority_job_run_first_and_a_raised_priority_takes_over() {
    const N: u64 = 30;
    let s = stack_with(false, |st| {
        st.executor_concurrency = 1;
        st.max_message_bytes = 300;
        st.priority_wait = std::time::Duration::from_secs(1);
    })
    .await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    let mut jobs = BTreeMap::new();
    for name in ["low", "high", "a", "b"] {
        let rows: Vec<(String, String)> = (0..N)
            .map(|i| (data.clone(), format!("{name}/{i:02}")))
            .collect();
        for (_, key) in &rows {
            s.put(&data, key, "x").await;
        }
        let etag = s.put_manifest(&data, &format!("{name}.csv"), &rows).await;
        let mut job = csv_job(
            &data,
            &format!("{name}.csv"),
            &etag,
            tagging(&[("job", name)]),
            &data,
            "AllTasks",
        );
        job["Report"]["Enabled"] = json!(false);
        jobs.insert(name, job);
    }
    let with_priority = |name: &str, priority: i32| {
        let mut job = jobs[name].clone();
        job["Priority"] = json!(priority);
        job
    };
    let run = || {
        batchops::local::run(
            &s.ctx,
            batchops::local::RunUntil::Idle,
            common::stack::RUN_TIMEOUT,
        )
    };

    // A low-priority job is under way when one of higher priority arrives: the high job's
    // tasks all run before the low job's remaining ones (but for its batch in flight).
    let low = s.create_job(with_priority("low", 1)).await;
    let (ran, (high, looks)) = tokio::join!(run(), async {
        until_done(&s, &low, 4).await;
        let high = s.create_job(with_priority("high", 10)).await;
        (high.clone(), watch_two(&s, &low, &high).await.unwrap())
    });
    ran.unwrap();
    let per_batch = batch_size(&s, &low).await;
    assert!(
        per_batch < N / 3,
        "several batches per job ({per_batch} tasks each)"
    );
    let high_active = looks
        .iter()
        .position(|l| l.second.0 == JobStatus::Active)
        .expect("the high job ran");
    let high_done = looks
        .iter()
        .position(|l| l.second.1 == N)
        .expect("the high job finished");
    let (low_then, low_after) = (looks[high_active].first.1, looks[high_done].first.1);
    assert!(
        low_after <= low_then + per_batch && low_after < N,
        "the low job ran {} tasks while the high job ran (from {low_then}; one batch of {per_batch} may finish): {looks:?}",
        low_after - low_then
    );
    let low_statuses: Vec<JobStatus> = looks.iter().map(|l| l.first.0).collect();
    let paused = low_statuses
        .iter()
        .position(|&st| st == JobStatus::Paused)
        .expect("the low job waited in Paused");
    assert!(
        low_statuses[paused..].contains(&JobStatus::Active),
        "and came back to Active: {low_statuses:?}"
    );
    let store = s.ctx.store();
    for (id, name) in [(&low, "low"), (&high, "high")] {
        let job = store.get_job(id).await.unwrap();
        assert_eq!(job.status, JobStatus::Complete);
        assert_eq!((job.progress.succeeded, job.progress.failed), (N, 0));
        assert_eq!(
            s.tags(&data, &format!("{name}/07"))
                .await
                .get("job")
                .map(String::as_str),
            Some(name)
        );
    }
    // The priority of a job that has ended cannot change.
    let err = control::update_job_priority(&s.ctx, &low, 50)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("has ended"), "{err}");

    // Raising a waiting job's priority mid-way reverses the order.
    let a = s.create_job(with_priority("a", 5)).await;
    let b = s.create_job(with_priority("b", 10)).await;
    let (ran, (raised_at, looks)) = tokio::join!(run(), async {
        until_done(&s, &b, 4).await;
        let raised_at = store.get_job(&b).await.unwrap().progress.succeeded;
        control::update_job_priority(&s.ctx, &a, 20).await.unwrap();
        (raised_at, watch_two(&s, &a, &b).await.unwrap())
    });
    ran.unwrap();
    let a_done = looks
        .iter()
        .position(|l| l.first.1 == N)
        .expect("job a finished");
    let b_then = looks[a_done].second.1;
    assert!(
        b_then <= raised_at + 2 * per_batch && b_then < N,
        "job b ran {} tasks after job a was raised above it (from {raised_at}): {looks:?}",
        b_then - raised_at
    );
    assert!(looks.iter().any(|l| l.second.0 == JobStatus::Paused));
    for id in [&a, &b] {
        let job = store.get_job(id).await.unwrap();
        assert_eq!(job.status, JobStatus::Complete);
        assert_eq!((job.progress.succeeded, job.progress.failed), (N, 0));
    }
}

/// Requests per second between the `from`th and the `to`th of `times` (sorted).
fn rate_between(times: &[std::time::Instant], from: usize, to: usize) -> f64 {
    (to - from) as f64 / times[to].duration_since(times[from]).as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_job_keeps_its_rate_across_executors_and_takes_a_new_one_on_the_fly() {
    // Rates a loaded machine always carries: the test shares moto and two cores with the other
    // tests of the run (the chaos run among them). At 40 and 100 tasks/s, the executors managed
    // only 18.8 tasks/s beside the chaos run, which said nothing about the limiter.
    const N: u64 = 260;
    const LIMIT: u32 = 10;
    const RAISED: u32 = 25;
    let s = stack_with(false, |st| st.max_message_bytes = 1500).await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    let rows: Vec<(String, String)> = (0..N)
        .map(|i| (data.clone(), format!("rate/{i:03}")))
        .collect();
    for (_, key) in &rows {
        s.put(&data, key, "x").await;
    }
    let etag = s.put_manifest(&data, "rate.csv", &rows).await;
    let mut job = csv_job(
        &data,
        "rate.csv",
        &etag,
        tagging(&[("r", "1")]),
        &data,
        "AllTasks",
    );
    job["Report"]["Enabled"] = json!(false);

    // Refused as S3 refuses a bad field: the rate must be 1 to 100,000.
    for bad in [0, 100_001] {
        let mut refused = job.clone();
        refused["BatchOps"] = json!({"MaxTasksPerSecond": bad});
        let err = CreateJobRequest::parse(&refused.to_string())
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(
            err.to_string().contains("BatchOps.MaxTasksPerSecond"),
            "{err}"
        );
    }
    job["BatchOps"] = json!({"MaxTasksPerSecond": LIMIT});
    let job_id = s.create_job(job).await;
    assert_eq!(
        s.describe(&job_id).await["Job"]["BatchOps"],
        json!({"MaxTasksPerSecond": LIMIT})
    );

    // Every tagging request is seen (a rule that delays by nothing records its time), from two
    // executors with their own leases and task slots, as two Lambda containers.
    let seen = batchops::fault::FaultPlan::new(
        1,
        vec![batchops::fault::FaultRule::new(
            "S3",
            "PutObjectTagging",
            batchops::fault::Fault::Delay { millis: 0 },
        )],
    );
    let one = s.ctx.clone().with_faults(&s.config, seen.clone()).unwrap();
    let mut two = one.clone();
    two.rate_gates = Default::default();
    two.task_slots = Default::default();
    let (idle, timeout) = (
        || batchops::local::RunUntil::Idle,
        common::stack::RUN_TIMEOUT,
    );
    let store = s.ctx.store();
    let (a, b, raised_at) = tokio::join!(
        batchops::local::run(&one, idle(), timeout),
        batchops::local::run(&two, idle(), timeout),
        async {
            // Raised once 100 tasks have started.
            for _ in 0..12_000 {
                if seen.log().len() >= 100 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            assert!(
                seen.log().len() >= 100,
                "100 tagging requests within a minute"
            );
            control::update_job_rate(&s.ctx, &job_id, Some(RAISED))
                .await
                .unwrap();
            seen.log().len()
        }
    );
    a.unwrap();
    b.unwrap();
    let mut times: Vec<std::time::Instant> = seen.log().iter().map(|i| i.at).collect();
    times.sort();
    assert_eq!(times.len() as u64, N, "one request per task");
    let first = rate_between(&times, 10, 95);
    // A lease at the old rate may still be running when the rate changes: skip 40 tasks. The
    // last few tasks are left out too: the job's last batches end one by one.
    let second = rate_between(&times, raised_at + 40, N as usize - 20);
    println!(
        "rate limit {LIMIT}/s measured {first:.1}/s; raised to {RAISED}/s measured {second:.1}/s"
    );
    // The limit is held (within 10%: a lease's tokens start a little early) before and after the
    // raise, and the new one is taken: the rate rises above the old limit. How close the rate
    // comes to its limit (within 1% from 10 to 2,000 tasks/s) is the benchmark's
    // (benches/rate.rs, on a machine of its own): here the test shares two cores and moto with
    // the whole run, and CI once measured 5.4 tasks/s under a limit of 10 while the chaos run
    // and a release build took the machine.
    assert!(first <= 11.0, "{LIMIT} tasks/s measured {first:.1}");
    assert!(
        second > 11.0 && second <= 27.5,
        "after the raise to {RAISED} tasks/s, measured {second:.1}"
    );
    let job = store.get_job(&job_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!((job.progress.succeeded, job.progress.failed), (N, 0));
    assert_eq!(job.max_tasks_per_second, Some(RAISED));
    let err = control::update_job_rate(&s.ctx, &job_id, Some(10))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("has ended"), "{err}");
}

fn dry_run_input(request: Value, show_tasks: usize) -> control::DryRunJobInput {
    control::DryRunJobInput {
        request: Some(CreateJobRequest::parse(&request.to_string()).unwrap()),
        clone_of: None,
        show_tasks: Some(show_tasks),
        executor_invocations: None,
    }
}

async fn dry_run(
    s: &Stack,
    input: control::DryRunJobInput,
) -> batchops::Result<control::DryRunJobResponse> {
    let event = control::ControlRequest::DryRunJob(input)
        .to_event()
        .unwrap();
    let answer = control::handle(&s.ctx, event).await?;
    Ok(serde_json::from_value(answer).unwrap())
}

/// Nothing of a dry run stays behind: no job, no message on any queue.
async fn assert_nothing_created(s: &Stack) {
    let jobs = control::list_jobs(&s.ctx, &Default::default())
        .await
        .unwrap();
    assert!(jobs.jobs.is_empty(), "{:?}", jobs.jobs);
    for queue in [
        &s.ctx.settings.plan_queue_url,
        &s.ctx.settings.task_queue_url,
    ] {
        assert!(common::receive(&s.ctx, queue).await.is_empty(), "{queue}");
    }
}

#[tokio::test]
async fn a_dry_run_counts_prices_and_times_a_job_and_creates_nothing_and_touches_no_object() {
    let s = stack().await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    let keys: Vec<String> = (0..25).map(|i| format!("k/{i:02}")).collect();
    for key in &keys {
        s.put(&data, key, "x").await;
    }
    let rows: Vec<(String, String)> = keys.iter().map(|k| (data.clone(), k.clone())).collect();
    let etag = s.put_manifest(&data, "manifest.csv", &rows).await;
    let mut job = csv_job(
        &data,
        "manifest.csv",
        &etag,
        tagging(&[("dry", "run")]),
        &data,
        "AllTasks",
    );
    job["BatchOps"] = json!({"MaxTasksPerSecond": 5});

    let answer = dry_run(&s, dry_run_input(job.clone(), 3)).await.unwrap();
    assert_eq!(answer.operation, "S3PutObjectTagging");
    assert_eq!(answer.manifest, format!("s3://{data}/manifest.csv"));
    assert_eq!(answer.total_number_of_tasks, 25);
    assert_eq!((answer.tasks_with_size, answer.total_bytes), (0, 0));
    let first: Vec<&str> = answer.first_tasks.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(first, ["k/00", "k/01", "k/02"]);
    assert_eq!(answer.batches, 1);
    let tagging_requests = answer
        .requests
        .iter()
        .find(|r| r.request == "PutObjectTagging")
        .unwrap();
    assert_eq!(tagging_requests.count, 25);
    let fees = 0.25 + 25.0 * 1e-6 + 25.0 * 0.005 / 1000.0;
    let theirs = answer.cost.s3_batch_operations_total_usd.unwrap();
    assert!((theirs - fees).abs() < 1e-9, "{theirs} vs {fees}");
    assert!(answer.cost.batchops_total_usd < 0.01, "{:?}", answer.cost);
    assert_eq!(answer.duration.limited_by, "MaxTasksPerSecond");
    assert!(
        (answer.duration.seconds - 10.0).abs() < 1e-9,
        "{:?}",
        answer.duration
    );
    assert_nothing_created(&s).await;
    for key in &keys {
        assert!(s.tags(&data, key).await.is_empty(), "{key} was tagged");
    }

    // A manifest that is not there: the error CreateJob's planner would give, and still nothing.
    let mut missing = job.clone();
    missing["Manifest"]["Location"] = json!({"ObjectArn": format!("arn:aws:s3:::{data}/nope.csv")});
    let err = dry_run(&s, dry_run_input(missing, 3))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nope.csv") && err.contains("NoSuchKey"),
        "{err}"
    );
    // A request CreateJob refuses is refused the same.
    let mut bad = job.clone();
    bad["Priority"] = json!(-1);
    let err = dry_run(&s, dry_run_input(bad, 3))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Priority"), "{err}");
    assert_nothing_created(&s).await;

    // --clone-of: the spec of an existing job, read again.
    let job_id = s.create_job(job).await;
    let clone = control::DryRunJobInput {
        request: None,
        clone_of: Some(job_id),
        show_tasks: None,
        executor_invocations: Some(2),
    };
    let answer = dry_run(&s, clone).await.unwrap();
    assert_eq!(answer.total_number_of_tasks, 25);
    assert_eq!(answer.first_tasks.len(), 10);
    assert_eq!(answer.duration.tasks_in_flight, 2 * 32);
}

#[tokio::test]
async fn a_dry_run_of_a_manifest_generator_knows_the_bytes_and_writes_no_manifest() {
    let s = stack().await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    for (key, size) in [
        ("logs/a.gz", 100),
        ("logs/b.gz", 300),
        ("logs/c.txt", 7),
        ("other/d.gz", 9),
    ] {
        s.put(&data, key, &"x".repeat(size)).await;
    }
    let job = json!({
        "Operation": {"S3PutObjectCopy": {"TargetResource": format!("arn:aws:s3:::{data}"), "TargetKeyPrefix": "copies"}},
        "ManifestGenerator": {"S3JobManifestGenerator": {
            "SourceBucket": format!("arn:aws:s3:::{data}"),
            "EnableManifestOutput": true,
            "ManifestOutputLocation": {"Bucket": format!("arn:aws:s3:::{data}"),
                                       "ManifestPrefix": "generated",
                                       "ManifestFormat": "S3InventoryReport_CSV_20211130"},
            "Filter": {"KeyNameConstraint": {"MatchAnyPrefix": ["logs/"], "MatchAnySuffix": [".gz"]}}
        }},
        "Report": {"Enabled": false},
        "Priority": 1,
        "RoleArn": "arn:aws:iam::123456789012:role/batch"
    });
    let answer = dry_run(&s, dry_run_input(job, 10)).await.unwrap();
    assert_eq!(answer.manifest, format!("s3://{data} (manifest generator)"));
    assert_eq!(answer.total_number_of_tasks, 2);
    assert_eq!((answer.tasks_with_size, answer.total_bytes), (2, 400));
    let sizes: Vec<Option<u64>> = answer.first_tasks.iter().map(|t| t.size).collect();
    assert_eq!(sizes, [Some(100), Some(300)]);
    let count = |name: &str, of: batchops::dry_run::RequestsOf| {
        answer
            .requests
            .iter()
            .find(|r| r.request == name && r.of == of)
            .map(|r| r.count)
    };
    use batchops::dry_run::RequestsOf::{Batchops, Tasks};
    // One CopyObject per task, nothing asked first: both sizes are within the threshold.
    assert_eq!(
        (count("HeadObject", Tasks), count("CopyObject", Tasks)),
        (None, Some(2))
    );
    assert_eq!(count("ListObjectsV2", Batchops), Some(1));
    let listed = s
        .ctx
        .s3
        .list_objects_v2()
        .bucket(&data)
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(
        keys,
        ["logs/a.gz", "logs/b.gz", "logs/c.txt", "other/d.gz"],
        "a dry run writes nothing"
    );
    assert_nothing_created(&s).await;
}

#[tokio::test]
async fn every_status_change_is_an_eventbridge_event_and_every_batch_puts_its_metrics() {
    let bus = format!("jobs-{}", common::unique_suffix());
    let mut s = stack_with(false, |settings| settings.event_bus = Some(bus.clone())).await;
    let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    s.ctx.metrics = batchops::context::MetricsSink::Memory(kept.clone());
    // A rule on the bus sends batchops' events to a queue, where the test reads them.
    let queue = common::create_queue(&s.ctx.sqs, &format!("events-{}", s.id)).await;
    let queue_arn = batchops::local::queue_arn(&s.ctx.sqs, &queue)
        .await
        .unwrap();
    s.ctx
        .eventbridge
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .unwrap();
    s.ctx
        .eventbridge
        .put_rule()
        .name("job-status")
        .event_bus_name(&bus)
        .event_pattern(
            json!({"source": ["batchops"], "detail-type": ["JobStatusChanged"]}).to_string(),
        )
        .send()
        .await
        .unwrap();
    s.ctx
        .eventbridge
        .put_targets()
        .rule("job-status")
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(&queue_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let data = s.bucket("data");
    s.create_bucket(&data).await;
    let rows: Vec<(String, String)> = (0..30)
        .map(|i| (data.clone(), format!("k/{i:02}")))
        .collect();
    for (_, key) in rows.iter().skip(2) {
        s.put(&data, key, "x").await;
    }
    let etag = s.put_manifest(&data, "manifest.csv", &rows).await;
    let job = csv_job(
        &data,
        "manifest.csv",
        &etag,
        tagging(&[("t", "v")]),
        &data,
        "AllTasks",
    );
    let job_id = s.create_job(job).await;
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete);

    let mut changes = Vec::new();
    loop {
        let messages = common::receive(&s.ctx, &queue).await;
        if messages.is_empty() {
            break;
        }
        for message in messages {
            let event: Value = serde_json::from_str(message.body().unwrap()).unwrap();
            assert_eq!(event["source"], "batchops", "{event}");
            assert_eq!(event["detail-type"], "JobStatusChanged", "{event}");
            let details = event["detail"]["serviceEventDetails"].clone();
            assert_eq!(details["jobId"], job_id.as_str(), "{event}");
            assert_eq!(details["jobArn"], job.job_arn().as_str(), "{event}");
            changes.push((
                details["previousStatus"].as_str().unwrap().to_string(),
                details["status"].as_str().unwrap().to_string(),
            ));
            common::delete(&s.ctx, &queue, &message).await;
        }
    }
    changes.sort_by_key(|(_, to)| {
        ["Preparing", "Active", "Complete"]
            .iter()
            .position(|s| s == to)
    });
    assert_eq!(
        changes,
        [
            ("New", "Preparing"),
            ("Preparing", "Active"),
            ("Active", "Complete")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );

    // The executor's EMF documents add up to the job's counts: 28 tagged, 2 missing.
    let docs = kept.lock().unwrap().clone();
    assert!(!docs.is_empty());
    let sum = |name: &str| docs.iter().map(|d| d[name].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("TasksSucceeded"), sum("TasksFailed")), (28, 2));
    let latencies: usize = docs
        .iter()
        .map(|d| d["TaskLatency"].as_array().unwrap().len())
        .sum();
    assert_eq!(latencies, 30, "one latency per task");
    for doc in &docs {
        assert_eq!(doc["JobId"], job_id.as_str());
        assert_eq!(doc["Operation"], "S3PutObjectTagging");
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "batchops");
    }
}

#[tokio::test]
async fn a_manifest_generator_job_filtered_by_encryption_acts_only_on_those_objects() {
    let s = stack().await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    for (key, sse) in [("a", true), ("b", false), ("c", true), ("d", false)] {
        let mut put = s
            .ctx
            .s3
            .put_object()
            .bucket(&data)
            .key(key)
            .body(ByteStream::from_static(b"x"));
        if sse {
            put = put.server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::Aes256);
        }
        put.send().await.unwrap();
    }
    let job = json!({
        "AccountId": "123456789012",
        "ConfirmationRequired": false,
        "Operation": tagging(&[("sse", "s3")]),
        "ManifestGenerator": {"S3JobManifestGenerator": {
            "SourceBucket": format!("arn:aws:s3:::{data}"),
            "EnableManifestOutput": false,
            "Filter": {"MatchAnyObjectEncryption": [{"SSES3": {}}]}
        }},
        "Report": {"Enabled": false},
        "Priority": 1,
        "RoleArn": "arn:aws:iam::123456789012:role/batch"
    });
    let job_id = s.create_job(job).await;
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete, "{:?}", job.failure_reasons);
    assert_eq!(job.progress.total_tasks, Some(2));
    for (key, tagged) in [("a", true), ("b", false), ("c", true), ("d", false)] {
        assert_eq!(
            s.tags(&data, key).await.contains_key("sse"),
            tagged,
            "{key}"
        );
    }
}
