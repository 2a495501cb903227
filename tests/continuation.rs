//! Planning that never runs out of time: the planner, forced to stop after every batch, saves a
//! checkpoint and continues itself through the plan queue; the task queue must then hold exactly
//! the manifest's tasks, each once, in batches with one deterministic id sequence per plan part.

use crate::common;
use crate::common::stack::stack_with;

use batchops::control;
use batchops::job::{CreateJobRequest, JobStatus};
use batchops::local::{self, RunUntil};
use batchops::manifest::{encode_key, Task};
use batchops::plan::TaskBatch;
use batchops::planner;
use batchops::Context;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(600);

/// A stack whose every planning run stops at its first batch boundary: the most continuations
/// possible.
async fn stack(max_message_bytes: usize) -> (Context, String) {
    let s = stack_with(false, |settings| {
        settings.max_message_bytes = max_message_bytes;
        settings.planner_budget = Some(Duration::ZERO);
    })
    .await;
    (s.ctx, s.id)
}

async fn put(ctx: &Context, bucket: &str, key: &str, body: Vec<u8>) -> String {
    common::unquoted_etag(&common::put_object(ctx, bucket, key, body).await)
}

fn tagging_job(manifest: Value, report_bucket: &str) -> Value {
    json!({
        "AccountId": "123456789012",
        "ConfirmationRequired": false,
        "Operation": {"S3PutObjectTagging": {"TagSet": [{"Key": "planned", "Value": "once"}]}},
        "Manifest": manifest,
        "Report": {"Bucket": format!("arn:aws:s3:::{report_bucket}"), "Format": "Report_CSV_20180820",
                   "Enabled": true, "Prefix": "reports", "ReportScope": "AllTasks"},
        "Priority": 10,
        "RoleArn": "arn:aws:iam::123456789012:role/batch"
    })
}

fn csv_manifest_spec(bucket: &str, key: &str, etag: &str) -> Value {
    json!({
        "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
        "Location": {"ObjectArn": format!("arn:aws:s3:::{bucket}/{key}"), "ETag": etag}
    })
}

fn inventory_manifest_spec(bucket: &str, key: &str, etag: &str) -> Value {
    json!({
        "Spec": {"Format": "S3InventoryReport_CSV_20161130"},
        "Location": {"ObjectArn": format!("arn:aws:s3:::{bucket}/{key}"), "ETag": etag}
    })
}

async fn create_job(ctx: &Context, request: Value) -> String {
    let request = CreateJobRequest::parse(&request.to_string()).unwrap();
    control::create_job(ctx, request, None)
        .await
        .unwrap()
        .job_id
}

/// Runs the planner on the plan queue (and nothing else) until the queue is empty. The continue
/// message number `redeliver` (counting from 0) is handled twice, as SQS may deliver it. Returns
/// how many messages the planner handled.
async fn plan_only(ctx: &Context, redeliver: Option<usize>) -> usize {
    let url = &ctx.settings.plan_queue_url;
    let mut handled = 0;
    let mut continuations = 0;
    loop {
        let messages = common::receive(ctx, url).await;
        if messages.is_empty() {
            return handled;
        }
        for message in messages {
            let event = common::sqs_event(&message);
            planner::handle(ctx, event.clone()).await.unwrap();
            if message
                .body
                .as_deref()
                .unwrap_or_default()
                .contains("\"From\"")
            {
                if redeliver == Some(continuations) {
                    planner::handle(ctx, event).await.unwrap();
                }
                continuations += 1;
            }
            handled += 1;
            common::delete(ctx, url, &message).await;
        }
    }
}

/// The task queue's batches by id; fails on two different batches with one id.
async fn drain_batches(ctx: &Context) -> (BTreeMap<String, TaskBatch>, usize) {
    let bodies = common::drain_queue(ctx, &ctx.settings.task_queue_url).await;
    let messages = bodies.len();
    let mut batches = BTreeMap::new();
    for body in bodies {
        let batch = TaskBatch::from_body(&body).unwrap();
        if let Some(before) = batches.insert(batch.batch_id.clone(), batch.clone()) {
            assert_eq!(
                before, batch,
                "batch {} sent with other tasks",
                batch.batch_id
            );
        }
    }
    (batches, messages)
}

/// Batch ids of one prefix must be `{prefix}00000000`, `{prefix}00000001`, ... without gaps.
fn assert_contiguous(batches: &BTreeMap<String, TaskBatch>, prefix: &str) -> usize {
    let ids: Vec<&String> = batches.keys().filter(|id| id.starts_with(prefix)).collect();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            **id,
            format!("{prefix}{i:08}"),
            "batch ids of {prefix} have a gap"
        );
    }
    ids.len()
}

fn task(bucket: &str, key: &str, version_id: Option<&str>) -> Task {
    Task {
        bucket: bucket.into(),
        key: key.into(),
        version_id: version_id.map(str::to_string),
        size: None,
    }
}

/// Keys that need encoding, of varying length, all distinct.
fn key_of(i: usize) -> String {
    let tail = ["", " space", "+plus", "%pct", "/é☃", ",comma"][i % 6];
    format!(
        "data/{:03}/object-{i:06}{tail}{}",
        i % 997,
        "x".repeat(i % 29)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_manifest_of_100000_tasks_continues_many_times_and_plans_each_task_once() {
    let (ctx, id) = stack(96 * 1024).await;
    let bucket = format!("manifests-{id}");
    common::create_bucket(&ctx, &bucket).await;
    let expected: Vec<Task> = (0..100_000)
        .map(|i| task(&format!("data-{id}"), &key_of(i), None))
        .collect();
    let csv: String = expected
        .iter()
        .map(|t| format!("{},{}\r\n", t.bucket, encode_key(&t.key)))
        .collect();
    let etag = put(&ctx, &bucket, "big.csv", csv.into_bytes()).await;
    let job_id = create_job(
        &ctx,
        tagging_job(csv_manifest_spec(&bucket, "big.csv", &etag), &bucket),
    )
    .await;

    // The second continue message is delivered twice.
    let handled = plan_only(&ctx, Some(1)).await;
    let (batches, messages) = drain_batches(&ctx).await;
    assert_eq!(
        messages,
        batches.len(),
        "sequential runs send every batch once"
    );
    let count = assert_contiguous(&batches, "b");
    assert_eq!(count, batches.len());
    assert!(
        count >= 50,
        "only {count} batches; the test needs many continuations"
    );
    // One message per batch: the copy delivered twice was recognised as old and did nothing.
    assert_eq!(
        handled, count,
        "every run stops after one batch, and a duplicate continue message starts no second chain"
    );
    let planned: Vec<Task> = batches.into_values().flat_map(|b| b.tasks).collect();
    assert_eq!(planned.len(), expected.len());
    assert!(
        planned == expected,
        "the planned tasks are the manifest, in order"
    );

    let job = ctx.store().get_job(&job_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Active);
    assert_eq!(job.progress.total_tasks, Some(100_000));
    assert_eq!(job.progress.batches_planned, Some(count as u64));
}

/// Writes an inventory of `files` gzipped CSV data files with `rows` rows each and its
/// manifest.json; returns the Manifest spec and the tasks it lists, in file order. A versioned
/// inventory has version ids and makes every 10th row a delete marker (not a task).
async fn put_inventory(
    ctx: &Context,
    inventory: &str,
    data_bucket: &str,
    files: usize,
    rows: usize,
    versioned: bool,
) -> (Value, Vec<Task>) {
    let mut expected = Vec::new();
    let mut listed = Vec::new();
    for f in 0..files {
        let mut csv = String::new();
        for r in 0..rows {
            let key = key_of(f * rows + r);
            if !versioned {
                csv.push_str(&format!(
                    "\"{data_bucket}\",\"{}\",\"1\"\n",
                    encode_key(&key)
                ));
                expected.push(task(data_bucket, &key, None));
                continue;
            }
            let version = format!("v{f}.{r}");
            let delete_marker = r % 10 == 9;
            csv.push_str(&format!(
                "\"{data_bucket}\",\"{}\",\"{version}\",\"true\",\"{delete_marker}\"\n",
                encode_key(&key)
            ));
            if !delete_marker {
                expected.push(task(data_bucket, &key, Some(&version)));
            }
        }
        let gz = common::gzip(csv.as_bytes());
        let key = format!("inv/data/file-{f}.csv.gz");
        listed.push(json!({"key": key, "size": gz.len(), "MD5checksum": common::md5_hex(&gz)}));
        put(ctx, inventory, &key, gz).await;
    }
    let manifest = json!({
        "sourceBucket": data_bucket,
        "destinationBucket": format!("arn:aws:s3:::{inventory}"),
        "version": "2016-11-30",
        "creationTimestamp": "1732500000000",
        "fileFormat": "CSV",
        "fileSchema": if versioned {
            "Bucket, Key, VersionId, IsLatest, IsDeleteMarker"
        } else {
            "Bucket, Key, Size"
        },
        "files": listed
    });
    let etag = put(
        ctx,
        inventory,
        "inv/manifest.json",
        manifest.to_string().into_bytes(),
    )
    .await;
    (
        inventory_manifest_spec(inventory, "inv/manifest.json", &etag),
        expected,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_files_are_planned_in_parallel_parts_each_task_once() {
    let (ctx, id) = stack(96 * 1024).await;
    let inventory = format!("inventory-{id}");
    common::create_bucket(&ctx, &inventory).await;
    let files = 4;
    let (spec, expected) =
        put_inventory(&ctx, &inventory, &format!("data-{id}"), files, 25_000, true).await;
    let job_id = create_job(&ctx, tagging_job(spec, &inventory)).await;

    let handled = plan_only(&ctx, Some(1)).await;
    let (batches, messages) = drain_batches(&ctx).await;
    assert_eq!(
        messages,
        batches.len(),
        "sequential runs send every batch once"
    );
    let mut total_batches = 0;
    for f in 0..files {
        let count = assert_contiguous(&batches, &format!("f{f:06}b"));
        assert!(count >= 10, "file {f}: only {count} batches");
        total_batches += count;
    }
    assert_eq!(
        total_batches,
        batches.len(),
        "every batch belongs to a file"
    );
    assert_eq!(
        handled,
        1 + total_batches,
        "the plan request, then one message per batch (one per file, then continuations)"
    );
    // Batch ids sort by file, then by sequence: the planned tasks are the files' rows in order.
    let planned: Vec<Task> = batches.into_values().flat_map(|b| b.tasks).collect();
    assert_eq!(planned.len(), expected.len());
    let distinct: HashSet<&Task> = planned.iter().collect();
    assert_eq!(distinct.len(), planned.len(), "no task planned twice");
    assert!(
        planned == expected,
        "the planned tasks are the inventory's, delete markers left out"
    );

    let job = ctx.store().get_job(&job_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Active);
    assert_eq!(job.progress.total_tasks, Some(expected.len() as u64));
    assert_eq!(job.progress.batches_planned, Some(total_batches as u64));
    let parts = ctx.store().list_plan_parts(&job_id).await.unwrap();
    assert_eq!(parts.len(), files);
    assert!(parts.iter().all(|p| p.done));
}

async fn put_objects(ctx: &Context, bucket: &str, keys: &[String]) {
    common::create_bucket(ctx, bucket).await;
    for key in keys {
        put(ctx, bucket, key, b"x".to_vec()).await;
    }
}

async fn assert_completes_tagging_every_object(
    ctx: &Context,
    job_id: &str,
    data: &str,
    keys: &[String],
) {
    let summary = local::run(ctx, RunUntil::JobTerminal(job_id.to_string()), RUN_TIMEOUT)
        .await
        .unwrap();
    assert!(summary.plan_messages > 3, "planning continued: {summary:?}");
    let job = ctx.store().get_job(job_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Complete, "{job:?}");
    assert_eq!(job.progress.total_tasks, Some(keys.len() as u64));
    assert_eq!(job.progress.succeeded, keys.len() as u64);
    assert_eq!(job.progress.failed, 0);
    for key in keys {
        let tags = ctx
            .s3
            .get_object_tagging()
            .bucket(data)
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(tags.tag_set.len(), 1, "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continued_csv_job_completes() {
    let (ctx, id) = stack(1024).await;
    let data = format!("data-{id}");
    let keys: Vec<String> = (0..120).map(key_of).collect();
    put_objects(&ctx, &data, &keys).await;
    let csv: String = keys
        .iter()
        .map(|k| format!("{data},{}\n", encode_key(k)))
        .collect();
    let etag = put(&ctx, &data, "manifest.csv", csv.into_bytes()).await;
    let job_id = create_job(
        &ctx,
        tagging_job(csv_manifest_spec(&data, "manifest.csv", &etag), &data),
    )
    .await;
    assert_completes_tagging_every_object(&ctx, &job_id, &data, &keys).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continued_multi_file_inventory_job_completes() {
    let (ctx, id) = stack(1024).await;
    let data = format!("data-{id}");
    let inventory = format!("inventory-{id}");
    common::create_bucket(&ctx, &inventory).await;
    let (spec, expected) = put_inventory(&ctx, &inventory, &data, 3, 40, false).await;
    let keys: Vec<String> = expected.iter().map(|t| t.key.clone()).collect();
    put_objects(&ctx, &data, &keys).await;
    let job_id = create_job(&ctx, tagging_job(spec, &inventory)).await;
    assert_completes_tagging_every_object(&ctx, &job_id, &data, &keys).await;
}
