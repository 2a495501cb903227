//! The library's error type. Every variant carries enough context for a user to act on it.

pub mod aws;

use serde_json::Value;
use thiserror::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum Error {
    /// The job request is malformed or asks for something batchops does not do.
    #[error("invalid job request: {0}")]
    InvalidRequest(String),
    #[error("job {0} not found")]
    JobNotFound(String),
    /// A ClientRequestToken used before with a different request (S3's IdempotencyException).
    #[error("IdempotencyException: {0}")]
    Idempotency(String),
    #[error("job {job_id}: cannot change status from {from} to {to}")]
    InvalidTransition {
        job_id: String,
        from: String,
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
    RoleNotAssumed { role_arn: String, reason: String },
    #[error("{service} {operation} failed: {message}")]
    Aws {
        service: &'static str,
        operation: &'static str,
        message: String,
    },
    #[error("configuration: {0}")]
    Config(String),
    #[error("malformed message: {0}")]
    Message(String),
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// Wraps an SDK error with the service and operation that produced it, keeping the full
    /// error chain (`DisplayErrorContext`) so that the root cause reaches the logs.
    pub fn aws<E>(service: &'static str, operation: &'static str, err: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::Aws {
            service,
            operation,
            message: error_chain(&err),
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
        let Error::Aws { message, .. } = Error::aws("SQS", "ReceiveMessage", err) else {
            unreachable!()
        };
        assert_eq!(
            message,
            "dispatch failure: tcp connect error: Connection refused"
        );
    }
}
