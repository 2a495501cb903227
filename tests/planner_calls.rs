//! DynamoDB and SQS calls made by planning, measured over the wire against moto (issue 3's goal:
//! at most 2 SQS messages and 1 DynamoDB write per 1,000 tasks for 100-byte keys).
//!
//! The planner runs with clients that carry a counting interceptor: every request attempt is
//! counted under the operation name it sends (`X-Amz-Target`, e.g. `DynamoDB_20120810.PutItem`
//! counts as `PutItem`), and multi-item requests also count their items. The plan queue is driven
//! with uncounted clients, as the Lambda event source mapping would, so only the planner's own
//! calls are counted. The exact figures are compared with the calls that planner.rs and store/
//! make (see `Expected`).

use crate::common;
use crate::common::stack::{stack_with, Stack};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use batchops::control;
use batchops::job::{CreateJobRequest, JobStatus};
use batchops::manifest::encode_key;
use batchops::planner;
use batchops::Context;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Tasks in every scenario.
const TASKS: usize = 100_000;
/// planner.rs STATUS_CHECK_EVERY: the planner reads the job once per this many batches.
const STATUS_CHECK_EVERY: u64 = 50;

type Counts = BTreeMap<String, u64>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Counts request attempts per operation name, and the items of multi-item requests under
/// `"<Operation> items"`.
#[derive(Debug, Clone, Default)]
struct CallCounter {
    counts: Arc<Mutex<Counts>>,
}

impl CallCounter {
    fn add(&self, name: &str, n: u64) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *counts.entry(name.to_string()).or_default() += n;
    }

    fn snapshot(&self) -> Counts {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    /// Items of the multi-item requests; the input is gone once it is serialised.
    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput;
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
        use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchInput;
        let input = context.input();
        if let Some(i) = input.downcast_ref::<TransactWriteItemsInput>() {
            self.add("TransactWriteItems items", i.transact_items().len() as u64);
        } else if let Some(i) = input.downcast_ref::<BatchWriteItemInput>() {
            let items = i
                .request_items()
                .map_or(0, |m| m.values().map(Vec::len).sum());
            self.add("BatchWriteItem items", items as u64);
        } else if let Some(i) = input.downcast_ref::<SendMessageBatchInput>() {
            self.add("SendMessageBatch entries", i.entries().len() as u64);
        }
        Ok(())
    }

    /// One count per attempt that goes over the wire (retries included).
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .unwrap_or("unknown.unknown");
        let operation = target.rsplit('.').next().unwrap_or(target);
        self.add(operation, 1);
        Ok(())
    }
}

/// `after - before`, leaving out operations that did not happen.
fn difference(after: &Counts, before: &Counts) -> Counts {
    after
        .iter()
        .map(|(op, n)| (op.clone(), n - before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// The figures the goal is about, from one window of counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Figures {
    writes: u64,
    reads: u64,
    messages: u64,
}

impl Figures {
    fn of(counts: &Counts) -> Self {
        let get = |op: &str| counts.get(op).copied().unwrap_or(0);
        Figures {
            writes: get("PutItem")
                + get("UpdateItem")
                + get("DeleteItem")
                + get("TransactWriteItems items")
                + get("BatchWriteItem items"),
            reads: get("GetItem") + get("Query") + get("Scan") + get("BatchGetItem"),
            messages: get("SendMessage") + get("SendMessageBatch entries"),
        }
    }

    fn per_1000(n: u64) -> f64 {
        n as f64 * 1000.0 / TASKS as f64
    }
}

/// The calls planner.rs and store/ make, counted from the plan request on (CreateJob's own
/// PutItem, SendMessage and New->Preparing transition come before and are not included):
/// - per job: get_job (GetItem); transition Preparing->Active (GetItem + UpdateItem);
///   set_job_source, the manifest's pin (UpdateItem); finish_planning (UpdateItem); reporter::finalize_if_done's claim_finalize (UpdateItem,
///   conditional, fails while batches are uncommitted but is a write all the same).
/// - per part: put_plan_parts (PutItem), get_plan_part (GetItem), the last advance_plan_part
///   (UpdateItem), list_plan_parts in complete_if_all_done (Query).
/// - per continuation: advance_plan_part + mark_plan_part_continued (2 UpdateItem), get_job +
///   get_plan_part (2 GetItem), one plan message.
/// - several parts: one list_plan_parts (Query) and one plan message per part when the job
///   starts, then get_job (GetItem) in each part's run.
/// - one get_job (GetItem) per STATUS_CHECK_EVERY batches that a run sends before its last.
/// - one reserve_plan_batches (UpdateItem) per RESERVE_WINDOW batches of each part (written
///   ahead of sending, so that a run that dies mid-send leaves a bound on what it sent).
#[derive(Debug, Clone, Copy)]
struct Expected {
    parts: u64,
    continuations: u64,
    status_checks: u64,
    batches: u64,
    reservations: u64,
}

/// Reservations of a part of `batches` batches.
fn reservations(batches: u64) -> u64 {
    batches.div_ceil(batchops::planner::RESERVE_WINDOW)
}

impl Expected {
    fn puts(&self) -> u64 {
        self.parts
    }

    fn updates(&self) -> u64 {
        4 + self.parts + 2 * self.continuations + self.reservations
    }

    fn get_items(&self) -> u64 {
        let fan_out = if self.parts > 1 { self.parts } else { 0 };
        2 + self.parts + fan_out + 2 * self.continuations + self.status_checks
    }

    fn queries(&self) -> u64 {
        self.parts + u64::from(self.parts > 1)
    }

    fn send_messages(&self) -> u64 {
        let fan_out = if self.parts > 1 { self.parts } else { 0 };
        self.batches + self.continuations + fan_out
    }

    fn counts(&self) -> Counts {
        [
            ("PutItem", self.puts()),
            ("UpdateItem", self.updates()),
            ("GetItem", self.get_items()),
            ("Query", self.queries()),
            ("SendMessage", self.send_messages()),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(op, n)| (op.to_string(), n))
        .collect()
    }

    /// shared/benches/planner.rs `StoreCalls::planning`: 5 writes per job + 2 per part + 2 per
    /// continuation + 1 per 64 batches of a part, counted from CreateJob's New->Preparing transition (one UpdateItem before
    /// the window measured here).
    fn bench_model_writes(&self) -> u64 {
        5 + 2 * self.parts + 2 * self.continuations + self.reservations
    }
}

/// A stack on moto (driver clients uncounted) and a copy whose DynamoDB and SQS clients count;
/// every planner run stops after `budget` (`None`: runs until done).
async fn stack(budget: Option<Duration>) -> (Context, Context, CallCounter, String) {
    let Stack {
        ctx: driver,
        config,
        id,
    } = stack_with(false, |settings| {
        settings.planner_budget = budget;
    })
    .await;
    let counter = CallCounter::default();
    let dynamodb = aws_sdk_dynamodb::config::Builder::from(&config)
        .interceptor(counter.clone())
        .build();
    let sqs = aws_sdk_sqs::config::Builder::from(&config)
        .interceptor(counter.clone())
        .build();
    let counted = Context {
        dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb),
        sqs: aws_sdk_sqs::Client::from_conf(sqs),
        ..driver.clone()
    };
    (driver, counted, counter, id)
}

async fn put(ctx: &Context, bucket: &str, key: &str, body: Vec<u8>) -> String {
    common::unquoted_etag(&common::put_object(ctx, bucket, key, body).await)
}

/// Key number `i`, exactly 100 bytes: a dated path and a pseudo-random name.
fn key_100(i: usize, rng: &mut fastrand::Rng) -> String {
    let mut key = format!("data/2026/11/{:02}/{i:010}/", i % 28 + 1);
    while key.len() < 100 {
        key.push(rng.alphanumeric());
    }
    key
}

fn keys_100(n: usize) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(7);
    (0..n).map(|i| key_100(i, &mut rng)).collect()
}

fn tagging_job(manifest: Value, report_bucket: &str) -> Value {
    json!({
        "AccountId": "123456789012",
        "ConfirmationRequired": false,
        "Operation": {"S3PutObjectTagging": {"TagSet": [{"Key": "counted", "Value": "yes"}]}},
        "Manifest": manifest,
        "Report": {"Bucket": format!("arn:aws:s3:::{report_bucket}"), "Format": "Report_CSV_20180820",
                   "Enabled": true, "Prefix": "reports", "ReportScope": "AllTasks"},
        "Priority": 10,
        "RoleArn": "arn:aws:iam::123456789012:role/batch"
    })
}

/// A 2-column CSV manifest of `TASKS` 100-byte keys; returns its Manifest spec.
async fn put_csv_manifest(ctx: &Context, bucket: &str, data_bucket: &str) -> Value {
    let csv: String = keys_100(TASKS)
        .iter()
        .map(|k| format!("{data_bucket},{}\n", encode_key(k)))
        .collect();
    let etag = put(ctx, bucket, "big.csv", csv.into_bytes()).await;
    json!({
        "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
        "Location": {"ObjectArn": format!("arn:aws:s3:::{bucket}/big.csv"), "ETag": etag}
    })
}

/// An inventory of `files` gzipped CSV data files sharing `TASKS` 100-byte keys; returns its
/// Manifest spec.
async fn put_inventory(ctx: &Context, inventory: &str, data_bucket: &str, files: usize) -> Value {
    let keys = keys_100(TASKS);
    let mut listed = Vec::new();
    for (f, chunk) in keys.chunks(TASKS.div_ceil(files)).enumerate() {
        let csv: String = chunk
            .iter()
            .map(|k| format!("\"{data_bucket}\",\"{}\",\"1\"\n", encode_key(k)))
            .collect();
        let gz = common::gzip(csv.as_bytes());
        let key = format!("inv/data/file-{f}.csv.gz");
        let md5 = common::md5_hex(&gz);
        listed.push(json!({"key": key, "size": gz.len(), "MD5checksum": md5}));
        put(ctx, inventory, &key, gz).await;
    }
    let manifest = json!({
        "sourceBucket": data_bucket,
        "destinationBucket": format!("arn:aws:s3:::{inventory}"),
        "version": "2016-11-30",
        "creationTimestamp": "1732500000000",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size",
        "files": listed
    });
    let etag = put(
        ctx,
        inventory,
        "inv/manifest.json",
        manifest.to_string().into_bytes(),
    )
    .await;
    json!({
        "Spec": {"Format": "S3InventoryReport_CSV_20161130"},
        "Location": {"ObjectArn": format!("arn:aws:s3:::{inventory}/inv/manifest.json"), "ETag": etag}
    })
}

/// What driving the plan queue saw.
#[derive(Debug, Default)]
struct Runs {
    /// Plan messages handled (planner invocations).
    handled: u64,
    /// Continue messages among them (those with a `From`).
    continuations: u64,
}

/// Runs the counted planner on every plan-queue message until the queue is empty; the queue is
/// read and emptied with the driver's uncounted client.
async fn plan_only(driver: &Context, counted: &Context) -> Runs {
    let url = &driver.settings.plan_queue_url;
    let mut runs = Runs::default();
    loop {
        let messages = common::receive(driver, url).await;
        if messages.is_empty() {
            return runs;
        }
        for message in messages {
            planner::handle(counted, common::sqs_event(&message))
                .await
                .unwrap();
            runs.handled += 1;
            if message.body().unwrap_or_default().contains("\"From\"") {
                runs.continuations += 1;
            }
            common::delete(driver, url, &message).await;
        }
    }
}

/// Creates the job with the counted clients, plans it, and returns CreateJob's calls, the
/// planner's calls, the drive and the job id.
async fn create_and_plan(
    driver: &Context,
    counted: &Context,
    counter: &CallCounter,
    request: Value,
) -> (Counts, Counts, Runs, String) {
    let start = counter.snapshot();
    let request = CreateJobRequest::parse(&request.to_string()).unwrap();
    let job_id = control::create_job(counted, request, None)
        .await
        .unwrap()
        .job_id;
    let created = counter.snapshot();
    let runs = plan_only(driver, counted).await;
    let planned = counter.snapshot();
    (
        difference(&created, &start),
        difference(&planned, &created),
        runs,
        job_id,
    )
}

/// Task-batch messages on the task queue (drained with the uncounted client).
async fn task_messages(driver: &Context) -> u64 {
    common::drain_queue(driver, &driver.settings.task_queue_url)
        .await
        .len() as u64
}

fn report(scenario: &str, create_job: &Counts, planning: &Counts, expected: &Expected) {
    let f = Figures::of(planning);
    println!(
        "planner_calls {scenario}: {TASKS} tasks, {} parts, {} batches, {} continuations | \
         planning: {planning:?} | DynamoDB writes {} ({:.3}/1,000 tasks), reads {} ({:.3}/1,000), \
         SQS messages {} ({:.3}/1,000; {:.3}/1,000 with CreateJob's plan request) | \
         CreateJob before it: {create_job:?} | bench model writes {} (= planner's {} + CreateJob's New->Preparing)",
        expected.parts,
        expected.batches,
        expected.continuations,
        f.writes,
        Figures::per_1000(f.writes),
        f.reads,
        Figures::per_1000(f.reads),
        f.messages,
        Figures::per_1000(f.messages),
        Figures::per_1000(f.messages + 1),
        expected.bench_model_writes(),
        f.writes,
    );
}

/// CreateJob (no ClientRequestToken): PutItem for the job, the plan request, and the
/// New->Preparing transition (GetItem + UpdateItem).
fn assert_create_job_calls(create_job: &Counts) {
    let expected: Counts = [
        ("GetItem", 1),
        ("PutItem", 1),
        ("SendMessage", 1),
        ("UpdateItem", 1),
    ]
    .into_iter()
    .map(|(op, n)| (op.to_string(), n))
    .collect();
    assert_eq!(*create_job, expected, "CreateJob's calls");
}

async fn assert_planned(driver: &Context, job_id: &str, batches: u64) {
    let job = driver.store().get_job(job_id).await.unwrap();
    assert_eq!(job.status, JobStatus::Active);
    assert_eq!(job.progress.total_tasks, Some(TASKS as u64));
    assert_eq!(job.progress.batches_planned, Some(batches));
}

/// One run plans the whole manifest; checks of the job's status: one per STATUS_CHECK_EVERY
/// batches, the last batch (sent after the loop) not counted.
fn single_run_status_checks(batches: u64) -> u64 {
    batches.saturating_sub(1) / STATUS_CHECK_EVERY
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100000_task_csv_manifest_planned_in_one_run_meets_the_goal_and_the_model() {
    let (driver, counted, counter, id) = stack(None).await;
    let bucket = format!("manifests-{id}");
    common::create_bucket(&driver, &bucket).await;
    let spec = put_csv_manifest(&driver, &bucket, &format!("data-{id}")).await;

    let (create_job, planning, runs, job_id) =
        create_and_plan(&driver, &counted, &counter, tagging_job(spec, &bucket)).await;
    let batches = task_messages(&driver).await;
    assert_planned(&driver, &job_id, batches).await;
    assert_eq!(runs.handled, 1, "no budget: one planner run");
    let expected = Expected {
        parts: 1,
        continuations: 0,
        status_checks: single_run_status_checks(batches),
        batches,
        reservations: reservations(batches),
    };
    report("csv-one-run", &create_job, &planning, &expected);

    assert_create_job_calls(&create_job);
    assert_eq!(
        planning,
        expected.counts(),
        "the planner's calls per operation"
    );
    let f = Figures::of(&planning);
    assert!(
        Figures::per_1000(f.writes) <= 1.0,
        "{} DynamoDB writes for {TASKS} tasks",
        f.writes
    );
    assert!(
        Figures::per_1000(f.messages + 1) <= 2.0,
        "{} SQS messages (+1 plan request) for {TASKS} tasks",
        f.messages
    );
    assert_eq!(f.writes + 1, expected.bench_model_writes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100000_task_csv_manifest_continued_after_every_batch_matches_the_model() {
    // Every run stops at its first batch boundary: a continuation per batch but the last.
    let (driver, counted, counter, id) = stack(Some(Duration::ZERO)).await;
    let bucket = format!("manifests-{id}");
    common::create_bucket(&driver, &bucket).await;
    let spec = put_csv_manifest(&driver, &bucket, &format!("data-{id}")).await;

    let (create_job, planning, runs, job_id) =
        create_and_plan(&driver, &counted, &counter, tagging_job(spec, &bucket)).await;
    let batches = task_messages(&driver).await;
    assert_planned(&driver, &job_id, batches).await;
    assert!(batches >= 10, "only {batches} batches");
    assert_eq!(runs.handled, batches, "one batch per run");
    assert_eq!(runs.continuations, batches - 1);
    let expected = Expected {
        parts: 1,
        continuations: runs.continuations,
        status_checks: 0,
        batches,
        reservations: reservations(batches),
    };
    report("csv-continued", &create_job, &planning, &expected);

    assert_create_job_calls(&create_job);
    assert_eq!(
        planning,
        expected.counts(),
        "the planner's calls per operation"
    );
    assert_eq!(
        Figures::of(&planning).writes + 1,
        expected.bench_model_writes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4_file_inventory_planned_in_parallel_parts_matches_the_model() {
    let (driver, counted, counter, id) = stack(None).await;
    let inventory = format!("inventory-{id}");
    common::create_bucket(&driver, &inventory).await;
    let files = 4;
    let spec = put_inventory(&driver, &inventory, &format!("data-{id}"), files).await;

    let (create_job, planning, runs, job_id) =
        create_and_plan(&driver, &counted, &counter, tagging_job(spec, &inventory)).await;
    let batches = task_messages(&driver).await;
    assert_planned(&driver, &job_id, batches).await;
    assert_eq!(
        runs.handled,
        1 + files as u64,
        "the plan request, then one run per file"
    );
    let parts = driver.store().list_plan_parts(&job_id).await.unwrap();
    assert_eq!(parts.len(), files);
    let status_checks = parts
        .iter()
        .map(|p| single_run_status_checks(p.batches))
        .sum();
    let expected = Expected {
        parts: files as u64,
        continuations: 0,
        status_checks,
        batches,
        reservations: parts.iter().map(|p| reservations(p.batches)).sum(),
    };
    report("inventory-4-files", &create_job, &planning, &expected);

    assert_create_job_calls(&create_job);
    assert_eq!(
        planning,
        expected.counts(),
        "the planner's calls per operation"
    );
    let f = Figures::of(&planning);
    assert!(Figures::per_1000(f.writes) <= 1.0);
    assert!(Figures::per_1000(f.messages + 1) <= 2.0);
    assert_eq!(f.writes + 1, expected.bench_model_writes());
}
