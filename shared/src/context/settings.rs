//! The settings: every environment variable the functions and the CLI read, read once per
//! container by one reader with one policy for an invalid value (a clear startup error).

use super::*;

/// Environment variables read by the functions and the CLI.
pub const ENV_TABLE: &str = "BATCHOPS_TABLE";
/// URL of the plan queue ([`Settings::plan_queue_url`]); required by [`Settings::from_env`].
pub const ENV_PLAN_QUEUE_URL: &str = "BATCHOPS_PLAN_QUEUE_URL";
/// URL of the task queue ([`Settings::task_queue_url`]); required by [`Settings::from_env`].
pub const ENV_TASK_QUEUE_URL: &str = "BATCHOPS_TASK_QUEUE_URL";
/// URL of the report queue ([`Settings::report_queue_url`]); required by [`Settings::from_env`].
pub const ENV_REPORT_QUEUE_URL: &str = "BATCHOPS_REPORT_QUEUE_URL";
/// Name of batchops' own bucket ([`Settings::system_bucket`]); required by [`Settings::from_env`].
pub const ENV_SYSTEM_BUCKET: &str = "BATCHOPS_SYSTEM_BUCKET";
/// Tasks one executor invocation runs at once (at least 1; default 32).
pub const ENV_EXECUTOR_CONCURRENCY: &str = "BATCHOPS_EXECUTOR_CONCURRENCY";
/// Attempts of a Lambda task that keeps answering `TemporaryFailure` (at least 1; default 5).
pub const ENV_LAMBDA_MAX_ATTEMPTS: &str = "BATCHOPS_LAMBDA_MAX_ATTEMPTS";
/// First backoff delay of those Lambda retries, in milliseconds (default 200).
pub const ENV_LAMBDA_RETRY_BASE_MS: &str = "BATCHOPS_LAMBDA_RETRY_BASE_MS";
/// Upper bound of a task-batch message body in bytes, [`MIN_MESSAGE_BYTES`] to
/// [`SQS_MAX_MESSAGE_BYTES`].
pub const ENV_MAX_MESSAGE_BYTES: &str = "BATCHOPS_MAX_MESSAGE_BYTES";
/// Executor invocations at once, which a dry run estimates the job's duration with (at least 1).
pub const ENV_EXECUTOR_INVOCATIONS: &str = "BATCHOPS_EXECUTOR_INVOCATIONS";
/// Result parts the reporter reads at the same time (at least 1; default 16).
pub const ENV_REPORT_READ_CONCURRENCY: &str = "BATCHOPS_REPORT_READ_CONCURRENCY";
/// How long one executor invocation starts tasks, in milliseconds (`0`: one task); unset: until
/// the Lambda deadline less the margin.
pub const ENV_EXECUTOR_BUDGET_MS: &str = "BATCHOPS_EXECUTOR_BUDGET_MS";
/// Time kept free before the executor's Lambda deadline, in milliseconds (default 60,000).
pub const ENV_EXECUTOR_MARGIN_MS: &str = "BATCHOPS_EXECUTOR_MARGIN_MS";
/// How long one reporter invocation reads result parts, in milliseconds (`0`: one part).
pub const ENV_REPORTER_BUDGET_MS: &str = "BATCHOPS_REPORTER_BUDGET_MS";
/// Size in bytes at which a completion report file is closed and the next begun; not `0`.
pub const ENV_REPORT_MAX_FILE_BYTES: &str = "BATCHOPS_REPORT_MAX_FILE_BYTES";
/// Seconds without a commit or checkpoint after which the sweeper counts a job stalled
/// (default 900).
pub const ENV_STALL_SECONDS: &str = "BATCHOPS_STALL_SECONDS";
/// Seconds a batch of an outranked job waits before it looks again, clamped to 1 to 900
/// (default 30).
pub const ENV_PRIORITY_WAIT_SECONDS: &str = "BATCHOPS_PRIORITY_WAIT_SECONDS";
/// Seconds a batch commit keeps retrying through throttling and server errors (default 30).
pub const ENV_COMMIT_PATIENCE_SECONDS: &str = "BATCHOPS_COMMIT_PATIENCE_SECONDS";
/// Seconds after which a finalize request whose job has not ended is sent again (default 600).
pub const ENV_FINALIZE_RESEND_SECONDS: &str = "BATCHOPS_FINALIZE_RESEND_SECONDS";
/// URL of the plan queue's dead-letter queue, which the sweeper drains; optional.
pub const ENV_PLAN_DLQ_URL: &str = "BATCHOPS_PLAN_DLQ_URL";
/// URL of the task queue's dead-letter queue, which the sweeper drains; optional.
pub const ENV_TASK_DLQ_URL: &str = "BATCHOPS_TASK_DLQ_URL";
/// URL of the report queue's dead-letter queue, which the sweeper drains; optional.
pub const ENV_REPORT_DLQ_URL: &str = "BATCHOPS_REPORT_DLQ_URL";
/// Account that owns the system bucket, sent as `ExpectedBucketOwner` with every request to it;
/// optional.
pub const ENV_SYSTEM_BUCKET_OWNER: &str = "BATCHOPS_SYSTEM_BUCKET_OWNER";
/// The EventBridge bus that status-change events go to (`crate::events`); none when unset.
pub const ENV_EVENT_BUS: &str = "BATCHOPS_EVENT_BUS";
/// `emf`: the executor writes CloudWatch metrics in Embedded Metric Format; unset or `off`: not.
pub const ENV_METRICS: &str = "BATCHOPS_METRICS";

/// SQS's default maximum message size (a queue may allow up to 1 MiB, but batchops' queues and
/// emulators keep the default).
pub const SQS_MAX_MESSAGE_BYTES: usize = 262_144;
/// Room for the envelope and at least one task with a key of 1,024 bytes, URL-escaped.
pub const MIN_MESSAGE_BYTES: usize = 4_096;

/// Names that `batchops local up` creates and that the CLI falls back to when the variables are unset.
pub const LOCAL_TABLE: &str = "batchops-jobs";
/// The local plan queue's name.
pub const LOCAL_PLAN_QUEUE: &str = "batchops-plan";
/// The local task queue's name.
pub const LOCAL_TASK_QUEUE: &str = "batchops-tasks";
/// The local report queue's name.
pub const LOCAL_REPORT_QUEUE: &str = "batchops-report";
/// The local system bucket's name.
pub const LOCAL_SYSTEM_BUCKET: &str = "batchops-system";

/// Resource names and tuning for the functions and the CLI, read once per container from the
/// environment ([`Settings::from_env`]); `Default` has the tuning defaults and no names.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Name of the DynamoDB job-store table (`BATCHOPS_TABLE`).
    pub table: String,
    /// URL of the SQS queue of plan requests, which the planner consumes.
    pub plan_queue_url: String,
    /// URL of the SQS queue of task batches, which the executor consumes.
    pub task_queue_url: String,
    /// URL of the SQS queue of finalize requests, which the reporter consumes.
    pub report_queue_url: String,
    /// batchops' own bucket: result parts, manifest snapshots and other files jobs write.
    pub system_bucket: String,
    /// Tasks run at once by one executor invocation.
    pub executor_concurrency: usize,
    /// Executor invocations at once (the stack's `ExecutorMaxConcurrency`): what a dry run
    /// estimates the job's duration with.
    pub executor_invocations: usize,
    /// Attempts of a Lambda task that keeps answering TemporaryFailure.
    pub lambda_max_attempts: u32,
    /// First backoff delay of those retries; doubles each attempt, with jitter.
    pub lambda_retry_base: Duration,
    /// Upper bound of one task-batch message body.
    pub max_message_bytes: usize,
    /// Result parts the reporter reads at the same time. One GetObject takes tens of
    /// milliseconds, so a job of 50,000 batches read one part at a time would not fit in the
    /// reporter's 15 minutes.
    pub report_read_concurrency: usize,
    /// How long one executor invocation starts tasks (`0`: one task, then hand the rest on);
    /// unset: until the Lambda deadline less `executor_margin`.
    pub executor_budget: Option<Duration>,
    /// Time kept free before the executor's Lambda deadline: tasks in flight finish, the result
    /// part is written, the segment commits and the rest of the batch is handed on.
    pub executor_margin: Duration,
    /// How long one reporter invocation reads result parts (`0`: one part, then continue).
    pub reporter_budget: Option<Duration>,
    /// Size at which a completion report file is closed and the next one begun.
    pub report_max_file_bytes: usize,
    /// How long one planner invocation sends batches (`0`: one batch, then continue); the
    /// variable `BATCHOPS_PLANNER_BUDGET_MS` is also read at each plan request.
    pub planner_budget: Option<Duration>,
    /// How long a batch commit keeps retrying through throttling and server errors before the
    /// delivery gives up (and the message comes again).
    pub commit_patience: Duration,
    /// A job with no commit or checkpoint for this long is stalled: the sweeper diagnoses and
    /// re-drives it.
    pub stall_after: Duration,
    /// A finalize request sent this long ago whose job has not ended is sent again.
    pub finalize_resend_after: Duration,
    /// How long a batch of a job outranked by a job of higher priority waits before it looks
    /// again (`crate::priority`); whole seconds up to SQS's 900.
    pub priority_wait: Duration,
    /// The dead-letter queues the sweeper drains; when unset it finds them from each queue's
    /// redrive policy.
    pub plan_dlq_url: Option<String>,
    /// The task queue's dead-letter queue; when unset, found from the queue's redrive policy.
    pub task_dlq_url: Option<String>,
    /// The report queue's dead-letter queue; when unset, found from the queue's redrive policy.
    pub report_dlq_url: Option<String>,
    /// The account that owns the system bucket (the stack's), sent as ExpectedBucketOwner with
    /// every request to it, so that a bucket of the same name elsewhere is never used.
    pub system_bucket_owner: Option<String>,
    /// Whose permissions the work on users' buckets and functions runs with (see [`crate::role`]).
    pub role_mode: RoleMode,
    /// The `ExternalId` sent with every AssumeRole of a job's role, for its trust policy.
    pub role_external_id: Option<String>,
    /// Job roles must be named with this prefix (the IAM grant of the stack); any when unset.
    pub role_name_prefix: Option<String>,
    /// How long an assumed job-role session lasts (`DurationSeconds`).
    pub role_session: Duration,
    /// The EventBridge bus of status-change events.
    pub event_bus: Option<String>,
    /// Whether the executor writes its metrics as EMF lines on stdout.
    pub emf_metrics: bool,
    /// How objects are copied: single or multipart, part size, parts at once.
    pub copy: crate::operation::CopySettings,
}

impl Default for Settings {
    /// The tuning defaults, with no resource names (those come from the stack).
    fn default() -> Self {
        Settings {
            table: String::new(),
            plan_queue_url: String::new(),
            task_queue_url: String::new(),
            report_queue_url: String::new(),
            system_bucket: String::new(),
            executor_concurrency: 32,
            executor_invocations: crate::pricing::DEFAULT_EXECUTOR_INVOCATIONS as usize,
            lambda_max_attempts: 5,
            lambda_retry_base: Duration::from_millis(200),
            max_message_bytes: crate::plan::MAX_MESSAGE_BYTES,
            report_read_concurrency: 16,
            executor_budget: None,
            executor_margin: Duration::from_secs(60),
            reporter_budget: None,
            report_max_file_bytes: crate::report::DEFAULT_MAX_FILE_BYTES,
            planner_budget: None,
            commit_patience: Duration::from_secs(30),
            stall_after: Duration::from_secs(900),
            finalize_resend_after: Duration::from_secs(600),
            priority_wait: Duration::from_secs(30),
            plan_dlq_url: None,
            task_dlq_url: None,
            report_dlq_url: None,
            system_bucket_owner: None,
            role_mode: RoleMode::Job,
            role_external_id: None,
            role_name_prefix: None,
            role_session: crate::role::DEFAULT_SESSION,
            event_bus: None,
            emf_metrics: false,
            copy: crate::operation::CopySettings::default(),
        }
    }
}

impl Settings {
    /// Reads the resource names (all required) and the tuning variables. Fails with
    /// [`Error::Config`] naming the first variable that is unset, invalid or out of range.
    pub fn from_env() -> Result<Self> {
        Ok(Settings {
            table: required(ENV_TABLE)?,
            plan_queue_url: required(ENV_PLAN_QUEUE_URL)?,
            task_queue_url: required(ENV_TASK_QUEUE_URL)?,
            report_queue_url: required(ENV_REPORT_QUEUE_URL)?,
            system_bucket: required(ENV_SYSTEM_BUCKET)?,
            ..Self::tuning_from_env()?
        })
    }

    /// The defaults with the tuning variables of the environment applied; no resource names.
    /// A value out of range is a startup error that names the variable, not a job that stalls.
    pub fn tuning_from_env() -> Result<Self> {
        let settings = Self::tuning_from_env_unchecked()?;
        settings.check()?;
        Ok(settings)
    }

    /// Refuses tuning values no job could run with.
    pub fn check(&self) -> Result<()> {
        let out_of_range = |name: &str, value: usize, range: &str| {
            Error::Config(format!(
                "environment variable {name}={value} is out of range: {range}"
            ))
        };
        if !(MIN_MESSAGE_BYTES..=SQS_MAX_MESSAGE_BYTES).contains(&self.max_message_bytes) {
            return Err(out_of_range(
                ENV_MAX_MESSAGE_BYTES,
                self.max_message_bytes,
                &format!("a task batch message is {MIN_MESSAGE_BYTES} to {SQS_MAX_MESSAGE_BYTES} bytes (SQS's default maximum message size)"),
            ));
        }
        for (name, value) in [
            (ENV_EXECUTOR_CONCURRENCY, self.executor_concurrency),
            (ENV_EXECUTOR_INVOCATIONS, self.executor_invocations),
            (ENV_LAMBDA_MAX_ATTEMPTS, self.lambda_max_attempts as usize),
            (ENV_REPORT_READ_CONCURRENCY, self.report_read_concurrency),
        ] {
            if value == 0 {
                return Err(out_of_range(name, value, "it must be at least 1"));
            }
        }
        Ok(())
    }

    fn tuning_from_env_unchecked() -> Result<Self> {
        let d = Settings::default();
        Ok(Settings {
            executor_concurrency: parsed(ENV_EXECUTOR_CONCURRENCY, d.executor_concurrency)?,
            executor_invocations: parsed(ENV_EXECUTOR_INVOCATIONS, d.executor_invocations)?,
            lambda_max_attempts: parsed(ENV_LAMBDA_MAX_ATTEMPTS, d.lambda_max_attempts)?,
            lambda_retry_base: Duration::from_millis(parsed(
                ENV_LAMBDA_RETRY_BASE_MS,
                d.lambda_retry_base.as_millis() as u64,
            )?),
            max_message_bytes: parsed(ENV_MAX_MESSAGE_BYTES, d.max_message_bytes)?,
            report_read_concurrency: parsed(
                ENV_REPORT_READ_CONCURRENCY,
                d.report_read_concurrency,
            )?,
            executor_budget: crate::deadline::budget_from_env(ENV_EXECUTOR_BUDGET_MS)?,
            executor_margin: crate::deadline::budget_from_env(ENV_EXECUTOR_MARGIN_MS)?
                .unwrap_or(d.executor_margin),
            reporter_budget: crate::deadline::budget_from_env(ENV_REPORTER_BUDGET_MS)?,
            report_max_file_bytes: match parsed(ENV_REPORT_MAX_FILE_BYTES, d.report_max_file_bytes)? {
                0 => {
                    return Err(Error::Config(format!(
                        "environment variable {ENV_REPORT_MAX_FILE_BYTES}=0: a report file needs room for one row"
                    )))
                }
                bytes => bytes,
            },
            planner_budget: crate::deadline::budget_from_env(
                crate::planner::ENV_PLANNER_BUDGET_MS,
            )?,
            commit_patience: Duration::from_secs(parsed(
                ENV_COMMIT_PATIENCE_SECONDS,
                d.commit_patience.as_secs(),
            )?),
            stall_after: Duration::from_secs(parsed(ENV_STALL_SECONDS, d.stall_after.as_secs())?),
            finalize_resend_after: Duration::from_secs(parsed(
                ENV_FINALIZE_RESEND_SECONDS,
                d.finalize_resend_after.as_secs(),
            )?),
            priority_wait: Duration::from_secs(
                parsed(ENV_PRIORITY_WAIT_SECONDS, d.priority_wait.as_secs())?.clamp(1, 900),
            ),
            plan_dlq_url: env_value(ENV_PLAN_DLQ_URL),
            task_dlq_url: env_value(ENV_TASK_DLQ_URL),
            report_dlq_url: env_value(ENV_REPORT_DLQ_URL),
            role_mode: match env_value(crate::role::ENV_ROLE_MODE) {
                Some(mode) => mode.parse().map_err(|e: Error| {
                    Error::Config(format!("environment variable {}: {e}", crate::role::ENV_ROLE_MODE))
                })?,
                None => d.role_mode,
            },
            role_external_id: env_value(crate::role::ENV_ROLE_EXTERNAL_ID),
            system_bucket_owner: env_value(ENV_SYSTEM_BUCKET_OWNER),
            role_name_prefix: env_value(crate::role::ENV_JOB_ROLE_PREFIX),
            role_session: role_session_from_env()?.unwrap_or(d.role_session),
            event_bus: env_value(ENV_EVENT_BUS),
            emf_metrics: match env_value(ENV_METRICS).as_deref() {
                None | Some("off") => false,
                Some("emf") => true,
                Some(other) => {
                    return Err(Error::Config(format!(
                        "environment variable {ENV_METRICS}={other:?} is not valid: emf or off"
                    )))
                }
            },
            copy: crate::operation::CopySettings::bounded(
                parsed(
                    crate::operation::ENV_MULTIPART_COPY_THRESHOLD,
                    d.copy.multipart_threshold,
                )?,
                parsed(crate::operation::ENV_COPY_PART_SIZE, d.copy.part_size)?,
                parsed(
                    crate::operation::ENV_COPY_PART_CONCURRENCY,
                    d.copy.part_concurrency as u64,
                )?,
            ),
            ..d
        })
    }
}

/// `BATCHOPS_ROLE_SESSION_SECONDS`, within what STS accepts.
pub(super) fn role_session_from_env() -> Result<Option<Duration>> {
    use crate::role::{ENV_ROLE_SESSION_SECONDS, MAX_SESSION, MIN_SESSION};
    let Some(seconds) = env_value(ENV_ROLE_SESSION_SECONDS) else {
        return Ok(None);
    };
    let session = seconds
        .parse()
        .ok()
        .map(Duration::from_secs)
        .filter(|d| (MIN_SESSION..=MAX_SESSION).contains(d))
        .ok_or_else(|| {
            Error::Config(format!(
                "environment variable {ENV_ROLE_SESSION_SECONDS}={seconds:?} is not valid: a role session lasts {} to {} seconds",
                MIN_SESSION.as_secs(),
                MAX_SESSION.as_secs()
            ))
        })?;
    Ok(Some(session))
}

/// A variable's value, treating an empty one as unset.
pub fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub(super) fn required(name: &str) -> Result<String> {
    env_value(name).ok_or_else(|| Error::Config(format!("environment variable {name} is not set")))
}

pub(super) fn parsed<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match env_value(name) {
        Some(v) => v
            .parse()
            .map_err(|_| Error::Config(format!("environment variable {name}={v:?} is not valid"))),
        None => Ok(default),
    }
}
