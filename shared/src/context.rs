//! The clients and settings every handler uses, built once per container from the environment.
//!
//! Every client honours `AWS_ENDPOINT_URL` and its per-service variants (`AWS_ENDPOINT_URL_S3`,
//! `AWS_ENDPOINT_URL_LAMBDA`, ...), so the same code runs against AWS, the local emulator and tests.

use crate::error::{Error, Result};
use std::time::Duration;

/// Environment variables read by the functions and the CLI.
pub const ENV_TABLE: &str = "BATCHOPS_TABLE";
pub const ENV_PLAN_QUEUE_URL: &str = "BATCHOPS_PLAN_QUEUE_URL";
pub const ENV_TASK_QUEUE_URL: &str = "BATCHOPS_TASK_QUEUE_URL";
pub const ENV_REPORT_QUEUE_URL: &str = "BATCHOPS_REPORT_QUEUE_URL";
pub const ENV_SYSTEM_BUCKET: &str = "BATCHOPS_SYSTEM_BUCKET";
pub const ENV_EXECUTOR_CONCURRENCY: &str = "BATCHOPS_EXECUTOR_CONCURRENCY";
pub const ENV_LAMBDA_MAX_ATTEMPTS: &str = "BATCHOPS_LAMBDA_MAX_ATTEMPTS";
pub const ENV_LAMBDA_RETRY_BASE_MS: &str = "BATCHOPS_LAMBDA_RETRY_BASE_MS";
pub const ENV_MAX_MESSAGE_BYTES: &str = "BATCHOPS_MAX_MESSAGE_BYTES";
pub const ENV_REPORT_READ_CONCURRENCY: &str = "BATCHOPS_REPORT_READ_CONCURRENCY";
pub const ENV_EXECUTOR_BUDGET_MS: &str = "BATCHOPS_EXECUTOR_BUDGET_MS";
pub const ENV_EXECUTOR_MARGIN_MS: &str = "BATCHOPS_EXECUTOR_MARGIN_MS";
pub const ENV_REPORTER_BUDGET_MS: &str = "BATCHOPS_REPORTER_BUDGET_MS";
pub const ENV_REPORT_MAX_FILE_BYTES: &str = "BATCHOPS_REPORT_MAX_FILE_BYTES";
pub const ENV_STALL_SECONDS: &str = "BATCHOPS_STALL_SECONDS";
pub const ENV_COMMIT_PATIENCE_SECONDS: &str = "BATCHOPS_COMMIT_PATIENCE_SECONDS";
pub const ENV_FINALIZE_RESEND_SECONDS: &str = "BATCHOPS_FINALIZE_RESEND_SECONDS";
pub const ENV_PLAN_DLQ_URL: &str = "BATCHOPS_PLAN_DLQ_URL";
pub const ENV_TASK_DLQ_URL: &str = "BATCHOPS_TASK_DLQ_URL";
pub const ENV_REPORT_DLQ_URL: &str = "BATCHOPS_REPORT_DLQ_URL";

/// SQS's default maximum message size (a queue may allow up to 1 MiB, but batchops' queues and
/// emulators keep the default).
pub const SQS_MAX_MESSAGE_BYTES: usize = 262_144;
/// Room for the envelope and at least one task with a key of 1,024 bytes, URL-escaped.
pub const MIN_MESSAGE_BYTES: usize = 4_096;

/// Names that `batchops local up` creates and that the CLI falls back to when the variables are unset.
pub const LOCAL_TABLE: &str = "batchops-jobs";
pub const LOCAL_PLAN_QUEUE: &str = "batchops-plan";
pub const LOCAL_TASK_QUEUE: &str = "batchops-tasks";
pub const LOCAL_REPORT_QUEUE: &str = "batchops-report";
pub const LOCAL_SYSTEM_BUCKET: &str = "batchops-system";

#[derive(Debug, Clone)]
pub struct Settings {
    pub table: String,
    pub plan_queue_url: String,
    pub task_queue_url: String,
    pub report_queue_url: String,
    pub system_bucket: String,
    /// Tasks run at once by one executor invocation.
    pub executor_concurrency: usize,
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
    /// The dead-letter queues the sweeper drains; when unset it finds them from each queue's
    /// redrive policy.
    pub plan_dlq_url: Option<String>,
    pub task_dlq_url: Option<String>,
    pub report_dlq_url: Option<String>,
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
            plan_dlq_url: None,
            task_dlq_url: None,
            report_dlq_url: None,
        }
    }
}

impl Settings {
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
            plan_dlq_url: env_value(ENV_PLAN_DLQ_URL),
            task_dlq_url: env_value(ENV_TASK_DLQ_URL),
            report_dlq_url: env_value(ENV_REPORT_DLQ_URL),
            ..d
        })
    }
}

/// A variable's value, treating an empty one as unset.
pub fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn required(name: &str) -> Result<String> {
    env_value(name).ok_or_else(|| Error::Config(format!("environment variable {name} is not set")))
}

fn parsed<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match env_value(name) {
        Some(v) => v
            .parse()
            .map_err(|_| Error::Config(format!("environment variable {name}={v:?} is not valid"))),
        None => Ok(default),
    }
}

/// AWS clients plus settings; cheap to clone (clients share their connection pools).
#[derive(Debug, Clone)]
pub struct Context {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub settings: Settings,
    /// The Lambda endpoint given to [`Context::with_lambda_endpoint`], kept so that clients
    /// rebuilt later (with faults) still point there.
    pub lambda_endpoint: Option<String>,
}

impl Context {
    /// Builds clients from the standard AWS configuration chain and settings from the environment.
    pub async fn from_env() -> Result<Self> {
        let settings = Settings::from_env()?;
        Ok(Self::from_config(&load_aws_config().await, settings))
    }

    /// Points the Lambda client at another endpoint, e.g. `cargo lambda watch` on loopback, while
    /// the other clients stay on the emulator.
    pub fn with_lambda_endpoint(mut self, config: &aws_config::SdkConfig, url: &str) -> Self {
        self.lambda = lambda_client(config, Some(url));
        self.lambda_endpoint = Some(url.to_string());
        self
    }

    /// The same context with every client going through a fault plan (see [`crate::fault`]).
    /// Refused unless every endpoint is a plain-HTTP server on loopback.
    pub fn with_faults(
        mut self,
        config: &aws_config::SdkConfig,
        plan: std::sync::Arc<crate::fault::FaultPlan>,
    ) -> Result<Self> {
        crate::fault::check_loopback(config.endpoint_url())?;
        if let Some(url) = &self.lambda_endpoint {
            crate::fault::check_loopback(Some(url))?;
        }
        let interceptor = crate::fault::FaultInterceptor::new(plan.clone());
        let client = crate::fault::FaultClient::new(plan);
        self.s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(config)
                .force_path_style(true)
                .timeout_config(s3_timeouts())
                .interceptor(interceptor.clone())
                .http_client(client.clone())
                .build(),
        );
        self.sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(config)
                .interceptor(interceptor.clone())
                .http_client(client.clone())
                .build(),
        );
        self.dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(config)
                .interceptor(interceptor.clone())
                .http_client(client.clone())
                .build(),
        );
        let mut lambda = aws_sdk_lambda::config::Builder::from(config)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(lambda_timeouts())
            .interceptor(interceptor)
            .http_client(client);
        if let Some(url) = &self.lambda_endpoint {
            lambda = lambda.endpoint_url(url);
        }
        self.lambda = aws_sdk_lambda::Client::from_conf(lambda.build());
        Ok(self)
    }

    pub fn from_config(config: &aws_config::SdkConfig, settings: Settings) -> Self {
        // Path-style addressing works with every endpoint, including emulators on loopback.
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .timeout_config(s3_timeouts())
            .build();
        Context {
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            sqs: aws_sdk_sqs::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            lambda: lambda_client(config, None),
            settings,
            lambda_endpoint: None,
        }
    }
}

impl Context {
    /// Writes an object of the system bucket: state that work saves between invocations.
    pub async fn write_system_object(&self, key: &str, body: Vec<u8>) -> Result<()> {
        self.s3
            .put_object()
            .bucket(&self.settings.system_bucket)
            .key(key)
            .body(body.into())
            .send()
            .await
            .map_err(|e| Error::aws("S3", "PutObject", e))?;
        Ok(())
    }

    /// Reads an object of the system bucket whole (what is saved there is small by design).
    pub async fn read_system_object(&self, key: &str) -> Result<Vec<u8>> {
        let object = self
            .s3
            .get_object()
            .bucket(&self.settings.system_bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| Error::aws("S3", "GetObject", e))?;
        let bytes = object.body.collect().await.map_err(|e| {
            Error::Other(format!(
                "reading s3://{}/{key}: {e}",
                self.settings.system_bucket
            ))
        })?;
        // One copy, from the received chunks into the vector.
        Ok(bytes.to_vec())
    }
}

/// The shared SDK configuration: region and endpoint from the environment as usual, and the
/// timeouts of [`base_timeouts`].
pub async fn load_aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(base_timeouts())
        .load()
        .await
}

/// Timeouts of the DynamoDB and SQS clients (and the base of the others). A server that accepts a
/// connection and never answers must not hold a call, or a Lambda invocation, for minutes: an
/// attempt gives up after 20 s without a first byte and the whole call, retries included, after
/// 60 s, well inside every function's time. DynamoDB and SQS answer in milliseconds; `local run`
/// polls SQS without waiting (WaitTimeSeconds 0).
pub fn base_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .read_timeout(Duration::from_secs(20))
        .operation_attempt_timeout(Duration::from_secs(30))
        .operation_timeout(Duration::from_secs(60))
        .build()
}

/// S3's timeouts: a first byte within 60 s, but no bound on a whole call, because a large
/// CopyObject or UploadPartCopy answers its headers at once and its body only when the copy is
/// done (minutes for gigabytes). The function's own deadline bounds those.
pub fn s3_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .read_timeout(Duration::from_secs(60))
        .disable_operation_attempt_timeout()
        .disable_operation_timeout()
        .build()
}

/// Lambda's: a user's function may run up to 15 minutes before it answers.
pub fn lambda_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .read_timeout(Duration::from_secs(15 * 60 + 30))
        .disable_operation_attempt_timeout()
        .disable_operation_timeout()
        .build()
}

/// A function error from a local Lambda endpoint may come back as HTTP 500; the executor
/// classifies errors and retries itself, so the SDK must not retry invocations behind its back.
fn lambda_client(config: &aws_config::SdkConfig, endpoint: Option<&str>) -> aws_sdk_lambda::Client {
    let mut builder = aws_sdk_lambda::config::Builder::from(config)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(lambda_timeouts());
    if let Some(url) = endpoint {
        builder = builder.endpoint_url(url);
    }
    aws_sdk_lambda::Client::from_conf(builder.build())
}
