//! The real object store: S3 through the AWS SDK.

use crate::handler::{ObjectStore, ReadError};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use sha2::{Digest, Sha256};

/// S3 codes that mean the object is not there, so retrying cannot help.
const MISSING_CODES: &[&str] = &["NoSuchKey", "NoSuchVersion", "NoSuchBucket"];

pub struct S3Store {
    client: aws_sdk_s3::Client,
}

impl S3Store {
    /// Uses the standard configuration chain, so `AWS_ENDPOINT_URL` points it at an emulator.
    pub async fn from_env() -> Self {
        let config = batchops::context::load_aws_config().await;
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build();
        S3Store {
            client: aws_sdk_s3::Client::from_conf(s3_config),
        }
    }
}

impl ObjectStore for S3Store {
    async fn sha256(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<String, ReadError> {
        let object = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_string))
            .send()
            .await
            .map_err(|err| match err.code() {
                Some(code) if MISSING_CODES.contains(&code) => ReadError::Missing(format!(
                    "{code}: {}",
                    err.message().unwrap_or("the object does not exist")
                )),
                _ => ReadError::Other(format!(
                    "cannot read s3://{bucket}/{key}: {}",
                    DisplayErrorContext(&err)
                )),
            })?;
        // Streamed: objects can be far larger than the function's memory.
        let mut body = object.body;
        let mut hasher = Sha256::new();
        while let Some(chunk) = body.try_next().await.map_err(|err| {
            ReadError::Other(format!(
                "reading s3://{bucket}/{key} was interrupted: {}",
                DisplayErrorContext(&err)
            ))
        })? {
            hasher.update(&chunk);
        }
        Ok(hex::encode(hasher.finalize()))
    }

    async fn put(&self, bucket: &str, key: &str, body: String) -> Result<(), String> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(body.into_bytes().into())
            .send()
            .await
            .map(|_| ())
            .map_err(|err| {
                format!(
                    "cannot write s3://{bucket}/{key}: {}",
                    DisplayErrorContext(&err)
                )
            })
    }
}
