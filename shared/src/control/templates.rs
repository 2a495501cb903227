//! Job templates: a CreateJob request without a manifest, started once for every S3 Inventory
//! delivery under the template's prefix.

use super::*;
use crate::error::{Error, Result};
use crate::job::{
    CreateJobRequest, JobManifest, ManifestLocation, ManifestSpec, INVENTORY_CSV_FORMAT,
};
use crate::store::JobTemplate;

use crate::Context;
use sha2::{Digest, Sha256};
use tracing::info;

// ---------------------------------------------------------------------------------------------
// Job templates.

/// Stores (or replaces) a job template for inventory manifests under `manifest_prefix_url`
/// (`s3://bucket/prefix`).
pub async fn put_job_template(
    ctx: &Context,
    name: &str,
    manifest_prefix_url: &str,
    request: CreateJobRequest,
) -> Result<JobTemplateDescriptor> {
    let template = job_template(name, manifest_prefix_url, request)?;
    ctx.store().put_template(&template).await?;
    info!(name, prefix = manifest_prefix_url, "job template stored");
    Ok(JobTemplateDescriptor::from(&template))
}

/// Checks a template and builds it: a valid name, an `s3://` prefix, and a request that makes a
/// valid job once a manifest is filled in.
pub fn job_template(
    name: &str,
    manifest_prefix_url: &str,
    request: CreateJobRequest,
) -> Result<JobTemplate> {
    validate_template_name(name)?;
    let (manifest_bucket, manifest_prefix) = parse_s3_url(manifest_prefix_url)?;
    if request.manifest.is_some() {
        return Err(Error::InvalidRequest(
            "a job template must not have a Manifest: each inventory manifest.json that arrives under the prefix becomes the job's manifest".into(),
        ));
    }
    if request.client_request_token.is_some() {
        return Err(Error::InvalidRequest(
            "a job template must not have a ClientRequestToken: each inventory arrival gets its own".into(),
        ));
    }
    if request.confirmation_required == Some(true) {
        return Err(Error::InvalidRequest(
            "jobs from a job template start without confirmation: remove ConfirmationRequired or set it to false".into(),
        ));
    }
    let template = JobTemplate {
        name: name.to_string(),
        manifest_bucket,
        manifest_prefix,
        request,
    };
    let sample_key = format!("{}{INVENTORY_MANIFEST_NAME}", template.manifest_prefix);
    inventory_job_request(&template, &template.manifest_bucket, &sample_key, None).validate()?;
    Ok(template)
}

pub(super) fn validate_template_name(name: &str) -> Result<()> {
    let valid_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if name.is_empty() || name.len() > 128 || !valid_chars {
        return Err(Error::InvalidRequest(format!(
            "job template name {name:?} must be 1 to 128 characters of letters, digits, '-', '_' and '.'"
        )));
    }
    Ok(())
}

/// Splits `s3://bucket/prefix` (the prefix may be empty) into bucket and prefix.
pub fn parse_s3_url(url: &str) -> Result<(String, String)> {
    let rest = url.strip_prefix("s3://").ok_or_else(|| {
        Error::InvalidRequest(format!("{url:?} is not an S3 URL (s3://bucket/prefix)"))
    })?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(Error::InvalidRequest(format!(
            "{url:?} names no bucket (s3://bucket/prefix)"
        )));
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

/// ListJobTemplates: every stored job template, sorted by name.
pub async fn list_job_templates(ctx: &Context) -> Result<ListJobTemplatesResponse> {
    let mut templates = ctx.store().list_templates().await?;
    templates.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ListJobTemplatesResponse {
        job_templates: templates.iter().map(JobTemplateDescriptor::from).collect(),
    })
}

/// DeleteJobTemplate: removes the template `name`; fails with `InvalidRequest` when there is none.
pub async fn delete_job_template(ctx: &Context, name: &str) -> Result<DeleteJobTemplateResponse> {
    if ctx.store().delete_template(name).await? {
        info!(name, "job template deleted");
        Ok(DeleteJobTemplateResponse {})
    } else {
        Err(Error::InvalidRequest(format!(
            "there is no job template named {name:?}"
        )))
    }
}

/// The templates that cover an object that just arrived: same bucket, key under the template's
/// prefix, and the object is an inventory `manifest.json`.
pub fn matching_templates<'a>(
    templates: &'a [JobTemplate],
    bucket: &str,
    key: &str,
) -> Vec<&'a JobTemplate> {
    if !key.ends_with(INVENTORY_MANIFEST_NAME) {
        return Vec::new();
    }
    templates
        .iter()
        .filter(|t| t.manifest_bucket == bucket && key.starts_with(&t.manifest_prefix))
        .collect()
}

/// Starts the job of a template for an inventory manifest that arrived (no confirmation). A
/// redelivered S3 event yields the same ClientRequestToken, so it does not start a second job.
pub async fn create_job_from_inventory(
    ctx: &Context,
    template: &JobTemplate,
    bucket: &str,
    key: &str,
    etag: Option<&str>,
) -> Result<CreateJobResponse> {
    let request = inventory_job_request(template, bucket, key, etag);
    create_job(ctx, request, Some(false)).await
}

/// The CreateJob request of a template for one inventory manifest.
pub fn inventory_job_request(
    template: &JobTemplate,
    bucket: &str,
    key: &str,
    etag: Option<&str>,
) -> CreateJobRequest {
    let mut request = template.request.clone();
    request.manifest = Some(JobManifest {
        spec: ManifestSpec {
            format: INVENTORY_CSV_FORMAT.to_string(),
            fields: None,
        },
        location: ManifestLocation {
            object_arn: format!("arn:aws:s3:::{bucket}/{key}"),
            object_version_id: None,
            etag: etag.map(str::to_string),
        },
    });
    request.confirmation_required = Some(false);
    request.client_request_token = Some(inventory_token(&template.name, bucket, key, etag));
    if request.description.is_none() {
        let description = format!("job template {}: s3://{bucket}/{key}", template.name);
        request.description = Some(description.chars().take(MAX_DESCRIPTION_CHARS).collect());
    }
    request
}

/// A ClientRequestToken fixed by the template and the manifest object (64 hex characters, S3's
/// maximum token length).
pub fn inventory_token(template: &str, bucket: &str, key: &str, etag: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    for part in [template, bucket, key, etag.unwrap_or("")] {
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}
