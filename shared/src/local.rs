//! Running without AWS: `local up` creates the stack's table, queues and system bucket on an
//! emulator, and `local run` plays the part of Lambda's event source mappings, polling the queues
//! and calling the same handlers in-process.

use crate::context::{self, Settings};
use crate::error::{Error, Result};
use crate::{executor, planner, reporter, Context};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{Message, QueueAttributeName};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Names of the stack's resources on the emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalNames {
    /// The stack's DynamoDB table (default `batchops-jobs`).
    pub table: String,
    /// The planner's SQS queue (default `batchops-plan`); `up` gives each queue a `<name>-dlq`.
    pub plan_queue: String,
    /// The executors' SQS queue of batches (default `batchops-tasks`).
    pub task_queue: String,
    /// The reporter's SQS queue (default `batchops-report`).
    pub report_queue: String,
    /// The S3 bucket of batchops' own objects (default `batchops-system`).
    pub system_bucket: String,
}

impl Default for LocalNames {
    fn default() -> Self {
        LocalNames {
            table: context::LOCAL_TABLE.into(),
            plan_queue: context::LOCAL_PLAN_QUEUE.into(),
            task_queue: context::LOCAL_TASK_QUEUE.into(),
            report_queue: context::LOCAL_REPORT_QUEUE.into(),
            system_bucket: context::LOCAL_SYSTEM_BUCKET.into(),
        }
    }
}

impl LocalNames {
    /// Separate resources per suffix, so that several stacks (tests) share one emulator.
    pub fn with_suffix(suffix: &str) -> Self {
        let d = LocalNames::default();
        LocalNames {
            table: format!("{}-{suffix}", d.table),
            plan_queue: format!("{}-{suffix}", d.plan_queue),
            task_queue: format!("{}-{suffix}", d.task_queue),
            report_queue: format!("{}-{suffix}", d.report_queue),
            system_bucket: format!("{}-{suffix}", d.system_bucket),
        }
    }
}

/// Seconds a received message stays hidden while a handler works on it locally.
const LOCAL_VISIBILITY_TIMEOUT: i32 = 60;
/// Deliveries before a message moves to its queue's dead-letter queue, as in the template.
const MAX_RECEIVE_COUNT: u32 = 5;

/// Creates the stack on the emulator (idempotent) and returns a context that uses it. With an
/// inventory bucket, `manifest.json` arrivals in that bucket are sent to the plan queue.
pub async fn up(
    config: &aws_config::SdkConfig,
    names: &LocalNames,
    inventory_bucket: Option<&str>,
    base: Settings,
) -> Result<Context> {
    let sqs = aws_sdk_sqs::Client::new(config);
    let plan_queue_url = create_queue(&sqs, &names.plan_queue).await?;
    let task_queue_url = create_queue(&sqs, &names.task_queue).await?;
    let report_queue_url = create_queue(&sqs, &names.report_queue).await?;
    let settings = Settings {
        table: names.table.clone(),
        plan_queue_url,
        task_queue_url,
        report_queue_url,
        system_bucket: names.system_bucket.clone(),
        ..base
    };
    let ctx = Context::from_config(config, settings);
    ctx.store().create_table_if_missing().await?;
    create_bucket(&ctx, &names.system_bucket).await?;
    if let Some(bucket) = inventory_bucket {
        create_bucket(&ctx, bucket).await?;
        wire_inventory_bucket(&ctx, bucket).await?;
    }
    Ok(ctx)
}

async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> Result<String> {
    let dlq_url = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .map_err(|e| Error::aws("SQS", "CreateQueue", e))?
        .queue_url
        .unwrap_or_default();
    let dlq_arn = queue_arn(sqs, &dlq_url).await?;
    let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT});
    let url = sqs
        .create_queue()
        .queue_name(name)
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            LOCAL_VISIBILITY_TIMEOUT.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .map_err(|e| Error::aws("SQS", "CreateQueue", e))?
        .queue_url
        .ok_or_else(|| Error::Malformed {
            what: format!("CreateQueue {name}'s answer"),
            reason: "it has no QueueUrl".into(),
        })?;
    Ok(url)
}

/// The ARN of the queue at `url`.
pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String> {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| Error::aws("SQS", "GetQueueAttributes", e))?;
    attrs
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| Error::Malformed {
            what: format!("GetQueueAttributes of {url}"),
            reason: "it has no QueueArn".into(),
        })
}

async fn create_bucket(ctx: &Context, bucket: &str) -> Result<()> {
    match ctx.s3.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let owned = e.as_service_error().is_some_and(|s| {
                s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()
            });
            if owned {
                Ok(())
            } else {
                Err(Error::aws("S3", "CreateBucket", e))
            }
        }
    }
}

/// Sends the bucket's `manifest.json` ObjectCreated events to the plan queue, as the deployed
/// stack does for the inventory bucket.
pub async fn wire_inventory_bucket(ctx: &Context, bucket: &str) -> Result<()> {
    let arn = queue_arn(&ctx.sqs, &ctx.settings.plan_queue_url).await?;
    crate::trigger::connect_inventory(ctx, bucket, &arn, crate::trigger::Via::Queue, true).await?;
    Ok(())
}

/// When `run` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunUntil {
    /// Every queue is empty and nothing is in flight.
    Idle,
    /// The job has reached a terminal status, or waits in Suspended for confirmation.
    JobTerminal(String),
}

/// What a local run handled: messages per queue, failed deliveries and sweeper work.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Messages received from the plan queue.
    pub plan_messages: u64,
    /// Messages (batches) received from the task queue.
    pub task_messages: u64,
    /// Messages received from the report queue.
    pub report_messages: u64,
    /// Messages whose handler failed, made visible again to be delivered later.
    pub failed_deliveries: u64,
    /// Sweeper runs, and the repairs they made.
    pub sweeps: u64,
    /// Repairs the sweeper runs made, all runs together.
    pub repairs: u64,
    /// Time spent in the planner, the executor and the reporter handlers: what Lambda would
    /// bill as duration, for one container of each doing the whole job (the executor
    /// benchmark's cost per task).
    pub handler_time: HandlerTime,
}

/// Wall time inside each function's handler during a local run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HandlerTime {
    /// The planner's.
    pub planner: Duration,
    /// The executor's.
    pub executor: Duration,
    /// The reporter's.
    pub reporter: Duration,
}

/// How `run` behaves besides its stop condition.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Fail when not done after this long.
    pub timeout: Duration,
    /// How often the sweeper runs (as the deployed stack's schedule does).
    pub sweep_every: Duration,
    /// Print the job's progress to stderr this often (the CLI); `None`: quiet.
    pub progress_every: Option<Duration>,
    /// Process-level faults of a chaos run; `None`: none.
    pub chaos: Option<Arc<Chaos>>,
}

impl RunOptions {
    /// Options that fail after `timeout`, sweep every 10 seconds, print no progress and inject no
    /// faults.
    pub fn with_timeout(timeout: Duration) -> Self {
        RunOptions {
            timeout,
            sweep_every: Duration::from_secs(10),
            progress_every: None,
            chaos: None,
        }
    }
}

/// The faults of a chaos run that are not in the AWS calls (those are [`crate::fault`]'s): a
/// handler invocation dropped at a random await point, as a Lambda invocation killed mid-way
/// (its message comes back after a short visibility timeout), and a message whose visibility
/// lapses while it is being worked on, so that another poller takes it too. Seeded, so a run can
/// be replayed (as far as the scheduling of concurrent tasks allows).
pub struct Chaos {
    rng: Mutex<fastrand::Rng>,
    /// The chance that one handler invocation is dropped.
    pub kill_probability: f64,
    /// The chance that a received message becomes visible again at once.
    pub lapse_probability: f64,
    /// A dropped invocation runs for a random time below this first.
    pub max_run_before_kill: Duration,
    kills: AtomicU64,
    lapses: AtomicU64,
}

impl std::fmt::Debug for Chaos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chaos")
            .field("kill_probability", &self.kill_probability)
            .field("lapse_probability", &self.lapse_probability)
            .field("kills", &self.kills())
            .field("lapses", &self.lapses())
            .finish()
    }
}

impl Chaos {
    /// A chaos run seeded with `seed`: each invocation is dropped with `kill_probability` (after
    /// less than `max_run_before_kill`), each received message lapses with `lapse_probability`.
    pub fn new(
        seed: u64,
        kill_probability: f64,
        lapse_probability: f64,
        max_run_before_kill: Duration,
    ) -> Arc<Self> {
        Arc::new(Chaos {
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            kill_probability,
            lapse_probability,
            max_run_before_kill,
            kills: AtomicU64::new(0),
            lapses: AtomicU64::new(0),
        })
    }

    /// Invocations dropped so far.
    pub fn kills(&self) -> u64 {
        self.kills.load(Ordering::Relaxed)
    }

    /// Messages whose visibility was made to lapse so far.
    pub fn lapses(&self) -> u64 {
        self.lapses.load(Ordering::Relaxed)
    }

    fn draw(&self, probability: f64) -> bool {
        probability > 0.0 && self.rng.lock().unwrap_or_else(|p| p.into_inner()).f64() < probability
    }

    /// How long the next invocation may run, if it is to be killed.
    fn kill_after(&self) -> Option<Duration> {
        if !self.draw(self.kill_probability) {
            return None;
        }
        let max = self.max_run_before_kill.as_millis().max(1) as u64;
        let millis = self
            .rng
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .u64(0..max);
        Some(Duration::from_millis(millis))
    }

    fn lapse(&self) -> bool {
        let lapse = self.draw(self.lapse_probability);
        if lapse {
            self.lapses.fetch_add(1, Ordering::Relaxed);
        }
        lapse
    }
}

/// What became of one message's handler invocation.
enum Handled {
    Ok,
    Failed,
    /// Dropped by the chaos run: the message is left to come back.
    Killed,
}

/// Runs one handler invocation, or drops it part-way when the chaos run says so.
async fn invocation<F>(chaos: Option<&Chaos>, handler: F) -> Option<F::Output>
where
    F: std::future::Future,
{
    // Boxed: a handler's future is large, and both arms below would hold it.
    let handler = Box::pin(handler);
    match chaos.and_then(Chaos::kill_after) {
        None => Some(handler.await),
        Some(after) => match tokio::time::timeout(after, handler).await {
            Ok(output) => Some(output),
            Err(_) => {
                if let Some(chaos) = chaos {
                    chaos.kills.fetch_add(1, Ordering::Relaxed);
                }
                None
            }
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Plan,
    Task,
    Report,
}

/// Polls the queues and runs the handlers until `until` holds, or fails after `timeout`.
pub async fn run(ctx: &Context, until: RunUntil, timeout: Duration) -> Result<RunSummary> {
    run_with(ctx, until, &RunOptions::with_timeout(timeout)).await
}

// The handlers' futures are large; each is boxed where `run_with` awaits it, so that the
// caller's own future (often a whole test) stays small enough for a thread's stack.

/// Like [`run`], with the sweeper's interval and progress output chosen.
pub async fn run_with(ctx: &Context, until: RunUntil, options: &RunOptions) -> Result<RunSummary> {
    let started = Instant::now();
    let mut summary = RunSummary::default();
    let mut last_sweep = Instant::now();
    let mut last_progress = Instant::now();
    let queues = [
        (Role::Plan, ctx.settings.plan_queue_url.clone()),
        (Role::Task, ctx.settings.task_queue_url.clone()),
        (Role::Report, ctx.settings.report_queue_url.clone()),
    ];
    loop {
        let mut received = 0;
        for (role, url) in &queues {
            received += Box::pin(poll_once(
                ctx,
                *role,
                url,
                &mut summary,
                options.chaos.as_deref(),
            ))
            .await?;
        }
        if received == 0 && done(ctx, &until, &queues).await? {
            return Ok(summary);
        }
        if last_sweep.elapsed() >= options.sweep_every {
            last_sweep = Instant::now();
            Box::pin(sweep(ctx, &mut summary)).await;
        }
        if let Some(every) = options.progress_every {
            if last_progress.elapsed() >= every {
                last_progress = Instant::now();
                eprintln!("local run: {}", progress_line(ctx, &until).await);
            }
        }
        if started.elapsed() > options.timeout {
            return Err(Error::Timeout(format!(
                "local run: not done after {}s: {}",
                options.timeout.as_secs(),
                progress_line(ctx, &until).await
            )));
        }
        if received == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn sweep(ctx: &Context, summary: &mut RunSummary) {
    summary.sweeps += 1;
    match Box::pin(crate::sweeper::sweep(ctx)).await {
        Ok(swept) => {
            summary.repairs += swept.repairs.len() as u64;
            for repair in swept.repairs {
                eprintln!("local run: job {}: {}", repair.job_id, repair.action);
            }
        }
        Err(err) => warn!(error = %err, "sweeper run failed; the next one tries again"),
    }
}

/// Where the run stands, for progress output and the timeout's message.
async fn progress_line(ctx: &Context, until: &RunUntil) -> String {
    match until {
        RunUntil::JobTerminal(job_id) => match ctx.store().get_job(job_id).await {
            Ok(job) => {
                let p = &job.progress;
                let total = p
                    .total_tasks
                    .map_or_else(|| "?".to_string(), |t| t.to_string());
                let planned = p
                    .batches_planned
                    .map_or_else(|| "?".to_string(), |b| b.to_string());
                let mut line = format!(
                    "job {job_id} {}: {} succeeded, {} failed, {} not run of {total} tasks; {} of {planned} batches committed",
                    job.status, p.succeeded, p.failed, p.not_run, p.batches_committed
                );
                if let Some(reason) = &job.status_update_reason {
                    line.push_str(&format!(" ({reason})"));
                }
                line
            }
            Err(err) => format!("job {job_id}: {err}"),
        },
        RunUntil::Idle => "waiting for the queues to empty".to_string(),
    }
}

async fn done(ctx: &Context, until: &RunUntil, queues: &[(Role, String)]) -> Result<bool> {
    match until {
        RunUntil::JobTerminal(job_id) => {
            match ctx.store().get_job(job_id).await?.status {
                status if status.is_terminal() => Ok(true),
                // Awaiting confirmation (after its canary, or before it starts): nothing more
                // happens to it until it is confirmed, once the last messages are seen to.
                crate::job::JobStatus::Suspended => queues_empty(ctx, queues).await,
                _ => Ok(false),
            }
        }
        RunUntil::Idle => queues_empty(ctx, queues).await,
    }
}

async fn queues_empty(ctx: &Context, queues: &[(Role, String)]) -> Result<bool> {
    for (_, url) in queues {
        if crate::sweeper::queue_depth(ctx, url).await? > 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// What to tell a user whose emulator went away or restarted during a run: one line with what
/// to do, not the SDK's dump.
fn receive_error(
    url: &str,
    err: aws_sdk_sqs::error::SdkError<aws_sdk_sqs::operation::receive_message::ReceiveMessageError>,
) -> Error {
    use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
    match &err {
        SdkError::ServiceError(e)
            if e.err().is_queue_does_not_exist()
                || e.err().code().is_some_and(|c| c.contains("NonExistentQueue")) =>
        {
            Error::Config(format!(
                "queue {url} no longer exists (did the emulator restart?): run `batchops local up` again, then create the job again"
            ))
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => Error::Config(format!(
            "cannot reach the endpoint of {url} ({}): is the emulator still running?",
            crate::error::error_chain(&err)
        )),
        _ => Error::aws("SQS", "ReceiveMessage", err),
    }
}

/// Receives one batch of messages from a queue and hands it to the matching handler.
async fn poll_once(
    ctx: &Context,
    role: Role,
    url: &str,
    summary: &mut RunSummary,
    chaos: Option<&Chaos>,
) -> Result<usize> {
    // No more batches at once than tasks may run at once: a batch received is a batch started
    // (and past the priority rule's look, `crate::priority`).
    let most = match role {
        Role::Task => ctx.settings.executor_concurrency.clamp(1, 10) as i32,
        Role::Plan | Role::Report => 10,
    };
    let out = ctx
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(most)
        .wait_time_seconds(0)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .map_err(|e| receive_error(url, e))?;
    let messages = out.messages.unwrap_or_default();
    let n = messages.len();
    if n == 0 {
        return Ok(0);
    }
    for message in &messages {
        if chaos.is_some_and(Chaos::lapse) {
            // Visible again while this poller works on it: another may take it too.
            let _ = set_visibility(ctx, url, message, 0).await;
        }
    }
    let started = Instant::now();
    let handled = match role {
        Role::Task => run_executor(ctx, &messages, chaos).await,
        Role::Plan | Role::Report => run_one_by_one(ctx, role, &messages, chaos).await,
    };
    let took = started.elapsed();
    let failed: Vec<String> = handled
        .iter()
        .filter(|(_, h)| matches!(h, Handled::Failed))
        .map(|(id, _)| id.clone())
        .collect();
    let killed: Vec<String> = handled
        .iter()
        .filter(|(_, h)| matches!(h, Handled::Killed))
        .map(|(id, _)| id.clone())
        .collect();
    let (messages_of_role, time_of_role) = match role {
        Role::Plan => (
            &mut summary.plan_messages,
            &mut summary.handler_time.planner,
        ),
        Role::Task => (
            &mut summary.task_messages,
            &mut summary.handler_time.executor,
        ),
        Role::Report => (
            &mut summary.report_messages,
            &mut summary.handler_time.reporter,
        ),
    };
    *messages_of_role += n as u64;
    *time_of_role += took;
    summary.failed_deliveries += failed.len() as u64;
    for message in &messages {
        let id = message.message_id.as_deref().unwrap_or_default();
        let handle = message.receipt_handle.as_deref().unwrap_or_default();
        if killed.iter().any(|k| k == id) {
            // The invocation died: SQS gives the message out again once its visibility
            // timeout passes (shortened here, so that a chaos run does not wait a minute).
            let _ = set_visibility(ctx, url, message, 1).await;
            continue;
        }
        let result = if failed.iter().any(|f| f == id) {
            // Deliver it again later, backing off like Lambda's retries after failed
            // invocations: 1, 2, 4, ... seconds, at most 30.
            set_visibility(ctx, url, message, redelivery_delay(message)).await
        } else {
            ctx.sqs
                .delete_message()
                .queue_url(url)
                .receipt_handle(handle)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| Error::aws("SQS", "DeleteMessage", e))
        };
        if let Err(err) = result {
            // A receipt handle gone stale (the message was received again elsewhere) or an
            // acknowledgement lost: the message comes back, and handling it twice is safe.
            warn!(?role, message_id = id, error = %err, "message not acknowledged; it will be delivered again");
        }
    }
    Ok(n)
}

async fn set_visibility(ctx: &Context, url: &str, message: &Message, seconds: i32) -> Result<()> {
    ctx.sqs
        .change_message_visibility()
        .queue_url(url)
        .receipt_handle(message.receipt_handle.as_deref().unwrap_or_default())
        .visibility_timeout(seconds)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| Error::aws("SQS", "ChangeMessageVisibility", e))
}

/// Seconds before a failed message comes back: doubling with each receive, at most 30.
fn redelivery_delay(message: &Message) -> i32 {
    let receives = message
        .attributes
        .as_ref()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
        })
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(1);
    1i32 << receives.saturating_sub(1).min(5)
}

fn sqs_record(message: &Message) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = message.message_id.clone();
    record.receipt_handle = message.receipt_handle.clone();
    record.body = message.body.clone();
    record.event_source = Some("aws:sqs".into());
    record
}

/// The task queue's mapping: messages in one event, run concurrently like parallel invocations.
async fn run_executor(
    ctx: &Context,
    messages: &[Message],
    chaos: Option<&Chaos>,
) -> Vec<(String, Handled)> {
    let runs = messages.iter().map(|m| async move {
        let mut event = SqsEvent::default();
        event.records = vec![sqs_record(m)];
        let id = m.message_id.clone().unwrap_or_default();
        let handled = match invocation(chaos, executor::handle(ctx, event)).await {
            None => Handled::Killed,
            Some(response) if response.batch_item_failures.is_empty() => Handled::Ok,
            Some(_) => Handled::Failed,
        };
        (id, handled)
    });
    futures::future::join_all(runs).await
}

async fn run_one_by_one(
    ctx: &Context,
    role: Role,
    messages: &[Message],
    chaos: Option<&Chaos>,
) -> Vec<(String, Handled)> {
    let mut handled = Vec::new();
    for message in messages {
        let id = message.message_id.clone().unwrap_or_default();
        let event = json!({"Records": [{
            "eventSource": "aws:sqs",
            "messageId": message.message_id,
            "body": message.body,
        }]});
        let finished: Option<Result<Value>> = match role {
            Role::Plan => invocation(chaos, planner::handle(ctx, event)).await,
            _ => invocation(chaos, reporter::handle(ctx, event)).await,
        };
        // Killed by the chaos run.
        let Some(result) = finished else {
            handled.push((id, Handled::Killed));
            continue;
        };
        // A handler answers a failure with an error or with a partial batch response.
        let partial_failure = |v: &Value| {
            v.get("batchItemFailures")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty())
        };
        match result {
            Ok(answer) if !partial_failure(&answer) => {
                info!(?role, "message handled");
                handled.push((id, Handled::Ok));
            }
            Ok(_) => {
                warn!(
                    ?role,
                    "handler reported a failed message; it will be delivered again"
                );
                handled.push((id, Handled::Failed));
            }
            Err(err) => {
                warn!(?role, error = %err, "handler failed; the message will be delivered again");
                handled.push((id, Handled::Failed));
            }
        }
    }
    handled
}
