//! Fault injection for tests and `batchops local run`: AWS requests that fail, lose their answer
//! or wait, chosen by rules and a seeded random generator, so that a run can be replayed.
//!
//! Two pieces work together on every client of a [`crate::Context`] built with
//! [`crate::Context::with_faults`]:
//! - an interceptor sees each request attempt with its service and operation name (`SQS`,
//!   `SendMessage`) and its body, picks the fault (if any) from the [`FaultPlan`] and marks the
//!   request with a header;
//! - an HTTP client over plain HTTP carries the request out: a [`Fault::Reject`] answers without
//!   sending (the server never sees the request), [`Fault::LoseAnswer`] sends it and then answers
//!   with an error (the server acted, the caller thinks it failed), [`Fault::Delay`] waits first,
//!   [`Fault::Disconnect`] fails with a connection error.
//!
//! The SDK then behaves as it would against a failing AWS: it parses the error, retries what it
//! retries, and returns the rest to batchops. Faults are refused for any endpoint that is not on
//! loopback, and the HTTP client speaks no TLS, so a fault plan can never touch a real account.

use crate::error::{Error, Result};
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse, Metadata};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The header that carries the interceptor's choice to the HTTP client (never sent).
const FAULT_HEADER: &str = "x-batchops-fault";

/// What happens to a request that a rule picks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "Kind")]
pub enum Fault {
    /// Answered with this error without sending: the server never sees the request.
    Reject {
        /// `Status`: the HTTP status answered, e.g. 503.
        #[serde(rename = "Status")]
        status: u16,
        /// `Code`: the service's error code, e.g. `SlowDown`.
        #[serde(rename = "Code")]
        code: String,
        /// `Message`: the error message; empty when absent.
        #[serde(rename = "Message", default)]
        message: String,
        /// A whole JSON error body instead of the one built from `code` and `message` (e.g. a
        /// TransactionCanceledException with its CancellationReasons).
        #[serde(rename = "Body", default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
    },
    /// Sent, and the server's answer replaced with this error: the request took effect, but the
    /// caller sees a failure.
    LoseAnswer {
        /// `Status`: the HTTP status answered instead, e.g. 500.
        #[serde(rename = "Status")]
        status: u16,
        /// `Code`: the service's error code, e.g. `InternalError`.
        #[serde(rename = "Code")]
        code: String,
        /// `Message`: the error message; empty when absent.
        #[serde(rename = "Message", default)]
        message: String,
    },
    /// Sent, and the server's answer replaced with this one, e.g. a Lambda function's payload
    /// that is not JSON, or the function error of a function that timed out.
    Answer {
        /// `Status`: the HTTP status answered instead (500 if not a valid status).
        #[serde(rename = "Status")]
        status: u16,
        /// `Headers`: `[name, value]` pairs set on the answer, e.g. `x-amz-function-error`.
        #[serde(rename = "Headers", default)]
        headers: Vec<(String, String)>,
        /// `Body`: the answer's body, as is.
        #[serde(rename = "Body")]
        body: String,
    },
    /// Sent after a pause.
    Delay {
        /// `Millis`: the pause before the request is sent, in milliseconds.
        #[serde(rename = "Millis")]
        millis: u64,
    },
    /// Not sent; the connection fails (a transient I/O error, retried by the SDK).
    Disconnect,
}

impl Fault {
    /// A server error answered at once (HTTP 500 `InternalError`).
    pub fn internal_error() -> Fault {
        Fault::Reject {
            status: 500,
            code: "InternalError".into(),
            message: "injected fault: internal error".into(),
            body: None,
        }
    }

    /// S3's throttling answer (503 `SlowDown`).
    pub fn slow_down() -> Fault {
        Fault::Reject {
            status: 503,
            code: "SlowDown".into(),
            message: "injected fault: please reduce your request rate".into(),
            body: None,
        }
    }

    /// A DynamoDB transaction cancelled by a concurrent one on the same items.
    pub fn transaction_conflict() -> Fault {
        Fault::Reject {
            status: 400,
            code: "TransactionCanceledException".into(),
            message: "injected fault: Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict, None]".into(),
            body: Some(
                serde_json::json!({
                    "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                    "Message": "injected fault: Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict, None]",
                    "CancellationReasons": [
                        {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"},
                        {"Code": "None"}
                    ]
                })
                .to_string(),
            ),
        }
    }

    /// Lambda's throttling answer (429).
    pub fn too_many_requests() -> Fault {
        Fault::Reject {
            status: 429,
            code: "TooManyRequestsException".into(),
            message: "injected fault: Rate Exceeded.".into(),
            body: None,
        }
    }

    /// A Lambda function that timed out: Lambda answers 200 with a function error.
    pub fn function_timed_out() -> Fault {
        Fault::Answer {
            status: 200,
            headers: vec![("x-amz-function-error".into(), "Unhandled".into())],
            body: r#"{"errorMessage":"2026-01-01T00:00:00.000Z injected Task timed out after 3.00 seconds"}"#.into(),
        }
    }

    /// A Lambda function whose payload is not JSON.
    pub fn malformed_payload() -> Fault {
        Fault::Answer {
            status: 200,
            headers: Vec::new(),
            body: "{\"invocationSchemaVersion\": \"2.0\", \"results\": [".into(),
        }
    }

    /// DynamoDB's throttling answer.
    pub fn throughput_exceeded() -> Fault {
        Fault::Reject {
            status: 400,
            code: "ProvisionedThroughputExceededException".into(),
            message: "injected fault: throughput exceeded".into(),
            body: None,
        }
    }
}

/// Which requests a rule applies to, and how often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// The SDK's service name: `S3`, `SQS`, `DynamoDB`, `Lambda`; any when absent.
    #[serde(rename = "Service", default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The operation name (`SendMessage`, `TransactWriteItems`, `UploadPartCopy`); any when absent.
    #[serde(rename = "Operation", default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Only requests whose URI, headers (`name: value` lines, names lowercase) or body contain this text.
    #[serde(rename = "Contains", default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<String>,
    /// More texts that the request must contain as well.
    #[serde(
        rename = "AlsoContains",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub also_contains: Vec<String>,
    /// Matching requests let through before the rule starts firing.
    #[serde(rename = "Skip", default)]
    pub skip: u64,
    /// How many times the rule fires at most; without a limit it fires on every match.
    #[serde(rename = "Times", default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
    /// The chance that a matching request (past `skip`) gets the fault, from the plan's seed.
    #[serde(rename = "Probability", default = "always")]
    pub probability: f64,
    /// `Fault`: what happens to a request the rule picks.
    #[serde(rename = "Fault")]
    pub fault: Fault,
}

fn always() -> f64 {
    1.0
}

impl FaultRule {
    /// A rule for one operation of one service that fires on every match.
    pub fn new(service: &str, operation: &str, fault: Fault) -> Self {
        FaultRule {
            service: Some(service.to_string()),
            operation: Some(operation.to_string()),
            contains: None,
            also_contains: Vec::new(),
            skip: 0,
            times: None,
            probability: 1.0,
            fault,
        }
    }

    /// A rule for every operation of one service.
    pub fn on_service(service: &str, fault: Fault) -> Self {
        FaultRule {
            operation: None,
            ..FaultRule::new(service, "", fault)
        }
    }

    /// Only requests whose URI, headers or body contain `text` (replaces an earlier one).
    pub fn containing(mut self, text: &str) -> Self {
        self.contains = Some(text.to_string());
        self
    }

    /// Also only requests that contain `text`.
    pub fn containing_also(mut self, text: &str) -> Self {
        self.also_contains.push(text.to_string());
        self
    }

    /// Fires at most `times` times.
    pub fn times(mut self, times: u64) -> Self {
        self.times = Some(times);
        self
    }

    /// Lets the first `skip` matching requests through before firing.
    pub fn after(mut self, skip: u64) -> Self {
        self.skip = skip;
        self
    }

    /// Fires on a matching request with this chance (0 to 1), drawn from the plan's seed.
    pub fn with_probability(mut self, probability: f64) -> Self {
        self.probability = probability;
        self
    }

    fn matches(&self, service: &str, operation: &str, text: &str) -> bool {
        self.service.as_deref().is_none_or(|s| s == service)
            && self.operation.as_deref().is_none_or(|o| o == operation)
            && self.contains.as_deref().is_none_or(|c| text.contains(c))
            && self.also_contains.iter().all(|c| text.contains(c.as_str()))
    }
}

/// The faults of a chaos run (`make chaos`, `batchops local run --chaos SEED`): every kind a
/// deployed stack meets, each at a low rate so that the SDK's retries, redeliveries and the
/// sweeper's repairs must carry every job to its end, plus bursts of S3 `SlowDown` and
/// `InternalError` at points drawn from the seed. The same seed gives the same rules.
pub fn chaos_rules(seed: u64) -> Vec<FaultRule> {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x00c4_a05e);
    let lost = |code: &str| Fault::LoseAnswer {
        status: 500,
        code: code.into(),
        message: "injected fault: the answer was lost".into(),
    };
    let mut rules = Vec::new();
    for _ in 0..4 {
        let fault = if rng.bool() {
            Fault::slow_down()
        } else {
            Fault::internal_error()
        };
        rules.push(
            FaultRule::on_service("S3", fault)
                .after(rng.u64(0..20_000))
                .times(rng.u64(20..80)),
        );
    }
    rules.extend([
        // SQS: sends that fail, sends that happened but look failed (duplicates), deletes that
        // fail (the message comes again), receives that fail.
        FaultRule::new("SQS", "SendMessage", Fault::internal_error()).with_probability(0.03),
        FaultRule::new("SQS", "SendMessage", lost("InternalError")).with_probability(0.02),
        FaultRule::new("SQS", "DeleteMessage", Fault::internal_error()).with_probability(0.05),
        FaultRule::new("SQS", "ReceiveMessage", Fault::internal_error()).with_probability(0.01),
        // DynamoDB: throttling and transaction conflicts on the exactly-once commits.
        FaultRule::new(
            "DynamoDB",
            "TransactWriteItems",
            Fault::throughput_exceeded(),
        )
        .with_probability(0.03),
        FaultRule::new(
            "DynamoDB",
            "TransactWriteItems",
            Fault::transaction_conflict(),
        )
        .with_probability(0.03),
        FaultRule::new(
            "DynamoDB",
            "TransactWriteItems",
            lost("InternalServerError"),
        )
        .with_probability(0.01),
        FaultRule::on_service("DynamoDB", Fault::throughput_exceeded()).with_probability(0.01),
        // S3: throttling and server errors on the tasks and on batchops' own objects, and tasks
        // slower than they should be.
        FaultRule::new("S3", "PutObjectTagging", Fault::slow_down()).with_probability(0.03),
        FaultRule::new("S3", "CopyObject", Fault::internal_error()).with_probability(0.03),
        FaultRule::new("S3", "PutObjectTagging", Fault::Delay { millis: 400 })
            .with_probability(0.01),
        FaultRule::on_service("S3", Fault::internal_error()).with_probability(0.01),
        // Lambda: throttled, answers that are not JSON, functions that time out.
        FaultRule::new("Lambda", "Invoke", Fault::too_many_requests()).with_probability(0.03),
        FaultRule::new("Lambda", "Invoke", Fault::malformed_payload()).with_probability(0.005),
        FaultRule::new("Lambda", "Invoke", Fault::function_timed_out()).with_probability(0.005),
    ]);
    rules
}

/// One injected fault, as the plan recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    /// The index of the rule that fired, in the plan's rules.
    pub rule: usize,
    /// The request's service, e.g. `SQS`.
    pub service: String,
    /// The request's operation, e.g. `SendMessage`.
    pub operation: String,
    /// When: a rule that delays by nothing records the times of the requests it matches.
    pub at: std::time::Instant,
}

#[derive(Debug)]
struct PlanState {
    rng: fastrand::Rng,
    /// Per rule: matching requests seen, faults fired.
    seen: Vec<u64>,
    fired: Vec<u64>,
    log: Vec<Injected>,
}

/// The rules of a run and what they did. Shared by every client of a context.
#[derive(Debug)]
pub struct FaultPlan {
    seed: u64,
    rules: Vec<FaultRule>,
    state: Mutex<PlanState>,
    injected: AtomicU64,
    /// Requests in a [`Fault::Delay`] now, and the most there were at once: how many calls the
    /// code under test had in flight.
    delayed_now: AtomicU64,
    delayed_most: AtomicU64,
}

impl FaultPlan {
    /// A plan of `rules`, tried in order on each request, with its random draws seeded by `seed`.
    pub fn new(seed: u64, rules: Vec<FaultRule>) -> Arc<Self> {
        let n = rules.len();
        Arc::new(FaultPlan {
            seed,
            rules,
            state: Mutex::new(PlanState {
                rng: fastrand::Rng::with_seed(seed),
                seen: vec![0; n],
                fired: vec![0; n],
                log: Vec::new(),
            }),
            injected: AtomicU64::new(0),
            delayed_now: AtomicU64::new(0),
            delayed_most: AtomicU64::new(0),
        })
    }

    /// The most requests that were in a [`Fault::Delay`] at once.
    pub fn most_delayed_at_once(&self) -> u64 {
        self.delayed_most.load(Ordering::Relaxed)
    }

    /// A plan from JSON: `{"Seed": 7, "Rules": [FaultRule, ...]}`.
    pub fn from_json(json: &str) -> Result<Arc<Self>> {
        #[derive(Deserialize)]
        struct Spec {
            #[serde(rename = "Seed", default)]
            seed: u64,
            #[serde(rename = "Rules")]
            rules: Vec<FaultRule>,
        }
        let spec: Spec = serde_json::from_str(json)
            .map_err(|e| Error::Config(format!("fault plan is not valid JSON: {e}")))?;
        Ok(FaultPlan::new(spec.seed, spec.rules))
    }

    /// The seed the plan's random draws come from: the same seed replays the same run.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    /// Every fault injected so far, in order.
    pub fn log(&self) -> Vec<Injected> {
        self.lock().log.clone()
    }

    /// How many times rule `index` fired.
    pub fn fired(&self, index: usize) -> u64 {
        self.lock().fired.get(index).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PlanState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The rule (index) whose fault this request gets, if any: the first rule that matches,
    /// is past its `skip`, has firings left and wins its draw.
    fn choose(&self, service: &str, operation: &str, text: &str) -> Option<usize> {
        let mut state = self.lock();
        for (index, rule) in self.rules.iter().enumerate() {
            if !rule.matches(service, operation, text) {
                continue;
            }
            state.seen[index] += 1;
            if state.seen[index] <= rule.skip {
                continue;
            }
            if rule.times.is_some_and(|t| state.fired[index] >= t) {
                continue;
            }
            if rule.probability < 1.0 && state.rng.f64() >= rule.probability {
                continue;
            }
            state.fired[index] += 1;
            state.log.push(Injected {
                rule: index,
                service: service.to_string(),
                operation: operation.to_string(),
                at: std::time::Instant::now(),
            });
            self.injected.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(rule = index, service, operation, "injecting a fault");
            return Some(index);
        }
        None
    }

    fn fault(&self, index: usize) -> Option<&Fault> {
        self.rules.get(index).map(|r| &r.fault)
    }
}

/// Picks faults: one per request attempt, recorded in a header for [`FaultClient`].
#[derive(Debug, Clone)]
pub struct FaultInterceptor {
    plan: Arc<FaultPlan>,
}

impl FaultInterceptor {
    /// An interceptor that picks faults from `plan`.
    pub fn new(plan: Arc<FaultPlan>) -> Self {
        FaultInterceptor { plan }
    }
}

impl Intercept for FaultInterceptor {
    fn name(&self) -> &'static str {
        "FaultInterceptor"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> std::result::Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let Some(metadata) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let request = context.request_mut();
        let mut text = request.uri().to_string();
        // Headers too, so that a rule can answer as S3 does to, e.g., an ExpectedBucketOwner
        // that is not the bucket's owner (moto ignores the header).
        for (name, value) in request.headers().iter() {
            text.push('\n');
            text.push_str(name);
            text.push_str(": ");
            text.push_str(value);
        }
        if let Some(body) = request.body().bytes() {
            text.push(' ');
            text.push_str(&String::from_utf8_lossy(body));
        }
        if let Some(index) = self.plan.choose(metadata.service(), metadata.name(), &text) {
            request
                .headers_mut()
                .insert(FAULT_HEADER, index.to_string());
        }
        Ok(())
    }
}

/// An HTTP client (plain HTTP only) that carries out the faults the interceptor picked.
#[derive(Debug, Clone)]
pub struct FaultClient {
    plan: Arc<FaultPlan>,
    inner: SharedHttpClient,
}

impl FaultClient {
    /// A plain-HTTP client that carries out the faults `plan`'s interceptor picks.
    pub fn new(plan: Arc<FaultPlan>) -> Self {
        FaultClient {
            plan,
            inner: aws_smithy_http_client::Builder::new().build_http(),
        }
    }
}

impl HttpClient for FaultClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(FaultConnector {
            plan: Arc::clone(&self.plan),
            inner: self.inner.http_connector(settings, components),
        })
    }
}

#[derive(Debug)]
struct FaultConnector {
    plan: Arc<FaultPlan>,
    inner: SharedHttpConnector,
}

impl HttpConnector for FaultConnector {
    fn call(&self, mut request: HttpRequest) -> HttpConnectorFuture {
        let chosen = request
            .headers()
            .get(FAULT_HEADER)
            .and_then(|v| v.parse::<usize>().ok());
        request.headers_mut().remove(FAULT_HEADER);
        let Some(fault) = chosen.and_then(|i| self.plan.fault(i)).cloned() else {
            return self.inner.call(request);
        };
        let protocol = Protocol::of(&request);
        match fault {
            Fault::Reject {
                status,
                code,
                message,
                body,
            } => {
                let response = error_response(protocol, status, &code, &message, body);
                HttpConnectorFuture::ready(Ok(response))
            }
            Fault::LoseAnswer {
                status,
                code,
                message,
            } => {
                let sent = self.inner.call(request);
                HttpConnectorFuture::new(async move {
                    // The server acted; its answer is dropped.
                    let _ = sent.await;
                    Ok(error_response(protocol, status, &code, &message, None))
                })
            }
            Fault::Answer {
                status,
                headers,
                body,
            } => {
                let sent = self.inner.call(request);
                HttpConnectorFuture::new(async move {
                    let _ = sent.await;
                    let status = aws_smithy_runtime_api::http::StatusCode::try_from(status)
                        .unwrap_or_else(|_| {
                            aws_smithy_runtime_api::http::StatusCode::try_from(500)
                                .expect("500 is a status code")
                        });
                    let mut response = HttpResponse::new(status, SdkBody::from(body));
                    for (name, value) in headers {
                        response.headers_mut().insert(name, value);
                    }
                    Ok(response)
                })
            }
            Fault::Delay { millis } => {
                let sent = self.inner.call(request);
                let plan = self.plan.clone();
                HttpConnectorFuture::new(async move {
                    let _in_flight = DelayedRequest::enter(plan);
                    tokio::time::sleep(Duration::from_millis(millis)).await;
                    sent.await
                })
            }
            Fault::Disconnect => HttpConnectorFuture::ready(Err(ConnectorError::io(
                std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected fault: connection reset",
                )
                .into(),
            ))),
        }
    }
}

/// A request inside a [`Fault::Delay`], counted in its plan until it is answered or dropped.
struct DelayedRequest(Arc<FaultPlan>);

impl DelayedRequest {
    fn enter(plan: Arc<FaultPlan>) -> Self {
        let now = plan.delayed_now.fetch_add(1, Ordering::Relaxed) + 1;
        plan.delayed_most.fetch_max(now, Ordering::Relaxed);
        DelayedRequest(plan)
    }
}

impl Drop for DelayedRequest {
    fn drop(&mut self) {
        self.0.delayed_now.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How the service of a request spells its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// DynamoDB and SQS: `X-Amz-Target` and a JSON body with `__type`.
    AwsJson,
    /// Lambda: the error type in `x-amzn-errortype`.
    RestJson,
    /// S3: an XML `<Error>` document.
    RestXml,
}

impl Protocol {
    fn of(request: &HttpRequest) -> Self {
        if request.headers().get("x-amz-target").is_some() {
            Protocol::AwsJson
        } else if request.uri().contains("/2015-03-31/functions/") {
            Protocol::RestJson
        } else {
            Protocol::RestXml
        }
    }
}

fn error_response(
    protocol: Protocol,
    status: u16,
    code: &str,
    message: &str,
    body: Option<String>,
) -> HttpResponse {
    let (content_type, text) = match protocol {
        Protocol::AwsJson => (
            "application/x-amz-json-1.0",
            body.unwrap_or_else(|| {
                serde_json::json!({"__type": code, "message": message}).to_string()
            }),
        ),
        Protocol::RestJson => (
            "application/json",
            body.unwrap_or_else(|| serde_json::json!({"message": message}).to_string()),
        ),
        Protocol::RestXml => (
            "application/xml",
            body.unwrap_or_else(|| {
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><RequestId>injected</RequestId></Error>",
                    xml_escape(code),
                    xml_escape(message)
                )
            }),
        ),
    };
    let status = aws_smithy_runtime_api::http::StatusCode::try_from(status).unwrap_or_else(|_| {
        aws_smithy_runtime_api::http::StatusCode::try_from(500).expect("500 is a status code")
    });
    let mut response = HttpResponse::new(status, SdkBody::from(text));
    let headers = response.headers_mut();
    headers.insert("content-type", content_type);
    headers.insert("x-amzn-requestid", "injected");
    if protocol != Protocol::RestXml {
        headers.insert("x-amzn-errortype", code.to_string());
    }
    // SQS's JSON protocol also names the query-protocol code of its errors.
    headers.insert("x-amzn-query-error", format!("{code};Sender"));
    response
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Faults only on loopback endpoints: refuses a plan for any other.
pub fn check_loopback(endpoint: Option<&str>) -> Result<()> {
    let Some(endpoint) = endpoint else {
        return Err(Error::Config(
            "fault injection needs an endpoint on loopback (AWS_ENDPOINT_URL=http://127.0.0.1:...); it never runs against AWS".into(),
        ));
    };
    let host = endpoint
        .strip_prefix("http://")
        .map(|rest| rest.split(['/', ':']).next().unwrap_or_default());
    match host {
        Some("127.0.0.1" | "localhost" | "[::1]") => Ok(()),
        _ => Err(Error::Config(format!(
            "fault injection runs only against a plain-HTTP server on loopback, not {endpoint}"
        ))),
    }
}

#[cfg(test)]
mod tests;
