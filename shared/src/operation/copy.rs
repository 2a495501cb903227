//! S3PutObjectCopy: the copy plan (headers and settings from the operation) and the copy of one
//! object, in one request or in parts ([`super::multipart`]).

use super::*;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::primitives::DateTime as SmithyDateTime;
use aws_sdk_s3::types::{
    ChecksumAlgorithm as S3ChecksumAlgorithm, ObjectCannedAcl, ObjectLockLegalHoldStatus,
    ObjectLockMode as S3ObjectLockMode, RequestPayer, ServerSideEncryption,
    StorageClass as S3StorageClass,
};
use percent_encoding::utf8_percent_encode;

use crate::manifest::{KEY_ESCAPES, QUERY_ESCAPES};
use std::collections::HashMap;

use crate::job::{
    CopyObjectOperation, GrantPermission, GranteeType, MetadataDirective, ObjectMetadata, S3Grant,
    S3Tag, SseAlgorithm,
};
use crate::manifest::Task;
use crate::Context;

/// Largest object CopyObject copies in one request (5 GiB); larger ones need a multipart copy.
pub const MAX_SINGLE_COPY_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// S3's bounds on a part: at least 5 MiB (except the last), at most 5 GiB, at most 10,000 parts.
pub const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;
/// Most parts one multipart upload may have; parts are made larger to stay within it.
pub const MAX_PARTS: u64 = 10_000;

/// Environment variable: size in bytes above which an object is copied in parts
/// (default and maximum 5 GiB).
pub const ENV_MULTIPART_COPY_THRESHOLD: &str = "BATCHOPS_MULTIPART_COPY_THRESHOLD";
/// Environment variable: bytes per part of a multipart copy (default 512 MiB, kept within
/// 5 MiB to 5 GiB).
pub const ENV_COPY_PART_SIZE: &str = "BATCHOPS_COPY_PART_SIZE";
/// Environment variable: parts of one object copied at once (default 8, kept within 1 to 64).
pub const ENV_COPY_PART_CONCURRENCY: &str = "BATCHOPS_COPY_PART_CONCURRENCY";

/// How objects are copied: above `multipart_threshold` bytes with UploadPartCopy, in parts of
/// `part_size` bytes (grown when the object would need more than 10,000 parts), at most
/// `part_concurrency` parts at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopySettings {
    /// Objects larger than this many bytes are copied in parts; at most 5 GiB, the default.
    pub multipart_threshold: u64,
    /// Bytes per part of a multipart copy (default 512 MiB); grown when an object would
    /// otherwise need more than 10,000 parts.
    pub part_size: u64,
    /// Parts of one object copied at once (default 8).
    pub part_concurrency: usize,
}

impl Default for CopySettings {
    fn default() -> Self {
        CopySettings {
            multipart_threshold: MAX_SINGLE_COPY_BYTES,
            part_size: 512 * 1024 * 1024,
            part_concurrency: 8,
        }
    }
}

impl CopySettings {
    /// Settings within bounds: the threshold never exceeds what CopyObject can do, the part
    /// size stays within S3's bounds, 1 to 64 parts at once. Read once per container, with the
    /// other settings, from `BATCHOPS_MULTIPART_COPY_THRESHOLD`, `BATCHOPS_COPY_PART_SIZE` and
    /// `BATCHOPS_COPY_PART_CONCURRENCY` (`crate::context::Settings`).
    pub fn bounded(multipart_threshold: u64, part_size: u64, part_concurrency: u64) -> Self {
        CopySettings {
            multipart_threshold: multipart_threshold.min(MAX_SINGLE_COPY_BYTES),
            part_size: part_size.clamp(MIN_PART_BYTES, MAX_SINGLE_COPY_BYTES),
            part_concurrency: part_concurrency.clamp(1, 64) as usize,
        }
    }

    /// Whether an object of `size` bytes is copied with UploadPartCopy rather than one
    /// CopyObject.
    pub fn needs_multipart(&self, size: u64) -> bool {
        size > self.multipart_threshold
    }

    /// Whether a source of `size` bytes (`None`: the manifest does not say) is sent to CopyObject
    /// without a HEAD first: its size is within the threshold, or unknown while the threshold is
    /// CopyObject's own limit (S3 then refuses a larger source, and only that one is HEADed).
    pub fn copies_whole(&self, size: Option<u64>) -> bool {
        match size {
            Some(size) => !self.needs_multipart(size),
            None => self.multipart_threshold >= MAX_SINGLE_COPY_BYTES,
        }
    }
}

/// The byte ranges (inclusive) of the parts of an object of `size` bytes: `part_size` each, grown
/// so that there are at most 10,000.
pub fn part_ranges(size: u64, part_size: u64) -> Vec<(u64, u64)> {
    if size == 0 {
        return Vec::new();
    }
    let part_size = part_size.max(size.div_ceil(MAX_PARTS)).max(1);
    (0..size.div_ceil(part_size))
        .map(|i| {
            let start = i * part_size;
            (start, (start + part_size).min(size) - 1)
        })
        .collect()
}

/// `CopySource` of a task: bucket and URL-encoded key, with the version when the manifest names one.
pub fn copy_source(task: &Task) -> String {
    let key = utf8_percent_encode(&task.key, KEY_ESCAPES);
    match &task.version_id {
        Some(version) => format!(
            "{}/{key}?versionId={}",
            task.bucket,
            utf8_percent_encode(version, KEY_ESCAPES)
        ),
        None => format!("{}/{key}", task.bucket),
    }
}

/// The `x-amz-tagging` header value for `tags`: URL-encoded `key=value` pairs joined by `&`.
pub fn tagging_header(tags: &[S3Tag]) -> String {
    tags.iter()
        .map(|t| {
            format!(
                "{}={}",
                utf8_percent_encode(&t.key, QUERY_ESCAPES),
                utf8_percent_encode(&t.value, QUERY_ESCAPES)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The `x-amz-grant-*` header value for one permission: `id="..", uri=".."`.
pub fn grant_header(grants: &[S3Grant], permission: GrantPermission) -> Option<String> {
    let grantees: Vec<String> = grants
        .iter()
        .filter(|g| g.permission == permission)
        .map(|g| {
            let kind = match g.grantee.type_identifier {
                GranteeType::Id => "id",
                GranteeType::EmailAddress => "emailAddress",
                GranteeType::Uri => "uri",
            };
            format!("{kind}=\"{}\"", g.grantee.identifier)
        })
        .collect();
    (!grantees.is_empty()).then(|| grantees.join(", "))
}

pub(super) fn smithy_time(date: &chrono::DateTime<chrono::Utc>) -> SmithyDateTime {
    SmithyDateTime::from_millis(date.timestamp_millis())
}

/// Metadata of a new object (REPLACE: from the job; multipart COPY: from the source).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Metadata {
    pub(super) cache_control: Option<String>,
    pub(super) content_disposition: Option<String>,
    pub(super) content_encoding: Option<String>,
    pub(super) content_language: Option<String>,
    pub(super) content_type: Option<String>,
    pub(super) expires: Option<SmithyDateTime>,
    pub(super) user: Option<HashMap<String, String>>,
}

impl Metadata {
    pub(super) fn from_job(meta: &ObjectMetadata) -> Self {
        Metadata {
            cache_control: meta.cache_control.clone(),
            content_disposition: meta.content_disposition.clone(),
            content_encoding: meta.content_encoding.clone(),
            content_language: meta.content_language.clone(),
            content_type: meta.content_type.clone(),
            expires: meta.http_expires_date.as_ref().map(smithy_time),
            user: meta
                .user_metadata
                .as_ref()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        }
    }

    pub(super) fn from_source(head: &HeadObjectOutput) -> Self {
        Metadata {
            cache_control: head.cache_control().map(String::from),
            content_disposition: head.content_disposition().map(String::from),
            content_encoding: head.content_encoding().map(String::from),
            content_language: head.content_language().map(String::from),
            content_type: head.content_type().map(String::from),
            #[allow(deprecated)]
            expires: head.expires().copied(),
            user: head.metadata().cloned(),
        }
    }
}

/// The destination settings of every copy of a job, built once per batch.
#[derive(Debug, Clone)]
pub struct CopyPlan {
    pub(super) target_bucket: String,
    pub(super) key_prefix: String,
    pub(super) replace_metadata: Option<Metadata>,
    /// `Some` when the job sets the copies' tags (REPLACE); `None` copies the source's tags.
    pub(super) tagging: Option<String>,
    pub(super) acl: Option<ObjectCannedAcl>,
    pub(super) grant_full_control: Option<String>,
    pub(super) grant_read: Option<String>,
    pub(super) grant_read_acp: Option<String>,
    pub(super) grant_write_acp: Option<String>,
    pub(super) storage_class: Option<S3StorageClass>,
    pub(super) server_side_encryption: Option<ServerSideEncryption>,
    pub(super) ssekms_key_id: Option<String>,
    pub(super) bucket_key_enabled: Option<bool>,
    pub(super) checksum_algorithm: Option<S3ChecksumAlgorithm>,
    pub(super) request_payer: Option<RequestPayer>,
    pub(super) website_redirect_location: Option<String>,
    pub(super) if_modified_since: Option<SmithyDateTime>,
    pub(super) if_unmodified_since: Option<SmithyDateTime>,
    pub(super) object_lock_mode: Option<S3ObjectLockMode>,
    pub(super) object_lock_retain_until_date: Option<SmithyDateTime>,
    pub(super) object_lock_legal_hold_status: Option<ObjectLockLegalHoldStatus>,
    pub(super) settings: CopySettings,
}

impl CopyPlan {
    /// The copy plan of a job's `S3PutObjectCopy` operation with these settings; fails with a
    /// message when `TargetResource` is missing or a grant gives `WRITE`.
    pub fn new(op: &CopyObjectOperation, settings: CopySettings) -> Result<Self, String> {
        let target_bucket = op
            .target_bucket()
            .ok_or("Operation.S3PutObjectCopy.TargetResource is required")?;
        let grants = op.access_control_grants.as_deref().unwrap_or_default();
        if grants
            .iter()
            .any(|g| g.permission == GrantPermission::Write)
        {
            return Err("AccessControlGrants: WRITE cannot be granted on an object; use FULL_CONTROL, READ, READ_ACP or WRITE_ACP".into());
        }
        let replace = op.effective_metadata_directive() == MetadataDirective::Replace;
        let new_meta = op.new_object_metadata.as_ref();
        let sse = match (
            new_meta.and_then(|m| m.sse_algorithm),
            &op.sse_aws_kms_key_id,
        ) {
            (_, Some(_)) | (Some(SseAlgorithm::Kms), None) => Some(ServerSideEncryption::AwsKms),
            (Some(SseAlgorithm::Aes256), None) => Some(ServerSideEncryption::Aes256),
            (None, None) => None,
        };
        Ok(CopyPlan {
            target_bucket,
            key_prefix: op.target_key_prefix.clone().unwrap_or_default(),
            replace_metadata: replace.then(|| new_meta.map(Metadata::from_job).unwrap_or_default()),
            tagging: op.new_object_tagging.as_deref().map(tagging_header),
            acl: op
                .canned_access_control_list
                .map(|acl| ObjectCannedAcl::from(acl.as_str())),
            grant_full_control: grant_header(grants, GrantPermission::FullControl),
            grant_read: grant_header(grants, GrantPermission::Read),
            grant_read_acp: grant_header(grants, GrantPermission::ReadAcp),
            grant_write_acp: grant_header(grants, GrantPermission::WriteAcp),
            storage_class: op.storage_class.map(|c| S3StorageClass::from(c.as_str())),
            server_side_encryption: sse,
            ssekms_key_id: op.sse_aws_kms_key_id.clone(),
            bucket_key_enabled: op.bucket_key_enabled,
            checksum_algorithm: op
                .checksum_algorithm
                .map(|c| S3ChecksumAlgorithm::from(c.as_str())),
            request_payer: op
                .requester_pays
                .unwrap_or(false)
                .then_some(RequestPayer::Requester),
            website_redirect_location: op.redirect_location.clone(),
            if_modified_since: op.modified_since_constraint.as_ref().map(smithy_time),
            if_unmodified_since: op.un_modified_since_constraint.as_ref().map(smithy_time),
            object_lock_mode: op
                .object_lock_mode
                .map(|m| S3ObjectLockMode::from(m.as_str())),
            object_lock_retain_until_date: op
                .object_lock_retain_until_date
                .as_ref()
                .map(smithy_time),
            object_lock_legal_hold_status: op
                .object_lock_legal_hold_status
                .map(|s| ObjectLockLegalHoldStatus::from(s.as_str())),
            settings,
        })
    }

    pub(super) fn target_key(&self, task: &Task) -> String {
        format!("{}{}", self.key_prefix, task.key)
    }
}

/// Sets what CopyObject and CreateMultipartUpload share (same setter names on both builders).
macro_rules! destination {
    ($builder:expr, $plan:expr, $metadata:expr, $tagging:expr) => {{
        let plan: &CopyPlan = $plan;
        let metadata: Option<&Metadata> = $metadata;
        let mut b = $builder
            .bucket(&plan.target_bucket)
            .set_acl(plan.acl.clone())
            .set_grant_full_control(plan.grant_full_control.clone())
            .set_grant_read(plan.grant_read.clone())
            .set_grant_read_acp(plan.grant_read_acp.clone())
            .set_grant_write_acp(plan.grant_write_acp.clone())
            .set_storage_class(plan.storage_class.clone())
            .set_server_side_encryption(plan.server_side_encryption.clone())
            .set_ssekms_key_id(plan.ssekms_key_id.clone())
            .set_bucket_key_enabled(plan.bucket_key_enabled)
            .set_checksum_algorithm(plan.checksum_algorithm.clone())
            .set_request_payer(plan.request_payer.clone())
            .set_website_redirect_location(plan.website_redirect_location.clone())
            .set_object_lock_mode(plan.object_lock_mode.clone())
            .set_object_lock_retain_until_date(plan.object_lock_retain_until_date)
            .set_object_lock_legal_hold_status(plan.object_lock_legal_hold_status.clone())
            .set_tagging($tagging);
        if let Some(m) = metadata {
            b = b
                .set_cache_control(m.cache_control.clone())
                .set_content_disposition(m.content_disposition.clone())
                .set_content_encoding(m.content_encoding.clone())
                .set_content_language(m.content_language.clone())
                .set_content_type(m.content_type.clone())
                .set_expires(m.expires)
                .set_metadata(m.user.clone());
        }
        b
    }};
}

/// One copy task, in one request wherever S3 allows it: a source that can be copied whole (its
/// size from the manifest within the threshold, or unknown with the threshold at CopyObject's
/// own limit) goes straight to CopyObject, and only a source that S3 refuses as too large for
/// one request is HEADed and copied in parts. Otherwise (a known size above the threshold, or a
/// threshold set lower than S3's and no size to compare) the HEAD comes first.
pub(super) async fn copy_object(
    ctx: &Context,
    plan: &CopyPlan,
    task: &Task,
    at: &TaskAt<'_>,
) -> TaskRun {
    if plan.settings.copies_whole(task.size) {
        match single_copy(ctx, plan, task).await {
            Err(failure) if is_too_large_for_one_copy(&failure) => {
                tracing::debug!("the source is over 5 GiB; copying it in parts");
            }
            result => return TaskRun::Done(copy_outcome(task, result)),
        }
    }
    let head = match head_source(ctx, task, plan.request_payer.clone()).await {
        Ok(head) => head,
        Err(failure) => return TaskRun::Done(failure.into_outcome(task)),
    };
    if let Some(failure) = archived_source_failure(&head) {
        return TaskRun::Done(failure.into_outcome(task));
    }
    copy_with_head(ctx, plan, task, &head, at).await
}

/// S3's answer to a CopyObject whose source is over 5 GiB: 400 `InvalidRequest`, "The specified
/// copy source is larger than the maximum allowable size for a copy source: 5368709120".
pub(super) fn is_too_large_for_one_copy(failure: &Failure) -> bool {
    failure.http_status == Some(400)
        && failure.error_code == "InvalidRequest"
        && failure
            .message
            .contains("larger than the maximum allowable size")
}

fn copy_outcome(task: &Task, result: Result<(), Failure>) -> TaskOutcome {
    match result {
        Ok(()) => s3_success_outcome(task),
        Err(failure) => failure.into_outcome(task),
    }
}

/// The source object's HEAD (its version when the task names one).
pub(super) async fn head_source(
    ctx: &Context,
    task: &Task,
    request_payer: Option<RequestPayer>,
) -> Result<HeadObjectOutput, Failure> {
    s3_call(ctx, &task.bucket, |s3| {
        let request_payer = request_payer.clone();
        async move {
            s3.head_object()
                .bucket(&task.bucket)
                .key(&task.key)
                .set_version_id(task.version_id.clone())
                .set_request_payer(request_payer)
                .send()
                .await
                .map_err(|e| source_head_failure(&classify_s3_error(&e), task))
        }
    })
    .await
}

/// Copies a source whose HEAD is known: CopyObject, or a multipart copy above the threshold.
pub(super) async fn copy_with_head(
    ctx: &Context,
    plan: &CopyPlan,
    task: &Task,
    head: &HeadObjectOutput,
    at: &TaskAt<'_>,
) -> TaskRun {
    let size = u64::try_from(head.content_length().unwrap_or(0)).unwrap_or(0);
    let result = if plan.settings.needs_multipart(size) {
        match multipart_copy(ctx, plan, task, head, size, at).await {
            Ok(Copied::Whole) => Ok(()),
            Ok(Copied::Partly) => return TaskRun::Unfinished,
            Err(failure) => Err(failure),
        }
    } else {
        single_copy(ctx, plan, task).await
    };
    TaskRun::Done(copy_outcome(task, result))
}
