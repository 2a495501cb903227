//! New jobs from old ones: a clone of a job's spec (the S3 console's "Clone job") and a re-run of
//! only the tasks that failed (which S3 lacks).
//!
//! Both copy the source job's request (operation, report, role, priority, description) and its
//! current tags, with a new ClientRequestToken, and record where they came from in a tag:
//! `batchops:clone-of` or `batchops:rerun-failed-of`, valued with the source's job id.
//!
//! A re-run's manifest is a CSV manifest of the failed tasks, written to the system bucket under
//! the new job's own prefix (`jobs/job-<id>/`, read with the stack's role whatever the job's
//! role may read). The failed tasks come from the result parts the executors kept (kept for
//! every failed task, even when the report is off or lists failed tasks only); once those have
//! expired (StagingRetentionDays), from the job's completion report when it has one.

use super::{create_job_as, CreateJobResponse};
use crate::error::{Error, Result};
use crate::job::{
    CreateJobRequest, Job, JobManifest, ManifestLocation, ManifestSpec, S3Tag, CSV_MANIFEST_FORMAT,
};
use crate::report::{ReportManifest, TaskOutcome, TaskStatus};
use crate::Context;
use serde::{Deserialize, Serialize};
use tracing::info;

/// The tag a clone carries: the id of the job it was cloned from.
pub const CLONE_OF_TAG: &str = "batchops:clone-of";
/// The tag a re-run carries: the id of the job whose failed tasks it runs.
pub const RERUN_OF_TAG: &str = "batchops:rerun-failed-of";
/// S3's limit on the tags of a job.
const MAX_JOB_TAGS: usize = 50;

/// The input of the control actions CloneJob and RerunFailedTasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SourceJobInput {
    /// The job to clone, or whose failed tasks to run again.
    pub job_id: String,
    /// Overrides the source's ConfirmationRequired (the CLI's `--[no-]confirmation-required`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_required: Option<bool>,
    /// Overrides the source's rate limit (`BatchOps.MaxTasksPerSecond`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tasks_per_second: Option<u32>,
    /// Gives the new job a canary of this many tasks (`BatchOps.CanaryTasks`), else the source's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_tasks: Option<u64>,
    /// `AccountId`: accepted as S3 Control requests carry it; batchops runs in one account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// CloneJob: a new job with the spec of `source_id` (same manifest or manifest generator).
pub async fn clone_job(ctx: &Context, input: &SourceJobInput) -> Result<CreateJobResponse> {
    let source_id = input.job_id.as_str();
    let source = ctx.store().get_job(source_id).await?;
    let request = derived_request(&source, CLONE_OF_TAG, input)?;
    let job_id = uuid::Uuid::new_v4().to_string();
    info!(job_id, source_id, "cloning a job");
    create_job_as(ctx, job_id, request, input.confirmation_required).await
}

/// RerunFailedTasks: a new job with the operation of `source_id` over the tasks that failed in
/// it. The source must have ended, and have failed tasks.
pub async fn rerun_failed_tasks(
    ctx: &Context,
    input: &SourceJobInput,
) -> Result<CreateJobResponse> {
    let source_id = input.job_id.as_str();
    let source = ctx.store().get_job(source_id).await?;
    if !source.status.is_terminal() {
        return Err(Error::InvalidRequest(format!(
            "job {source_id} is {}: its failed tasks are known once it has ended (Complete, Failed or Cancelled)",
            source.status
        )));
    }
    if source.progress.failed == 0 {
        return Err(Error::InvalidRequest(format!(
            "job {source_id} has no failed tasks to run again"
        )));
    }
    let failed = failed_tasks(ctx, &source).await?;
    let job_id = uuid::Uuid::new_v4().to_string();
    let key = format!("jobs/job-{job_id}/failed-tasks-of-{source_id}.csv");
    let (body, with_versions) = failed_tasks_manifest(&failed);
    let etag = ctx.write_system_object_etag(&key, body).await?;
    let mut request = derived_request(&source, RERUN_OF_TAG, input)?;
    request.manifest_generator = None;
    request.manifest = Some(JobManifest {
        spec: ManifestSpec {
            format: CSV_MANIFEST_FORMAT.to_string(),
            fields: Some(
                ["Bucket", "Key"]
                    .into_iter()
                    .chain(with_versions.then_some("VersionId"))
                    .map(str::to_string)
                    .collect(),
            ),
        },
        location: ManifestLocation {
            object_arn: format!("arn:aws:s3:::{}/{key}", ctx.settings.system_bucket),
            object_version_id: None,
            etag,
        },
    });
    info!(
        job_id,
        source_id,
        tasks = failed.len(),
        "re-running the failed tasks of a job"
    );
    create_job_as(ctx, job_id, request, input.confirmation_required).await
}

/// The request of a job made from `source`: its request with a new token, its current tags plus
/// `origin_tag` naming it (replacing an older one of that key, so a clone of a clone names the
/// job it was made from), and its current rate limit and canary unless `input` gives others.
pub fn derived_request(
    source: &Job,
    origin_tag: &str,
    input: &SourceJobInput,
) -> Result<CreateJobRequest> {
    let mut request = source.request.clone();
    request.client_request_token = None;
    let options = crate::job::BatchOpsOptions {
        max_tasks_per_second: input.max_tasks_per_second.or(source.max_tasks_per_second),
        canary_tasks: input.canary_tasks.or_else(|| {
            source
                .request
                .batch_ops
                .as_ref()
                .and_then(|b| b.canary_tasks)
        }),
    };
    request.batch_ops = (options != crate::job::BatchOpsOptions::default()).then_some(options);
    let mut tags: Vec<S3Tag> = source
        .tags
        .iter()
        .filter(|t| t.key != origin_tag)
        .cloned()
        .collect();
    if tags.len() >= MAX_JOB_TAGS {
        return Err(Error::InvalidRequest(format!(
            "job {} has {} tags, the most a job may have: the new job's tag {origin_tag} would be one too many; remove one with put-job-tagging first",
            source.job_id,
            tags.len()
        )));
    }
    tags.push(S3Tag {
        key: origin_tag.to_string(),
        value: source.job_id.clone(),
    });
    request.tags = Some(tags);
    Ok(request)
}

/// A CSV manifest of the tasks (keys URL-encoded, as S3's CSV manifests have them), and whether
/// it has a VersionId column (when any task names a version).
pub fn failed_tasks_manifest(failed: &[TaskOutcome]) -> (Vec<u8>, bool) {
    let with_versions = failed.iter().any(|o| o.task.version_id.is_some());
    let mut body = String::new();
    for outcome in failed {
        let task = &outcome.task;
        body.push_str(&task.bucket);
        body.push(',');
        body.push_str(&crate::manifest::encode_key(&task.key));
        if with_versions {
            body.push(',');
            body.push_str(task.version_id.as_deref().unwrap_or_default());
        }
        body.push('\n');
    }
    (body.into_bytes(), with_versions)
}

/// The failed tasks of an ended job, each once: from its result parts while they are kept, else
/// from its completion report.
async fn failed_tasks(ctx: &Context, job: &Job) -> Result<Vec<TaskOutcome>> {
    if let Some(failed) = failed_from_parts(ctx, job).await? {
        return Ok(failed);
    }
    if job.request.report.enabled {
        if let Some(failed) = failed_from_report(ctx, job).await? {
            return Ok(failed);
        }
    }
    Err(Error::InvalidRequest(format!(
        "the failed tasks of job {} are no longer kept: its result parts have expired (StagingRetentionDays) and its completion report does not list them",
        job.job_id
    )))
}

/// The failed rows of the job's committed result parts; `None` when some part is gone or the
/// parts do not hold every failed task (a job that ran before parts kept them all).
async fn failed_from_parts(ctx: &Context, job: &Job) -> Result<Option<Vec<TaskOutcome>>> {
    let store = ctx.store();
    let mut failed = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let (batches, next) = store
            .batches_after(&job.job_id, after.as_deref(), 100)
            .await?;
        for part in batches.iter().flat_map(|b| &b.parts) {
            let Some(bytes) = ctx.read_system_object_if_exists(part).await? else {
                return Ok(None);
            };
            failed.extend(
                crate::report::decode_rows(&bytes)?
                    .into_iter()
                    .filter(|o| o.status == TaskStatus::Failed),
            );
        }
        match next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok((failed.len() as u64 == job.progress.failed).then_some(failed))
}

/// The failed rows of the job's completion report; `None` when it has none to read or they do
/// not hold every failed task.
async fn failed_from_report(ctx: &Context, job: &Job) -> Result<Option<Vec<TaskOutcome>>> {
    let report = &job.request.report;
    let Some(bucket) = report
        .bucket
        .as_deref()
        .filter(|b| !b.is_empty())
        .map(crate::job::bucket_from_arn)
    else {
        return Ok(None);
    };
    // The report was written with the job's role; it is read with it too.
    let data = ctx.for_job(job).await?;
    let key = crate::report::report_manifest_key(report.prefix.as_deref(), &job.job_id);
    let Some(bytes) = read_report_object(&data, &bucket, &key, job).await? else {
        return Ok(None);
    };
    let manifest: ReportManifest = serde_json::from_slice(&bytes).map_err(|e| {
        Error::InvalidRequest(format!(
            "the completion report of job {} (s3://{bucket}/{key}) cannot be read: {e}",
            job.job_id
        ))
    })?;
    let mut failed = Vec::new();
    for result in manifest
        .results
        .iter()
        .filter(|r| r.task_execution_status == TaskStatus::Failed)
    {
        let Some(bytes) = read_report_object(&data, &result.bucket, &result.key, job).await? else {
            return Ok(None);
        };
        failed.extend(crate::report::decode_rows(&bytes)?);
    }
    Ok((failed.len() as u64 == job.progress.failed).then_some(failed))
}

/// An object of the job's report; `None` when it is not there.
async fn read_report_object(
    ctx: &Context,
    bucket: &str,
    key: &str,
    job: &Job,
) -> Result<Option<Vec<u8>>> {
    let owner = job.request.report.expected_bucket_owner.clone();
    crate::context::read_object_if_exists(&ctx.s3, bucket, key, owner).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Task;

    fn source() -> Job {
        let request = CreateJobRequest::parse(
            r#"{"Operation": {"S3DeleteObjectTagging": {}}, "Report": {"Enabled": false},
                "ClientRequestToken": "t-1", "Description": "nightly",
                "RoleArn": "arn:aws:iam::123456789012:role/batch",
                "Manifest": {"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
                             "Location": {"ObjectArn": "arn:aws:s3:::m/manifest.csv", "ETag": "e"}},
                "Tags": [{"Key": "team", "Value": "a"}]}"#,
        )
        .unwrap();
        crate::control::new_job("src-1".into(), request, chrono::Utc::now())
    }

    fn input() -> SourceJobInput {
        SourceJobInput {
            job_id: "src-1".into(),
            confirmation_required: None,
            max_tasks_per_second: None,
            canary_tasks: None,
            account_id: None,
        }
    }

    fn failed(key: &str, version: Option<&str>) -> TaskOutcome {
        TaskOutcome {
            task: Task {
                bucket: "b".into(),
                key: key.into(),
                version_id: version.map(str::to_string),
                size: None,
            },
            status: TaskStatus::Failed,
            error_code: Some("NoSuchKey".into()),
            http_status: Some(404),
            result_message: "gone".into(),
        }
    }

    #[test]
    fn a_derived_job_has_a_new_token_and_names_its_source_in_a_tag() {
        let mut job = source();
        job.tags.push(S3Tag {
            key: "later".into(),
            value: "put-job-tagging".into(),
        });
        let request = derived_request(&job, CLONE_OF_TAG, &input()).unwrap();
        assert_eq!(request.client_request_token, None);
        assert_eq!(request.description.as_deref(), Some("nightly"));
        assert_eq!(request.operation, job.request.operation);
        let tags: Vec<(&str, &str)> = request
            .tags
            .iter()
            .flatten()
            .map(|t| (t.key.as_str(), t.value.as_str()))
            .collect();
        assert_eq!(
            tags,
            [
                ("team", "a"),
                ("later", "put-job-tagging"),
                (CLONE_OF_TAG, "src-1")
            ]
        );
        request.validate().unwrap();
    }

    #[test]
    fn a_clone_of_a_clone_names_the_job_it_was_made_from_once() {
        let mut job = source();
        job.tags = derived_request(&job, CLONE_OF_TAG, &input())
            .unwrap()
            .tags
            .unwrap();
        job.job_id = "src-2".into();
        let tags = derived_request(&job, CLONE_OF_TAG, &input())
            .unwrap()
            .tags
            .unwrap();
        let origins: Vec<&str> = tags
            .iter()
            .filter(|t| t.key == CLONE_OF_TAG)
            .map(|t| t.value.as_str())
            .collect();
        assert_eq!(origins, ["src-2"]);
    }

    #[test]
    fn a_job_with_fifty_tags_cannot_name_its_source_and_says_so() {
        let mut job = source();
        job.tags = (0..50)
            .map(|i| S3Tag {
                key: format!("k{i}"),
                value: String::new(),
            })
            .collect();
        let err = derived_request(&job, RERUN_OF_TAG, &input())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("50 tags") && err.contains(RERUN_OF_TAG),
            "{err}"
        );
    }

    #[test]
    fn the_failed_tasks_manifest_encodes_keys_and_has_versions_only_when_needed() {
        let (body, versions) = failed_tasks_manifest(&[failed("a b,c", None), failed("d/é", None)]);
        assert!(!versions);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "b,a%20b%2Cc\nb,d/%C3%A9\n"
        );
        let (body, versions) = failed_tasks_manifest(&[failed("a", Some("v1")), failed("b", None)]);
        assert!(versions);
        assert_eq!(String::from_utf8(body).unwrap(), "b,a,v1\nb,b,\n");
    }
}
