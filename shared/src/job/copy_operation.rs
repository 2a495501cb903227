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
    /// `CannedAccessControlList`: a canned ACL for every copy (`x-amz-acl`); not with grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canned_access_control_list: Option<CannedAcl>,
    /// `AccessControlGrants`: explicit grants on every copy (`x-amz-grant-*` headers); not
    /// together with a canned ACL, and WRITE cannot be granted on an object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_control_grants: Option<Vec<S3Grant>>,
    /// `MetadataDirective`: keep the source's metadata (COPY) or use `NewObjectMetadata`
    /// (REPLACE); when absent, see `effective_metadata_directive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_directive: Option<MetadataDirective>,
    /// `ModifiedSinceConstraint`: copy only if the source changed after this
    /// (`x-amz-copy-source-if-modified-since`).
    #[serde(
        default,
        with = "super::timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    pub modified_since_constraint: Option<DateTime<Utc>>,
    /// `NewObjectMetadata`: the copies' metadata when the directive is REPLACE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_object_metadata: Option<ObjectMetadata>,
    /// `NewObjectTagging`: the copies' tags, replacing the source's; `None` keeps the source's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_object_tagging: Option<Vec<S3Tag>>,
    /// `RedirectLocation`: the copies' website redirect (`x-amz-website-redirect-location`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_location: Option<String>,
    /// `RequesterPays`: when true, requests go with `x-amz-request-payer: requester`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_pays: Option<bool>,
    /// `StorageClass`: the copies' storage class; `None`: S3's default, STANDARD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<StorageClass>,
    /// `UnModifiedSinceConstraint`: copy only if the source has not changed since this
    /// (`x-amz-copy-source-if-unmodified-since`).
    #[serde(
        default,
        with = "super::timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    pub un_modified_since_constraint: Option<DateTime<Utc>>,
    /// `SSEAwsKmsKeyId`: the KMS key to encrypt the copies with; implies SSE-KMS.
    #[serde(
        rename = "SSEAwsKmsKeyId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sse_aws_kms_key_id: Option<String>,
    /// `TargetKeyPrefix`: prepended to every copy's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_key_prefix: Option<String>,
    /// `ObjectLockLegalHoldStatus`: a legal hold to put on every copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock_legal_hold_status: Option<LegalHoldStatus>,
    /// `ObjectLockMode`: the copies' retention mode; given together with the retain-until date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock_mode: Option<ObjectLockMode>,
    /// `ObjectLockRetainUntilDate`: when the copies' retention ends; given with the mode.
    #[serde(
        default,
        with = "super::timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    pub object_lock_retain_until_date: Option<DateTime<Utc>>,
    /// `BucketKeyEnabled`: use an S3 Bucket Key for the copies' SSE-KMS encryption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_key_enabled: Option<bool>,
    /// `ChecksumAlgorithm`: the checksum S3 computes and stores with each copy.
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
    /// `private`: the owner has full control; nobody else has access.
    Private,
    /// `public-read`: everyone may read.
    PublicRead,
    /// `public-read-write`: everyone may read and write.
    PublicReadWrite,
    /// `aws-exec-read`: the owner has full control; EC2 may read (for AMI bundles).
    AwsExecRead,
    /// `authenticated-read`: any authenticated AWS user may read.
    AuthenticatedRead,
    /// `bucket-owner-read`: the bucket's owner may read.
    BucketOwnerRead,
    /// `bucket-owner-full-control`: the bucket's owner has full control.
    BucketOwnerFullControl,
}

impl CannedAcl {
    /// The ACL's name as S3 spells it (`x-amz-acl`), e.g. `public-read`.
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
    /// `Grantee`: who is given the permission.
    pub grantee: S3Grantee,
    /// `Permission`: what the grantee may do.
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

/// S3 Control's `S3Grantee`: the receiver of a grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct S3Grantee {
    /// `TypeIdentifier`: how `identifier` names the grantee.
    pub type_identifier: GranteeType,
    /// `Identifier`: the canonical user id, e-mail address or group URI; required.
    pub identifier: String,
    /// `DisplayName`: the grantee's name, for display only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// How a grantee is named: canonical user id, e-mail address, or group URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GranteeType {
    /// `id`: a canonical user id.
    #[serde(rename = "id")]
    Id,
    /// `emailAddress`: an AWS account's e-mail address.
    #[serde(rename = "emailAddress")]
    EmailAddress,
    /// `uri`: a predefined group's URI.
    #[serde(rename = "uri")]
    Uri,
}

/// S3 Control's `S3Permission`: what a grant allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GrantPermission {
    /// `FULL_CONTROL`: READ, WRITE, READ_ACP and WRITE_ACP together.
    FullControl,
    /// `READ`: read the object.
    Read,
    /// `WRITE`: write (S3 applies it to buckets; a copy job refuses it).
    Write,
    /// `READ_ACP`: read the object's ACL.
    ReadAcp,
    /// `WRITE_ACP`: write the object's ACL.
    WriteAcp,
}

impl GrantPermission {
    /// The permission as S3 spells it, e.g. `READ_ACP`.
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

/// `MetadataDirective` of a copy: where the copies' metadata comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MetadataDirective {
    /// `COPY`: the source's metadata.
    Copy,
    /// `REPLACE`: the job's `NewObjectMetadata`.
    Replace,
}

/// S3 Control's `S3ObjectMetadata`: the metadata of the copies when the directive is REPLACE.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ObjectMetadata {
    /// `CacheControl`: the `Cache-Control` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// `ContentDisposition`: the `Content-Disposition` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    /// `ContentEncoding`: the `Content-Encoding` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// `ContentLanguage`: the `Content-Language` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    /// `UserMetadata`: user metadata, sent as `x-amz-meta-<name>` headers.
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
    /// `ContentType`: the `Content-Type` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `HttpExpiresDate`: the `Expires` header.
    #[serde(
        default,
        with = "super::timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    pub http_expires_date: Option<DateTime<Utc>>,
    /// `RequesterCharged`: accepted as S3 Control accepts it; not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_charged: Option<bool>,
    /// `SSEAlgorithm`: the copies' server-side encryption (`x-amz-server-side-encryption`).
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
    /// `AES256`: SSE-S3, keys managed by S3.
    #[serde(rename = "AES256")]
    Aes256,
    /// `KMS`: SSE-KMS, keys in AWS KMS.
    #[serde(rename = "KMS")]
    Kms,
}

/// S3 Control's `S3StorageClass`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StorageClass {
    /// `STANDARD`: for frequently accessed data; S3's default.
    Standard,
    /// `STANDARD_IA`: Standard-Infrequent Access.
    StandardIa,
    /// `ONEZONE_IA`: One Zone-Infrequent Access.
    OnezoneIa,
    /// `GLACIER`: Glacier Flexible Retrieval.
    Glacier,
    /// `INTELLIGENT_TIERING`: S3 moves the object between access tiers as its use changes.
    IntelligentTiering,
    /// `DEEP_ARCHIVE`: Glacier Deep Archive.
    DeepArchive,
    /// `GLACIER_IR`: Glacier Instant Retrieval.
    GlacierIr,
}

impl StorageClass {
    /// The storage class as S3 spells it (`x-amz-storage-class`), e.g. `STANDARD_IA`.
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

/// An Object Lock legal hold's status (`ON` or `OFF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LegalHoldStatus {
    /// `ON`: the object is under a legal hold.
    On,
    /// `OFF`: no legal hold.
    Off,
}

impl LegalHoldStatus {
    /// The status as S3 spells it: `ON` or `OFF`.
    pub fn as_str(self) -> &'static str {
        match self {
            LegalHoldStatus::On => "ON",
            LegalHoldStatus::Off => "OFF",
        }
    }
}

/// An Object Lock retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ObjectLockMode {
    /// `COMPLIANCE`: no user, root included, can delete the version or shorten its retention.
    Compliance,
    /// `GOVERNANCE`: users with `s3:BypassGovernanceRetention` may delete it or change retention.
    Governance,
}

impl ObjectLockMode {
    /// The mode as S3 spells it: `COMPLIANCE` or `GOVERNANCE`.
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
    /// `CRC32`: 32-bit CRC.
    Crc32,
    /// `CRC32C`: 32-bit CRC with the Castagnoli polynomial.
    Crc32c,
    /// `SHA1`: SHA-1 digest.
    Sha1,
    /// `SHA256`: SHA-256 digest.
    Sha256,
    /// `CRC64NVME`: 64-bit CRC with the NVMe polynomial.
    Crc64nvme,
}

impl ChecksumAlgorithm {
    /// The algorithm as S3 spells it (`x-amz-checksum-algorithm`), e.g. `CRC32C`.
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
