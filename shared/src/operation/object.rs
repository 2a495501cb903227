//! The operations of one request per object: tagging, ACL, legal hold, retention, restore and
//! delete.

use super::*;
use aws_sdk_s3::types::{
    GlacierJobParameters, ObjectCannedAcl, ObjectLockLegalHold, ObjectLockLegalHoldStatus,
    ObjectLockRetention, ObjectLockRetentionMode, RestoreRequest, Tagging, Tier,
};

use crate::job::{
    DeleteObjectOperation, GrantPermission, InitiateRestoreObjectOperation, SetObjectAclOperation,
    SetObjectLegalHoldOperation, SetObjectRetentionOperation,
};
use crate::manifest::Task;
use crate::report::TaskOutcome;
use crate::Context;

pub(super) async fn put_tagging(ctx: &Context, tagging: &Tagging, task: &Task) -> TaskOutcome {
    with_s3_retries(ctx, task, |s3| async move {
        s3.put_object_tagging()
            .bucket(&task.bucket)
            .key(&task.key)
            .set_version_id(task.version_id.clone())
            .tagging(tagging.clone())
            .send()
            .await
            .done()
    })
    .await
}

pub(super) async fn delete_tagging(ctx: &Context, task: &Task) -> TaskOutcome {
    with_s3_retries(ctx, task, |s3| async move {
        s3.delete_object_tagging()
            .bucket(&task.bucket)
            .key(&task.key)
            .set_version_id(task.version_id.clone())
            .send()
            .await
            .done()
    })
    .await
}

/// The ACL a job sets: a canned ACL, or the grants of a full policy. The grants travel as
/// `x-amz-grant-*` headers, which replace the object's ACL exactly as a policy body does: the
/// policy's Owner cannot change an object's owner anyway (S3 only checks it), and emulators such as
/// moto honour the headers but ignore a body.
#[derive(Debug, Clone)]
pub enum AclPlan {
    /// A canned ACL (`CannedAccessControlList`), sent as `x-amz-acl`.
    Canned(ObjectCannedAcl),
    /// The grants of an `AccessControlList`, one header value per permission; `None` where no
    /// grant has that permission.
    Grants {
        /// `x-amz-grant-full-control`: the grantees given `FULL_CONTROL`.
        full_control: Option<String>,
        /// `x-amz-grant-read`: the grantees given `READ`.
        read: Option<String>,
        /// `x-amz-grant-read-acp`: the grantees given `READ_ACP`.
        read_acp: Option<String>,
        /// `x-amz-grant-write`: the grantees given `WRITE`.
        write: Option<String>,
        /// `x-amz-grant-write-acp`: the grantees given `WRITE_ACP`.
        write_acp: Option<String>,
    },
}

impl AclPlan {
    /// The ACL of a job's `S3PutObjectAcl` operation; fails with a message unless its
    /// `AccessControlPolicy` has exactly one of `AccessControlList` and `CannedAccessControlList`.
    pub fn new(op: &SetObjectAclOperation) -> Result<Self, String> {
        let policy = op
            .access_control_policy
            .as_ref()
            .ok_or("Operation.S3PutObjectAcl.AccessControlPolicy is required")?;
        match (
            &policy.access_control_list,
            policy.canned_access_control_list,
        ) {
            (None, Some(canned)) => Ok(AclPlan::Canned(ObjectCannedAcl::from(canned.as_str()))),
            (Some(list), None) => {
                let grants = list.grants.as_deref().unwrap_or_default();
                Ok(AclPlan::Grants {
                    full_control: grant_header(grants, GrantPermission::FullControl),
                    read: grant_header(grants, GrantPermission::Read),
                    read_acp: grant_header(grants, GrantPermission::ReadAcp),
                    write: grant_header(grants, GrantPermission::Write),
                    write_acp: grant_header(grants, GrantPermission::WriteAcp),
                })
            }
            _ => Err(
                "AccessControlPolicy needs AccessControlList or CannedAccessControlList, not both"
                    .into(),
            ),
        }
    }
}

pub(super) async fn put_acl(ctx: &Context, plan: &AclPlan, task: &Task) -> TaskOutcome {
    with_s3_retries(ctx, task, |s3| async move {
        let request = s3
            .put_object_acl()
            .bucket(&task.bucket)
            .key(&task.key)
            .set_version_id(task.version_id.clone());
        let request = match plan {
            AclPlan::Canned(acl) => request.acl(acl.clone()),
            AclPlan::Grants {
                full_control,
                read,
                read_acp,
                write,
                write_acp,
            } => request
                .set_grant_full_control(full_control.clone())
                .set_grant_read(read.clone())
                .set_grant_read_acp(read_acp.clone())
                .set_grant_write(write.clone())
                .set_grant_write_acp(write_acp.clone()),
        };
        request.send().await.done()
    })
    .await
}

pub(super) async fn put_legal_hold(
    ctx: &Context,
    op: &SetObjectLegalHoldOperation,
    task: &Task,
) -> TaskOutcome {
    let hold = ObjectLockLegalHold::builder()
        .status(ObjectLockLegalHoldStatus::from(
            op.legal_hold.status.as_str(),
        ))
        .build();
    let hold = &hold;
    with_s3_retries(ctx, task, |s3| async move {
        s3.put_object_legal_hold()
            .bucket(&task.bucket)
            .key(&task.key)
            .set_version_id(task.version_id.clone())
            .legal_hold(hold.clone())
            .send()
            .await
            .done()
    })
    .await
}

pub(super) async fn put_retention(
    ctx: &Context,
    op: &SetObjectRetentionOperation,
    task: &Task,
) -> TaskOutcome {
    let retention = ObjectLockRetention::builder()
        .set_mode(
            op.retention
                .mode
                .map(|m| ObjectLockRetentionMode::from(m.as_str())),
        )
        .set_retain_until_date(op.retention.retain_until_date.as_ref().map(smithy_time))
        .build();
    let retention = &retention;
    with_s3_retries(ctx, task, |s3| async move {
        s3.put_object_retention()
            .bucket(&task.bucket)
            .key(&task.key)
            .set_version_id(task.version_id.clone())
            .retention(retention.clone())
            .set_bypass_governance_retention(op.bypass_governance_retention)
            .send()
            .await
            .done()
    })
    .await
}

/// Starts a restore. S3 answers 202 for a new restore and 200 for an object already restored
/// (whose expiry it extends): both succeed. A restore in progress is S3's
/// `RestoreAlreadyInProgress` (409) and an object outside the archive classes its
/// `InvalidObjectState` (403): both fail with S3's code, as S3 Batch Operations reports them.
pub(super) async fn restore(
    ctx: &Context,
    op: &InitiateRestoreObjectOperation,
    task: &Task,
) -> TaskOutcome {
    let request = RestoreRequest::builder()
        .set_days(op.expiration_in_days)
        .set_glacier_job_parameters(
            GlacierJobParameters::builder()
                .tier(Tier::from(op.tier().s3_tier()))
                .build()
                .ok(),
        )
        .build();
    let request = &request;
    with_s3_retries(ctx, task, |s3| async move {
        s3.restore_object()
            .bucket(&task.bucket)
            .key(&task.key)
            .set_version_id(task.version_id.clone())
            .restore_request(request.clone())
            .send()
            .await
            .done()
    })
    .await
}

/// Deletes the listed version, or adds a delete marker when the manifest names no version.
pub(super) async fn delete_object(
    ctx: &Context,
    op: &DeleteObjectOperation,
    task: &Task,
) -> TaskOutcome {
    with_s3_retries(ctx, task, |s3| async move {
        s3.delete_object()
            .bucket(&task.bucket)
            .key(&task.key)
            .set_version_id(task.version_id.clone())
            .set_bypass_governance_retention(op.bypass_governance_retention)
            .send()
            .await
            .done()
    })
    .await
}
