//! The library's error type. Every variant carries enough context for a user to act on it.

pub mod aws;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use serde_json::Value;
use thiserror::Error;

/// The library's result type: `Error` unless another is named.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error the library returns. [`Error::kind`] names the variant for logs and Lambda
/// `errorType`s.
#[derive(Debug, Error)]
pub enum Error {
    /// The job request is malformed or asks for something batchops does not do.
    #[error("invalid job request: {0}")]
    InvalidRequest(String),
    /// No job with this id in the job store; holds the id.
    #[error("job {0} not found")]
    JobNotFound(String),
    /// A ClientRequestToken used before with a different request (S3's IdempotencyException).
    #[error("IdempotencyException: {0}")]
    Idempotency(String),
    /// The job's status cannot change as asked, e.g. a job that has ended.
    #[error("job {job_id}: cannot change status from {from} to {to}")]
    InvalidTransition {
        /// The job asked about.
        job_id: String,
        /// Its status now.
        from: String,
        /// The status it was asked to take.
        to: String,
    },
    /// The manifest could not be read or does not match its spec; the job fails with this reason.
    #[error("{0}")]
    Manifest(String),
    /// The completion report cannot be written where the job asks; found before any task runs.
    #[error("{0}")]
    ReportDestination(String),
    /// The job's role cannot be assumed (denied, missing, or its trust policy does not name
    /// this stack): nothing of the job can run.
    #[error("cannot assume the job's role {role_arn}: {reason}")]
    RoleNotAssumed {
        /// The role's ARN, as the job names it.
        role_arn: String,
        /// Why: STS's refusal or what was wrong with its answer.
        reason: String,
    },
    /// An AWS call that failed for a reason without a variant of its own (a server error the
    /// SDK's attempts did not get past, a timeout, a refusal other than those below).
    #[error("{service} {operation} failed: {message}")]
    Aws {
        /// The service called, e.g. `S3`.
        service: &'static str,
        /// The operation called, e.g. `GetObject`.
        operation: &'static str,
        /// What went wrong, with the error's sources on one line ([`error_chain`]).
        message: String,
        /// The underlying error, when there is one (`None`: the message says it all).
        #[source]
        source: Option<BoxError>,
    },
    /// The service asked to slow down (throttling codes, 429, 503) on every attempt the SDK made.
    #[error("{service} {operation} failed: {message}")]
    Throttled {
        /// The service called, e.g. `S3`.
        service: &'static str,
        /// The operation called, e.g. `GetObject`.
        operation: &'static str,
        /// The error and its sources on one line ([`error_chain`]).
        message: String,
        /// The SDK's error itself.
        #[source]
        source: BoxError,
    },
    /// The service refused the caller's permissions (AccessDenied, 403).
    #[error("{service} {operation} failed: {message}")]
    AccessDenied {
        /// The service called, e.g. `S3`.
        service: &'static str,
        /// The operation called, e.g. `GetObject`.
        operation: &'static str,
        /// The error and its sources on one line ([`error_chain`]).
        message: String,
        /// The SDK's error itself.
        #[source]
        source: BoxError,
    },
    /// What the call names does not exist (NoSuchKey, NoSuchBucket, ResourceNotFound, 404).
    #[error("{service} {operation} failed: {message}")]
    NotFound {
        /// The service called, e.g. `S3`.
        service: &'static str,
        /// The operation called, e.g. `GetObject`.
        operation: &'static str,
        /// The error and its sources on one line ([`error_chain`]).
        message: String,
        /// The SDK's error itself.
        #[source]
        source: BoxError,
    },
    /// Not runnable yet: an earlier part of the work has not happened, or the job waits. The
    /// message that asked for it is delivered again and runs then.
    #[error("{0}")]
    NotReady(String),
    /// Another worker changed the same record first (every time it was tried), or holds what
    /// this one wanted; the request that asked for it is delivered again.
    #[error("{0}")]
    Conflict(String),
    /// A stored record, a document or a service's answer that does not have the shape batchops
    /// wrote or expects: what it is and what is wrong.
    #[error("{what} is malformed: {reason}")]
    Malformed {
        /// What was read: a stored record, a document or a service's answer.
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value could not be encoded or a request could not be built: a defect of batchops, not
    /// of the input.
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What was being encoded or built.
        what: String,
        /// The encoder's error.
        #[source]
        source: BoxError,
    },
    /// A deployed control function answered with an error document: its `errorType` (e.g.
    /// `batchops.InvalidRequest`) and message.
    #[error("the control function {function} refused the request: {message}")]
    Refused {
        /// The control function's name, as invoked.
        function: String,
        /// Its `errorType`; empty when the answer had none.
        error_type: String,
        /// Its `errorMessage`.
        message: String,
    },
    /// `local run` gave up waiting for a job (its `--timeout`).
    #[error("{0}")]
    Timeout(String),
    /// The setup is unusable: an environment variable unset or invalid, no credentials, an
    /// endpoint or queue gone, a bad fault plan.
    #[error("configuration: {0}")]
    Config(String),
    /// A queue message or function event that is not what its handler takes.
    #[error("malformed message: {0}")]
    Message(String),
}

/// The source kept inside an error variant.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl Error {
    /// Wraps an SDK error with the service and operation that produced it, sorted by what the
    /// caller may do about it (throttled, denied, not found, anything else), keeping the full
    /// error chain (`error_chain`) in the message so that the root cause reaches the logs, and
    /// the error itself as the source.
    pub fn aws<E>(
        service: &'static str,
        operation: &'static str,
        err: SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let message = error_chain(&err);
        let status = err.raw_response().map(|r| r.status().as_u16());
        let kind = aws::kind_of(err.code(), status);
        let source: BoxError = Box::new(err);
        match kind {
            aws::Kind::Throttled => Error::Throttled {
                service,
                operation,
                message,
                source,
            },
            aws::Kind::AccessDenied => Error::AccessDenied {
                service,
                operation,
                message,
                source,
            },
            aws::Kind::NotFound => Error::NotFound {
                service,
                operation,
                message,
                source,
            },
            aws::Kind::Other => Error::Aws {
                service,
                operation,
                message,
                source: Some(source),
            },
        }
    }

    /// An AWS call that failed outside the SDK's error type (a body that broke off midway),
    /// with what it was doing.
    pub fn aws_transport<E>(
        service: &'static str,
        operation: &'static str,
        what: String,
        err: E,
    ) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::Aws {
            service,
            operation,
            message: format!("{what}: {}", error_chain(&err)),
            source: Some(Box::new(err)),
        }
    }

    /// A value that could not be encoded or a request that could not be built.
    pub fn encode<E>(what: impl Into<String>, err: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::Encode {
            what: what.into(),
            source: Box::new(err),
        }
    }

    /// The name a Lambda reports as its `errorType`, and logs and tests can branch on.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidRequest(_) => "InvalidRequest",
            Error::JobNotFound(_) => "JobNotFound",
            Error::Idempotency(_) => "IdempotencyException",
            Error::InvalidTransition { .. } => "InvalidTransition",
            Error::Manifest(_) => "ManifestError",
            Error::ReportDestination(_) => "ReportDestinationError",
            Error::RoleNotAssumed { .. } => "RoleNotAssumed",
            Error::Aws { .. } => "AwsError",
            Error::Throttled { .. } => "Throttled",
            Error::AccessDenied { .. } => "AccessDenied",
            Error::NotFound { .. } => "NotFound",
            Error::NotReady(_) => "NotReady",
            Error::Conflict(_) => "Conflict",
            Error::Malformed { .. } => "Malformed",
            Error::Encode { .. } => "EncodeError",
            Error::Refused { .. } => "Refused",
            Error::Timeout(_) => "Timeout",
            Error::Config(_) => "ConfigError",
            Error::Message(_) => "MalformedMessage",
        }
    }
}

/// A Lambda's error answer: `errorType` says which kind of failure (`Throttled`, `NotReady`,
/// `ManifestError`, ...; see [`Error::kind`]), `errorMessage` the error and its sources.
impl From<Error> for lambda_runtime::Diagnostic {
    fn from(err: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: format!("batchops.{}", err.kind()),
            error_message: error_chain(&err),
        }
    }
}

/// An error and its sources on one line, `outer: inner: root`, each said once. (The SDK's
/// `DisplayErrorContext` adds a Debug dump of the whole error, dozens of lines for a refused
/// connection, which buries the one useful phrase.)
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !text.is_empty() && !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// What a JSON value is, for messages about the wrong kind of document.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Error)]
    #[error("dispatch failure")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_is_one_line_without_debug_dumps() {
        let err = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "tcp connect error: Connection refused",
        ));
        let err = Error::aws_transport("SQS", "ReceiveMessage", "polling".into(), err);
        let Error::Aws {
            ref message,
            ref source,
            ..
        } = err
        else {
            unreachable!()
        };
        assert_eq!(
            message,
            "polling: dispatch failure: tcp connect error: Connection refused"
        );
        assert!(source.is_some(), "the cause is kept as the source");
        assert_eq!(
            error_chain(&err),
            "SQS ReceiveMessage failed: polling: dispatch failure: tcp connect error: Connection refused"
        );
    }

    fn s3_error(code: &str, status: u16) -> Error {
        use aws_sdk_s3::operation::get_object::GetObjectError;
        use aws_smithy_types::body::SdkBody;
        use aws_smithy_types::error::ErrorMetadata;
        let meta = ErrorMetadata::builder()
            .code(code)
            .message("the service said so")
            .build();
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        Error::aws(
            "S3",
            "GetObject",
            SdkError::service_error(GetObjectError::generic(meta), raw),
        )
    }

    #[test]
    fn aws_errors_are_sorted_by_what_the_caller_can_do_and_keep_their_source() {
        for (code, status, kind) in [
            ("SlowDown", 503, "Throttled"),
            ("ProvisionedThroughputExceededException", 400, "Throttled"),
            ("AccessDenied", 403, "AccessDenied"),
            ("NoSuchKey", 404, "NotFound"),
            ("ResourceNotFoundException", 400, "NotFound"),
            ("InternalError", 500, "AwsError"),
        ] {
            let err = s3_error(code, status);
            assert_eq!(err.kind(), kind, "{code}");
            assert!(
                err.to_string().starts_with("S3 GetObject failed: "),
                "{err}"
            );
            assert!(
                std::error::Error::source(&err).is_some(),
                "{code}: the SDK error is the source"
            );
        }
        assert_eq!(aws::kind_of(None, Some(429)), aws::Kind::Throttled);
        assert_eq!(aws::kind_of(None, Some(403)), aws::Kind::AccessDenied);
        assert_eq!(aws::kind_of(None, Some(404)), aws::Kind::NotFound);
        assert_eq!(aws::kind_of(None, Some(500)), aws::Kind::Other);
    }

    #[test]
    fn a_lambda_reports_the_kind_as_its_error_type_and_the_chain_as_its_message() {
        let cases = [
            (
                Error::InvalidRequest("Priority: -5".into()),
                "batchops.InvalidRequest",
                "invalid job request: Priority: -5",
            ),
            (
                Error::NotReady("job j is Paused; batch b waits".into()),
                "batchops.NotReady",
                "job j is Paused; batch b waits",
            ),
            (Error::Conflict("lost".into()), "batchops.Conflict", "lost"),
            (
                Error::Manifest("line 3: unterminated quote".into()),
                "batchops.ManifestError",
                "line 3: unterminated quote",
            ),
            (
                Error::encode("the job put", std::io::Error::other("bad")),
                "batchops.EncodeError",
                "cannot encode the job put: bad",
            ),
            (
                s3_error("SlowDown", 503),
                "batchops.Throttled",
                "S3 GetObject failed: ",
            ),
        ];
        for (err, error_type, message) in cases {
            let diagnostic = lambda_runtime::Diagnostic::from(err);
            assert_eq!(diagnostic.error_type, error_type);
            assert!(
                diagnostic.error_message.starts_with(message),
                "{}",
                diagnostic.error_message
            );
        }
    }
}
