//! The Lambda invocation contract of S3 Batch Operations (`invocationSchemaVersion` 1.0 and 2.0).
