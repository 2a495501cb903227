//! The other operations' request types: LambdaInvoke, tagging, ACL, restore, legal hold,
//! retention, the encryption update, checksums and delete, each with its checks.

use super::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// S3 Control's `LambdaInvokeOperation`: one Lambda invocation per task, whose answer
/// decides the task's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct LambdaInvokeOperation {
    /// `FunctionArn`: the function to invoke, by ARN, partial ARN or name, with an optional
    /// `:version` or `:alias` qualifier; required.
    pub function_arn: String,
    /// "1.0" (the default, as in S3) or "2.0".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invocation_schema_version: Option<String>,
    /// Passed to the function in schema 2.0 as `job.userArguments`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_arguments: Option<BTreeMap<String, String>>,
}

impl LambdaInvokeOperation {
    /// The invocation schema version to use: `InvocationSchemaVersion`, or `1.0` when not given.
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

/// S3 Control's `S3SetObjectTaggingOperation`: replaces each object's tags with `TagSet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PutObjectTaggingOperation {
    /// `TagSet`: the new tags, at most 10, each key once; empty (the default) leaves the
    /// object with no tags.
    #[serde(default)]
    pub tag_set: Vec<S3Tag>,
}

impl PutObjectTaggingOperation {
    pub(super) fn validate(&self) -> Result<()> {
        validate_tags("Operation.S3PutObjectTagging.TagSet", &self.tag_set)
    }
}

/// S3 Control's `S3DeleteObjectTaggingOperation`: removes every tag of each object; an
/// empty object, `{}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteObjectTaggingOperation {}

/// S3 Control's `S3SetObjectAclOperation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SetObjectAclOperation {
    /// `AccessControlPolicy`: the ACL to set; required.
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
    /// `AccessControlList`: an explicit owner and grants; not with a canned ACL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_control_list: Option<AccessControlList>,
    /// `CannedAccessControlList`: a canned ACL; not with an explicit list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canned_access_control_list: Option<CannedAcl>,
}

/// S3 Control's `S3AccessControlList`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AccessControlList {
    /// `Owner`: the object's owner; its `ID` is required.
    pub owner: ObjectOwner,
    /// `Grants`: the permissions given; `None`: no grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<Vec<S3Grant>>,
}

/// S3 Control's `S3ObjectOwner`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ObjectOwner {
    /// `ID`: the owner's canonical user id.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// `DisplayName`: the owner's name, for display only.
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
    /// `GlacierJobTier`: the restore's retrieval tier; `None`: BULK (see `tier`).
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

    /// The retrieval tier to use: `GlacierJobTier`, or Bulk when not given.
    pub fn tier(&self) -> GlacierJobTier {
        self.glacier_job_tier.unwrap_or(GlacierJobTier::Bulk)
    }
}

/// S3 Batch Operations restores with the Bulk (default) or Standard tier; Expedited is not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum GlacierJobTier {
    /// `BULK`: the cheapest and slowest tier; the default.
    Bulk,
    /// `STANDARD`: faster than Bulk, at a higher price.
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
    /// `LegalHold`: the legal hold to put on, or take off, each object.
    pub legal_hold: ObjectLockLegalHold,
}

/// S3 Control's `S3ObjectLockLegalHold`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ObjectLockLegalHold {
    /// `Status`: `ON` puts a legal hold on the object, `OFF` removes it.
    pub status: LegalHoldStatus,
}

/// S3 Control's `S3SetObjectRetentionOperation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SetObjectRetentionOperation {
    /// `BypassGovernanceRetention`: lets the change shorten or remove a governance-mode
    /// retention (sent as `x-amz-bypass-governance-retention`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bypass_governance_retention: Option<bool>,
    /// `Retention`: the retention to set on each object.
    pub retention: S3Retention,
}

/// Mode and date together set a retention period; neither removes it (governance mode only,
/// with `BypassGovernanceRetention`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct S3Retention {
    /// `RetainUntilDate`: when the retention period ends.
    #[serde(
        default,
        with = "super::timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    pub retain_until_date: Option<DateTime<Utc>>,
    /// `Mode`: the retention mode, COMPLIANCE or GOVERNANCE.
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
    /// `ObjectEncryption`: the encryption to set; required, with its `SSEKMS` member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_encryption: Option<ObjectEncryption>,
}

/// The encryption an object gets; SSE-KMS is the only type S3 offers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectEncryption {
    /// `SSEKMS`: SSE-KMS with the given key.
    #[serde(rename = "SSEKMS", default, skip_serializing_if = "Option::is_none")]
    pub sse_kms: Option<UpdateObjectEncryptionSseKms>,
}

/// The `SSEKMS` member of S3 Control's `ObjectEncryption`: the KMS key the objects are
/// encrypted with from now on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateObjectEncryptionSseKms {
    /// `KMSKeyArn`: the KMS key's full ARN (`arn:aws:kms:REGION:ACCOUNT:key/KEY-ID`); not an
    /// alias or a bare key id.
    #[serde(rename = "KMSKeyArn")]
    pub kms_key_arn: String,
    /// `BucketKeyEnabled`: use an S3 Bucket Key for the objects; `None` leaves it to S3.
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
    /// `ChecksumAlgorithm`: the checksum to compute; `None`: CRC64NVME (see `algorithm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_algorithm: Option<ComputeChecksumAlgorithm>,
    /// `ChecksumType`: only FULL_OBJECT is supported; `None` means FULL_OBJECT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<ChecksumType>,
}

impl ComputeObjectChecksumOperation {
    /// The algorithm to use: `ChecksumAlgorithm`, or CRC64NVME when not given.
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

/// A checksum S3ComputeObjectChecksum can compute (`ChecksumAlgorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ComputeChecksumAlgorithm {
    /// `CRC32`: 32-bit CRC.
    Crc32,
    /// `CRC32C`: 32-bit CRC with the Castagnoli polynomial.
    Crc32c,
    /// `CRC64NVME`: 64-bit CRC with the NVMe polynomial; the default.
    Crc64nvme,
    /// `MD5`: MD5 digest.
    Md5,
    /// `SHA1`: SHA-1 digest; refused by batchops.
    Sha1,
    /// `SHA256`: SHA-256 digest.
    Sha256,
}

impl ComputeChecksumAlgorithm {
    /// The algorithm as S3 spells it, e.g. `CRC64NVME`.
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

/// How a checksum covers the object (`ChecksumType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChecksumType {
    /// `FULL_OBJECT`: one checksum of the whole object's bytes.
    FullObject,
    /// `COMPOSITE`: a checksum of the parts' checksums; refused by batchops.
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
