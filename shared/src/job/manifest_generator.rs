//! The `ManifestGenerator` member of a CreateJob request (S3 Control's
//! `S3JobManifestGenerator`): its fields and the checks S3 Control makes at creation. Running the
//! listing it describes is the generator module's.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The only `ManifestFormat` S3 Control accepts for a generated manifest.
pub const GENERATED_MANIFEST_FORMAT: &str = "S3InventoryReport_CSV_20211130";

/// Storage classes `MatchAnyStorageClass` accepts (S3 Control's `S3StorageClass`).
const STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "GLACIER",
    "INTELLIGENT_TIERING",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
];

/// Replication statuses `ObjectReplicationStatuses` accepts.
pub const REPLICATION_STATUSES: &[&str] = &["COMPLETED", "FAILED", "REPLICA", "NONE"];

/// `ManifestGenerator` of a CreateJob request: a union with one member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestGenerator {
    /// `S3JobManifestGenerator`: list a bucket and select objects with filters.
    #[serde(rename = "S3JobManifestGenerator")]
    pub s3_job_manifest_generator: S3JobManifestGenerator,
}

/// S3 Control's `S3JobManifestGenerator`: the job's tasks are the objects of `SourceBucket`
/// that pass `Filter`, found by listing the bucket when the job is prepared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct S3JobManifestGenerator {
    /// Owner of the source bucket; sent with the listing so S3 refuses another owner's bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_bucket_owner: Option<String>,
    /// ARN of the bucket to list (`arn:aws:s3:::bucket`).
    pub source_bucket: String,
    /// `ManifestOutputLocation`: where to write the generated manifest; required when
    /// `EnableManifestOutput` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_output_location: Option<S3ManifestOutputLocation>,
    /// `Filter`: which listed objects become tasks; `None` takes every object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<JobManifestGeneratorFilter>,
    /// `EnableManifestOutput`: write the selected objects as a manifest to
    /// `ManifestOutputLocation`.
    pub enable_manifest_output: bool,
}

/// S3 Control's `S3ManifestOutputLocation`: where and how a generated manifest is written
/// (under `<ManifestPrefix>/job-<job id>/` in `Bucket`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct S3ManifestOutputLocation {
    /// `ExpectedManifestBucketOwner`: 12-digit account id sent as `x-amz-expected-bucket-owner`
    /// with the writes; `None` sends none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_manifest_bucket_owner: Option<String>,
    /// ARN of the bucket the generated manifest goes to.
    pub bucket: String,
    /// `ManifestPrefix`: key prefix of the manifest's files, 1 to 512 characters; `None`: they
    /// go under `job-<job id>/` at the bucket's root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_prefix: Option<String>,
    /// `ManifestEncryption`: server-side encryption for the manifest's files; `None` leaves
    /// the bucket's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_encryption: Option<GeneratedManifestEncryption>,
    /// `ManifestFormat`: must be `S3InventoryReport_CSV_20211130` ([`GENERATED_MANIFEST_FORMAT`]).
    pub manifest_format: String,
}

/// S3 Control's `GeneratedManifestEncryption`: exactly one of SSE-S3 and SSE-KMS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratedManifestEncryption {
    /// `SSES3`: encrypt with S3-managed keys.
    #[serde(rename = "SSES3", default, skip_serializing_if = "Option::is_none")]
    pub sse_s3: Option<SseS3Encryption>,
    /// `SSEKMS`: encrypt with a KMS key.
    #[serde(rename = "SSEKMS", default, skip_serializing_if = "Option::is_none")]
    pub sse_kms: Option<SseKmsEncryption>,
}

/// S3 Control's `SSES3Encryption`: an empty object, `{}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SseS3Encryption {}

/// S3 Control's `SSEKMSEncryption`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SseKmsEncryption {
    /// `KeyId`: the KMS key (id or ARN) to encrypt with; required, not blank.
    pub key_id: String,
}

/// `JobManifestGeneratorFilter`. Every filter given must hold for an object to be selected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct JobManifestGeneratorFilter {
    /// `true`: only objects that an enabled rule of the source bucket's replication
    /// configuration takes (`false` filters nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eligible_for_replication: Option<bool>,
    /// `CreatedAfter`: only objects last modified strictly after this.
    #[serde(
        default,
        with = "super::timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_after: Option<DateTime<Utc>>,
    /// `CreatedBefore`: only objects last modified strictly before this.
    #[serde(
        default,
        with = "super::timestamp",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_before: Option<DateTime<Utc>>,
    /// COMPLETED, FAILED, REPLICA or NONE (no replication status), from each object's HEAD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_replication_statuses: Option<Vec<String>>,
    /// `KeyNameConstraint`: conditions on the object's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name_constraint: Option<KeyNameConstraint>,
    /// `ObjectSizeGreaterThanBytes`: only objects larger than this many bytes (0 or more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_size_greater_than_bytes: Option<i64>,
    /// `ObjectSizeLessThanBytes`: only objects smaller than this many bytes (0 or more).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_size_less_than_bytes: Option<i64>,
    /// `MatchAnyStorageClass`: only objects in one of these storage classes (e.g.
    /// `STANDARD_IA`); an object the listing gives no class counts as `STANDARD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_any_storage_class: Option<Vec<String>>,
    /// From each object's HEAD (see `crate::generator::details`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_any_object_encryption: Option<Vec<ObjectEncryptionFilter>>,
}

/// S3 Control's `KeyNameConstraint`: each list given must match (by any one of its
/// strings) for an object to be selected. Strings are 1 to 1024 characters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct KeyNameConstraint {
    /// `MatchAnyPrefix`: the key starts with one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_any_prefix: Option<Vec<String>>,
    /// `MatchAnySuffix`: the key ends with one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_any_suffix: Option<Vec<String>>,
    /// `MatchAnySubstring`: the key contains one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_any_substring: Option<Vec<String>>,
}

/// S3 Control's `ObjectEncryptionFilter`: exactly one member.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectEncryptionFilter {
    /// `SSES3`: objects encrypted with S3-managed keys.
    #[serde(rename = "SSES3", default, skip_serializing_if = "Option::is_none")]
    pub sse_s3: Option<NoParameters>,
    /// `SSEKMS`: objects encrypted with SSE-KMS, optionally with a given key or Bucket Key.
    #[serde(rename = "SSEKMS", default, skip_serializing_if = "Option::is_none")]
    pub sse_kms: Option<SseKmsFilter>,
    /// `DSSEKMS`: objects encrypted with dual-layer SSE-KMS, optionally with a given key.
    #[serde(rename = "DSSEKMS", default, skip_serializing_if = "Option::is_none")]
    pub dsse_kms: Option<DsseKmsFilter>,
    /// `SSEC`: objects encrypted with a customer-provided key.
    #[serde(rename = "SSEC", default, skip_serializing_if = "Option::is_none")]
    pub sse_c: Option<NoParameters>,
    /// `NOTSSE`: objects without server-side encryption.
    #[serde(rename = "NOTSSE", default, skip_serializing_if = "Option::is_none")]
    pub not_sse: Option<NoParameters>,
}

/// An encryption filter member that takes no parameters: an empty object, `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParameters {}

/// S3 Control's `SSEKMSFilter`: which SSE-KMS objects match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SseKmsFilter {
    /// `KmsKeyArn`: only objects encrypted with this key (by ARN or id); `None`: any key.
    #[serde(rename = "KmsKeyArn", default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    /// `BucketKeyEnabled`: only objects whose Bucket Key use is this; `None`: either.
    #[serde(
        rename = "BucketKeyEnabled",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub bucket_key_enabled: Option<bool>,
}

/// S3 Control's `DSSEKMSFilter`: which DSSE-KMS objects match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DsseKmsFilter {
    /// `KmsKeyArn`: only objects encrypted with this key (by ARN or id); `None`: any key.
    #[serde(rename = "KmsKeyArn", default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
}

impl ObjectEncryptionFilter {
    /// How many members are given (S3 takes exactly one).
    pub fn members(&self) -> usize {
        [
            self.sse_s3.is_some(),
            self.sse_kms.is_some(),
            self.dsse_kms.is_some(),
            self.sse_c.is_some(),
            self.not_sse.is_some(),
        ]
        .into_iter()
        .filter(|given| *given)
        .count()
    }
}

impl ManifestGenerator {
    /// Parses and validates the `ManifestGenerator` member of a CreateJob request.
    pub fn parse(value: &serde_json::Value) -> Result<Self> {
        let generator: ManifestGenerator = serde_json::from_value(value.clone())
            .map_err(|e| Error::InvalidRequest(format!("ManifestGenerator: {e}")))?;
        generator.s3_job_manifest_generator.validate()?;
        Ok(generator)
    }
}

/// Checks a CreateJob request's `ManifestGenerator`: the control plane calls this before it
/// accepts the job, so a bad generator is refused at creation rather than in Preparing.
pub fn validate(generator: &serde_json::Value) -> Result<()> {
    ManifestGenerator::parse(generator).map(|_| ())
}

const FIELD: &str = "ManifestGenerator.S3JobManifestGenerator";

fn invalid(reason: String) -> Error {
    Error::InvalidRequest(format!("{FIELD}.{reason}"))
}

impl S3JobManifestGenerator {
    /// Checks the generator as S3 Control does at CreateJob: bucket ARNs, account ids, the filter
    /// and the output location. Fails with `Error::InvalidRequest` naming the bad field.
    pub fn validate(&self) -> Result<()> {
        bucket_name(&self.source_bucket, "SourceBucket")?;
        if let Some(owner) = &self.expected_bucket_owner {
            account_id(owner, "ExpectedBucketOwner")?;
        }
        if let Some(filter) = &self.filter {
            filter.validate()?;
        }
        match (&self.manifest_output_location, self.enable_manifest_output) {
            (Some(location), _) => location.validate()?,
            (None, true) => {
                return Err(invalid(
                    "ManifestOutputLocation is required when EnableManifestOutput is true".into(),
                ))
            }
            (None, false) => {}
        }
        Ok(())
    }

    /// The name of the bucket to list.
    pub fn source_bucket_name(&self) -> Result<String> {
        bucket_name(&self.source_bucket, "SourceBucket")
    }
}

impl S3ManifestOutputLocation {
    fn validate(&self) -> Result<()> {
        bucket_name(&self.bucket, "ManifestOutputLocation.Bucket")?;
        if let Some(owner) = &self.expected_manifest_bucket_owner {
            account_id(owner, "ManifestOutputLocation.ExpectedManifestBucketOwner")?;
        }
        if self.manifest_format != GENERATED_MANIFEST_FORMAT {
            return Err(invalid(format!(
                "ManifestOutputLocation.ManifestFormat must be {GENERATED_MANIFEST_FORMAT}, got {:?}",
                self.manifest_format
            )));
        }
        if let Some(prefix) = &self.manifest_prefix {
            if prefix.is_empty() || prefix.len() > 512 {
                return Err(invalid(
                    "ManifestOutputLocation.ManifestPrefix must be 1 to 512 characters".into(),
                ));
            }
        }
        if let Some(encryption) = &self.manifest_encryption {
            match (&encryption.sse_s3, &encryption.sse_kms) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(invalid(
                        "ManifestOutputLocation.ManifestEncryption must give exactly one of SSES3 and SSEKMS".into(),
                    ))
                }
                (None, Some(kms)) if kms.key_id.trim().is_empty() => {
                    return Err(invalid(
                        "ManifestOutputLocation.ManifestEncryption.SSEKMS.KeyId is required".into(),
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Where a job's generated manifest goes: `<ManifestPrefix>/job-<job id>/`.
    pub(crate) fn job_prefix(&self, job_id: &str) -> String {
        match self
            .manifest_prefix
            .as_deref()
            .map(|p| p.trim_end_matches('/'))
        {
            Some(prefix) if !prefix.is_empty() => format!("{prefix}/job-{job_id}/"),
            _ => format!("job-{job_id}/"),
        }
    }

    /// Key of the generated manifest's manifest.json for a job.
    pub fn manifest_key(&self, job_id: &str) -> String {
        format!("{}manifest.json", self.job_prefix(job_id))
    }

    /// Key of its data file.
    pub fn data_key(&self, job_id: &str) -> String {
        format!("{}data/{job_id}.csv.gz", self.job_prefix(job_id))
    }
}

impl JobManifestGeneratorFilter {
    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(filters) = &self.match_any_object_encryption {
            if filters.is_empty() {
                return Err(invalid(
                    "Filter.MatchAnyObjectEncryption must hold at least one encryption type".into(),
                ));
            }
            if filters.iter().any(|f| f.members() != 1) {
                return Err(invalid(
                    "Filter.MatchAnyObjectEncryption: each entry names exactly one of SSES3, SSEKMS, DSSEKMS, SSEC, NOTSSE".into(),
                ));
            }
        }
        if let Some(statuses) = &self.object_replication_statuses {
            if statuses.is_empty() {
                return Err(invalid(
                    "Filter.ObjectReplicationStatuses must name at least one status".into(),
                ));
            }
            if let Some(bad) = statuses
                .iter()
                .find(|s| !REPLICATION_STATUSES.contains(&s.as_str()))
            {
                return Err(invalid(format!(
                    "Filter.ObjectReplicationStatuses: {bad:?} is not one of {}",
                    REPLICATION_STATUSES.join(", ")
                )));
            }
        }
        for (name, value) in [
            (
                "ObjectSizeGreaterThanBytes",
                self.object_size_greater_than_bytes,
            ),
            ("ObjectSizeLessThanBytes", self.object_size_less_than_bytes),
        ] {
            if value.is_some_and(|v| v < 0) {
                return Err(invalid(format!("Filter.{name} must be 0 or greater")));
            }
        }
        if let Some(classes) = &self.match_any_storage_class {
            if classes.is_empty() {
                return Err(invalid(
                    "Filter.MatchAnyStorageClass must name at least one storage class".into(),
                ));
            }
            if let Some(bad) = classes
                .iter()
                .find(|c| !STORAGE_CLASSES.contains(&c.as_str()))
            {
                return Err(invalid(format!(
                    "Filter.MatchAnyStorageClass: {bad:?} is not one of {}",
                    STORAGE_CLASSES.join(", ")
                )));
            }
        }
        if let Some(constraint) = &self.key_name_constraint {
            for (name, list) in [
                ("MatchAnyPrefix", &constraint.match_any_prefix),
                ("MatchAnySuffix", &constraint.match_any_suffix),
                ("MatchAnySubstring", &constraint.match_any_substring),
            ] {
                let Some(list) = list else { continue };
                if list.is_empty() {
                    return Err(invalid(format!(
                        "Filter.KeyNameConstraint.{name} must hold at least one string"
                    )));
                }
                if list.iter().any(|s| s.is_empty() || s.len() > 1024) {
                    return Err(invalid(format!(
                        "Filter.KeyNameConstraint.{name}: every string must be 1 to 1024 characters"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Whether an object's HEAD is needed: the filters a listing cannot answer.
    pub fn needs_lookup(&self) -> bool {
        self.match_any_object_encryption.is_some()
            || self.object_replication_statuses.is_some()
            || self.eligible_for_replication == Some(true)
    }

    /// The listing prefix S3 can apply for us: only when exactly one prefix is asked for.
    pub fn listing_prefix(&self) -> Option<String> {
        match self
            .key_name_constraint
            .as_ref()
            .and_then(|k| k.match_any_prefix.as_deref())
        {
            Some([prefix]) => Some(prefix.clone()),
            _ => None,
        }
    }
}

/// Takes a bucket ARN (`arn:aws:s3:::bucket`); a bare name is accepted too.
pub(crate) fn bucket_name(arn: &str, field: &str) -> Result<String> {
    let name = match arn.split_once(":s3:::") {
        Some((partition, name)) if partition.starts_with("arn:") => name,
        Some(_) => "",
        None if arn.starts_with("arn:") => "",
        None => arn,
    };
    let valid = (3..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    if !valid {
        return Err(invalid(format!(
            "{field} {arn:?} is not a bucket ARN like arn:aws:s3:::my-bucket"
        )));
    }
    Ok(name.to_string())
}

fn account_id(id: &str, field: &str) -> Result<()> {
    if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(invalid(format!(
            "{field} {id:?} is not a 12-digit AWS account ID"
        )))
    }
}
