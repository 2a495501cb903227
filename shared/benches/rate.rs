//! The rate limit of a job (`crate::rate`) against moto server's DynamoDB: for limits from 10 to
//! 2,000 tasks per second, several executors (each with its own leases, as separate Lambda
//! containers) start no-op tasks as fast as the limiter lets them. Prints the measured rate
//! (tasks started per second between the 10th and 90th percentile of start times), its error
//! against the limit, and the limiter's DynamoDB writes and reads per 1,000 tasks (lost races
//! included).
//!
//!     scripts/with-services.sh -- cargo bench -p batchops --bench rate
//!
//! Knobs: `BENCH_RATE_LIMITS` (comma-separated, default 10,50,200,1000,2000),
//! `BENCH_RATE_SECONDS` (how long each limit runs, default 8), `BENCH_RATE_EXECUTORS`
//! (default 4).

mod common;

use batchops::fault::{Fault, FaultPlan, FaultRule};
use batchops::job::{CreateJobRequest, Job};
use batchops::Context;
use common::{env_u64, BenchResult};
use std::time::Instant;

fn main() -> BenchResult<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> BenchResult<()> {
    let endpoint = common::moto_endpoint()?;
    let limits: Vec<u32> = std::env::var("BENCH_RATE_LIMITS")
        .unwrap_or_else(|_| "10,50,200,1000,2000".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let seconds = env_u64("BENCH_RATE_SECONDS", 8);
    let executors = env_u64("BENCH_RATE_EXECUTORS", 4) as usize;
    let (config, ctx, _) = common::local_stack("ratebench").await?;
    println!(
        "== The rate limiter on moto server ({endpoint}): {executors} executors, {seconds} s per limit"
    );
    println!(
        "{:>10} {:>10} {:>8} {:>8} {:>18} {:>17}",
        "limit/s", "measured/s", "error", "tasks", "writes/1000 tasks", "reads/1000 tasks"
    );
    let mut worst: f64 = 0.0;
    for limit in limits {
        let (measured, tasks, writes, reads) =
            measure(&ctx, &config, limit, seconds, executors).await?;
        let error = (measured - limit as f64) / limit as f64 * 100.0;
        worst = worst.max(error.abs());
        let per_1000 = |n: u64| n as f64 * 1000.0 / tasks as f64;
        println!(
            "{limit:>10} {measured:>10.1} {error:>+7.1}% {tasks:>8} {:>18.1} {:>17.1}",
            per_1000(writes),
            per_1000(reads)
        );
    }
    println!(
        "worst error {worst:.1}%: goal ±10% {}",
        common::verdict(worst <= 10.0)
    );
    Ok(())
}

/// Runs `executors` pacers of one job at `limit` for `seconds`; returns the measured rate, the
/// tasks started and the limiter's DynamoDB writes and reads (lost races included).
async fn measure(
    ctx: &Context,
    config: &aws_config::SdkConfig,
    limit: u32,
    seconds: u64,
    executors: usize,
) -> BenchResult<(f64, usize, u64, u64)> {
    let request = CreateJobRequest::parse(
        r#"{"Operation": {"S3DeleteObjectTagging": {}}, "Report": {"Enabled": false}}"#,
    )?;
    let mut job: Job = batchops::control::new_job(
        uuid::Uuid::new_v4().to_string(),
        request,
        chrono::Utc::now(),
    );
    job.max_tasks_per_second = Some(limit);
    // Every request of the limiter is counted: a rule that delays by nothing logs it.
    let counted = FaultPlan::new(
        1,
        vec![
            FaultRule::new("DynamoDB", "GetItem", Fault::Delay { millis: 0 }),
            FaultRule::new("DynamoDB", "UpdateItem", Fault::Delay { millis: 0 }),
        ],
    );
    let until = Instant::now() + std::time::Duration::from_secs(seconds);
    let mut runs = Vec::new();
    for _ in 0..executors {
        let mut exec = ctx.clone().with_faults(config, counted.clone())?;
        exec.rate_gates = Default::default();
        let job = job.clone();
        runs.push(tokio::spawn(async move {
            let mut starts = Vec::new();
            while Instant::now() < until {
                // A batch of 100 tasks left, as an executor would ask.
                if batchops::rate::pace(&exec, &job, 100, None, starts.is_empty()).await {
                    starts.push(Instant::now());
                }
            }
            starts
        }));
    }
    let mut starts = Vec::new();
    for run in runs {
        starts.extend(run.await?);
    }
    starts.sort();
    let (a, b) = (starts.len() / 10, starts.len() * 9 / 10);
    let measured = (b - a) as f64 / starts[b].duration_since(starts[a]).as_secs_f64();
    let log = counted.log();
    let writes = log.iter().filter(|i| i.operation == "UpdateItem").count() as u64;
    Ok((measured, starts.len(), writes, log.len() as u64 - writes))
}
