//! The library's error type. Every variant carries enough context for a user to act on it.

use thiserror::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum Error {
    /// The job request is malformed or asks for something batchops does not do.
    #[error("invalid job request: {0}")]
    InvalidRequest(String),
    #[error("job {0} not found")]
    JobNotFound(String),
    #[error("job {job_id}: cannot change status from {from} to {to}")]
    InvalidTransition {
        job_id: String,
        from: String,
        to: String,
    },
    /// The manifest could not be read or does not match its spec; the job fails with this reason.
    #[error("{0}")]
    Manifest(String),
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
            message: aws_smithy_types::error::display::DisplayErrorContext(&err).to_string(),
        }
    }
}
