//! S3UpdateObjectEncryption: S3 re-encrypts an object's data key in place; batchops copies the
//! object onto itself with the new SSE-KMS settings, keeping its storage class, metadata, tags and
//! website redirect. The copy is a new object: its ETag and Last-Modified change, and in a
//! versioned bucket it is a new version (the older ones keep their encryption).

use super::*;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::{ServerSideEncryption, StorageClass as S3StorageClass};

use crate::job::UpdateObjectEncryptionOperation;
use crate::manifest::Task;
use crate::Context;

/// What every task of an S3UpdateObjectEncryption job shares.
#[derive(Debug, Clone)]
pub struct EncryptionPlan {
    pub(super) kms_key_arn: String,
    pub(super) bucket_key_enabled: Option<bool>,
    pub(super) settings: CopySettings,
}

impl EncryptionPlan {
    /// The plan of a job's `S3UpdateObjectEncryption` operation with these copy settings; fails
    /// with a message when `ObjectEncryption.SSEKMS` is missing.
    pub fn new(
        op: &UpdateObjectEncryptionOperation,
        settings: CopySettings,
    ) -> Result<Self, String> {
        let kms = op
            .sse_kms()
            .ok_or("Operation.S3UpdateObjectEncryption needs ObjectEncryption.SSEKMS")?;
        Ok(EncryptionPlan {
            kms_key_arn: kms.kms_key_arn.clone(),
            bucket_key_enabled: kms.bucket_key_enabled,
            settings,
        })
    }

    /// The copy of one object onto itself: the new encryption, everything else as the object
    /// has it (a copy left to its defaults would move the object to STANDARD and drop its
    /// website redirect).
    pub(super) fn in_place(&self, task: &Task, head: &HeadObjectOutput) -> CopyPlan {
        CopyPlan {
            target_bucket: task.bucket.clone(),
            key_prefix: String::new(),
            replace_metadata: None,
            tagging: None,
            acl: None,
            grant_full_control: None,
            grant_read: None,
            grant_read_acp: None,
            grant_write_acp: None,
            storage_class: head.storage_class().cloned(),
            server_side_encryption: Some(ServerSideEncryption::AwsKms),
            ssekms_key_id: Some(self.kms_key_arn.clone()),
            bucket_key_enabled: self.bucket_key_enabled,
            checksum_algorithm: None,
            request_payer: None,
            website_redirect_location: head.website_redirect_location().map(String::from),
            if_modified_since: None,
            if_unmodified_since: None,
            object_lock_mode: None,
            object_lock_retain_until_date: None,
            object_lock_legal_hold_status: None,
            settings: self.settings,
        }
    }
}

/// One S3UpdateObjectEncryption task: the object's HEAD, S3's refusals, then the copy onto itself.
pub(super) async fn update_encryption(
    ctx: &Context,
    plan: &EncryptionPlan,
    task: &Task,
    at: &TaskAt<'_>,
) -> TaskRun {
    let head = match head_source(ctx, task, None).await {
        Ok(head) => head,
        Err(failure) => return TaskRun::Done(failure.into_outcome(task)),
    };
    if let Some(failure) = unsupported_encryption(&head).or_else(|| archived_source_failure(&head))
    {
        return TaskRun::Done(failure.into_outcome(task));
    }
    if let Some(version) = &task.version_id {
        if let Some(failure) = not_current_version(ctx, task, version).await {
            return TaskRun::Done(failure.into_outcome(task));
        }
    }
    copy_with_head(ctx, &plan.in_place(task, &head), task, &head, at).await
}

/// S3's UpdateObjectEncryption takes objects encrypted with SSE-S3 or SSE-KMS only.
pub(super) fn unsupported_encryption(head: &HeadObjectOutput) -> Option<Failure> {
    let what = if head.sse_customer_algorithm().is_some() {
        "encrypted with a customer-provided key (SSE-C)"
    } else {
        match head.server_side_encryption() {
            Some(ServerSideEncryption::Aes256 | ServerSideEncryption::AwsKms) => return None,
            Some(ServerSideEncryption::AwsKmsDsse) => "encrypted with DSSE-KMS",
            _ => "not encrypted",
        }
    };
    Some(Failure {
        retryable: false,
        error_code: "InvalidRequest".into(),
        http_status: Some(400),
        message: format!(
            "the object is {what}: UpdateObjectEncryption changes only objects encrypted with SSE-S3 or SSE-KMS (S3PutObjectCopy can encrypt others)"
        ),
        bucket_region: None,
    })
}

/// A copy of a version onto its key becomes the current version: only the current version may be
/// re-encrypted that way.
pub(super) async fn not_current_version(
    ctx: &Context,
    task: &Task,
    version: &str,
) -> Option<Failure> {
    let current = s3_call(ctx, &task.bucket, |s3| async move {
        s3.head_object()
            .bucket(&task.bucket)
            .key(&task.key)
            .send()
            .await
            .classified()
    })
    .await;
    let current = match current {
        Ok(head) => head.version_id().unwrap_or("null").to_string(),
        // The key's current version is a delete marker, or it cannot be read: say why.
        Err(failure) if failure.http_status == Some(404) => "a delete marker".to_string(),
        Err(failure) => return Some(failure),
    };
    (current != version).then(|| Failure {
        retryable: false,
        error_code: "InvalidRequest".into(),
        http_status: Some(400),
        message: format!(
            "version {version} is not the object's current version (that is {current}): batchops updates encryption by copying the object onto itself, which would make this version current again"
        ),
        bucket_region: None,
    })
}

/// S3 copies an object in S3 Glacier Flexible Retrieval or Deep Archive only once it is restored;
/// it refuses with `InvalidObjectState` (403). Checked up front so that a large copy does not
/// start a multipart upload that cannot finish.
pub(super) fn archived_source_failure(head: &HeadObjectOutput) -> Option<Failure> {
    let archived = matches!(
        head.storage_class(),
        Some(S3StorageClass::Glacier | S3StorageClass::DeepArchive)
    );
    let restored = head
        .restore()
        .is_some_and(|r| r.contains("ongoing-request=\"false\""));
    (archived && !restored).then(|| Failure {
        retryable: false,
        error_code: "InvalidObjectState".into(),
        http_status: Some(403),
        message: "The operation is not valid for the object's storage class".into(),
        bucket_region: None,
    })
}

/// A HEAD answer has no body: name a missing source the way CopyObject would (NoSuchKey).
pub(super) fn source_head_failure(failure: &Failure, task: &Task) -> Failure {
    let mut failure = failure.clone();
    if failure.http_status == Some(404) && failure.error_code == "NotFound" {
        if task.version_id.is_some() {
            failure.error_code = "NoSuchVersion".into();
            failure.message = "The specified version does not exist.".into();
        } else {
            failure.error_code = "NoSuchKey".into();
            failure.message = "The specified key does not exist.".into();
        }
    } else if failure.http_status == Some(403) && failure.error_code == "AccessDenied" {
        failure.message = "Access Denied".into();
    }
    failure
}
