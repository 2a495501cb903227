//! The chaos run: three jobs at once (tagging, copy, LambdaInvoke through `cargo lambda watch`)
//! on moto server with every fault on, seeded: AWS calls failing, throttled, slow or answered
//! and lost (`batchops::fault::chaos_rules`), duplicate deliveries, visibility that lapses while a
//! message is worked on, and handler invocations killed at a random await point, with two
//! pollers racing. Then it checks what a user would: every job terminal, every manifest row
//! reported exactly once, the counts right, and the effect of every succeeded task really there.
//!
//!     make chaos                       # 100,000 tasks, seed 1
//!     make chaos TASKS=20000 SEED=7
//!
//! `make test` runs a small one (CHAOS_TASKS=3000, seeds 1 and 2). Knobs: `CHAOS_TASKS`,
//! `CHAOS_SEEDS` (comma-separated), `CHAOS_TIMEOUT_SECONDS`, `CHAOS_JOBS` (which of
//! tagging,copy,invoke; all three by default), `CHAOS_MESSAGE_BYTES` (the batch messages' size in
//! runs over 10,000 tasks; default 16 KiB).

use crate::common;

use batchops::fault::{chaos_rules, FaultPlan};
use batchops::job::{Job, JobStatus};
use batchops::local::{self, Chaos, RunOptions, RunUntil};
use batchops::report::{TaskOutcome, TaskStatus};
use batchops::Context;
use common::stack::{csv_job, stack_with, tagging, Stack};
use futures::StreamExt;
use serde_json::json;
use sha2::Digest;
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn seeds() -> Vec<u64> {
    std::env::var("CHAOS_SEEDS")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .filter(|v: &Vec<u64>| !v.is_empty())
        .unwrap_or_else(|| vec![1, 2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_every_task_counted_once_whatever_fails() {
    let tasks = env_u64("CHAOS_TASKS", 3_000);
    let (s, data) = setup(tasks).await;
    for seed in seeds() {
        run_seed(&s, &data, seed, tasks).await;
    }
}

/// The stack and its objects, shared by the seeds: each seed runs its own jobs on them (its own
/// tag value, copy bucket and reports), so that a large run creates its objects once.
async fn setup(tasks: u64) -> (Stack, String) {
    let mut s = stack_with(false, |settings| {
        // Small budgets, so that batches are handed on and reports continued under fire.
        settings.executor_budget = Some(Duration::from_millis(800));
        settings.reporter_budget = Some(Duration::from_millis(300));
        settings.planner_budget = Some(Duration::from_millis(500));
        settings.executor_concurrency = 16;
        settings.commit_patience = Duration::from_secs(10);
        settings.stall_after = Duration::from_secs(20);
        settings.finalize_resend_after = Duration::from_secs(10);
        // A large run packs small messages (CHAOS_MESSAGE_BYTES, default 16 KiB): hundreds of
        // batches at once, so that a stalled one (a killed invocation waits out its visibility
        // timeout) holds up few tasks. With 250 KB messages the 66,666 tagging tasks of a
        // 100,000-task run were 10 batches, and the run crawled at a few tasks a second.
        if tasks > 10_000 {
            settings.max_message_bytes = env_u64("CHAOS_MESSAGE_BYTES", 16 * 1024) as usize;
        }
    })
    .await;
    s = s.with_lambda().await;
    // S3 on a server of its own (`scripts/with-services.sh --s3-apart`, as `make chaos` runs):
    // moto answers on one core, and a large run is bound by it.
    if let Ok(url) = std::env::var("BATCHOPS_TEST_S3_APART_ENDPOINT") {
        s.ctx = s.ctx.clone().with_s3_endpoint(&s.config, &url);
        let system = s.ctx.settings.system_bucket.clone();
        s.create_bucket(&system).await;
        eprintln!(
            "chaos: S3 at {url}, the other services at {}",
            common::moto_endpoint()
        );
    }
    let data = s.bucket("chaos");
    s.create_bucket(&data).await;
    let started = Instant::now();
    create_objects(&s, &data, tasks).await;
    eprintln!(
        "chaos: {tasks} objects created in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    (s, data)
}

/// The body of object `i`: known from its key, so that copies and the Lambda's checksums can be
/// checked without reading the source again.
fn body(i: u64) -> String {
    format!("chaos object {i} {}", "x".repeat((i % 97) as usize))
}

fn key(i: u64) -> String {
    // One object in a hundred makes the example function answer TemporaryFailure once (its
    // test knob), which the Lambda job must retry.
    if i.is_multiple_of(100) {
        format!("simulate-temporary-once/{i:07}")
    } else {
        format!("k/{:02}/{i:07}", i % 100)
    }
}

/// The jobs of the run (`CHAOS_JOBS`, comma-separated; default all three), with the share of
/// the objects each takes: tagging two parts, copy and LambdaInvoke one each.
fn job_kinds() -> Vec<(&'static str, u64)> {
    let wanted = std::env::var("CHAOS_JOBS").unwrap_or_else(|_| "tagging,copy,invoke".into());
    let kinds: Vec<(&str, u64)> = [("tagging", 2), ("copy", 1), ("invoke", 1)]
        .into_iter()
        .filter(|(name, _)| wanted.split(',').any(|w| w.trim() == *name))
        .collect();
    assert!(
        !kinds.is_empty(),
        "CHAOS_JOBS={wanted:?} names none of tagging, copy, invoke"
    );
    kinds
}

/// One job of the run: its id and the number of its manifest rows.
struct ChaosJob {
    id: String,
    rows: u64,
}

async fn run_seed(s: &Stack, data: &str, seed: u64, tasks: u64) {
    let target = s.bucket(&format!("chaos-copy-{seed}"));
    s.create_bucket(&target).await;
    let jobs = create_jobs(s, data, &target, tasks, seed).await;

    let plan = FaultPlan::new(seed, chaos_rules(seed));
    let faulty = s
        .ctx
        .clone()
        .with_faults(&s.config, plan.clone())
        .expect("faults on loopback only");
    let chaos = Chaos::new(seed, 0.1, 0.1, Duration::from_millis(1500));
    let started = Instant::now();
    let timeout = Duration::from_secs(env_u64("CHAOS_TIMEOUT_SECONDS", 1800));
    let ids: Vec<&String> = jobs.iter().map(|j| &j.id).collect();
    run_until_terminal(&s.ctx, &faulty, &chaos, &ids, timeout).await;
    let took = started.elapsed();

    let mut lost = 0;
    let mut duplicated = 0;
    for job in &jobs {
        let (l, d) = check_job(s, &job.id, job.rows, data, &target, seed).await;
        lost += l;
        duplicated += d;
    }
    let mut by_kind: HashMap<String, u64> = HashMap::new();
    for injected in plan.log() {
        *by_kind
            .entry(format!("{} {}", injected.service, injected.operation))
            .or_default() += 1;
    }
    let mut kinds: Vec<_> = by_kind.into_iter().collect();
    kinds.sort();
    eprintln!(
        "chaos: seed {seed}: faults by kind: {}; invocations killed {}, visibility lapses {}",
        kinds
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        chaos.kills(),
        chaos.lapses()
    );
    let faults = plan.injected() + chaos.kills() + chaos.lapses();
    println!(
        "chaos: seed {seed}, {tasks} tasks, {faults} faults injected, {lost} lost, {duplicated} duplicated, terminal in {:.0} s",
        took.as_secs_f64()
    );
    assert!(faults > 0, "a chaos run without faults proves nothing");
    assert_eq!((lost, duplicated), (0, 0));
}

async fn create_objects(s: &Stack, bucket: &str, n: u64) {
    let puts = futures::stream::iter(0..n)
        .map(|i| {
            let s3 = s.ctx.s3.clone();
            let bucket = bucket.to_string();
            async move {
                s3.put_object()
                    .bucket(bucket)
                    .key(key(i))
                    .body(body(i).into_bytes().into())
                    .send()
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    for put in puts {
        put.expect("create a chaos object");
    }
}

/// The objects shared among the jobs of [`job_kinds`] by their weights, in key order.
async fn create_jobs(s: &Stack, data: &str, target: &str, n: u64, seed: u64) -> Vec<ChaosJob> {
    let kinds = job_kinds();
    let total: u64 = kinds.iter().map(|(_, w)| w).sum();
    let mut jobs = Vec::new();
    let mut from = 0;
    let mut weight_so_far = 0;
    for (name, weight) in &kinds {
        weight_so_far += weight;
        let to = n * weight_so_far / total;
        let manifest: String = (from..to)
            .map(|i| format!("{data},{}\n", batchops::manifest::encode_key(&key(i))))
            .collect();
        let manifest_key = format!("{name}-{seed}.csv");
        let etag = s.put(data, &manifest_key, &manifest).await;
        let operation = match *name {
            "tagging" => tagging(&[("chaos", tag_value(seed).as_str())]),
            "copy" => {
                json!({"S3PutObjectCopy": {"TargetResource": format!("arn:aws:s3:::{target}")}})
            }
            _ => {
                json!({"LambdaInvoke": {"FunctionArn": common::TASK_HANDLER, "InvocationSchemaVersion": "2.0"}})
            }
        };
        let mut request = csv_job(data, &manifest_key, &etag, operation, data, "AllTasks");
        request["Report"]["Prefix"] = json!(format!("reports-{seed}-{name}"));
        jobs.push(ChaosJob {
            id: s.create_job(request).await,
            rows: to - from,
        });
        from = to;
    }
    jobs
}

/// Two pollers on the faulty context until every job has ended; a poller that stops on an error
/// (a fault that outlasted the SDK's retries) is started again, as Lambda's pollers are.
async fn run_until_terminal(
    clean: &Context,
    faulty: &Context,
    chaos: &std::sync::Arc<Chaos>,
    ids: &[&String],
    timeout: Duration,
) {
    let started = Instant::now();
    let options = RunOptions {
        timeout: Duration::from_secs(30),
        sweep_every: Duration::from_secs(3),
        progress_every: None,
        chaos: Some(chaos.clone()),
    };
    let store = clean.store();
    let mut last_said = Instant::now();
    loop {
        let mut all_ended = true;
        let mut where_they_stand = Vec::new();
        for id in ids {
            let job = store.get_job(id).await.expect("job");
            all_ended &= job.status.is_terminal();
            let p = &job.progress;
            where_they_stand.push(format!(
                "{id}: {} {}/{} tasks, {}/{} batches",
                job.status,
                p.succeeded + p.failed + p.not_run,
                p.total_tasks.map_or("?".into(), |t| t.to_string()),
                p.batches_committed,
                p.batches_planned.map_or("?".into(), |b| b.to_string()),
            ));
        }
        if all_ended {
            return;
        }
        // A line a minute, so that a run that ends in its timeout tells slow from stuck.
        if last_said.elapsed() >= Duration::from_secs(60) {
            last_said = Instant::now();
            eprintln!(
                "chaos: {:.0} s: {}",
                started.elapsed().as_secs_f64(),
                where_they_stand.join("; ")
            );
        }
        assert!(
            started.elapsed() < timeout,
            "chaos: jobs not terminal after {timeout:?}: {}",
            where_they_stand.join("; ")
        );
        // Queues empty but a job not ended: only a repair can move it (the sweeper runs on a
        // schedule in a stack; here, between runs).
        if let Err(err) = batchops::sweeper::sweep(faulty).await {
            eprintln!("chaos: a sweep failed ({err})");
        }
        let one = local::run_with(faulty, RunUntil::Idle, &options);
        let two = local::run_with(faulty, RunUntil::Idle, &options);
        let (a, b) = tokio::join!(Box::pin(one), Box::pin(two));
        for result in [a, b] {
            if let Err(err) = result {
                eprintln!("chaos: a poller stopped ({err}); starting it again");
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Checks one job against its manifest; returns (lost, duplicated) report rows.
async fn check_job(
    s: &Stack,
    job_id: &str,
    rows: u64,
    data: &str,
    target: &str,
    seed: u64,
) -> (u64, u64) {
    let job: Job = s.ctx.store().get_job(job_id).await.unwrap();
    assert!(job.status.is_terminal(), "{job_id} is {}", job.status);
    assert_eq!(
        job.status,
        JobStatus::Complete,
        "{job_id}: {:?}",
        job.failure_reasons
    );
    let p = &job.progress;
    assert_eq!(
        p.total_tasks,
        Some(rows),
        "TotalNumberOfTasks == manifest rows"
    );
    assert_eq!(p.succeeded + p.failed, rows, "succeeded + failed == total");
    let prefix = report_prefix(&job);
    let (_, report) = s.report(data, &prefix, job_id).await;
    let succeeded = report
        .iter()
        .filter(|r| r.status == TaskStatus::Succeeded)
        .count() as u64;
    assert_eq!(
        (succeeded, report.len() as u64 - succeeded),
        (p.succeeded, p.failed),
        "ProgressSummary == the report's counts"
    );
    let mut seen: HashMap<&str, u64> = HashMap::new();
    for row in &report {
        *seen.entry(row.task.key.as_str()).or_default() += 1;
    }
    let duplicated: u64 = seen.values().map(|n| n - 1).sum();
    let lost = rows.saturating_sub(seen.len() as u64);
    check_effects(s, &job, &report, target, seed).await;
    (lost, duplicated)
}

/// The tag each seed's tagging job sets: a seed that tagged nothing cannot pass on an earlier
/// seed's tags.
fn tag_value(seed: u64) -> String {
    format!("seed-{seed}")
}

fn report_prefix(job: &Job) -> String {
    job.request.report.prefix.clone().unwrap_or_default()
}

/// Every task the report calls succeeded really had its effect.
async fn check_effects(s: &Stack, job: &Job, report: &[TaskOutcome], target: &str, seed: u64) {
    let op = job.request.operation.name();
    let tag = tag_value(seed);
    let tag = tag.as_str();
    let checks = futures::stream::iter(report.iter().filter(|r| r.status == TaskStatus::Succeeded))
        .map(|row| async move {
            let i: u64 = row.task.key.rsplit('/').next().unwrap().parse().unwrap();
            match op {
                "S3PutObjectTagging" => {
                    let tags = s.tags(&row.task.bucket, &row.task.key).await;
                    assert_eq!(
                        tags.get("chaos").map(String::as_str),
                        Some(tag),
                        "{}",
                        row.task.key
                    );
                }
                "S3PutObjectCopy" => {
                    let copied = s.get(target, &row.task.key).await;
                    assert_eq!(copied, body(i).into_bytes(), "copy of {}", row.task.key);
                }
                _ => {
                    let sha = hex::encode(sha2::Sha256::digest(body(i).as_bytes()));
                    assert_eq!(
                        row.result_message, sha,
                        "the function's checksum of {}",
                        row.task.key
                    );
                }
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>();
    checks.await;
}
