//! Manifests read once, pinned: a CSV manifest replaced between two planning runs is read at
//! its pinned version or fails the job clearly, never mixed; continuations read on from a byte
//! offset; a manifest generator lists once and plans from that listing; an inventory data file
//! whose MD5 is wrong sends no task at all.

use crate::common;

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use batchops::job::JobStatus;
use batchops::plan::TaskBatch;
use batchops::Context;
use common::stack::{csv_job, stack_with, tagging, Stack};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A stack whose planner stops after every batch (a continuation per batch).
async fn continuing_stack(max_message_bytes: usize) -> Stack {
    stack_with(false, |st| {
        st.max_message_bytes = max_message_bytes;
        st.planner_budget = Some(Duration::ZERO);
    })
    .await
}

fn rows(bucket: &str, prefix: &str, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (bucket.to_string(), format!("{prefix}-{i:05}")))
        .collect()
}

/// Takes CreateJob's plan request and runs one planner run on it: one batch, a checkpoint and a
/// continuation on the plan queue.
async fn plan_first_run(s: &Stack, job_id: &str) {
    let requests = common::drain_queue(&s.ctx, &s.ctx.settings.plan_queue_url).await;
    assert_eq!(requests.len(), 1);
    batchops::planner::plan_job(&s.ctx, job_id).await.unwrap();
}

async fn reported_keys(s: &Stack, bucket: &str, job_id: &str) -> Vec<String> {
    let (_, rows) = s.report(bucket, "reports", job_id).await;
    let mut keys: Vec<String> = rows.into_iter().map(|r| r.task.key).collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn a_csv_manifest_replaced_between_continuations_fails_the_job_and_is_never_mixed() {
    let s = continuing_stack(300).await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    let etag = s
        .put_manifest(&data, "m.csv", &rows(&data, "old", 30))
        .await;
    let job_id = s
        .create_job(csv_job(
            &data,
            "m.csv",
            &etag,
            tagging(&[("k", "v")]),
            &data,
            "AllTasks",
        ))
        .await;
    plan_first_run(&s, &job_id).await;
    let first: Vec<TaskBatch> = common::drain_queue(&s.ctx, &s.ctx.settings.task_queue_url)
        .await
        .iter()
        .map(|b| TaskBatch::from_body(b).unwrap())
        .collect();
    assert_eq!(first.len(), 1, "one batch per run");
    // Replaced by a manifest of other objects while the job is being planned.
    s.put_manifest(&data, "m.csv", &rows(&data, "new", 30))
        .await;
    for batch in &first {
        batchops::queue::send_task_batch(&s.ctx, batch)
            .await
            .unwrap();
    }
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Failed);
    let reason = &job.failure_reasons[0].failure_reason;
    assert!(
        reason.contains("changed while the job was planned") && reason.contains("m.csv"),
        "{reason}"
    );
    // Only the batch planned from the first version counts; nothing of the second was sent.
    assert_eq!(job.progress.total_tasks, Some(first[0].tasks.len() as u64));
    assert_eq!(
        job.progress.succeeded + job.progress.failed + job.progress.not_run,
        job.progress.total_tasks.unwrap()
    );
    assert!(first[0].tasks.iter().all(|t| t.key.starts_with("old-")));
}

#[tokio::test]
async fn a_versioned_csv_manifest_replaced_between_continuations_is_read_at_its_pinned_version() {
    let s = continuing_stack(300).await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    s.ctx
        .s3
        .put_bucket_versioning()
        .bucket(&data)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let old = rows(&data, "old", 30);
    for (_, key) in &old {
        s.put(&data, key, "x").await;
    }
    let etag = s.put_manifest(&data, "m.csv", &old).await;
    let job_id = s
        .create_job(csv_job(
            &data,
            "m.csv",
            &etag,
            tagging(&[("k", "v")]),
            &data,
            "AllTasks",
        ))
        .await;
    plan_first_run(&s, &job_id).await;
    s.put_manifest(&data, "m.csv", &rows(&data, "new", 50))
        .await;
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete, "{:?}", job.failure_reasons);
    assert_eq!(job.progress.total_tasks, Some(30));
    assert_eq!(job.progress.succeeded, 30);
    let keys = reported_keys(&s, &data, &job_id).await;
    let expected: Vec<String> = old.into_iter().map(|(_, k)| k).collect();
    assert_eq!(keys, expected, "only the pinned version's tasks");
}

/// Records the Range header of every GetObject sent.
#[derive(Debug, Clone, Default)]
struct RangeRecorder {
    ranges: Arc<Mutex<Vec<Option<String>>>>,
}

impl Intercept for RangeRecorder {
    fn name(&self) -> &'static str {
        "RangeRecorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| m.name().to_string());
        if operation.as_deref() == Some("GetObject") {
            let range = context.request().headers().get("range").map(str::to_string);
            self.ranges.lock().unwrap().push(range);
        }
        Ok(())
    }
}

#[tokio::test]
async fn csv_continuations_read_on_from_a_byte_offset_and_send_each_task_once() {
    // About 500 tasks per batch, a continuation after each; resume points every 1,000 tasks.
    let s = continuing_stack(20_000).await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    let manifest_rows = rows(&data, "row", 5000);
    let etag = s.put_manifest(&data, "m.csv", &manifest_rows).await;
    let job_id = s
        .create_job(csv_job(
            &data,
            "m.csv",
            &etag,
            tagging(&[("k", "v")]),
            &data,
            "AllTasks",
        ))
        .await;
    let recorder = RangeRecorder::default();
    let planner_ctx = Context {
        s3: aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&s.config)
                .force_path_style(true)
                .interceptor(recorder.clone())
                .build(),
        ),
        ..s.ctx.clone()
    };
    // The planner alone, through the plan queue, until planning is done.
    loop {
        let messages = common::receive(&s.ctx, &s.ctx.settings.plan_queue_url).await;
        if messages.is_empty() {
            break;
        }
        for message in messages {
            batchops::planner::handle(&planner_ctx, common::sqs_event(&message))
                .await
                .unwrap();
            common::delete(&s.ctx, &s.ctx.settings.plan_queue_url, &message).await;
        }
    }
    let job = s.ctx.store().get_job(&job_id).await.unwrap();
    assert_eq!(job.progress.total_tasks, Some(5000));
    let ranges = recorder.ranges.lock().unwrap().clone();
    let offsets: Vec<u64> = ranges
        .iter()
        .flatten()
        .map(|r| {
            r.strip_prefix("bytes=")
                .and_then(|r| r.strip_suffix('-'))
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(
        offsets.len() >= 5,
        "later continuations read on from an offset: {ranges:?}"
    );
    assert!(offsets.windows(2).all(|w| w[0] <= w[1]), "{offsets:?}");
    // Every task exactly once, in manifest order.
    let mut batches: Vec<TaskBatch> = common::drain_queue(&s.ctx, &s.ctx.settings.task_queue_url)
        .await
        .iter()
        .map(|b| TaskBatch::from_body(b).unwrap())
        .collect();
    batches.sort_by(|a, b| a.batch_id.cmp(&b.batch_id));
    let sent: Vec<String> = batches
        .iter()
        .flat_map(|b| b.tasks.iter().map(|t| t.key.clone()))
        .collect();
    let expected: Vec<String> = manifest_rows.into_iter().map(|(_, k)| k).collect();
    assert_eq!(sent, expected);
}

fn generator_job(source: &str, output: Option<&str>) -> Value {
    let mut generator = json!({
        "SourceBucket": format!("arn:aws:s3:::{source}"),
        "EnableManifestOutput": output.is_some(),
        "Filter": {"KeyNameConstraint": {"MatchAnyPrefix": ["keep/"]}}
    });
    if let Some(bucket) = output {
        generator["ManifestOutputLocation"] = json!({
            "Bucket": format!("arn:aws:s3:::{bucket}"),
            "ManifestPrefix": "generated",
            "ManifestFormat": "S3InventoryReport_CSV_20211130"
        });
    }
    json!({
        "AccountId": "123456789012",
        "ConfirmationRequired": false,
        "Operation": {"S3PutObjectTagging": {"TagSet": [{"Key": "k", "Value": "v"}]}},
        "ManifestGenerator": {"S3JobManifestGenerator": generator},
        "Report": {"Bucket": format!("arn:aws:s3:::{source}"), "Format": "Report_CSV_20180820",
                   "Enabled": true, "Prefix": "reports", "ReportScope": "AllTasks"},
        "Priority": 10,
        "RoleArn": "arn:aws:iam::123456789012:role/batch"
    })
}

#[tokio::test]
async fn a_generator_lists_once_and_objects_added_afterwards_are_not_planned() {
    let s = continuing_stack(300).await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    for i in 0..25 {
        s.put(&data, &format!("keep/a-{i:03}"), "x").await;
    }
    s.put(&data, "skip/other", "x").await;
    let job_id = s.create_job(generator_job(&data, Some(&data))).await;
    plan_first_run(&s, &job_id).await;
    // Added after the listing: matching the filter, but not part of the job.
    for i in 0..10 {
        s.put(&data, &format!("keep/z-late-{i:03}"), "x").await;
    }
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete, "{:?}", job.failure_reasons);
    assert_eq!(job.progress.total_tasks, Some(25));
    let keys = reported_keys(&s, &data, &job_id).await;
    assert_eq!(keys.len(), 25);
    assert!(keys.iter().all(|k| k.starts_with("keep/a-")), "{keys:?}");
    // The generated manifest EnableManifestOutput asked for lists what the job listed.
    let gz = s
        .get(
            &data,
            &format!("generated/job-{job_id}/data/{job_id}.csv.gz"),
        )
        .await;
    let mut rows = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut rows).unwrap();
    assert_eq!(rows.lines().count(), 25);
    assert!(rows.lines().all(|l| l.contains("keep/a-")), "{rows}");
}

#[tokio::test]
async fn a_generator_listing_longer_than_one_run_continues_where_it_stopped() {
    let s = continuing_stack(250 * 1024).await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    // More than one listing page (1,000 keys): the first run stops after the first page.
    for i in 0..1100 {
        s.put(&data, &format!("keep/k-{i:05}"), "").await;
    }
    let job_id = s.create_job(generator_job(&data, None)).await;
    plan_first_run(&s, &job_id).await;
    let store = s.ctx.store();
    let job = store.get_job(&job_id).await.unwrap();
    assert!(job.tracking.source.is_none(), "the listing is not done yet");
    let (_, listing) = store
        .get_job_state::<batchops::generator::ListingState>(
            &job_id,
            batchops::generator::LISTING_STATE,
        )
        .await
        .unwrap()
        .expect("the listing saved where it stands");
    assert_eq!(listing.tasks, 1000);
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete, "{:?}", job.failure_reasons);
    assert_eq!(job.progress.total_tasks, Some(1100));
    assert_eq!(job.progress.succeeded, 1100);
    let keys = reported_keys(&s, &data, &job_id).await;
    let expected: Vec<String> = (0..1100).map(|i| format!("keep/k-{i:05}")).collect();
    assert_eq!(keys, expected);
}

#[tokio::test]
async fn no_task_of_an_inventory_data_file_is_sent_before_its_md5_is_checked() {
    let s = stack_with(false, |_| {}).await;
    let inventory = s.bucket("inventory");
    s.create_bucket(&inventory).await;
    let csv: String = (0..500)
        .map(|i| format!("\"{inventory}\",\"k-{i:04}\"\n"))
        .collect();
    let gz = common::gzip(csv.as_bytes());
    s.ctx
        .s3
        .put_object()
        .bucket(&inventory)
        .key("inv/data/1.csv.gz")
        .body(gz.into())
        .send()
        .await
        .unwrap();
    let manifest = json!({
        "sourceBucket": inventory, "destinationBucket": format!("arn:aws:s3:::{inventory}"),
        "version": "2016-11-30", "fileFormat": "CSV", "fileSchema": "Bucket, Key",
        "files": [{"key": "inv/data/1.csv.gz", "size": 1, "MD5checksum": "00000000000000000000000000000000"}]
    });
    let etag = s
        .put(&inventory, "inv/manifest.json", &manifest.to_string())
        .await;
    let mut request = csv_job(
        &inventory,
        "inv/manifest.json",
        &etag,
        tagging(&[("k", "v")]),
        &inventory,
        "AllTasks",
    );
    request["Manifest"]["Spec"] = json!({"Format": "S3InventoryReport_CSV_20161130"});
    let job_id = s.create_job(request).await;
    plan_first_run(&s, &job_id).await;
    let sent = common::drain_queue(&s.ctx, &s.ctx.settings.task_queue_url).await;
    assert!(
        sent.is_empty(),
        "{} batches were sent from a corrupt file",
        sent.len()
    );
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert!(
        job.failure_reasons[0]
            .failure_reason
            .contains("MD5 mismatch"),
        "{:?}",
        job.failure_reasons
    );
    assert_eq!(job.progress.succeeded + job.progress.failed, 0);
}

/// Plans the job (planner only) and returns the number of tasks of each batch, in batch order.
async fn planned_batch_sizes(s: &Stack, job_id: &str) -> Vec<usize> {
    plan_first_run(s, job_id).await;
    let mut batches: Vec<TaskBatch> = common::drain_queue(&s.ctx, &s.ctx.settings.task_queue_url)
        .await
        .iter()
        .map(|b| TaskBatch::from_body(b).unwrap())
        .collect();
    batches.sort_by(|a, b| a.batch_id.cmp(&b.batch_id));
    batches.iter().map(|b| b.tasks.len()).collect()
}

#[tokio::test]
async fn lambda_invoke_batches_are_small_and_copies_are_sized_by_the_inventorys_object_sizes() {
    let s = stack_with(false, |_| {}).await;
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    let etag = s.put_manifest(&data, "m.csv", &rows(&data, "k", 300)).await;
    let invoke = json!({"LambdaInvoke": {"FunctionArn": "f", "InvocationSchemaVersion": "2.0"}});
    let job_id = s
        .create_job(csv_job(&data, "m.csv", &etag, invoke, &data, "AllTasks"))
        .await;
    assert_eq!(
        planned_batch_sizes(&s, &job_id).await,
        [128, 128, 44],
        "LambdaInvoke: {} tasks per batch",
        batchops::plan::LAMBDA_BATCH_TASKS
    );

    // An inventory whose objects are 30 GiB each, then small ones: a copy batch holds 64 GiB.
    let gib = 1u64 << 30;
    let csv: String = (0..10u64)
        .map(|i| {
            let size = if i < 5 { 30 * gib } else { 1024 };
            format!("\"{data}\",\"obj-{i}\",\"{size}\"\n")
        })
        .collect();
    let gz = common::gzip(csv.as_bytes());
    common::put_object(&s.ctx, &data, "inv/data/1.csv.gz", gz.clone()).await;
    let manifest = json!({
        "sourceBucket": data, "destinationBucket": format!("arn:aws:s3:::{data}"),
        "version": "2016-11-30", "fileFormat": "CSV", "fileSchema": "Bucket, Key, Size",
        "files": [{"key": "inv/data/1.csv.gz", "size": gz.len(), "MD5checksum": common::md5_hex(&gz)}]
    });
    let etag = s
        .put(&data, "inv/manifest.json", &manifest.to_string())
        .await;
    let copy = json!({"S3PutObjectCopy": {"TargetResource": format!("arn:aws:s3:::{data}")}});
    let mut request = csv_job(&data, "inv/manifest.json", &etag, copy, &data, "AllTasks");
    request["Manifest"]["Spec"] = json!({"Format": "S3InventoryReport_CSV_20161130"});
    let job_id = s.create_job(request).await;
    let sizes = planned_batch_sizes(&s, &job_id).await;
    assert_eq!(sizes, [2, 2, 6], "64 GiB of objects per copy batch");
}
