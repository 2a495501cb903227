//! How an AWS call failed, in the terms callers act on: the service's code, status and
//! message, and whether another attempt may succeed (throttling, 429, 5xx, timeouts, broken
//! connections). The retries themselves are the operation module's; the manifest reader and the
//! generator use the same rules to tell S3 refusing for now from S3 refusing for good.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// Error codes that mean "try again later", whatever the HTTP status says.
pub(crate) const RETRYABLE_CODES: &[&str] = &[
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "RequestTimeout",
    "Throttling",
    "ThrottlingException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceException",
    "ResourceConflictException",
    "ResourceNotReadyException",
    "EC2ThrottledException",
];

/// Whether a failure is the service asking to slow down (S3's SlowDown and 503, Lambda's 429,
/// any throttling code): what the `Throttles` metric counts.
pub fn is_throttle(failure: &Failure) -> bool {
    matches!(failure.http_status, Some(429 | 503))
        || matches!(
            failure.error_code.as_str(),
            "SlowDown" | "Throttling" | "ThrottlingException" | "TooManyRequestsException"
        )
}

/// A failed AWS call, as the completion report shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failure {
    /// Worth another attempt (throttling, server error, timeout, broken connection).
    pub retryable: bool,
    /// The service's error code (`NoSuchKey`, `SlowDown`, ...).
    pub error_code: String,
    /// The HTTP status of the service's answer; `None` when no answer came.
    pub http_status: Option<u16>,
    /// The service's error message.
    pub message: String,
    /// The bucket's Region, when S3 refused the request for being sent to another one.
    pub bucket_region: Option<String>,
}

/// An S3 request's answer as the operations read it: the output, or the [`Failure`] its error
/// classifies as (the tail every operation's request would otherwise repeat).
pub trait S3Answer<T> {
    /// The output, or the classified failure.
    fn classified(self) -> Result<T, Failure>;
    /// Success without the output, or the classified failure.
    fn done(self) -> Result<(), Failure>;
}

impl<T, E> S3Answer<T> for Result<T, SdkError<E, HttpResponse>>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    fn classified(self) -> Result<T, Failure> {
        self.map_err(|e| classify_s3_error(&e))
    }

    fn done(self) -> Result<(), Failure> {
        self.map(|_| ()).classified()
    }
}

/// How an S3 call failed: S3's code, status and message, and whether to retry.
pub fn classify_s3_error<E>(err: &SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    Failure {
        bucket_region: redirect_region(err),
        ..classify_parts(
            err.code(),
            err.message(),
            status,
            transport_problem(err),
            || describe(err),
        )
    }
}

/// The Region S3 names in `x-amz-bucket-region` when it refuses a request sent to the wrong
/// Region: a 301 (`PermanentRedirect`, or a HEAD's bare 301) or a 400 whose signature or location
/// was for another Region (`AuthorizationHeaderMalformed`, `IllegalLocationConstraintException`).
pub(crate) fn redirect_region<E>(err: &SdkError<E, HttpResponse>) -> Option<String>
where
    E: ProvideErrorMetadata,
{
    let raw = err.raw_response()?;
    let status = raw.status().as_u16();
    let wrong_region = status == 301
        || (status == 400
            && matches!(
                err.code(),
                Some("AuthorizationHeaderMalformed" | "IllegalLocationConstraintException")
            ));
    if !wrong_region {
        return None;
    }
    raw.headers().get("x-amz-bucket-region").map(str::to_string)
}

/// A short account of an error that came without a message: the answer's status and the start of
/// its body when there was an answer, the error chain otherwise.
pub(crate) fn describe<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: std::error::Error + Send + Sync + 'static,
{
    const MAX_BODY_CHARS: usize = 300;
    let Some(raw) = err.raw_response() else {
        return DisplayErrorContext(err).to_string();
    };
    let status = raw.status().as_u16();
    let body = raw
        .body()
        .bytes()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let body = body.trim();
    if body.is_empty() {
        return format!("HTTP {status} with no error message");
    }
    let mut snippet: String = body.chars().take(MAX_BODY_CHARS).collect();
    if body.chars().nth(MAX_BODY_CHARS).is_some() {
        snippet.push_str("...");
    }
    format!("HTTP {status}: {snippet}")
}

/// How a Lambda Invoke call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvokeFailure {
    /// The function ran and failed. Real Lambda flags this on a 200 answer (`FunctionError`); a local
    /// endpoint such as `cargo lambda watch` answers HTTP 500 with Lambda's error document
    /// (`{"errorType":..,"errorMessage":..}`) instead, which lands here. Holds that document.
    FunctionError(Vec<u8>),
    /// The Invoke API itself failed.
    Api(Failure),
}

/// Sorts a failed Lambda Invoke: Lambda's own error document answered with HTTP 500 (a local
/// endpoint's function error) or a failure of the API, classified as S3 errors are.
pub fn classify_invoke_error<E>(err: &SdkError<E, HttpResponse>) -> InvokeFailure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let SdkError::ServiceError(service) = err {
        let raw = service.raw();
        let body = raw.body().bytes().unwrap_or_default();
        if err.code().is_none() && is_function_error_document(raw.status().as_u16(), body) {
            return InvokeFailure::FunctionError(body.to_vec());
        }
    }
    InvokeFailure::Api(classify_s3_error(err))
}

/// A 500 whose body is Lambda's own error document, not an AWS service error.
pub fn is_function_error_document(status: u16, body: &[u8]) -> bool {
    if status != 500 {
        return false;
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(doc)) => {
            doc.contains_key("errorMessage") || doc.contains_key("errorType")
        }
        _ => false,
    }
}

/// A failure that happened before or instead of an answer from the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// No answer in time (the SDK's timeout, or a dispatch that timed out): retryable.
    Timeout,
    /// The connection could not be made or broke off: retryable.
    Connection,
    /// The request could not be built: retrying will not help.
    Construction,
}

pub(crate) fn transport_problem<E, R>(err: &SdkError<E, R>) -> Option<Transport> {
    match err {
        SdkError::TimeoutError(_) => Some(Transport::Timeout),
        SdkError::DispatchFailure(d) if d.is_timeout() => Some(Transport::Timeout),
        SdkError::DispatchFailure(d) if d.is_user() => Some(Transport::Construction),
        SdkError::DispatchFailure(_) => Some(Transport::Connection),
        SdkError::ConstructionFailure(_) => Some(Transport::Construction),
        _ => None,
    }
}

/// The rules, on plain values: retry on throttling codes, 429, 5xx, timeouts and broken connections.
pub fn classify_parts(
    code: Option<&str>,
    message: Option<&str>,
    status: Option<u16>,
    transport: Option<Transport>,
    detail: impl FnOnce() -> String,
) -> Failure {
    let retryable = match transport {
        Some(Transport::Timeout | Transport::Connection) => true,
        Some(Transport::Construction) => false,
        None => {
            code.is_some_and(|c| RETRYABLE_CODES.contains(&c))
                || status.is_some_and(|s| s == 429 || s >= 500)
        }
    };
    let error_code = match (code, transport, status) {
        (Some(code), _, _) => code.to_string(),
        (None, Some(Transport::Timeout), _) => "RequestTimeout".into(),
        (None, Some(Transport::Connection), _) => "ConnectionError".into(),
        (None, Some(Transport::Construction), _) => "InvalidRequest".into(),
        (None, None, Some(status)) => code_for_status(status).into(),
        (None, None, None) => "UnknownError".into(),
    };
    let message = match message {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => detail(),
    };
    Failure {
        retryable,
        error_code,
        http_status: status,
        message,
        bucket_region: None,
    }
}

/// S3's usual code for a status, for answers without an error body (e.g. HEAD requests).
pub(crate) fn code_for_status(status: u16) -> &'static str {
    match status {
        400 => "InvalidRequest",
        403 => "AccessDenied",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        429 => "TooManyRequests",
        500 => "InternalError",
        501 => "NotImplemented",
        503 => "ServiceUnavailable",
        _ => "UnknownError",
    }
}

/// What a caller may do about a failed AWS call: wait, fix permissions, fix the name, or
/// report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Asked to slow down (throttling codes, 429, 503): wait and try again.
    Throttled,
    /// The caller's permissions were refused (`AccessDenied`, 403).
    AccessDenied,
    /// What the call names does not exist (`NoSuchKey`, `NoSuchBucket`, 404, ...).
    NotFound,
    /// Anything else.
    Other,
}

/// Sorts an AWS error by its code (first) or HTTP status.
pub fn kind_of(code: Option<&str>, status: Option<u16>) -> Kind {
    match code {
        Some(
            "SlowDown"
            | "Throttling"
            | "ThrottlingException"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "ProvisionedThroughputExceededException"
            | "RequestThrottled"
            | "EC2ThrottledException",
        ) => Kind::Throttled,
        Some("AccessDenied" | "AccessDeniedException" | "Forbidden") => Kind::AccessDenied,
        Some(
            "NoSuchKey"
            | "NoSuchBucket"
            | "NoSuchVersion"
            | "NotFound"
            | "ResourceNotFoundException"
            | "AWS.SimpleQueueService.NonExistentQueue"
            | "QueueDoesNotExist",
        ) => Kind::NotFound,
        Some(_) => Kind::Other,
        None => match status {
            Some(429 | 503) => Kind::Throttled,
            Some(403) => Kind::AccessDenied,
            Some(404) => Kind::NotFound,
            _ => Kind::Other,
        },
    }
}
