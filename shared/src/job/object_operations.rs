//! The other operations' request types: LambdaInvoke, tagging, ACL, restore, legal hold,
//! retention, the encryption update, checksums and delete, each with its checks.

use super::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct LambdaInvokeOperation {
    pub function_arn: String,
    /// "1.0" (the default, as in S3) or "2.0".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_schema_version: Option<String>,
    /// Passed to the function in schema 2.0 as `job.userArguments`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_arguments: Option<BTreeMap<String, String>>,
}

impl LambdaInvokeOperation {
    pub fn schema_version(&self) -> &str {
        self.invocation_schema_version.as_deref().unwrap_or("1.0")
    }

    pub(super) fn validate(&self) -> Result<()> {
        if self.function_arn.trim().is_empty() {
            return Err(Error::InvalidRequest(
                "Operation.LambdaInvoke.FunctionArn is required".into(),
            ));
        }
        match self.schema_version() {
            "1.0" => {
                if self.user_arguments.is_some() {
                    return Err(Error::InvalidRequest(
                        "Operation.LambdaInvoke.UserArguments needs InvocationSchemaVersion 2.0"
                            .into(),
                    ));
                }
                Ok(())
            }
            "2.0" => Ok(()),
            other => Err(Error::InvalidRequest(format!(
                "Operation.LambdaInvoke.InvocationSchemaVersion must be 1.0 or 2.0, got {other}"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PutObjectTaggingOperation {
    #[serde(default)]
    pub tag_set: Vec<S3Tag>,
}

impl PutObjectTaggingOperation {
    pub(super) fn validate(&self) -> Result<()> {
        validate_tags("Operation.S3PutObjectTagging.TagSet", &self.tag_set)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteObjectTaggingOperation {}

/// S3 Control's `S3SetObjectAclOperation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SetObjectAclOperation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_control_policy: Option<AccessControlPolicy>,
}

impl SetObjectAclOperation {
    pub(super) fn validate(&self) -> Result<()> {
        const OP: &str = "Operation.S3PutObjectAcl.AccessControlPolicy";
        let policy = self.access_control_policy.as_ref().ok_or_else(|| {
            Error::InvalidRequest(format!(
                "{OP} is required: give AccessControlList (Owner and Grants) or CannedAccessControlList"
            ))
        })?;
        match (
            &policy.access_control_list,
            policy.canned_access_control_list,
        ) {
            (Some(_), Some(_)) => Err(Error::InvalidRequest(format!(
                "{OP}: give AccessControlList or CannedAccessControlList, not both"
            ))),
            (None, None) => Err(Error::InvalidRequest(format!(
                "{OP}: give AccessControlList (Owner and Grants) or CannedAccessControlList"
            ))),
            (Some(list), None) => {
                if list.owner.id.trim().is_empty() {
                    return Err(Error::InvalidRequest(format!(
                        "{OP}.AccessControlList.Owner.ID is required (the canonical user id of the owner)"
                    )));
                }
                for grant in list.grants.iter().flatten() {
                    grant.validate(OP)?;
                }
                Ok(())
            }
            (None, Some(_)) => Ok(()),
        }
    }
}

/// S3 Control's `S3AccessControlPolicy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AccessControlPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_control_list: Option<AccessControlList>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canned_access_control_list: Option<CannedAcl>,
}

/// S3 Control's `S3AccessControlList`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AccessControlList {
    pub owner: ObjectOwner,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<Vec<S3Grant>>,
}

/// S3 Control's `S3ObjectOwner`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ObjectOwner {
    #[serde(rename = "ID", default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// S3 Control's `S3InitiateRestoreObjectOperation`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct InitiateRestoreObjectOperation {
    /// Days the restored copy stays; S3 needs it for S3 Glacier Flexible Retrieval and Deep
    /// Archive, and refuses it for the S3 Intelligent-Tiering archive tiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_in_days: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glacier_job_tier: Option<GlacierJobTier>,
}

impl InitiateRestoreObjectOperation {
    pub(super) fn validate(&self) -> Result<()> {
        match self.expiration_in_days {
            Some(days) if days < 1 => Err(Error::InvalidRequest(format!(
                "Operation.S3InitiateRestoreObject.ExpirationInDays must be 1 or more, got {days}"
            ))),
            _ => Ok(()),
        }
    }

    pub fn tier(&self) -> GlacierJobTier {
        self.glacier_job_tier.unwrap_or(GlacierJobTier::Bulk)
    }
}

/// S3 Batch Operations restores with the Bulk (default) or Standard tier; Expedited is not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum GlacierJobTier {
    Bulk,
    Standard,
}

impl GlacierJobTier {
    /// The tier's name in S3's RestoreObject API.
    pub fn s3_tier(self) -> &'static str {
        match self {
            GlacierJobTier::Bulk => "Bulk",
            GlacierJobTier::Standard => "Standard",
        }
    }
}

/// S3 Control's `S3SetObjectLegalHoldOperation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SetObjectLegalHoldOperation {
    pub legal_hold: ObjectLockLegalHold,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ObjectLockLegalHold {
    pub status: LegalHoldStatus,
}

/// S3 Control's `S3SetObjectRetentionOperation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SetObjectRetentionOperation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bypass_governance_retention: Option<bool>,
    pub retention: S3Retention,
}

/// Mode and date together set a retention period; neither removes it (governance mode only,
/// with `BypassGovernanceRetention`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct S3Retention {
    #[serde(
        default,
        with = "super::timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    pub retain_until_date: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ObjectLockMode>,
}

impl SetObjectRetentionOperation {
    pub(super) fn validate(&self) -> Result<()> {
        if self.retention.mode.is_some() != self.retention.retain_until_date.is_some() {
            return Err(Error::InvalidRequest(
                "Operation.S3PutObjectRetention.Retention: Mode and RetainUntilDate go together; give both, or neither to remove a governance-mode retention".into(),
            ));
        }
        Ok(())
    }
}

/// S3 Control's `S3UpdateObjectEncryptionOperation`: objects encrypted with SSE-S3 or SSE-KMS get
/// SSE-KMS with the given key (and S3 Bucket Key setting). batchops does it with a copy of each
/// object onto itself (`crate::operation`), so unlike S3 the object's ETag, Last-Modified and (in
/// a versioned bucket) version change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct UpdateObjectEncryptionOperation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_encryption: Option<ObjectEncryption>,
}

/// The encryption an object gets; SSE-KMS is the only type S3 offers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectEncryption {
    #[serde(rename = "SSEKMS", default, skip_serializing_if = "Option::is_none")]
    pub sse_kms: Option<UpdateObjectEncryptionSseKms>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateObjectEncryptionSseKms {
    #[serde(rename = "KMSKeyArn")]
    pub kms_key_arn: String,
    #[serde(
        rename = "BucketKeyEnabled",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub bucket_key_enabled: Option<bool>,
}

impl UpdateObjectEncryptionOperation {
    /// The SSE-KMS settings; present once the operation is validated.
    pub fn sse_kms(&self) -> Option<&UpdateObjectEncryptionSseKms> {
        self.object_encryption.as_ref()?.sse_kms.as_ref()
    }

    pub(super) fn validate(&self) -> Result<()> {
        let Some(kms) = self.sse_kms() else {
            return Err(Error::InvalidRequest(
                "Operation.S3UpdateObjectEncryption needs ObjectEncryption.SSEKMS with KMSKeyArn (SSE-KMS is the only encryption type it sets)".into(),
            ));
        };
        if !is_kms_key_arn(&kms.kms_key_arn) {
            return Err(Error::InvalidRequest(format!(
                "Operation.S3UpdateObjectEncryption.ObjectEncryption.SSEKMS.KMSKeyArn must be a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/KEY-ID; not an alias or a bare key id), got {:?}",
                kms.kms_key_arn
            )));
        }
        Ok(())
    }
}

/// S3 Control's pattern for a KMS key ARN: `arn:aws[a-zA-Z0-9-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-zA-Z0-9-]+`,
/// 20 to 2,048 characters.
pub(super) fn is_kms_key_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts.as_slice() else {
        return false;
    };
    let key_id = resource.strip_prefix("key/").unwrap_or("");
    (20..=2048).contains(&arn.len())
        && *prefix == "arn"
        && partition.starts_with("aws")
        && partition[3..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        && *service == "kms"
        && !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && !key_id.is_empty()
        && key_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// S3 Control's `S3ComputeObjectChecksumOperation`. batchops reads each object and computes a
/// full-object checksum; the report's ResultMessage carries it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ComputeObjectChecksumOperation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_algorithm: Option<ComputeChecksumAlgorithm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<ChecksumType>,
}

impl ComputeObjectChecksumOperation {
    pub fn algorithm(&self) -> ComputeChecksumAlgorithm {
        self.checksum_algorithm
            .unwrap_or(ComputeChecksumAlgorithm::Crc64nvme)
    }

    pub(super) fn validate(&self) -> Result<()> {
        const OP: &str = "Operation.S3ComputeObjectChecksum";
        if self.checksum_type == Some(ChecksumType::Composite) {
            return Err(Error::InvalidRequest(format!(
                "{OP}.ChecksumType COMPOSITE is not supported by batchops: it computes FULL_OBJECT checksums"
            )));
        }
        if self.algorithm() == ComputeChecksumAlgorithm::Sha1 {
            return Err(Error::InvalidRequest(format!(
                "{OP}.ChecksumAlgorithm SHA1 is not supported by batchops; use CRC32, CRC32C, CRC64NVME, MD5 or SHA256"
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ComputeChecksumAlgorithm {
    Crc32,
    Crc32c,
    Crc64nvme,
    Md5,
    Sha1,
    Sha256,
}

impl ComputeChecksumAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            ComputeChecksumAlgorithm::Crc32 => "CRC32",
            ComputeChecksumAlgorithm::Crc32c => "CRC32C",
            ComputeChecksumAlgorithm::Crc64nvme => "CRC64NVME",
            ComputeChecksumAlgorithm::Md5 => "MD5",
            ComputeChecksumAlgorithm::Sha1 => "SHA1",
            ComputeChecksumAlgorithm::Sha256 => "SHA256",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChecksumType {
    FullObject,
    Composite,
}

/// batchops' `S3DeleteObject`: deletes the listed version, or adds a delete marker when the
/// manifest gives no version. Accepted only with `ConfirmationRequired: true`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DeleteObjectOperation {
    /// Lets a delete remove a version under governance-mode retention, as DeleteObject allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bypass_governance_retention: Option<bool>,
}
