//! Running without AWS: `local up` creates the stack's table, queues and system bucket on an
//! emulator, and `local run` plays the part of Lambda's event source mappings, polling the queues
//! and calling the same handlers in-process.

use crate::context::{self, Settings};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::{executor, planner, reporter, Context};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{Message, QueueAttributeName};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Names of the stack's resources on the emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalNames {
    pub table: String,
    pub plan_queue: String,
    pub task_queue: String,
    pub report_queue: String,
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
    Store::from_context(&ctx).create_table_if_missing().await?;
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
        .ok_or_else(|| Error::Other(format!("CreateQueue {name} returned no URL")))?;
    Ok(url)
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String> {
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
        .ok_or_else(|| Error::Other(format!("queue {url} has no QueueArn")))
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
    use aws_sdk_s3::types::{
        Event, FilterRule, FilterRuleName, NotificationConfiguration,
        NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
    };
    let arn = queue_arn(&ctx.sqs, &ctx.settings.plan_queue_url).await?;
    let filter = NotificationConfigurationFilter::builder()
        .key(
            S3KeyFilter::builder()
                .filter_rules(
                    FilterRule::builder()
                        .name(FilterRuleName::Suffix)
                        .value("manifest.json")
                        .build(),
                )
                .build(),
        )
        .build();
    let queue = QueueConfiguration::builder()
        .id("batchops-inventory-arrival")
        .queue_arn(arn)
        .events(Event::S3ObjectCreated)
        .filter(filter)
        .build()
        .map_err(|e| Error::Other(format!("notification configuration: {e}")))?;
    ctx.s3
        .put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(queue)
                .build(),
        )
        .send()
        .await
        .map_err(|e| Error::aws("S3", "PutBucketNotificationConfiguration", e))?;
    Ok(())
}

/// When `run` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunUntil {
    /// Every queue is empty and nothing is in flight.
    Idle,
    /// The job has reached a terminal status.
    JobTerminal(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub plan_messages: u64,
    pub task_messages: u64,
    pub report_messages: u64,
    pub failed_deliveries: u64,
    /// Sweeper runs, and the repairs they made.
    pub sweeps: u64,
    pub repairs: u64,
}

/// How `run` behaves besides its stop condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    /// Fail when not done after this long.
    pub timeout: Duration,
    /// How often the sweeper runs (as the deployed stack's schedule does).
    pub sweep_every: Duration,
    /// Print the job's progress to stderr this often (the CLI); `None`: quiet.
    pub progress_every: Option<Duration>,
}

impl RunOptions {
    pub fn with_timeout(timeout: Duration) -> Self {
        RunOptions {
            timeout,
            sweep_every: Duration::from_secs(10),
            progress_every: None,
        }
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
            received += Box::pin(poll_once(ctx, *role, url, &mut summary)).await?;
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
            return Err(Error::Other(format!(
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
        RunUntil::JobTerminal(job_id) => match Store::from_context(ctx).get_job(job_id).await {
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
        RunUntil::JobTerminal(job_id) => Ok(Store::from_context(ctx)
            .get_job(job_id)
            .await?
            .status
            .is_terminal()),
        RunUntil::Idle => {
            for (_, url) in queues {
                if crate::sweeper::queue_depth(ctx, url).await? > 0 {
                    return Ok(false);
                }
            }
            Ok(true)
        }
    }
}

/// Receives one batch of messages from a queue and hands it to the matching handler.
async fn poll_once(
    ctx: &Context,
    role: Role,
    url: &str,
    summary: &mut RunSummary,
) -> Result<usize> {
    let out = ctx
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(0)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .map_err(|e| Error::aws("SQS", "ReceiveMessage", e))?;
    let messages = out.messages.unwrap_or_default();
    let n = messages.len();
    if n == 0 {
        return Ok(0);
    }
    let failed = match role {
        Role::Task => run_executor(ctx, &messages).await,
        Role::Plan | Role::Report => run_one_by_one(ctx, role, &messages).await,
    };
    match role {
        Role::Plan => summary.plan_messages += n as u64,
        Role::Task => summary.task_messages += n as u64,
        Role::Report => summary.report_messages += n as u64,
    }
    summary.failed_deliveries += failed.len() as u64;
    for message in &messages {
        let id = message.message_id.as_deref().unwrap_or_default();
        let handle = message.receipt_handle.as_deref().unwrap_or_default();
        let result = if failed.iter().any(|f| f == id) {
            // Deliver it again later, backing off like Lambda's retries after failed
            // invocations: 1, 2, 4, ... seconds, at most 30.
            ctx.sqs
                .change_message_visibility()
                .queue_url(url)
                .receipt_handle(handle)
                .visibility_timeout(redelivery_delay(message))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| Error::aws("SQS", "ChangeMessageVisibility", e))
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
        result?;
    }
    Ok(n)
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
async fn run_executor(ctx: &Context, messages: &[Message]) -> Vec<String> {
    let runs = messages.iter().map(|m| {
        let mut event = SqsEvent::default();
        event.records = vec![sqs_record(m)];
        executor::handle(ctx, event)
    });
    futures::future::join_all(runs)
        .await
        .into_iter()
        .flat_map(|r| r.batch_item_failures.into_iter().map(|f| f.item_identifier))
        .collect()
}

async fn run_one_by_one(ctx: &Context, role: Role, messages: &[Message]) -> Vec<String> {
    let mut failed = Vec::new();
    for message in messages {
        let event = json!({"Records": [{
            "eventSource": "aws:sqs",
            "messageId": message.message_id,
            "body": message.body,
        }]});
        let result: Result<Value> = match role {
            Role::Plan => planner::handle(ctx, event).await,
            _ => reporter::handle(ctx, event).await,
        };
        // A handler answers a failure with an error or with a partial batch response.
        let partial_failure = |v: &Value| {
            v.get("batchItemFailures")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty())
        };
        match result {
            Ok(answer) if !partial_failure(&answer) => info!(?role, "message handled"),
            Ok(_) => {
                warn!(
                    ?role,
                    "handler reported a failed message; it will be delivered again"
                );
                failed.push(message.message_id.clone().unwrap_or_default());
            }
            Err(err) => {
                warn!(?role, error = %err, "handler failed; the message will be delivered again");
                failed.push(message.message_id.clone().unwrap_or_default());
            }
        }
    }
    failed
}
