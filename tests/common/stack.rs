//! A whole batchops stack on the test binary's moto server (`local up` with unique names), and
//! what the end-to-end tests do with it: buckets, objects, CSV manifests, jobs run through
//! `local run`, and completion reports read back and checked.

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

pub async fn stack_with(
    inventory: bool,
    tweak: impl FnOnce(&mut batchops::context::Settings),
) -> Stack {
    let config = super::sdk_config().await;
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
    pub fn bucket(&self, name: &str) -> String {
        format!("{name}-{}", self.id)
    }

    pub async fn create_bucket(&self, bucket: &str) {
        super::create_bucket(&self.ctx, bucket).await;
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
        let out = self
            .ctx
            .s3
            .get_object_tagging()
            .bucket(bucket)
            .key(key)
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
        self.ctx.store().get_job(job_id).await.unwrap()
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
