//! Every job ends, and every task is counted once, whatever fails on the way: faults injected
//! into the AWS calls of a real run on moto server (see `batchops::fault`), crashes simulated by
//! stopping a handler mid-way, and the sweeper repairing what nothing else would.

use crate::common;

use aws_sdk_dynamodb::types::AttributeValue;
use batchops::control;
use batchops::executor::{self, BatchResult};
use batchops::fault::{Fault, FaultPlan, FaultRule};
use batchops::job::{JobStatus, FAILURE_THRESHOLD_MIN_TASKS};
use batchops::local::{self, RunOptions, RunUntil};
use batchops::manifest::Task;
use batchops::plan::TaskBatch;
use batchops::report::TaskStatus;
use batchops::sweeper::{self, DEAD_LETTER_CODE};
use batchops::Context;
use common::stack::{csv_job, stack_with, tagging, Stack};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(240);

/// The stack's context with every client going through `rules`.
fn faulty(s: &Stack, rules: Vec<FaultRule>) -> (Context, std::sync::Arc<FaultPlan>) {
    let plan = FaultPlan::new(7, rules);
    let ctx = s
        .ctx
        .clone()
        .with_faults(&s.config, plan.clone())
        .expect("faults on loopback");
    (ctx, plan)
}

/// A run that sweeps every second, as a stack whose schedule is short would.
fn options() -> RunOptions {
    RunOptions {
        timeout: TIMEOUT,
        sweep_every: Duration::from_secs(1),
        progress_every: None,
        chaos: None,
    }
}

/// `n` objects and a CSV manifest of them; returns the data bucket and the manifest's ETag.
async fn objects(s: &Stack, n: usize) -> (String, String) {
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    let mut rows = Vec::new();
    for i in 0..n {
        let key = format!("obj-{i:04}");
        s.put(&data, &key, "x").await;
        rows.push((data.clone(), key));
    }
    let etag = s.put_manifest(&data, "m.csv", &rows).await;
    (data, etag)
}

/// A CSV manifest of `n` objects that do not exist (tagging them fails with NoSuchKey).
async fn missing_objects(s: &Stack, n: usize) -> (String, String) {
    let data = s.bucket("data");
    s.create_bucket(&data).await;
    let rows: Vec<(String, String)> = (0..n)
        .map(|i| (data.clone(), format!("missing-{i:05}")))
        .collect();
    let etag = s.put_manifest(&data, "m.csv", &rows).await;
    (data, etag)
}

async fn tagging_job(s: &Stack, data: &str, etag: &str, scope: &str) -> String {
    s.create_job(csv_job(
        data,
        "m.csv",
        etag,
        tagging(&[("k", "v")]),
        data,
        scope,
    ))
    .await
}

async fn job(ctx: &Context, job_id: &str) -> batchops::job::Job {
    ctx.store().get_job(job_id).await.unwrap()
}

/// A tagging job of 20 objects, run until it ends with every client going through `rules`:
/// the stack, the data bucket, the job and the fault plan (what fired).
async fn tagging_job_under(
    rules: Vec<FaultRule>,
) -> (Stack, String, String, std::sync::Arc<FaultPlan>) {
    let s = stack_with(false, |_| {}).await;
    let (data, etag) = objects(&s, 20).await;
    let job_id = tagging_job(&s, &data, &etag, "AllTasks").await;
    let (ctx, plan) = faulty(&s, rules);
    local::run_with(&ctx, RunUntil::JobTerminal(job_id.clone()), &options())
        .await
        .unwrap();
    (s, data, job_id, plan)
}

/// The job is Complete with its `n` tasks succeeded, each in the report exactly once.
async fn assert_complete_and_reported_once(s: &Stack, data: &str, job_id: &str, n: usize) {
    let job = job(&s.ctx, job_id).await;
    assert_eq!(job.status, JobStatus::Complete, "{:?}", job.failure_reasons);
    assert_eq!((job.progress.succeeded, job.progress.failed), (n as u64, 0));
    assert_reported_once(s, data, job_id, n).await;
}

/// Every task of the manifest is in the report exactly once.
async fn assert_reported_once(s: &Stack, data: &str, job_id: &str, n: usize) {
    let (_, rows) = s.report(data, "reports", job_id).await;
    let mut seen = BTreeMap::new();
    for row in &rows {
        *seen.entry(row.task.key.clone()).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), n, "every task reported");
    assert!(seen.values().all(|&c| c == 1), "no task reported twice");
}

#[tokio::test]
async fn a_finalize_request_whose_send_fails_is_sent_by_the_next_delivery() {
    // Three failures: every attempt the SDK makes for one SendMessage call.
    let rule = FaultRule::new("SQS", "SendMessage", Fault::internal_error())
        .containing("FinalizeJobId")
        .times(3);
    let (s, data, job_id, plan) = tagging_job_under(vec![rule]).await;
    assert_eq!(plan.fired(0), 3);
    assert_complete_and_reported_once(&s, &data, &job_id, 20).await;
}

#[tokio::test]
async fn a_finalize_claim_that_fails_is_claimed_by_the_next_delivery() {
    let rule = FaultRule::new("DynamoDB", "UpdateItem", Fault::internal_error())
        .containing("SET finalize_sent = :true")
        .times(3);
    let (s, data, job_id, plan) = tagging_job_under(vec![rule]).await;
    assert_eq!(plan.fired(0), 3);
    let job = job(&s.ctx, &job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_reported_once(&s, &data, &job_id, 20).await;
}

#[tokio::test]
async fn a_commit_that_took_effect_but_looked_failed_keeps_its_result_part() {
    // The transaction is applied and its answer lost: the SDK's retry then meets its own commit
    // (a condition failure), which must not be taken for another delivery's.
    let rule = FaultRule::new(
        "DynamoDB",
        "TransactWriteItems",
        Fault::LoseAnswer {
            status: 500,
            code: "InternalServerError".into(),
            message: "injected fault: the answer was lost".into(),
        },
    )
    .times(1);
    let (s, data, job_id, plan) = tagging_job_under(vec![rule]).await;
    assert_eq!(plan.fired(0), 1);
    assert_complete_and_reported_once(&s, &data, &job_id, 20).await;
}

#[tokio::test]
async fn a_manifest_read_that_s3_refuses_for_now_is_retried_not_failed() {
    // The chaos run at 100,000 tasks: an InternalError burst while the planner read the copy
    // job's manifest outlasted the SDK's three attempts, and the job failed ManifestReadFailed
    // with 27,215 tasks not run. A server error or throttling is S3's, not the manifest's.
    let burst = |operation: &str| {
        FaultRule::new("S3", operation, Fault::internal_error())
            .containing("m.csv")
            .times(3)
    };
    let (s, data, job_id, plan) =
        tagging_job_under(vec![burst("HeadObject"), burst("GetObject")]).await;
    assert_eq!(
        (plan.fired(0), plan.fired(1)),
        (3, 3),
        "a whole planner run each"
    );
    assert_complete_and_reported_once(&s, &data, &job_id, 20).await;
}

#[tokio::test]
async fn a_report_read_or_write_that_s3_refuses_for_now_is_retried_not_failed() {
    // CI's chaos run: an InternalError burst while the reporter read a result part outlasted the
    // SDK's three attempts, and the whole job failed ResultPartUnreadable. A server error or
    // throttling is S3's for now, not the report's: the finalize request comes again.
    let rules = vec![
        FaultRule::new("S3", "GetObject", Fault::internal_error())
            .containing("/parts/")
            .times(3),
        FaultRule::new("S3", "PutObject", Fault::slow_down())
            .containing("/results/")
            .times(3),
    ];
    let (s, data, job_id, plan) = tagging_job_under(rules).await;
    assert_eq!(
        (plan.fired(0), plan.fired(1)),
        (3, 3),
        "a whole reporter run each"
    );
    assert_complete_and_reported_once(&s, &data, &job_id, 20).await;
}

/// The process dies between claiming finalize and sending it: here the send fails and so does
/// giving the claim back, which leaves the job claimed with no request anywhere. Only the
/// sweeper can finish it.
#[tokio::test]
async fn a_finalize_lost_after_its_claim_is_resent_by_the_sweeper() {
    let s = stack_with(false, |st| {
        st.finalize_resend_after = Duration::from_secs(2);
    })
    .await;
    let (data, etag) = objects(&s, 20).await;
    let job_id = tagging_job(&s, &data, &etag, "AllTasks").await;
    let rules = vec![
        FaultRule::new("SQS", "SendMessage", Fault::internal_error())
            .containing("FinalizeJobId")
            .times(3),
        FaultRule::new("DynamoDB", "UpdateItem", Fault::internal_error())
            .containing("SET finalize_sent = :false"),
    ];
    let (ctx, plan) = faulty(&s, rules);
    local::run_with(&ctx, RunUntil::JobTerminal(job_id.clone()), &options())
        .await
        .unwrap();
    assert_eq!(plan.fired(0), 3, "the send failed");
    assert!(plan.fired(1) >= 1, "giving the claim back failed");
    let job = job(&s.ctx, &job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    let reason = job.status_update_reason.unwrap_or_default();
    assert!(
        reason.contains("sweeper") && reason.contains("finalize request again"),
        "{reason}"
    );
    assert_reported_once(&s, &data, &job_id, 20).await;
}

/// DynamoDB refuses every commit of the batch for longer than its deliveries last: the batch
/// goes to the dead-letter queue, and the sweeper fails its tasks so that the job still ends.
#[tokio::test]
async fn a_commit_outage_longer_than_the_redeliveries_ends_the_job_with_failed_tasks() {
    // One commit attempt per delivery (the SDK's own retries aside), so that the five
    // deliveries pass quickly.
    let s = stack_with(false, |st| st.commit_patience = Duration::ZERO).await;
    let (data, etag) = objects(&s, 30).await;
    let job_id = tagging_job(&s, &data, &etag, "AllTasks").await;
    let outage = FaultRule::new("DynamoDB", "TransactWriteItems", Fault::internal_error())
        .containing("BATCH#b00000000");
    let (ctx, plan) = faulty(&s, vec![outage]);
    // The outage lasts while the executor runs; the sweeper then runs with DynamoDB back.
    let run = local::run_with(
        &ctx,
        RunUntil::Idle,
        &RunOptions {
            timeout: TIMEOUT,
            sweep_every: Duration::from_secs(3600),
            progress_every: None,
            chaos: None,
        },
    )
    .await
    .unwrap();
    assert!(plan.fired(0) >= 5, "{} commits refused", plan.fired(0));
    assert_eq!(
        run.failed_deliveries, 5,
        "five deliveries, then the dead-letter queue"
    );
    let stuck = job(&s.ctx, &job_id).await;
    assert_eq!(stuck.status, JobStatus::Active);
    assert_eq!(stuck.progress.succeeded + stuck.progress.failed, 0);

    let swept = sweeper::sweep(&s.ctx).await.unwrap();
    assert_eq!(swept.repairs.len(), 1, "{swept:?}");
    assert!(swept.repairs[0].action.contains("b00000000"), "{swept:?}");
    s.run_job(&job_id).await;
    let job = job(&s.ctx, &job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!((job.progress.succeeded, job.progress.failed), (0, 30));
    assert_eq!(job.progress.total_tasks, Some(30));
    let (_, rows) = s.report(&data, "reports", &job_id).await;
    assert_eq!(rows.len(), 30);
    for row in rows {
        assert_eq!(row.status, TaskStatus::Failed);
        assert_eq!(row.error_code.as_deref(), Some(DEAD_LETTER_CODE));
        assert!(
            row.result_message.contains("dead-letter queue"),
            "{}",
            row.result_message
        );
    }
    assert!(job
        .status_update_reason
        .unwrap_or_default()
        .contains("dead-letter"));
}

/// One batch can never commit; the job still ends, its tasks are failed rows with the sweeper's
/// reason, and every other task succeeds.
#[tokio::test]
async fn a_poison_batch_fails_its_own_tasks_and_the_others_succeed() {
    let s = stack_with(false, |st| {
        st.max_message_bytes = 400;
        st.commit_patience = Duration::ZERO;
    })
    .await;
    let (data, etag) = objects(&s, 40).await;
    let job_id = tagging_job(&s, &data, &etag, "AllTasks").await;
    let poison = FaultRule::new("DynamoDB", "TransactWriteItems", Fault::internal_error())
        .containing("BATCH#b00000001");
    let (ctx, _) = faulty(&s, vec![poison]);
    local::run_with(&ctx, RunUntil::Idle, &options())
        .await
        .unwrap();
    let stuck = job(&s.ctx, &job_id).await;
    assert_eq!(stuck.status, JobStatus::Active, "{:?}", stuck.progress);
    // The faulty stack's own sweeper could not commit the poison batch either; a healthy one can.
    sweeper::sweep(&s.ctx).await.unwrap();
    let job = s.run_job(&job_id).await;
    assert_eq!(
        job.status,
        JobStatus::Complete,
        "{:?} {:?} {:?}",
        job.status_update_reason,
        job.failure_reasons,
        job.progress
    );
    let (_, rows) = s.report(&data, "reports", &job_id).await;
    assert_eq!(rows.len(), 40);
    let failed: Vec<_> = rows
        .iter()
        .filter(|r| r.status == TaskStatus::Failed)
        .collect();
    assert!(!failed.is_empty());
    assert!(failed
        .iter()
        .all(|r| r.error_code.as_deref() == Some(DEAD_LETTER_CODE)));
    assert_eq!(
        (
            job.progress.succeeded + job.progress.failed,
            job.progress.failed
        ),
        (40, failed.len() as u64)
    );
    assert_reported_once(&s, &data, &job_id, 40).await;
}

/// A job whose batches are delivered late, after the job has ended: each copy is acknowledged
/// at once, not retried into the dead-letter queue.
#[tokio::test]
async fn late_copies_of_batches_of_an_ended_job_are_dropped_at_once() {
    let s = stack_with(false, |_| {}).await;
    let (data, etag) = objects(&s, 10).await;
    let job_id = tagging_job(&s, &data, &etag, "AllTasks").await;
    let plan_requests = common::drain_queue(&s.ctx, &s.ctx.settings.plan_queue_url).await;
    assert_eq!(plan_requests.len(), 1);
    batchops::planner::plan_job(&s.ctx, &job_id).await.unwrap();
    let bodies = common::drain_queue(&s.ctx, &s.ctx.settings.task_queue_url).await;
    for body in &bodies {
        executor::process_message(&s.ctx, body).await.unwrap();
    }
    s.run_job(&job_id).await;
    // The same batches again, as a slow SQS redelivery would bring them.
    for body in &bodies {
        let late = executor::process_message(&s.ctx, body).await.unwrap();
        assert_eq!(late, BatchResult::Dropped);
        batchops::queue::send_task_batch(&s.ctx, &TaskBatch::from_body(body).unwrap())
            .await
            .unwrap();
    }
    let run = s.run_until_idle_summary().await;
    assert_eq!(run.task_messages, bodies.len() as u64);
    assert_eq!(run.failed_deliveries, 0, "no late copy is retried");
}

/// The executor's time runs out after every task (a budget of 0): each delivery runs one task,
/// commits it and hands the rest of the batch on; a copy of a message delivered again runs
/// nothing that was committed.
/// A job of six tasks in one batch, planned, with executors that commit one task per run and
/// take a batch over after `lease` without commits; returns the stack, the data bucket, the job
/// and the batch's message, taken off the queue.
async fn one_task_per_run(lease: Duration) -> (Stack, String, String, String) {
    let s = stack_with(false, |st| {
        st.executor_budget = Some(Duration::ZERO);
        st.stall_after = lease;
    })
    .await;
    let (data, etag) = objects(&s, 6).await;
    let job_id = tagging_job(&s, &data, &etag, "AllTasks").await;
    let plan_requests = common::drain_queue(&s.ctx, &s.ctx.settings.plan_queue_url).await;
    assert_eq!(plan_requests.len(), 1);
    batchops::planner::plan_job(&s.ctx, &job_id).await.unwrap();
    let mut first = common::drain_queue(&s.ctx, &s.ctx.settings.task_queue_url).await;
    assert_eq!(first.len(), 1, "six tasks in one batch");
    let body = first.remove(0);
    (s, data, job_id, body)
}

#[tokio::test]
async fn an_executor_out_of_time_hands_the_rest_of_its_batch_on() {
    // A batch not committed to for 2 s is taken over by a stale copy of it.
    let lease = Duration::from_secs(2);
    let (s, data, job_id, first) = one_task_per_run(lease).await;
    let result = executor::process_message(&s.ctx, &first).await.unwrap();
    assert_eq!(
        result,
        BatchResult::Continued {
            done: 1,
            remaining: 5
        }
    );
    // The original delivered again at once: the delivery that committed task 0 carries the
    // batch on, so this copy neither runs nor fails; a delayed copy of the rest replaces it.
    let deferred = executor::process_message(&s.ctx, &first).await.unwrap();
    assert_eq!(deferred, BatchResult::Deferred { done: 1 });
    // Once the batch has not moved for the lease, a stale copy takes over from task 1.
    tokio::time::sleep(lease + Duration::from_millis(200)).await;
    let again = executor::process_message(&s.ctx, &first).await.unwrap();
    assert_eq!(
        again,
        BatchResult::Continued {
            done: 2,
            remaining: 4
        }
    );
    // The first delivery's continuation (from task 1), the deferred copy (from task 1, delayed)
    // and the take-over's continuation (from task 2).
    let continuations = common::drain_queue(&s.ctx, &s.ctx.settings.task_queue_url).await;
    let offsets: std::collections::BTreeSet<u64> = continuations
        .iter()
        .map(|body| TaskBatch::from_body(body).unwrap().offset)
        .collect();
    assert!(offsets.contains(&1) && offsets.contains(&2), "{offsets:?}");
    let older = continuations
        .iter()
        .find(|body| TaskBatch::from_body(body).unwrap().offset == 1)
        .expect("a continuation starts at task 1");
    assert_eq!(TaskBatch::from_body(older).unwrap().tasks.len(), 5);
    // A copy that starts before the committed tasks, just after a commit: deferred too.
    let stale = executor::process_message(&s.ctx, older).await.unwrap();
    assert_eq!(stale, BatchResult::Deferred { done: 2 });
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!((job.progress.succeeded, job.progress.failed), (6, 0));
    assert_eq!(job.progress.batches_committed, 1);
    let batch = s
        .ctx
        .store()
        .get_batch(&job_id, "b00000000")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((batch.tasks, batch.tasks_done), (6, 6));
    assert_eq!(
        batch.parts.len(),
        6,
        "one result part per committed segment"
    );
    assert_reported_once(&s, &data, &job_id, 6).await;
}

#[tokio::test]
async fn a_delivery_that_loses_the_race_for_a_segment_is_deferred_not_failed() {
    // Two deliveries of one message at once: the loser must not come back as an error, or
    // every race it loses counts towards maxReceiveCount and a healthy batch dead-letters.
    let (s, data, job_id, first) = one_task_per_run(Duration::from_secs(2)).await;
    let (a, b) = tokio::join!(
        executor::process_message(&s.ctx, &first),
        executor::process_message(&s.ctx, &first)
    );
    let mut results = vec![a.unwrap(), b.unwrap()];
    results.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(
        results,
        vec![
            BatchResult::Continued {
                done: 1,
                remaining: 5
            },
            BatchResult::Deferred { done: 1 },
        ]
    );
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!((job.progress.succeeded, job.progress.failed), (6, 0));
    assert_reported_once(&s, &data, &job_id, 6).await;
}

#[tokio::test]
async fn stale_copies_of_a_batch_carried_on_leave_one_deferred_copy_between_them() {
    // The chaos run at 100,000 tasks: every duplicate delivery of a long batch left its own
    // deferred copy, re-checking every stall time until the batch ended; hundreds piled up and
    // took over together whenever a commit was late, racing each other.
    let (s, data, job_id, first) = one_task_per_run(Duration::from_secs(3)).await;
    assert_eq!(
        executor::process_message(&s.ctx, &first).await.unwrap(),
        BatchResult::Continued {
            done: 1,
            remaining: 5
        }
    );
    let mut stale = Vec::new();
    for _ in 0..5 {
        stale.push(executor::process_message(&s.ctx, &first).await.unwrap());
    }
    assert_eq!(stale[0], BatchResult::Deferred { done: 1 });
    assert_eq!(stale[1..], [BatchResult::Covered; 4]);

    tokio::time::sleep(Duration::from_millis(3500)).await;
    let bodies = common::drain_queue(&s.ctx, &s.ctx.settings.task_queue_url).await;
    let batches: Vec<TaskBatch> = bodies
        .iter()
        .map(|b| TaskBatch::from_body(b).unwrap())
        .collect();
    assert_eq!(batches.len(), 2, "the continuation and one deferred copy");
    let deferred = batches
        .iter()
        .find(|b| b.deferral.is_some())
        .expect("a deferred copy");
    assert_eq!(deferred.offset, 1);

    let mut foreign = deferred.clone();
    foreign.deferral = Some("a copy whose claim another one took".into());
    assert_eq!(
        executor::process_message(&s.ctx, &foreign.to_body())
            .await
            .unwrap(),
        BatchResult::Covered
    );

    for batch in &batches {
        batchops::queue::send_task_batch(&s.ctx, batch)
            .await
            .unwrap();
    }
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!((job.progress.succeeded, job.progress.failed), (6, 0));
    assert_reported_once(&s, &data, &job_id, 6).await;
}

#[tokio::test]
async fn executor_concurrency_holds_for_the_whole_process_not_per_batch() {
    // `local run` takes up to 10 batches at once, each with up to executor_concurrency tasks in
    // flight: 320 requests at once by default, and `cargo lambda watch` deadlocks for good once
    // 100 invokes wait for one function. The limit is the process's.
    let s = stack_with(false, |st| st.executor_concurrency = 2).await;
    let (data, etag) = objects(&s, 8).await;
    let job_id = tagging_job(&s, &data, &etag, "AllTasks").await;
    let job = job(&s.ctx, &job_id).await;
    let slow = FaultRule::new("S3", "PutObjectTagging", Fault::Delay { millis: 200 });
    let (ctx, plan) = faulty(&s, vec![slow]);
    let tasks: Vec<Task> = (0..8)
        .map(|i| Task {
            bucket: data.clone(),
            key: format!("obj-{i:04}"),
            version_id: None,
            size: None,
        })
        .collect();
    let (a, b, c) = tokio::join!(
        batchops::operation::run_tasks(&ctx, &job, "b00000000", &tasks[..3]),
        batchops::operation::run_tasks(&ctx, &job, "b00000001", &tasks[3..6]),
        batchops::operation::run_tasks(&ctx, &job, "b00000002", &tasks[6..]),
    );
    assert!(a
        .iter()
        .chain(&b)
        .chain(&c)
        .all(|o| o.status == TaskStatus::Succeeded));
    assert_eq!(plan.fired(0), 8, "every task was slowed down");
    assert_eq!(plan.most_delayed_at_once(), 2);
}

/// Sends the plan request through a faulty planner that fails at batch `fail_at`, as a planner
/// killed mid-send would: batches before it are on the queue, its checkpoint is where it began.
async fn plan_until_crash(s: &Stack, job_id: &str, fail_at: u64) {
    let rule = FaultRule::new(
        "SQS",
        "SendMessage",
        Fault::Reject {
            status: 400,
            code: "InvalidParameterValue".into(),
            message: "injected: the planner dies here".into(),
            body: None,
        },
    )
    .containing(&format!("\\\"BatchId\\\":\\\"b{fail_at:08}\\\""));
    let (ctx, plan) = faulty(s, vec![rule]);
    let requests = common::drain_queue(&s.ctx, &s.ctx.settings.plan_queue_url).await;
    assert_eq!(requests.len(), 1);
    let crashed = batchops::planner::plan_job(&ctx, job_id).await;
    assert!(crashed.is_err(), "the planner stopped mid-send");
    assert_eq!(plan.fired(0), 1);
    let parts = s.ctx.store().list_plan_parts(job_id).await.unwrap();
    assert_eq!(parts[0].next_task, 0, "no checkpoint saved");
    assert!(
        parts[0].reserved > fail_at,
        "the batches were reserved first"
    );
}

/// The plan request comes back after the crash (SQS redelivers it).
async fn redeliver_plan_request(s: &Stack, job_id: &str) {
    batchops::queue::send_plan_request(&s.ctx, job_id)
        .await
        .unwrap();
}

fn assert_totals_exact(job: &batchops::job::Job) {
    let p = &job.progress;
    let total = p.total_tasks.expect("a total");
    assert!(total > 0, "the sent batches are counted");
    assert_eq!(p.succeeded + p.failed + p.not_run, total, "{p:?}");
    assert_eq!(Some(p.batches_committed), p.batches_planned, "{p:?}");
}

#[tokio::test]
async fn a_planner_killed_mid_send_then_cancelled_counts_every_batch_it_sent() {
    let s = stack_with(false, |st| st.max_message_bytes = 300).await;
    let (data, etag) = missing_objects(&s, 1000).await;
    let job_id = tagging_job(&s, &data, &etag, "AllTasks").await;
    plan_until_crash(&s, &job_id, 20).await;
    control::update_job_status(&s.ctx, &job_id, JobStatus::Cancelled, None)
        .await
        .unwrap();
    redeliver_plan_request(&s, &job_id).await;
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Cancelled);
    assert_totals_exact(&job);
    assert_eq!(job.progress.not_run, job.progress.total_tasks.unwrap());
}

#[tokio::test]
async fn a_planner_killed_mid_send_then_stopped_by_the_threshold_counts_every_batch_it_sent() {
    // About ten tasks per batch; every task fails (no such objects).
    let s = stack_with(false, |st| st.max_message_bytes = 300).await;
    let (data, etag) = missing_objects(&s, 3000).await;
    let job_id = tagging_job(&s, &data, &etag, "AllTasks").await;
    // About six tasks per batch: more than the threshold's 1,000 tasks are sent before it.
    let fail_at = 250;
    plan_until_crash(&s, &job_id, fail_at).await;
    // The executors run what was sent: every task fails, and the threshold stops the job.
    for body in common::drain_queue(&s.ctx, &s.ctx.settings.task_queue_url).await {
        executor::process_message(&s.ctx, &body).await.unwrap();
    }
    let failing = job(&s.ctx, &job_id).await;
    assert_eq!(failing.status, JobStatus::Failing);
    assert!(failing.progress.failed >= FAILURE_THRESHOLD_MIN_TASKS);
    redeliver_plan_request(&s, &job_id).await;
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert_totals_exact(&job);
    assert!(
        job.progress.not_run > 0,
        "reserved batches re-sent, not run"
    );
}

/// The continue message of a plan part is lost (its run died after saving the checkpoint): the
/// sweeper sees the part idle and sends it a new plan message.
#[tokio::test]
async fn a_plan_part_whose_continuation_was_lost_is_woken_by_the_sweeper() {
    let mut s = stack_with(false, |st| {
        st.max_message_bytes = 300;
        st.stall_after = Duration::from_secs(1);
        st.planner_budget = Some(Duration::ZERO);
    })
    .await;
    let (data, etag) = objects(&s, 30).await;
    let job_id = tagging_job(&s, &data, &etag, "AllTasks").await;
    let requests = common::drain_queue(&s.ctx, &s.ctx.settings.plan_queue_url).await;
    assert_eq!(requests.len(), 1);
    batchops::planner::plan_job(&s.ctx, &job_id).await.unwrap();
    let lost = common::drain_queue(&s.ctx, &s.ctx.settings.plan_queue_url).await;
    assert_eq!(lost.len(), 1, "one continuation, which we lose");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.ctx.settings.planner_budget = None;
    let swept = sweeper::sweep(&s.ctx).await.unwrap();
    assert_eq!(swept.stalled_jobs, vec![job_id.clone()]);
    assert!(swept.repairs[0].action.contains("plan part m"), "{swept:?}");
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    assert_eq!(job.progress.succeeded, 30);
    assert_reported_once(&s, &data, &job_id, 30).await;
}

#[tokio::test]
async fn a_job_suspended_for_more_than_30_days_fails() {
    let s = stack_with(false, |_| {}).await;
    let (data, etag) = objects(&s, 3).await;
    let mut request = csv_job(
        &data,
        "m.csv",
        &etag,
        tagging(&[("k", "v")]),
        &data,
        "AllTasks",
    );
    request["ConfirmationRequired"] = json!(true);
    let job_id = s.create_job(request).await;
    s.run_until_idle().await;
    assert_eq!(job(&s.ctx, &job_id).await.status, JobStatus::Suspended);
    // 31 days later.
    let long_ago = chrono::Utc::now() - chrono::Duration::days(31);
    s.ctx
        .dynamodb
        .update_item()
        .table_name(&s.ctx.settings.table)
        .key("pk", AttributeValue::S(format!("JOB#{job_id}")))
        .key("sk", AttributeValue::S("JOB".into()))
        .update_expression("SET suspended_date = :d")
        .expression_attribute_values(":d", AttributeValue::S(long_ago.to_rfc3339()))
        .send()
        .await
        .unwrap();
    let swept = sweeper::sweep(&s.ctx).await.unwrap();
    assert_eq!(swept.repairs.len(), 1, "{swept:?}");
    let job = job(&s.ctx, &job_id).await;
    assert_eq!(job.status, JobStatus::Failed);
    assert_eq!(
        job.failure_reasons[0].failure_code,
        sweeper::SUSPENDED_EXPIRED_CODE
    );
    assert!(job.termination_date.is_some());
}

#[tokio::test]
async fn the_sweeper_leaves_healthy_jobs_alone() {
    let s = stack_with(false, |_| {}).await;
    let (data, etag) = objects(&s, 5).await;
    let job_id = tagging_job(&s, &data, &etag, "AllTasks").await;
    let swept = sweeper::sweep(&s.ctx).await.unwrap();
    assert!(swept.repairs.is_empty(), "{swept:?}");
    assert_eq!(swept.jobs_checked, 1);
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete);
    let swept = sweeper::sweep(&s.ctx).await.unwrap();
    assert_eq!(swept.jobs_checked, 0, "ended jobs are not looked at");
}

/// A LambdaInvoke job whose function (through `cargo lambda watch`) takes longer per task than
/// the executor may run a batch: every delivery commits what it ran and hands the rest on; the
/// job completes and the function saw each task exactly once.
#[tokio::test]
async fn a_slow_function_is_invoked_once_per_task_across_many_executor_runs() {
    let mut s = stack_with(false, |st| {
        st.executor_budget = Some(Duration::from_millis(500));
        st.executor_concurrency = 4;
    })
    .await;
    s = s.with_lambda().await;
    let (data, etag) = objects(&s, 12).await;
    let operation = json!({"LambdaInvoke": {
        "FunctionArn": common::TASK_HANDLER,
        "InvocationSchemaVersion": "2.0",
        "UserArguments": {"sleepMs": "1200", "recordTo": format!("{data}/invocations")}
    }});
    let job_id = s
        .create_job(csv_job(&data, "m.csv", &etag, operation, &data, "AllTasks"))
        .await;
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Complete, "{:?}", job.failure_reasons);
    assert_eq!((job.progress.succeeded, job.progress.failed), (12, 0));
    let batch = s
        .ctx
        .store()
        .get_batch(&job_id, "b00000000")
        .await
        .unwrap()
        .unwrap();
    assert!(
        batch.parts.len() >= 3,
        "the batch was committed in {} segments",
        batch.parts.len()
    );
    // One record per invocation, naming its task: twelve, all different.
    let listed = s
        .ctx
        .s3
        .list_objects_v2()
        .bucket(&data)
        .prefix("invocations/")
        .send()
        .await
        .unwrap();
    let mut invoked = Vec::new();
    for object in listed.contents() {
        let key = object.key().unwrap();
        invoked.push(String::from_utf8(s.get(&data, key).await).unwrap());
    }
    invoked.sort();
    let expected: Vec<String> = (0..12).map(|i| format!("obj-{i:04}")).collect();
    assert_eq!(invoked, expected, "each task invoked exactly once");
    assert_reported_once(&s, &data, &job_id, 12).await;
}

/// Multipart copies from 6 MiB up, in parts of 5 MiB, one at a time.
fn small_parts() -> batchops::operation::CopySettings {
    batchops::operation::CopySettings::bounded(6 << 20, 5 << 20, 1)
}

/// A copy job of objects too large to copy in one executor run (parts of 5 MiB, one part per
/// run): `count` objects of `size` bytes, copied to a second bucket.
async fn big_copy_job(s: &Stack, count: usize, size: usize) -> (String, String, String) {
    assert_eq!(
        s.ctx.settings.copy,
        small_parts(),
        "the stack copies in small parts"
    );
    let (src, dst) = (s.bucket("src"), s.bucket("dst"));
    s.create_bucket(&src).await;
    s.create_bucket(&dst).await;
    let mut rows = Vec::new();
    for i in 0..count {
        let key = format!("big-{i}.bin");
        let body: Vec<u8> = (0..size).map(|b| (b % 251) as u8 ^ i as u8).collect();
        common::put_object(&s.ctx, &src, &key, body).await;
        rows.push((src.clone(), key));
    }
    let etag = s.put_manifest(&src, "m.csv", &rows).await;
    let operation = json!({"S3PutObjectCopy": {"TargetResource": format!("arn:aws:s3:::{dst}")}});
    let job_id = s
        .create_job(csv_job(&src, "m.csv", &etag, operation, &src, "AllTasks"))
        .await;
    (job_id, src, dst)
}

async fn incomplete_uploads(s: &Stack, bucket: &str) -> usize {
    s.ctx
        .s3
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .unwrap()
        .uploads()
        .len()
}

#[tokio::test]
async fn a_multipart_copy_longer_than_an_executor_run_resumes_part_by_part() {
    let s = stack_with(false, |st| {
        st.executor_budget = Some(Duration::ZERO);
        st.copy = small_parts();
    })
    .await;
    let size = 16 << 20;
    let (job_id, src, dst) = big_copy_job(&s, 2, size).await;
    let run = local::run_with(&s.ctx, RunUntil::JobTerminal(job_id.clone()), &options())
        .await
        .unwrap();
    let job = job(&s.ctx, &job_id).await;
    assert_eq!(job.status, JobStatus::Complete, "{:?}", job.failure_reasons);
    assert_eq!(job.progress.succeeded, 2);
    // Four parts per object, one per run: the batch went round the task queue part by part.
    assert!(run.task_messages >= 8, "{run:?}");
    for i in 0..2 {
        let key = format!("big-{i}.bin");
        assert_eq!(s.get(&dst, &key).await, s.get(&src, &key).await, "{key}");
    }
    assert_eq!(incomplete_uploads(&s, &dst).await, 0);
    let store = s.ctx.store();
    assert!(store.list_uploads(&job_id, None).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_job_cancelled_mid_copy_leaves_no_incomplete_upload() {
    let s = stack_with(false, |st| {
        st.executor_budget = Some(Duration::ZERO);
        st.copy = small_parts();
    })
    .await;
    let (job_id, _, dst) = big_copy_job(&s, 1, 16 << 20).await;
    let plan_requests = common::drain_queue(&s.ctx, &s.ctx.settings.plan_queue_url).await;
    assert_eq!(plan_requests.len(), 1);
    batchops::planner::plan_job(&s.ctx, &job_id).await.unwrap();
    let batch = common::drain_queue(&s.ctx, &s.ctx.settings.task_queue_url).await;
    let result = executor::process_message(&s.ctx, &batch[0]).await.unwrap();
    assert_eq!(
        result,
        BatchResult::Continued {
            done: 0,
            remaining: 1
        },
        "one part copied, the rest left to the next run"
    );
    let store = s.ctx.store();
    assert_eq!(store.list_uploads(&job_id, None).await.unwrap().len(), 1);
    assert_eq!(incomplete_uploads(&s, &dst).await, 1);
    control::update_job_status(&s.ctx, &job_id, JobStatus::Cancelled, None)
        .await
        .unwrap();
    let job = s.run_job(&job_id).await;
    assert_eq!(job.status, JobStatus::Cancelled);
    assert_eq!(
        incomplete_uploads(&s, &dst).await,
        0,
        "the upload was aborted"
    );
    assert!(store.list_uploads(&job_id, None).await.unwrap().is_empty());
}
