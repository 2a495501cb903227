//! S3PutObjectCopy's operation and the S3 types it shares with other operations (ACLs and grants,
//! metadata, storage classes, object lock, checksums).

use super::*;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// S3 Control's `S3CopyObjectOperation`: one CopyObject (or a multipart copy for objects over
/// 5 GB) per task, into `TargetResource` under `TargetKeyPrefix`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CopyObjectOperation {
    /// The destination bucket's ARN (`arn:aws:s3:::bucket`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canned_access_control_list: Option<CannedAcl>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_control_grants: Option<Vec<S3Grant>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_directive: Option<MetadataDirective>,
    #[serde(
        default,
        with = "super::timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    pub modified_since_constraint: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_object_metadata: Option<ObjectMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_object_tagging: Option<Vec<S3Tag>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_pays: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<StorageClass>,
    #[serde(
        default,
        with = "super::timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    pub un_modified_since_constraint: Option<DateTime<Utc>>,
    #[serde(
        rename = "SSEAwsKmsKeyId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sse_aws_kms_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_key_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock_legal_hold_status: Option<LegalHoldStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock_mode: Option<ObjectLockMode>,
    #[serde(
        default,
        with = "super::timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    pub object_lock_retain_until_date: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_key_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
}

impl CopyObjectOperation {
    /// The destination bucket name.
    pub fn target_bucket(&self) -> Option<String> {
        self.target_resource
            .as_deref()
            .filter(|arn| !arn.trim().is_empty())
            .map(bucket_from_arn)
    }

    /// The key of the copy of `key`: `TargetKeyPrefix` (a plain prefix, as S3 applies it) + key.
    pub fn target_key(&self, key: &str) -> String {
        format!("{}{key}", self.target_key_prefix.as_deref().unwrap_or(""))
    }

    /// `REPLACE` when new metadata is given without a directive: the metadata was asked for.
    pub fn effective_metadata_directive(&self) -> MetadataDirective {
        match (self.metadata_directive, &self.new_object_metadata) {
            (Some(directive), _) => directive,
            (None, Some(_)) => MetadataDirective::Replace,
            (None, None) => MetadataDirective::Copy,
        }
    }

    pub(super) fn validate(&self) -> Result<()> {
        const OP: &str = "Operation.S3PutObjectCopy";
        let target = self.target_resource.as_deref().unwrap_or("").trim();
        if target.is_empty() {
            return Err(Error::InvalidRequest(format!(
                "{OP}.TargetResource is required: the destination bucket's ARN, e.g. arn:aws:s3:::my-bucket"
            )));
        }
        if target.contains(":::") && bucket_from_arn(target).contains('/') {
            return Err(Error::InvalidRequest(format!(
                "{OP}.TargetResource {target:?} must be a bucket ARN; put a key prefix in TargetKeyPrefix"
            )));
        }
        if self.canned_access_control_list.is_some()
            && self
                .access_control_grants
                .as_ref()
                .is_some_and(|g| !g.is_empty())
        {
            return Err(Error::InvalidRequest(format!(
                "{OP}: give CannedAccessControlList or AccessControlGrants, not both (S3 refuses both on one request)"
            )));
        }
        if self.metadata_directive == Some(MetadataDirective::Copy)
            && self.new_object_metadata.is_some()
        {
            return Err(Error::InvalidRequest(format!(
                "{OP}.NewObjectMetadata needs MetadataDirective REPLACE; with COPY the source's metadata is kept"
            )));
        }
        if self.object_lock_mode.is_some() != self.object_lock_retain_until_date.is_some() {
            return Err(Error::InvalidRequest(format!(
                "{OP}: ObjectLockMode and ObjectLockRetainUntilDate go together; give both or neither"
            )));
        }
        if let Some(tags) = &self.new_object_tagging {
            validate_tags(&format!("{OP}.NewObjectTagging"), tags)?;
        }
        for grant in self.access_control_grants.iter().flatten() {
            grant.validate(OP)?;
        }
        Ok(())
    }
}

/// S3 Control's `S3CannedAccessControlList`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CannedAcl {
    Private,
    PublicRead,
    PublicReadWrite,
    AwsExecRead,
    AuthenticatedRead,
    BucketOwnerRead,
    BucketOwnerFullControl,
}

impl CannedAcl {
    pub fn as_str(self) -> &'static str {
        match self {
            CannedAcl::Private => "private",
            CannedAcl::PublicRead => "public-read",
            CannedAcl::PublicReadWrite => "public-read-write",
            CannedAcl::AwsExecRead => "aws-exec-read",
            CannedAcl::AuthenticatedRead => "authenticated-read",
            CannedAcl::BucketOwnerRead => "bucket-owner-read",
            CannedAcl::BucketOwnerFullControl => "bucket-owner-full-control",
        }
    }
}

/// S3 Control's `S3Grant`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct S3Grant {
    pub grantee: S3Grantee,
    pub permission: GrantPermission,
}

impl S3Grant {
    pub(super) fn validate(&self, op: &str) -> Result<()> {
        if self.grantee.identifier.trim().is_empty() {
            return Err(Error::InvalidRequest(format!(
                "{op}: every grant needs Grantee.Identifier"
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct S3Grantee {
    pub type_identifier: GranteeType,
    pub identifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// How a grantee is named: canonical user id, e-mail address, or group URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GranteeType {
    #[serde(rename = "id")]
    Id,
    #[serde(rename = "emailAddress")]
    EmailAddress,
    #[serde(rename = "uri")]
    Uri,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GrantPermission {
    FullControl,
    Read,
    Write,
    ReadAcp,
    WriteAcp,
}

impl GrantPermission {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantPermission::FullControl => "FULL_CONTROL",
            GrantPermission::Read => "READ",
            GrantPermission::Write => "WRITE",
            GrantPermission::ReadAcp => "READ_ACP",
            GrantPermission::WriteAcp => "WRITE_ACP",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MetadataDirective {
    Copy,
    Replace,
}

/// S3 Control's `S3ObjectMetadata`: the metadata of the copies when the directive is REPLACE.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ObjectMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_metadata: Option<BTreeMap<String, String>>,
    /// Accepted as S3 Control accepts it; a copy's length is always its source's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_length: Option<i64>,
    /// Accepted as S3 Control accepts it; S3 computes the copy's checksums itself.
    #[serde(
        rename = "ContentMD5",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub content_md5: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(
        default,
        with = "super::timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    pub http_expires_date: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_charged: Option<bool>,
    #[serde(
        rename = "SSEAlgorithm",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sse_algorithm: Option<SseAlgorithm>,
}

/// S3 Control's `S3SSEAlgorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SseAlgorithm {
    #[serde(rename = "AES256")]
    Aes256,
    #[serde(rename = "KMS")]
    Kms,
}

/// S3 Control's `S3StorageClass`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StorageClass {
    Standard,
    StandardIa,
    OnezoneIa,
    Glacier,
    IntelligentTiering,
    DeepArchive,
    GlacierIr,
}

impl StorageClass {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageClass::Standard => "STANDARD",
            StorageClass::StandardIa => "STANDARD_IA",
            StorageClass::OnezoneIa => "ONEZONE_IA",
            StorageClass::Glacier => "GLACIER",
            StorageClass::IntelligentTiering => "INTELLIGENT_TIERING",
            StorageClass::DeepArchive => "DEEP_ARCHIVE",
            StorageClass::GlacierIr => "GLACIER_IR",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LegalHoldStatus {
    On,
    Off,
}

impl LegalHoldStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LegalHoldStatus::On => "ON",
            LegalHoldStatus::Off => "OFF",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ObjectLockMode {
    Compliance,
    Governance,
}

impl ObjectLockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectLockMode::Compliance => "COMPLIANCE",
            ObjectLockMode::Governance => "GOVERNANCE",
        }
    }
}

/// S3 Control's `S3ChecksumAlgorithm` of a copy: the checksum S3 stores with each copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChecksumAlgorithm {
    Crc32,
    Crc32c,
    Sha1,
    Sha256,
    Crc64nvme,
}

impl ChecksumAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
            ChecksumAlgorithm::Crc64nvme => "CRC64NVME",
        }
    }
}
