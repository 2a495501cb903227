//! The one stack fixture: a whole batchops stack on the run's moto server (`local up` with unique
//! names; its settings tweaked per test, its clients those of any configuration, a Lambda
//! endpoint added on demand), and what the tests do with it: buckets, objects, CSV manifests, jobs
//! run through `local run`, and completion reports read back and checked. Areas add their own
//! helpers in `impl Stack` blocks of their modules.

use aws_sdk_s3::primitives::ByteStream;
use batchops::control;
use batchops::job::CreateJobRequest;
use batchops::local::{self, LocalNames, RunUntil};
use batchops::manifest::encode_key;
use batchops::report::{self, ReportManifest, TaskOutcome};
use batchops::Context;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

pub const RUN_TIMEOUT: Duration = Duration::from_secs(300);

pub struct Stack {
    pub ctx: Context,
    pub config: aws_config::SdkConfig,
    /// Unique per test, used to name buckets.
    pub id: String,
}

/// A stack with small retry delays, an inventory bucket if asked for, and the settings `tweak`
/// makes.
pub async fn stack_with(
    inventory: bool,
    tweak: impl FnOnce(&mut batchops::context::Settings),
) -> Stack {
    stack_as(super::sdk_config().await, inventory, tweak).await
}

/// [`stack_with`] whose clients use `config` (another identity, say).
pub async fn stack_as(
    config: aws_config::SdkConfig,
    inventory: bool,
    tweak: impl FnOnce(&mut batchops::context::Settings),
) -> Stack {
    let id = super::unique_suffix();
    let inventory_bucket = inventory.then(|| format!("inventory-{id}"));
    let inventory_bucket = inventory_bucket.as_deref();
    let mut settings = batchops::context::Settings {
        lambda_retry_base: Duration::from_millis(20),
        ..Default::default()
    };
    tweak(&mut settings);
    let ctx = local::up(
        &config,
        &LocalNames::with_suffix(&id),
        inventory_bucket,
        settings,
    )
    .await
    .unwrap();
    Stack { ctx, config, id }
}

pub async fn stack() -> Stack {
    stack_with(false, |_| {}).await
}

impl Stack {
    /// The stack with its LambdaInvoke calls sent to the run's `cargo lambda watch`.
    pub async fn with_lambda(mut self) -> Stack {
        let endpoint = super::lambda_endpoint().await;
        self.ctx = self
            .ctx
            .clone()
            .with_lambda_endpoint(&self.config, &endpoint);
        self
    }

    /// A bucket name unique to this stack.
    pub fn bucket(&self, name: &str) -> String {
        format!("{name}-{}", self.id)
    }

    pub async fn create_bucket(&self, bucket: &str) {
        super::create_bucket(&self.ctx, bucket).await;
    }

    /// Creates the bucket [`Stack::bucket`] names; returns its name.
    pub async fn new_bucket(&self, name: &str) -> String {
        let bucket = self.bucket(name);
        self.create_bucket(&bucket).await;
        bucket
    }

    pub async fn enable_versioning(&self, bucket: &str) {
        use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};
        self.ctx
            .s3
            .put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder()
                    .status(BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    /// Writes an object; returns its ETag (unquoted) and version id.
    pub async fn put_version(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> (String, Option<String>) {
        let out = super::put_object(&self.ctx, bucket, key, body).await;
        (super::unquoted_etag(&out), out.version_id)
    }

    pub async fn exists(&self, bucket: &str, key: &str) -> bool {
        self.ctx
            .s3
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .is_ok()
    }

    pub async fn job(&self, job_id: &str) -> batchops::job::Job {
        self.ctx.store().get_job(job_id).await.unwrap()
    }

    pub async fn put(&self, bucket: &str, key: &str, body: &str) -> String {
        let out = self
            .ctx
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body.as_bytes().to_vec()))
            .send()
            .await
            .unwrap();
        out.e_tag.unwrap_or_default().trim_matches('"').to_string()
    }

    pub async fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let out = self
            .ctx
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        out.body.collect().await.unwrap().into_bytes().to_vec()
    }

    pub async fn tags(&self, bucket: &str, key: &str) -> BTreeMap<String, String> {
        self.tags_of_version(bucket, key, None).await
    }

    pub async fn tags_of_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> BTreeMap<String, String> {
        let out = self
            .ctx
            .s3
            .get_object_tagging()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_string))
            .send()
            .await
            .unwrap();
        out.tag_set.into_iter().map(|t| (t.key, t.value)).collect()
    }

    /// Writes a CSV manifest (keys URL-encoded) and returns its ETag.
    pub async fn put_manifest(&self, bucket: &str, key: &str, rows: &[(String, String)]) -> String {
        let body: String = rows
            .iter()
            .map(|(b, k)| format!("{b},{}\n", encode_key(k)))
            .collect();
        self.put(bucket, key, &body).await
    }

    pub async fn create_job(&self, request: Value) -> String {
        let request = CreateJobRequest::parse(&request.to_string()).unwrap();
        control::create_job(&self.ctx, request, None)
            .await
            .unwrap()
            .job_id
    }

    pub async fn run_job(&self, job_id: &str) -> batchops::job::Job {
        local::run(
            &self.ctx,
            RunUntil::JobTerminal(job_id.to_string()),
            RUN_TIMEOUT,
        )
        .await
        .unwrap();
        self.job(job_id).await
    }

    pub async fn run_until_idle_summary(&self) -> local::RunSummary {
        local::run(&self.ctx, RunUntil::Idle, RUN_TIMEOUT)
            .await
            .unwrap()
    }

    pub async fn run_until_idle(&self) {
        local::run(&self.ctx, RunUntil::Idle, RUN_TIMEOUT)
            .await
            .unwrap();
    }

    pub async fn describe(&self, job_id: &str) -> Value {
        let out = control::describe_job(&self.ctx, job_id).await.unwrap();
        serde_json::to_value(out).unwrap()
    }

    /// Reads the completion report: its manifest.json and every row of its result files.
    pub async fn report(
        &self,
        bucket: &str,
        prefix: &str,
        job_id: &str,
    ) -> (ReportManifest, Vec<TaskOutcome>) {
        let key = report::report_manifest_key(Some(prefix), job_id);
        let manifest: ReportManifest =
            serde_json::from_slice(&self.get(bucket, &key).await).unwrap();
        let mut rows = Vec::new();
        for result in &manifest.results {
            let body = self.get(&result.bucket, &result.key).await;
            let digest = hex::encode(<md5::Md5 as md5::Digest>::digest(&body));
            assert_eq!(digest, result.md5_checksum, "MD5Checksum of {}", result.key);
            let part = report::decode_rows(&body).unwrap();
            let expected = result.task_execution_status;
            assert!(
                part.iter().all(|r| r.status == expected),
                "{} holds only {expected:?} rows",
                result.key
            );
            rows.extend(part);
        }
        (manifest, rows)
    }
}

pub fn csv_job(
    manifest_bucket: &str,
    manifest_key: &str,
    etag: &str,
    operation: Value,
    report_bucket: &str,
    scope: &str,
) -> Value {
    json!({
        "AccountId": "123456789012",
        "ConfirmationRequired": false,
        "Operation": operation,
        "Manifest": {
            "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
            "Location": {"ObjectArn": format!("arn:aws:s3:::{manifest_bucket}/{manifest_key}"), "ETag": etag}
        },
        "Report": {"Bucket": format!("arn:aws:s3:::{report_bucket}"), "Format": "Report_CSV_20180820",
                   "Enabled": true, "Prefix": "reports", "ReportScope": scope},
        "Priority": 10,
        "RoleArn": "arn:aws:iam::123456789012:role/batch"
    })
}

pub fn tagging(tags: &[(&str, &str)]) -> Value {
    let set: Vec<Value> = tags
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    json!({"S3PutObjectTagging": {"TagSet": set}})
}
