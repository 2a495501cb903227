//! A whole tagging job end to end through `batchops local run` on moto server (issue 9): wall
//! time per phase (plan, execute, report) and the proof that nothing stalled (no sweeper repair,
//! no failed delivery, every task counted once).
//!
//!     scripts/with-services.sh -- cargo bench -p batchops --bench job
//!
//! Knobs: `BENCH_JOB_TASKS` (default 1,000,000 objects; creating them on moto takes a while),
//! `BENCH_JOB_PUT_CONCURRENCY` (default 64).

mod common;

use batchops::job::{CreateJobRequest, JobStatus};
use batchops::local::{self, RunOptions, RunUntil};
use batchops::manifest::encode_key;
use batchops::Context;
use common::{env_u64, BenchResult};
use futures::StreamExt;
use std::time::{Duration, Instant};

fn main() -> BenchResult<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> BenchResult<()> {
    let endpoint = common::moto_endpoint()?;
    let tasks = env_u64("BENCH_JOB_TASKS", 1_000_000);
    let concurrency = env_u64("BENCH_JOB_PUT_CONCURRENCY", 64) as usize;
    let (_, ctx, id) = common::local_stack("jobbench").await?;
    let data = format!("jobbench-data-{id}");
    ctx.s3.create_bucket().bucket(&data).send().await?;
    println!("== A {tasks}-task tagging job through local run, on moto server ({endpoint})");

    let started = Instant::now();
    let keys: Vec<String> = (0..tasks).map(key).collect();
    let puts = futures::stream::iter(keys.iter())
        .map(|key| {
            let ctx = ctx.clone();
            let data = data.clone();
            async move {
                ctx.s3
                    .put_object()
                    .bucket(&data)
                    .key(key)
                    .body(b"x".to_vec().into())
                    .send()
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    for put in puts {
        put?;
    }
    let manifest: String = keys
        .iter()
        .map(|k| format!("{data},{}\n", encode_key(k)))
        .collect();
    let etag = ctx
        .s3
        .put_object()
        .bucket(&data)
        .key("manifest.csv")
        .body(manifest.into_bytes().into())
        .send()
        .await?
        .e_tag
        .unwrap_or_default();
    println!(
        "setup: {tasks} objects and the manifest in {:.0} s (not part of the job)",
        started.elapsed().as_secs_f64()
    );

    let request = CreateJobRequest::parse(
        &serde_json::json!({
            "Operation": {"S3PutObjectTagging": {"TagSet": [{"Key": "bench", "Value": "1"}]}},
            "Manifest": {"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
                         "Location": {"ObjectArn": format!("arn:aws:s3:::{data}/manifest.csv"), "ETag": etag}},
            "Report": {"Bucket": format!("arn:aws:s3:::{data}"), "Format": "Report_CSV_20180820",
                       "Enabled": true, "Prefix": "report", "ReportScope": "AllTasks"},
            "Priority": 10,
            "RoleArn": "arn:aws:iam::123456789012:role/batch"
        })
        .to_string(),
    )?;
    let job_id = batchops::control::create_job(&ctx, request, Some(false))
        .await?
        .job_id;
    let started = Instant::now();
    let options = RunOptions {
        timeout: Duration::from_secs(6 * 3600),
        sweep_every: Duration::from_secs(10),
        progress_every: None,
        chaos: None,
    };
    let (summary, phases) = tokio::join!(
        local::run_with(&ctx, RunUntil::JobTerminal(job_id.clone()), &options),
        watch(&ctx, &job_id, started)
    );
    let (summary, phases) = (summary?, phases?);
    let total = started.elapsed().as_secs_f64();
    let job = ctx.store().get_job(&job_id).await?;
    let p = &job.progress;
    println!(
        "job {}: {} succeeded, {} failed, {} not run of {:?}; {} batches",
        job.status, p.succeeded, p.failed, p.not_run, p.total_tasks, p.batches_committed
    );
    println!(
        "phases: plan {:.1} s, execute {:.1} s (until the last commit), report {:.1} s; total {total:.1} s ({:.0} tasks/s)",
        phases.planned,
        phases.executed - phases.planned,
        total - phases.executed,
        tasks as f64 / total
    );
    println!(
        "deliveries: {} plan, {} task, {} report messages; {} failed deliveries; {} sweeps, {} repairs",
        summary.plan_messages,
        summary.task_messages,
        summary.report_messages,
        summary.failed_deliveries,
        summary.sweeps,
        summary.repairs
    );
    let stalled_free = summary.repairs == 0
        && job.status == JobStatus::Complete
        && p.succeeded == tasks
        && p.total_tasks == Some(tasks);
    println!(
        "nothing stalled, every task counted once: {}",
        common::verdict(stalled_free)
    );
    Ok(())
}

fn key(i: u64) -> String {
    format!(
        "logs/2026/11/{:02}/host-{:04}/event-{i:09}.json",
        i % 28 + 1,
        i % 997
    )
}

/// When each phase ended, in seconds from the start: planning (the job knows its batches), then
/// execution (every batch committed).
struct Phases {
    planned: f64,
    executed: f64,
}

async fn watch(ctx: &Context, job_id: &str, started: Instant) -> BenchResult<Phases> {
    let store = ctx.store();
    let mut planned = None;
    loop {
        let job = store.get_job(job_id).await?;
        let now = started.elapsed().as_secs_f64();
        if planned.is_none() && job.progress.batches_planned.is_some() {
            planned = Some(now);
        }
        if job.progress.all_batches_committed() || job.status.is_terminal() {
            return Ok(Phases {
                planned: planned.unwrap_or(now),
                executed: now,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
