//! Job tagging, as S3 Control has it: GetJobTagging, PutJobTagging (replaces the whole set; an
//! empty set deletes it) and DeleteJobTagging, plus what S3 lacks: ListJobs filtered by tags.
//!
//! A job's tags start as its CreateJob `Tags` and live on the job record (`Job::tags`); the
//! stored request keeps what was asked, so that a repeated CreateJob still matches it.

use crate::error::Result;
use crate::job::{validate_job_tags, Job, S3Tag};
use crate::Context;
use serde::{Deserialize, Serialize};

/// S3 Control's GetJobTagging output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetJobTaggingResponse {
    /// `Tags`: the job's current tags, from CreateJob `Tags` or the latest PutJobTagging.
    pub tags: Vec<S3Tag>,
}

/// S3 Control's PutJobTagging and DeleteJobTagging outputs: empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTaggingUpdated {}

/// GetJobTagging: the job's current tags. Fails with `JobNotFound` when no such job is stored.
pub async fn get_job_tagging(ctx: &Context, job_id: &str) -> Result<GetJobTaggingResponse> {
    let job = ctx.store().get_job(job_id).await?;
    Ok(GetJobTaggingResponse { tags: job.tags })
}

/// PutJobTagging: the job's tags become `tags`, checked against S3's limits (at most 50, keys
/// of 1 to 128 characters, values up to 256, no key twice).
pub async fn put_job_tagging(
    ctx: &Context,
    job_id: &str,
    tags: &[S3Tag],
) -> Result<JobTaggingUpdated> {
    validate_job_tags(tags)?;
    ctx.store().set_job_tags(job_id, tags).await?;
    Ok(JobTaggingUpdated {})
}

/// DeleteJobTagging: removes every tag from the job (the same as PutJobTagging with no tags).
pub async fn delete_job_tagging(ctx: &Context, job_id: &str) -> Result<JobTaggingUpdated> {
    ctx.store().set_job_tags(job_id, &[]).await?;
    Ok(JobTaggingUpdated {})
}

/// Whether the job carries every tag of `filter` (key and value); an empty filter takes all.
pub fn has_tags(job: &Job, filter: &[S3Tag]) -> bool {
    filter.iter().all(|wanted| job.tags.contains(wanted))
}

/// Reads `KEY=VALUE` (the CLI's `--tag`); the value may be empty and may hold `=`.
pub fn parse_tag(text: &str) -> std::result::Result<S3Tag, String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok(S3Tag {
            key: key.to_string(),
            value: value.to_string(),
        }),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(key: &str, value: &str) -> S3Tag {
        S3Tag {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn a_tag_is_key_equals_value_and_the_value_may_hold_equals_signs() {
        assert_eq!(parse_tag("team=a=b"), Ok(tag("team", "a=b")));
        assert_eq!(parse_tag("empty="), Ok(tag("empty", "")));
        assert!(parse_tag("=v").is_err());
        assert!(parse_tag("novalue").is_err());
    }

    #[test]
    fn a_filter_takes_jobs_with_every_one_of_its_tags() {
        let mut job = crate::control::new_job(
            "j".into(),
            crate::job::CreateJobRequest::parse(
                r#"{"Operation": {"S3DeleteObjectTagging": {}}, "Report": {"Enabled": false},
                    "Tags": [{"Key": "team", "Value": "a"}, {"Key": "env", "Value": "prod"}]}"#,
            )
            .unwrap(),
            chrono::Utc::now(),
        );
        assert!(has_tags(&job, &[]));
        assert!(has_tags(&job, &[tag("team", "a")]));
        assert!(has_tags(&job, &[tag("env", "prod"), tag("team", "a")]));
        assert!(!has_tags(&job, &[tag("team", "b")]));
        assert!(!has_tags(&job, &[tag("team", "a"), tag("owner", "x")]));
        job.tags.clear();
        assert!(!has_tags(&job, &[tag("team", "a")]));
    }
}
