//! The clients and settings every handler uses, built once per container from the environment.
//!
//! Every client honours `AWS_ENDPOINT_URL` and its per-service variants (`AWS_ENDPOINT_URL_S3`,
//! `AWS_ENDPOINT_URL_LAMBDA`, ...), so the same code runs against AWS, the local emulator and tests.

use crate::error::{Error, Result};
use crate::role::{JobClients, JobRoleCredentials, JobRoles, RoleMode, RoleRequest};
use std::sync::Arc;
use std::time::Duration;

mod settings;
pub use crate::region::S3Regions;
pub use settings::*;

/// The longest a function's start waits for [`Context::warm_up`].
pub const WARM_UP_TIMEOUT: Duration = Duration::from_secs(2);

/// AWS clients plus settings; cheap to clone (clients share their connection pools).
#[derive(Debug, Clone)]
pub struct Context {
    /// Users' buckets: the orchestrator's role, or the job's in a context from
    /// [`Context::for_job`].
    pub s3: aws_sdk_s3::Client,
    /// batchops' own system bucket, always with the orchestrator's role.
    pub system_s3: aws_sdk_s3::Client,
    /// SQS: the plan, task and report queues and their dead-letter queues, with the orchestrator's
    /// role.
    pub sqs: aws_sdk_sqs::Client,
    /// DynamoDB: the job-store table, with the orchestrator's role.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// Users' functions (LambdaInvoke), with the same role as `s3`.
    pub lambda: aws_sdk_lambda::Client,
    /// STS with the orchestrator's role: assumes the job roles (`AssumeRole`).
    pub sts: aws_sdk_sts::Client,
    /// The job roles this container has assumed, shared by its clones.
    pub roles: Arc<JobRoles>,
    /// Resource names and tuning, normally read by [`Settings::from_env`].
    pub settings: Settings,
    /// The Lambda endpoint given to [`Context::with_lambda_endpoint`], kept so that clients
    /// rebuilt later (with faults) still point there.
    pub lambda_endpoint: Option<String>,
    /// Likewise the S3 endpoint given to [`Context::with_s3_endpoint`].
    pub s3_endpoint: Option<String>,
    /// The tasks running in this process, shared by its clones: `executor_concurrency` holds
    /// per process, not per batch, however many batches run at once.
    pub task_slots: Arc<TaskSlots>,
    /// The process's adaptive limit of S3 requests in flight, per bucket.
    pub s3_concurrency: Arc<crate::operation::concurrency::BucketConcurrency>,
    /// Clients like `s3` for the buckets found in other Regions (see [`Context::s3_for_bucket`]).
    pub s3_regions: Arc<S3Regions>,
    /// The running jobs the priority rule compares with, read now and then and shared by clones.
    pub running_jobs: Arc<crate::priority::RunningJobs>,
    /// The rate limiter's leases this process holds, shared by clones.
    pub rate_gates: Arc<crate::rate::RateGates>,
    /// EventBridge, for status-change events (sent only with `settings.event_bus`).
    pub eventbridge: aws_sdk_eventbridge::Client,
    /// Requests throttled in this process so far (S3 SlowDown and 503, Lambda 429 and
    /// TooManyRequests): the executor's `Throttles` metric is the count during a batch.
    pub throttles: Arc<std::sync::atomic::AtomicU64>,
    /// Where the executor's EMF metrics go (stdout in Lambda; kept in memory by tests).
    pub metrics: MetricsSink,
}

/// Where EMF metric documents go.
#[derive(Debug, Clone, Default)]
pub enum MetricsSink {
    /// `BATCHOPS_METRICS` unset: nowhere.
    #[default]
    Off,
    /// One line each on stdout, for CloudWatch Logs.
    Stdout,
    /// Kept, for tests.
    Memory(Arc<std::sync::Mutex<Vec<serde_json::Value>>>),
}

/// A process's task slots, sized by the first run's `executor_concurrency`.
#[derive(Debug, Default)]
pub struct TaskSlots(std::sync::OnceLock<tokio::sync::Semaphore>);

impl TaskSlots {
    /// The semaphore, made with `slots` permits on first use.
    pub fn get(&self, slots: usize) -> &tokio::sync::Semaphore {
        self.0
            .get_or_init(|| tokio::sync::Semaphore::new(slots.max(1)))
    }
}

impl Context {
    /// Builds clients from the standard AWS configuration chain and settings from the environment.
    pub async fn from_env() -> Result<Self> {
        let settings = Settings::from_env()?;
        Ok(Self::from_config(&load_aws_config().await, settings))
    }

    /// Opens the connections a function uses before its first event, so that no invocation pays
    /// for a TLS handshake with DynamoDB, SQS or the system bucket (hundreds of milliseconds to an
    /// AWS endpoint): one cheap request each, all at once, answered or refused (a refusal opens
    /// the connection all the same) and bounded by [`WARM_UP_TIMEOUT`]. Nothing fails here: a
    /// cold connection is slower, not wrong. The connections stay in the clients' pool for the
    /// container's later invocations.
    pub async fn warm_up(&self) {
        let table = async {
            let key = aws_sdk_dynamodb::types::AttributeValue::S("warm-up".into());
            self.dynamodb
                .get_item()
                .table_name(&self.settings.table)
                .key("pk", key)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    format!(
                        "DynamoDB: {}",
                        aws_sdk_dynamodb::error::DisplayErrorContext(e)
                    )
                })
        };
        let queue = async {
            self.sqs
                .get_queue_attributes()
                // Every function may send to the report queue, and read its attributes.
                .queue_url(&self.settings.report_queue_url)
                .attribute_names(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("SQS: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))
        };
        let bucket = async {
            self.system_s3
                .head_object()
                .bucket(&self.settings.system_bucket)
                .key("warm-up")
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("S3: {}", aws_sdk_s3::error::DisplayErrorContext(e)))
        };
        let all = async { tokio::join!(table, queue, bucket) };
        match tokio::time::timeout(WARM_UP_TIMEOUT, all).await {
            Ok(answers) => {
                for refused in [answers.0, answers.1, answers.2]
                    .into_iter()
                    .filter_map(Result::err)
                {
                    tracing::debug!(answer = %refused, "warm-up request refused (the connection is open)");
                }
            }
            Err(_) => tracing::info!(
                "warm-up requests still unanswered after {WARM_UP_TIMEOUT:?}; going on"
            ),
        }
    }

    /// Points the Lambda client at another endpoint, e.g. `cargo lambda watch` on loopback, while
    /// the other clients stay on the emulator.
    pub fn with_lambda_endpoint(mut self, config: &aws_config::SdkConfig, url: &str) -> Self {
        self.lambda = lambda_client(config, Some(url));
        self.lambda_endpoint = Some(url.to_string());
        // Job clients are built from these clients: none kept from before.
        self.roles = Arc::new(JobRoles::default());
        self
    }

    /// Sends S3 requests (users' buckets and the system bucket) to another endpoint, e.g. a
    /// second emulator, while the other clients stay where they are.
    pub fn with_s3_endpoint(mut self, config: &aws_config::SdkConfig, url: &str) -> Self {
        self.s3 = aws_sdk_s3::Client::from_conf(s3_config(config).endpoint_url(url).build());
        self.system_s3 = self.s3.clone();
        self.s3_regions = Arc::new(S3Regions::default());
        self.s3_endpoint = Some(url.to_string());
        // Job clients are built from these clients: none kept from before.
        self.roles = Arc::new(JobRoles::default());
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
        for url in [&self.lambda_endpoint, &self.s3_endpoint]
            .into_iter()
            .flatten()
        {
            crate::fault::check_loopback(Some(url))?;
        }
        let interceptor = crate::fault::FaultInterceptor::new(plan.clone());
        let client = crate::fault::FaultClient::new(plan);
        let mut s3 = s3_config(config)
            .interceptor(interceptor.clone())
            .http_client(client.clone());
        if let Some(url) = &self.s3_endpoint {
            s3 = s3.endpoint_url(url);
        }
        self.s3 = aws_sdk_s3::Client::from_conf(s3.build());
        self.system_s3 = self.s3.clone();
        self.s3_regions = Arc::new(S3Regions::default());
        self.roles = Arc::new(JobRoles::default());
        self.sts = aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(config)
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
        self.eventbridge = aws_sdk_eventbridge::Client::from_conf(
            aws_sdk_eventbridge::config::Builder::from(config)
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

    /// Builds every client from `config` (S3 path-style, Lambda without SDK retries), with no job
    /// role assumed yet; EMF metrics go to stdout when `settings.emf_metrics` is set.
    pub fn from_config(config: &aws_config::SdkConfig, settings: Settings) -> Self {
        let s3 = aws_sdk_s3::Client::from_conf(s3_config(config).build());
        Context {
            system_s3: s3.clone(),
            s3,
            sqs: aws_sdk_sqs::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            lambda: lambda_client(config, None),
            sts: aws_sdk_sts::Client::new(config),
            roles: Arc::new(JobRoles::default()),
            lambda_endpoint: None,
            s3_endpoint: None,
            task_slots: Arc::new(TaskSlots::default()),
            s3_concurrency: Arc::default(),
            s3_regions: Arc::new(S3Regions::default()),
            running_jobs: Arc::new(crate::priority::RunningJobs::default()),
            rate_gates: Arc::new(crate::rate::RateGates::default()),
            eventbridge: aws_sdk_eventbridge::Client::new(config),
            throttles: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            metrics: if settings.emf_metrics {
                MetricsSink::Stdout
            } else {
                MetricsSink::Off
            },
            settings,
        }
    }

    /// A Lambda client as the functions build it (no SDK retries, long read timeout).
    pub fn lambda_client_for(config: &aws_config::SdkConfig) -> aws_sdk_lambda::Client {
        lambda_client(config, None)
    }

    /// The client for a task on `bucket`: `s3`, or its twin in the bucket's Region once S3 said
    /// the bucket is elsewhere.
    pub fn s3_for_bucket(&self, bucket: &str) -> aws_sdk_s3::Client {
        self.s3_regions.client(&self.s3, bucket)
    }

    /// The context a job's work on users' data runs in: `s3` and `lambda` act as the job's
    /// `RoleArn` (assumed now, or kept from before while fresh), everything else stays the
    /// orchestrator's. Under [`RoleMode::Orchestrator`] the context itself.
    pub async fn for_job(&self, job: &crate::job::Job) -> Result<Context> {
        if self.settings.role_mode == RoleMode::Orchestrator {
            return Ok(self.clone());
        }
        let Some(role_arn) = job.request.role_arn.as_deref() else {
            return Err(Error::RoleNotAssumed {
                role_arn: "(none)".into(),
                reason: "the job has no RoleArn".into(),
            });
        };
        crate::role::check_allowed(role_arn, self.settings.role_name_prefix.as_deref())?;
        let clients = match self.roles.get(role_arn, &job.job_id) {
            Some(clients) => clients,
            None => {
                let clients = self.assume_job_role(role_arn, &job.job_id).await?;
                self.roles.keep(role_arn, &job.job_id, clients.clone());
                clients
            }
        };
        Ok(Context {
            s3: clients.s3,
            lambda: clients.lambda,
            s3_regions: clients.s3_regions,
            ..self.clone()
        })
    }

    /// Assumes the role once (so that a role that cannot be assumed is known here, by name) and
    /// builds the clients that sign with its credentials, on the same endpoints, timeouts and
    /// interceptors as the orchestrator's.
    async fn assume_job_role(&self, role_arn: &str, job_id: &str) -> Result<JobClients> {
        let credentials = JobRoleCredentials::new(
            self.sts.clone(),
            RoleRequest {
                role_arn: role_arn.to_string(),
                job_id: job_id.to_string(),
                external_id: self.settings.role_external_id.clone(),
                session: self.settings.role_session,
            },
            self.roles.counter(),
        );
        credentials.credentials().await?;
        let provider = aws_credential_types::provider::SharedCredentialsProvider::new(credentials);
        // The session really works (a role that exists, a trust that holds): one call that
        // needs no permission.
        let sts = aws_sdk_sts::Client::from_conf(
            self.sts
                .config()
                .to_builder()
                .credentials_provider(provider.clone())
                .identity_cache(aws_sdk_sts::config::IdentityCache::no_cache())
                .build(),
        );
        sts.get_caller_identity()
            .send()
            .await
            .map_err(|e| crate::role::role_error(role_arn, "GetCallerIdentity", e))?;
        // The provider keeps and renews the credentials itself.
        let s3 = aws_sdk_s3::Client::from_conf(
            self.s3
                .config()
                .to_builder()
                .credentials_provider(provider.clone())
                .identity_cache(aws_sdk_s3::config::IdentityCache::no_cache())
                .build(),
        );
        let lambda = aws_sdk_lambda::Client::from_conf(
            self.lambda
                .config()
                .to_builder()
                .credentials_provider(provider.clone())
                .identity_cache(aws_sdk_lambda::config::IdentityCache::no_cache())
                .build(),
        );
        Ok(JobClients {
            s3,
            lambda,
            credentials: provider,
            s3_regions: Arc::new(S3Regions::default()),
        })
    }

    /// The client for an object a job reads or writes: batchops' own objects of this job in the
    /// system bucket (a generated manifest, staged report files) with the orchestrator's role,
    /// anything else with the job's.
    pub fn s3_for(&self, job_id: &str, bucket: &str, key: &str) -> &aws_sdk_s3::Client {
        if is_own_system_object(&self.settings.system_bucket, job_id, bucket, key) {
            &self.system_s3
        } else {
            &self.s3
        }
    }
}

/// Whether `bucket`/`key` is one of job `job_id`'s own objects in the system bucket. Other keys
/// of the system bucket (other jobs' results) are not: a job's role reads those or nothing.
pub fn is_own_system_object(system_bucket: &str, job_id: &str, bucket: &str, key: &str) -> bool {
    !system_bucket.is_empty()
        && bucket == system_bucket
        && [
            format!("jobs/job-{job_id}/"),
            format!("staging/job-{job_id}/"),
        ]
        .iter()
        .any(|prefix| key.starts_with(prefix.as_str()))
}

impl Context {
    /// The job table, through this context's client and settings.
    pub fn store(&self) -> crate::store::Store {
        crate::store::Store::from_context(self)
    }

    /// Writes an object of the system bucket: state that work saves between invocations.
    pub async fn write_system_object(&self, key: &str, body: Vec<u8>) -> Result<()> {
        self.write_system_object_etag(key, body).await.map(|_| ())
    }

    /// Writes an object of the system bucket and returns its ETag (what a manifest is pinned to).
    pub async fn write_system_object_etag(
        &self,
        key: &str,
        body: Vec<u8>,
    ) -> Result<Option<String>> {
        let out = self
            .system_s3
            .put_object()
            .bucket(&self.settings.system_bucket)
            .set_expected_bucket_owner(self.settings.system_bucket_owner.clone())
            .key(key)
            .body(body.into())
            .send()
            .await
            .map_err(|e| Error::aws("S3", "PutObject", e))?;
        Ok(out.e_tag)
    }

    /// Reads an object of the system bucket whole; `None` when it is not there (expired).
    pub async fn read_system_object_if_exists(&self, key: &str) -> Result<Option<Vec<u8>>> {
        read_object_if_exists(
            &self.system_s3,
            &self.settings.system_bucket,
            key,
            self.settings.system_bucket_owner.clone(),
        )
        .await
    }

    /// Reads an object of the system bucket whole (what is saved there is small by design).
    pub async fn read_system_object(&self, key: &str) -> Result<Vec<u8>> {
        let object = self
            .system_s3
            .get_object()
            .bucket(&self.settings.system_bucket)
            .set_expected_bucket_owner(self.settings.system_bucket_owner.clone())
            .key(key)
            .send()
            .await
            .map_err(|e| Error::aws("S3", "GetObject", e))?;
        let bytes = object.body.collect().await.map_err(|e| {
            let what = format!("reading s3://{}/{key}", self.settings.system_bucket);
            Error::aws_transport("S3", "GetObject", what, e)
        })?;
        // One copy, from the received chunks into the vector.
        Ok(bytes.to_vec())
    }
}

/// Reads a (small) object whole with `s3`; `None` when there is no such key.
pub async fn read_object_if_exists(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    expected_owner: Option<String>,
) -> Result<Option<Vec<u8>>> {
    let got = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_expected_bucket_owner(expected_owner)
        .send()
        .await;
    let object = match got {
        Ok(object) => object,
        Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
        Err(e) => return Err(Error::aws("S3", "GetObject", e)),
    };
    let bytes = object.body.collect().await.map_err(|e| {
        Error::aws_transport("S3", "GetObject", format!("reading s3://{bucket}/{key}"), e)
    })?;
    Ok(Some(bytes.to_vec()))
}

/// The HTTP client of every SDK client (and of the credential providers): hyper with rustls on
/// ring, the platform's root certificates. Built once per process and shared, so connections are
/// pooled across clients. Every `SdkConfig` must be given it: the SDK crates are built without
/// a default client of their own.
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    static CLIENT: std::sync::OnceLock<aws_smithy_runtime_api::client::http::SharedHttpClient> =
        std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            aws_smithy_http_client::Builder::new()
                .tls_provider(Provider::Rustls(CryptoMode::Ring))
                .build_https()
        })
        .clone()
}

/// The shared SDK configuration: region and endpoint from the environment as usual, and the
/// timeouts of [`base_timeouts`].
pub async fn load_aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https_client())
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

/// The S3 client configuration every context builds on: path-style addressing (it works with
/// every endpoint, including emulators on loopback) and S3's timeouts.
fn s3_config(config: &aws_config::SdkConfig) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::from(config)
        .force_path_style(true)
        .timeout_config(s3_timeouts())
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
