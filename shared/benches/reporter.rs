//! The reporter at scale (issue 9): time and peak resident memory to write the completion report
//! of a job of 10,000,000 tasks, in one invocation and continued over many, against moto server.
//!
//!     scripts/with-services.sh -- cargo bench -p batchops --bench reporter
//!
//! The job is synthetic: its batch records and result parts (1,500 rows each, as a full task
//! batch of 100-byte keys gives) are written straight to the table (BatchWriteItem: moto copies a
//! whole table for every transaction, so commits one by one would take hours) and the system
//! bucket, then
//! the reporter runs in a child process (this binary again), so that its peak resident memory
//! (`VmHWM`) is its own. Each size is reported in one go and continued (a budget of
//! `BENCH_REPORT_BUDGET_MS`, default 2,000 ms, per invocation); memory must not grow with the
//! number of batches. Knobs: `BENCH_REPORT_TASKS` (comma-separated sizes, default
//! "1000000,10000000"), `BENCH_REPORT_BUDGET_MS`.
//!
//! moto keeps S3 objects in memory (about 5 MB of its own per 150 KB part); for 10,000,000 tasks
//! point S3 at a server that stores on disk, s3s-fs (`cargo install s3s-fs --version 0.14.1
//! --features binary`), and keep moto for DynamoDB and SQS:
//!
//!     s3s-fs --host 127.0.0.1 --port 18014 --access-key testing --secret-key testing /tmp/s3s &
//!     AWS_ENDPOINT_URL_S3=http://127.0.0.1:18014 scripts/with-services.sh -- \
//!         cargo bench -p batchops --bench reporter

mod common;

use batchops::job::{CreateJobRequest, JobStatus};
use batchops::manifest::Task;
use batchops::report::{self, TaskOutcome, TaskStatus};
use batchops::store::BatchCounts;
use batchops::Context;
use common::{env_u64, BenchResult, MIB};
use futures::StreamExt;
use std::time::{Duration, Instant};

const ROWS_PER_PART: u64 = 1500;

fn main() -> BenchResult<()> {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let job_id = args.get(i + 1).ok_or("--child JOB_ID")?.clone();
        return runtime.block_on(child(&job_id));
    }
    runtime.block_on(parent())
}

async fn parent() -> BenchResult<()> {
    let endpoint = common::moto_endpoint()?;
    let sizes: Vec<u64> = std::env::var("BENCH_REPORT_TASKS")
        .unwrap_or_else(|_| "1000000,10000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let budget = env_u64("BENCH_REPORT_BUDGET_MS", 2000);
    println!("== Reporter: the completion report of a synthetic job, on moto server ({endpoint})");
    println!("{ROWS_PER_PART} rows per result part; continued runs stop every {budget} ms");
    println!(
        "{:>12} {:>9} {:>12} {:>10} {:>12} {:>12}",
        "tasks", "parts", "mode", "seconds", "invocations", "peak RSS MiB"
    );
    let (_, ctx, id) = common::local_stack("bench").await?;
    let reports = format!("bench-reports-{id}");
    ctx.s3.create_bucket().bucket(&reports).send().await?;
    for tasks in sizes {
        let job_id = synthetic_job(&ctx, tasks, &reports).await?;
        for (mode, budget_ms) in [("one go", None), ("continued", Some(budget))] {
            reset(&ctx, &job_id).await?;
            let (seconds, invocations, hwm_kib) = run_child(&ctx, &job_id, budget_ms)?;
            let job = ctx.store().get_job(&job_id).await?;
            if job.status != JobStatus::Complete {
                return Err(format!(
                    "job {job_id} ended {}: {:?}",
                    job.status, job.failure_reasons
                )
                .into());
            }
            println!(
                "{tasks:>12} {:>9} {mode:>12} {seconds:>10.1} {invocations:>12} {:>12.0}",
                tasks.div_ceil(ROWS_PER_PART),
                hwm_kib as f64 * 1024.0 / MIB
            );
        }
    }
    Ok(())
}

/// A job whose every batch has committed, each with a result part of real report rows.
async fn synthetic_job(ctx: &Context, tasks: u64, reports: &str) -> BenchResult<String> {
    let request = CreateJobRequest::parse(
        &serde_json::json!({
            "Operation": {"S3PutObjectTagging": {"TagSet": [{"Key": "k", "Value": "v"}]}},
            "Report": {"Bucket": format!("arn:aws:s3:::{reports}"), "Format": "Report_CSV_20180820",
                       "Enabled": true, "Prefix": "bench", "ReportScope": "AllTasks"},
            "Manifest": {"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
                         "Location": {"ObjectArn": "arn:aws:s3:::bench/manifest.csv", "ETag": "x"}},
            "Priority": 1,
            "RoleArn": "arn:aws:iam::123456789012:role/batch"
        })
        .to_string(),
    )?;
    let job_id = uuid::Uuid::new_v4().to_string();
    let mut job = batchops::control::new_job(job_id.clone(), request, chrono::Utc::now());
    job.status = JobStatus::Active;
    let store = ctx.store();
    store.put_new_job(&job).await?;
    let parts = tasks.div_ceil(ROWS_PER_PART);
    let started = Instant::now();
    let written = futures::stream::iter(0..parts)
        .map(|p| {
            let ctx = ctx.clone();
            let job_id = job_id.clone();
            async move {
                let first = p * ROWS_PER_PART;
                let rows = ROWS_PER_PART.min(tasks - first);
                let outcomes: Vec<TaskOutcome> = (first..first + rows).map(outcome).collect();
                let batch_id = format!("b{p:08}");
                let key = report::part_key(&job_id, &batch_id, "bench");
                ctx.s3
                    .put_object()
                    .bucket(&ctx.settings.system_bucket)
                    .key(&key)
                    .body(report::encode_rows(&outcomes).into())
                    .send()
                    .await?;
                BenchResult::Ok(batchops::store::BatchRecord {
                    batch_id,
                    counts: BatchCounts {
                        succeeded: rows,
                        ..BatchCounts::default()
                    },
                    tasks: rows,
                    tasks_done: rows,
                    parts: vec![key],
                    updated_at: None,
                    deferral: None,
                })
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    let records = written.into_iter().collect::<BenchResult<Vec<_>>>()?;
    for chunk in records.chunks(25) {
        let writes = chunk
            .iter()
            .map(|record| {
                aws_sdk_dynamodb::types::WriteRequest::builder()
                    .put_request(
                        aws_sdk_dynamodb::types::PutRequest::builder()
                            .set_item(Some(batchops::store::batch_to_item(&job_id, record)))
                            .build()
                            .expect("an item"),
                    )
                    .build()
            })
            .collect::<Vec<_>>();
        let mut pending = Some(std::collections::HashMap::from([(
            ctx.settings.table.clone(),
            writes,
        )]));
        while let Some(items) = pending.take().filter(|i| !i.is_empty()) {
            let out = ctx
                .dynamodb
                .batch_write_item()
                .set_request_items(Some(items))
                .send()
                .await?;
            pending = out.unprocessed_items;
        }
    }
    // The counters the commits would have added.
    use aws_sdk_dynamodb::types::AttributeValue;
    ctx.dynamodb
        .update_item()
        .table_name(&ctx.settings.table)
        .key("pk", AttributeValue::S(format!("JOB#{job_id}")))
        .key("sk", AttributeValue::S("JOB".into()))
        .update_expression("SET succeeded = :t, batches_committed = :b")
        .expression_attribute_values(":t", AttributeValue::N(tasks.to_string()))
        .expression_attribute_values(":b", AttributeValue::N(parts.to_string()))
        .send()
        .await?;
    store.finish_planning(&job_id, tasks, parts).await?;
    eprintln!(
        "reporter bench: {tasks} tasks in {parts} parts written in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(job_id)
}

/// Task number `i`: a 100-byte key, as a large bucket has them.
fn outcome(i: u64) -> TaskOutcome {
    let mut key = format!("data/2026/11/{:02}/{i:012}/", i % 28 + 1);
    let tail = format!("{:x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    while key.len() < 100 {
        key.push_str(&tail);
    }
    key.truncate(100);
    TaskOutcome {
        task: Task {
            bucket: common::SOURCE_BUCKET.into(),
            key,
            version_id: None,
            size: None,
        },
        status: TaskStatus::Succeeded,
        error_code: None,
        http_status: Some(200),
        result_message: "Successful".into(),
    }
}

/// Makes the job reportable again: Active, no report state.
async fn reset(ctx: &Context, job_id: &str) -> BenchResult<()> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let key = |sk: &str| {
        [
            ("pk".to_string(), AttributeValue::S(format!("JOB#{job_id}"))),
            ("sk".to_string(), AttributeValue::S(sk.to_string())),
        ]
    };
    let [pk, sk] = key("REPORT");
    ctx.dynamodb
        .delete_item()
        .table_name(&ctx.settings.table)
        .key(pk.0, pk.1)
        .key(sk.0, sk.1)
        .send()
        .await?;
    let [pk, sk] = key("JOB");
    ctx.dynamodb
        .update_item()
        .table_name(&ctx.settings.table)
        .key(pk.0, pk.1)
        .key(sk.0, sk.1)
        .update_expression("SET #s = :active REMOVE termination_date, #ttl")
        .expression_attribute_names("#s", "status")
        .expression_attribute_names("#ttl", "ttl")
        .expression_attribute_values(":active", AttributeValue::S("Active".into()))
        .send()
        .await?;
    Ok(())
}

/// Runs the reporter in a child process; returns its seconds, invocations and peak RSS (KiB).
fn run_child(ctx: &Context, job_id: &str, budget_ms: Option<u64>) -> BenchResult<(f64, u64, u64)> {
    let exe = std::env::current_exe()?;
    let mut command = std::process::Command::new(exe);
    command
        .args(["--child", job_id])
        .env("BATCHOPS_TABLE", &ctx.settings.table)
        .env("BATCHOPS_PLAN_QUEUE_URL", &ctx.settings.plan_queue_url)
        .env("BATCHOPS_TASK_QUEUE_URL", &ctx.settings.task_queue_url)
        .env("BATCHOPS_REPORT_QUEUE_URL", &ctx.settings.report_queue_url)
        .env("BATCHOPS_SYSTEM_BUCKET", &ctx.settings.system_bucket);
    match budget_ms {
        Some(ms) => command.env("BATCHOPS_REPORTER_BUDGET_MS", ms.to_string()),
        None => command.env_remove("BATCHOPS_REPORTER_BUDGET_MS"),
    };
    let output = command.output()?;
    if !output.status.success() {
        return Err(format!(
            "reporter child failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let line = String::from_utf8(output.stdout)?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields.as_slice() {
        [seconds, invocations, hwm] => Ok((seconds.parse()?, invocations.parse()?, hwm.parse()?)),
        _ => Err(format!("unexpected child output {line:?}").into()),
    }
}

/// The child: reports the job, invocation after invocation (each continuation's message is
/// taken off the report queue, as the event source mapping would), and prints
/// `seconds invocations vm_hwm_kib`.
async fn child(job_id: &str) -> BenchResult<()> {
    let ctx = Context::from_env().await?;
    let started = Instant::now();
    let mut invocations = 0u64;
    loop {
        invocations += 1;
        match batchops::reporter::finalize_job(&ctx, job_id).await? {
            batchops::reporter::Finalized::Ended(_) => break,
            other @ (batchops::reporter::Finalized::CanaryReported
            | batchops::reporter::Finalized::NotDue(_)) => {
                return Err(format!("the bench job was not finalized: {other:?}").into())
            }
            batchops::reporter::Finalized::Continued => {
                let url = &ctx.settings.report_queue_url;
                let messages = ctx
                    .sqs
                    .receive_message()
                    .queue_url(url)
                    .max_number_of_messages(10)
                    .send()
                    .await?
                    .messages
                    .unwrap_or_default();
                for message in messages {
                    if let Some(handle) = message.receipt_handle() {
                        ctx.sqs
                            .delete_message()
                            .queue_url(url)
                            .receipt_handle(handle)
                            .send()
                            .await?;
                    }
                }
            }
        }
        if started.elapsed() > Duration::from_secs(3600) {
            return Err("the report took more than an hour".into());
        }
    }
    println!(
        "{:.3} {invocations} {}",
        started.elapsed().as_secs_f64(),
        common::vm_hwm_kib()?
    );
    Ok(())
}
