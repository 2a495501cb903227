//! The job: the CreateJob request in S3 Control's JSON, the job's status machine, its progress and
//! the failure-threshold rule.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

use crate::error::{Error, Result};

pub const CSV_MANIFEST_FORMAT: &str = "S3BatchOperations_CSV_20180820";
pub const INVENTORY_CSV_FORMAT: &str = "S3InventoryReport_CSV_20161130";
pub const REPORT_FORMAT: &str = "Report_CSV_20180820";

/// A CreateJob request, exactly as `aws s3control create-job --cli-input-json` takes it.
/// Unknown fields are kept out on purpose: a typo in a field name must not pass silently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct CreateJobRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_required: Option<bool>,
    pub operation: JobOperation,
    pub report: JobReport,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_request_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<JobManifest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub priority: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<S3Tag>>,
    /// Builds the task list from a bucket listing instead of a manifest (`crate::generator`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_generator: Option<Value>,
    /// batchops' own settings of the job, beside S3 Control's fields (which stay unchanged).
    #[serde(rename = "BatchOps", default, skip_serializing_if = "Option::is_none")]
    pub batch_ops: Option<BatchOpsOptions>,
}

/// The `"BatchOps"` member of a job: what batchops does beyond S3 Batch Operations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct BatchOpsOptions {
    /// At most this many tasks start per second, across every executor (`crate::rate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tasks_per_second: Option<u32>,
}

/// The highest rate limit a job may set: above it, the limiter's own writes would cost more
/// than the limit saves.
pub const MAX_TASKS_PER_SECOND: u32 = 100_000;

/// Checks a job's rate limit (`field`: where it was given).
pub fn validate_rate(field: &str, rate: u32) -> Result<()> {
    if !(1..=MAX_TASKS_PER_SECOND).contains(&rate) {
        return Err(Error::InvalidRequest(format!(
            "{field} must be between 1 and {MAX_TASKS_PER_SECOND} tasks per second, got {rate}"
        )));
    }
    Ok(())
}

impl CreateJobRequest {
    /// Parses a request and checks what serde cannot: one supported operation, a manifest, a
    /// report destination when the report is enabled.
    pub fn parse(json: &str) -> Result<Self> {
        // Editors on Windows save JSON with a byte order mark; it is not part of the document.
        let json = json.strip_prefix('\u{feff}').unwrap_or(json);
        let value: Value = serde_json::from_str(json)
            .map_err(|e| Error::InvalidRequest(format!("cannot parse CreateJob JSON: {e}")))?;
        if !value.is_object() {
            return Err(Error::InvalidRequest(format!(
                "the CreateJob JSON must be an object (with Operation, Manifest, Report, ...), got {}",
                json_kind(&value)
            )));
        }
        serde_json::from_value(value)
            .map_err(|e| Error::InvalidRequest(format!("CreateJob JSON: {e}")))
    }

    pub fn validate(&self) -> Result<()> {
        match (&self.manifest, &self.manifest_generator) {
            (Some(manifest), None) => manifest.validate()?,
            (None, Some(generator)) => crate::generator::validate(generator)?,
            (Some(_), Some(_)) => {
                return Err(Error::InvalidRequest(
                    "give either Manifest or ManifestGenerator, not both".into(),
                ))
            }
            (None, None) => {
                return Err(Error::InvalidRequest(
                    "a Manifest or a ManifestGenerator is required".into(),
                ))
            }
        }
        self.operation.validate()?;
        self.operation
            .check_confirmation(self.confirmation_required.unwrap_or(false))?;
        self.report.validate()?;
        validate_role_arn(self.role_arn.as_deref())?;
        if let Some(description) = &self.description {
            let chars = description.chars().count();
            if chars > MAX_DESCRIPTION_CHARS {
                return Err(Error::InvalidRequest(format!(
                    "Description has {chars} characters; S3 allows at most {MAX_DESCRIPTION_CHARS}"
                )));
            }
        }
        if let Some(tags) = &self.tags {
            validate_job_tags(tags)?;
        }
        if self.priority < 0 {
            return Err(Error::InvalidRequest(format!(
                "Priority must be 0 or greater, got {}",
                self.priority
            )));
        }
        if let Some(rate) = self.batch_ops.as_ref().and_then(|b| b.max_tasks_per_second) {
            validate_rate("BatchOps.MaxTasksPerSecond", rate)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct S3Tag {
    pub key: String,
    pub value: String,
}

/// The operation of a job. S3 Control's JSON is an object with exactly one member named after the
/// operation; batchops refuses names it cannot run with a message that says why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Map<String, Value>", into = "Map<String, Value>")]
pub enum JobOperation {
    LambdaInvoke(LambdaInvokeOperation),
    /// Boxed: by far the largest operation, and jobs are moved around whole.
    S3PutObjectCopy(Box<CopyObjectOperation>),
    S3PutObjectAcl(SetObjectAclOperation),
    S3PutObjectTagging(PutObjectTaggingOperation),
    S3DeleteObjectTagging(DeleteObjectTaggingOperation),
    S3InitiateRestoreObject(InitiateRestoreObjectOperation),
    S3PutObjectLegalHold(SetObjectLegalHoldOperation),
    S3PutObjectRetention(SetObjectRetentionOperation),
    S3ComputeObjectChecksum(ComputeObjectChecksumOperation),
    S3UpdateObjectEncryption(UpdateObjectEncryptionOperation),
    /// A batchops extension: S3 Batch Operations has no delete operation.
    S3DeleteObject(DeleteObjectOperation),
}

/// Every operation name S3 Control knows, plus batchops' own `S3DeleteObject`.
const KNOWN_OPERATIONS: &[&str] = &[
    "LambdaInvoke",
    "S3PutObjectCopy",
    "S3PutObjectAcl",
    "S3PutObjectTagging",
    "S3DeleteObjectTagging",
    "S3InitiateRestoreObject",
    "S3PutObjectLegalHold",
    "S3PutObjectRetention",
    "S3ReplicateObject",
    "S3ComputeObjectChecksum",
    "S3UpdateObjectEncryption",
    "S3DeleteObject",
];
const SUPPORTED_OPERATIONS: &[&str] = &[
    "LambdaInvoke",
    "S3PutObjectCopy",
    "S3PutObjectAcl",
    "S3PutObjectTagging",
    "S3DeleteObjectTagging",
    "S3InitiateRestoreObject",
    "S3PutObjectLegalHold",
    "S3PutObjectRetention",
    "S3ComputeObjectChecksum",
    "S3UpdateObjectEncryption",
    "S3DeleteObject",
];

/// Why S3ReplicateObject is refused: it is not an API call batchops could make per object.
pub const REPLICATE_OBJECT_REFUSAL: &str = "operation S3ReplicateObject is not supported by batchops: Batch Replication runs inside S3's replication engine (it needs the bucket's replication configuration and S3's internal replication of versions, delete markers and metadata), which no public API exposes. Use S3 Batch Replication in S3 itself, or S3PutObjectCopy to copy the objects to another bucket";

impl JobOperation {
    pub fn name(&self) -> &'static str {
        match self {
            JobOperation::LambdaInvoke(_) => "LambdaInvoke",
            JobOperation::S3PutObjectCopy(_) => "S3PutObjectCopy",
            JobOperation::S3PutObjectAcl(_) => "S3PutObjectAcl",
            JobOperation::S3PutObjectTagging(_) => "S3PutObjectTagging",
            JobOperation::S3DeleteObjectTagging(_) => "S3DeleteObjectTagging",
            JobOperation::S3InitiateRestoreObject(_) => "S3InitiateRestoreObject",
            JobOperation::S3PutObjectLegalHold(_) => "S3PutObjectLegalHold",
            JobOperation::S3PutObjectRetention(_) => "S3PutObjectRetention",
            JobOperation::S3ComputeObjectChecksum(_) => "S3ComputeObjectChecksum",
            JobOperation::S3UpdateObjectEncryption(_) => "S3UpdateObjectEncryption",
            JobOperation::S3DeleteObject(_) => "S3DeleteObject",
        }
    }

    pub fn validate(&self) -> Result<()> {
        match self {
            JobOperation::LambdaInvoke(op) => op.validate(),
            JobOperation::S3PutObjectCopy(op) => op.validate(),
            JobOperation::S3PutObjectAcl(op) => op.validate(),
            JobOperation::S3PutObjectTagging(op) => op.validate(),
            JobOperation::S3DeleteObjectTagging(_) => Ok(()),
            JobOperation::S3InitiateRestoreObject(op) => op.validate(),
            JobOperation::S3PutObjectLegalHold(_) => Ok(()),
            JobOperation::S3PutObjectRetention(op) => op.validate(),
            JobOperation::S3ComputeObjectChecksum(op) => op.validate(),
            JobOperation::S3UpdateObjectEncryption(op) => op.validate(),
            JobOperation::S3DeleteObject(_) => Ok(()),
        }
    }

    /// Operations that destroy data run only in jobs that wait for a person to confirm them.
    pub fn check_confirmation(&self, confirmation_required: bool) -> Result<()> {
        match self {
            JobOperation::S3DeleteObject(_) if !confirmation_required => {
                Err(Error::InvalidRequest(
                    "Operation S3DeleteObject deletes objects: it is accepted only with \"ConfirmationRequired\": true, so that the job waits for confirmation (batchops update-job-status --requested-job-status Ready) before it deletes anything".into(),
                ))
            }
            _ => Ok(()),
        }
    }
}

impl TryFrom<Map<String, Value>> for JobOperation {
    type Error = String;

    fn try_from(map: Map<String, Value>) -> std::result::Result<Self, String> {
        let mut entries = map.into_iter();
        let (name, body) = match (entries.next(), entries.next()) {
            (Some(entry), None) => entry,
            (None, _) => return Err("Operation must name exactly one operation, found none".into()),
            (Some((a, _)), Some((b, _))) => {
                return Err(format!(
                    "Operation must name exactly one operation, found {a} and {b}"
                ))
            }
        };
        use serde_json::from_value;
        let parsed = match name.as_str() {
            "LambdaInvoke" => from_value(body).map(JobOperation::LambdaInvoke),
            "S3PutObjectCopy" => from_value(body).map(JobOperation::S3PutObjectCopy),
            "S3PutObjectAcl" => from_value(body).map(JobOperation::S3PutObjectAcl),
            "S3PutObjectTagging" => from_value(body).map(JobOperation::S3PutObjectTagging),
            "S3DeleteObjectTagging" => from_value(body).map(JobOperation::S3DeleteObjectTagging),
            "S3InitiateRestoreObject" => {
                from_value(body).map(JobOperation::S3InitiateRestoreObject)
            }
            "S3PutObjectLegalHold" => from_value(body).map(JobOperation::S3PutObjectLegalHold),
            "S3PutObjectRetention" => from_value(body).map(JobOperation::S3PutObjectRetention),
            "S3ComputeObjectChecksum" => {
                from_value(body).map(JobOperation::S3ComputeObjectChecksum)
            }
            "S3UpdateObjectEncryption" => {
                from_value(body).map(JobOperation::S3UpdateObjectEncryption)
            }
            "S3DeleteObject" => from_value(body).map(JobOperation::S3DeleteObject),
            "S3ReplicateObject" => return Err(REPLICATE_OBJECT_REFUSAL.into()),
            other if KNOWN_OPERATIONS.contains(&other) => {
                return Err(format!(
                    "operation {other} is not supported by batchops yet; supported operations: {}",
                    SUPPORTED_OPERATIONS.join(", ")
                ))
            }
            other => {
                return Err(format!(
                    "unknown operation {other}; supported operations: {}",
                    SUPPORTED_OPERATIONS.join(", ")
                ))
            }
        };
        parsed.map_err(|e| format!("Operation.{name}: {e}"))
    }
}

impl From<JobOperation> for Map<String, Value> {
    fn from(op: JobOperation) -> Self {
        let name = op.name().to_string();
        let body = match op {
            JobOperation::LambdaInvoke(o) => serde_json::to_value(o),
            JobOperation::S3PutObjectCopy(o) => serde_json::to_value(o),
            JobOperation::S3PutObjectAcl(o) => serde_json::to_value(o),
            JobOperation::S3PutObjectTagging(o) => serde_json::to_value(o),
            JobOperation::S3DeleteObjectTagging(o) => serde_json::to_value(o),
            JobOperation::S3InitiateRestoreObject(o) => serde_json::to_value(o),
            JobOperation::S3PutObjectLegalHold(o) => serde_json::to_value(o),
            JobOperation::S3PutObjectRetention(o) => serde_json::to_value(o),
            JobOperation::S3ComputeObjectChecksum(o) => serde_json::to_value(o),
            JobOperation::S3UpdateObjectEncryption(o) => serde_json::to_value(o),
            JobOperation::S3DeleteObject(o) => serde_json::to_value(o),
        }
        .unwrap_or(Value::Object(Map::new()));
        let mut map = Map::new();
        map.insert(name, body);
        map
    }
}

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

    fn validate(&self) -> Result<()> {
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
    fn validate(&self) -> Result<()> {
        validate_tags("Operation.S3PutObjectTagging.TagSet", &self.tag_set)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteObjectTaggingOperation {}

/// Timestamps of S3 Control requests: an ISO 8601 string (what the API returns and most files
/// hold) or epoch seconds (what the AWS CLI also accepts).
mod timestamp {
    use chrono::{DateTime, TimeZone, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Seconds(f64),
    }

    pub fn serialize<S: Serializer>(
        value: &Option<DateTime<Utc>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(date) => {
                s.serialize_str(&date.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            }
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        use serde::de::Error;
        match Option::<Raw>::deserialize(d)? {
            None => Ok(None),
            Some(Raw::Text(text)) => DateTime::parse_from_rfc3339(&text)
                .map(|date| Some(date.with_timezone(&Utc)))
                .map_err(|e| {
                    D::Error::custom(format!("{text:?} is not an ISO 8601 timestamp: {e}"))
                }),
            Some(Raw::Seconds(secs)) => Utc
                .timestamp_millis_opt((secs * 1000.0) as i64)
                .single()
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("{secs} is not a valid epoch timestamp"))),
        }
    }
}

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
    #[serde(default, with = "timestamp", skip_serializing_if = "Option::is_none")]
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
    #[serde(default, with = "timestamp", skip_serializing_if = "Option::is_none")]
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
    #[serde(default, with = "timestamp", skip_serializing_if = "Option::is_none")]
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

    fn validate(&self) -> Result<()> {
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
    fn validate(&self, op: &str) -> Result<()> {
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
    #[serde(default, with = "timestamp", skip_serializing_if = "Option::is_none")]
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

/// S3 Control's `S3SetObjectAclOperation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct SetObjectAclOperation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_control_policy: Option<AccessControlPolicy>,
}

impl SetObjectAclOperation {
    fn validate(&self) -> Result<()> {
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
    fn validate(&self) -> Result<()> {
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
    #[serde(default, with = "timestamp", skip_serializing_if = "Option::is_none")]
    pub retain_until_date: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ObjectLockMode>,
}

impl SetObjectRetentionOperation {
    fn validate(&self) -> Result<()> {
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

    fn validate(&self) -> Result<()> {
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
fn is_kms_key_arn(arn: &str) -> bool {
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

    fn validate(&self) -> Result<()> {
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

/// S3 Control's limit on a job's Description.
pub const MAX_DESCRIPTION_CHARS: usize = 256;

/// What a JSON value is, for messages about the wrong kind of document.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// S3 Control requires the ARN of the IAM role the job's tasks run as:
/// `arn:<partition>:iam::<12-digit account>:role/<path/name>`.
fn validate_role_arn(role_arn: Option<&str>) -> Result<()> {
    let Some(arn) = role_arn else {
        return Err(Error::InvalidRequest(
            "RoleArn is required: the ARN of the IAM role the job's tasks run as (arn:aws:iam::ACCOUNT:role/NAME)".into(),
        ));
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let valid = matches!(
        parts.as_slice(),
        ["arn", partition, "iam", "", account, resource]
            if partition.starts_with("aws")
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource.strip_prefix("role/").is_some_and(|name| {
                    !name.is_empty()
                        && !name.ends_with('/')
                        && name.len() <= 512
                        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b))
                })
    ) && arn.len() <= 2048;
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidRequest(format!(
            "RoleArn {arn:?} is not the ARN of an IAM role (arn:aws:iam::ACCOUNT:role/NAME)"
        )))
    }
}

/// S3 Control's limits on a job's own tags: at most 50, keys 1 to 128 characters, values up to
/// 256, no key twice.
pub fn validate_job_tags(tags: &[S3Tag]) -> Result<()> {
    if tags.len() > 50 {
        return Err(Error::InvalidRequest(format!(
            "Tags has {} tags; S3 allows at most 50 per job",
            tags.len()
        )));
    }
    check_tag_entries("Tags", tags)
}

/// S3's object tag limits, checked once at creation instead of failing every task.
fn validate_tags(field: &str, tags: &[S3Tag]) -> Result<()> {
    if tags.len() > 10 {
        return Err(Error::InvalidRequest(format!(
            "{field} has {} tags; S3 allows at most 10",
            tags.len()
        )));
    }
    check_tag_entries(field, tags)
}

/// Each key 1 to 128 characters and given once, each value up to 256 characters.
fn check_tag_entries(field: &str, tags: &[S3Tag]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for tag in tags {
        if !seen.insert(tag.key.as_str()) {
            return Err(Error::InvalidRequest(format!(
                "{field}: tag key {:?} is given more than once; S3 refuses a tag set with a repeated key",
                tag.key
            )));
        }
        if tag.key.is_empty() || tag.key.chars().count() > 128 {
            return Err(Error::InvalidRequest(format!(
                "{field}: tag key {:?} must be 1 to 128 characters",
                tag.key
            )));
        }
        if tag.value.chars().count() > 256 {
            return Err(Error::InvalidRequest(format!(
                "{field}: tag value of key {:?} is longer than 256 characters",
                tag.key
            )));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct JobManifest {
    pub spec: ManifestSpec,
    pub location: ManifestLocation,
}

impl JobManifest {
    pub fn validate(&self) -> Result<()> {
        self.spec.validate()?;
        parse_object_arn(&self.location.object_arn)?;
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ManifestSpec {
    pub format: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
}

impl ManifestSpec {
    pub fn validate(&self) -> Result<()> {
        match self.format.as_str() {
            CSV_MANIFEST_FORMAT => {
                let fields = self.fields.as_deref().unwrap_or_default();
                let count = |name: &str| fields.iter().filter(|f| f.as_str() == name).count();
                if let Some(bad) = fields
                    .iter()
                    .find(|f| !matches!(f.as_str(), "Ignore" | "Bucket" | "Key" | "VersionId"))
                {
                    return Err(Error::InvalidRequest(format!(
                        "Manifest.Spec.Fields: {bad} is not one of Ignore, Bucket, Key, VersionId"
                    )));
                }
                if count("Bucket") != 1 || count("Key") != 1 || count("VersionId") > 1 {
                    return Err(Error::InvalidRequest(
                        "Manifest.Spec.Fields must name Bucket and Key once each (and VersionId at most once), e.g. [\"Bucket\", \"Key\"]".into(),
                    ));
                }
                Ok(())
            }
            INVENTORY_CSV_FORMAT => Ok(()),
            other => Err(Error::InvalidRequest(format!(
                "Manifest.Spec.Format {other} is not supported; use {CSV_MANIFEST_FORMAT} or {INVENTORY_CSV_FORMAT}"
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ManifestLocation {
    pub object_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_version_id: Option<String>,
    #[serde(rename = "ETag", default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// Splits `arn:aws:s3:::bucket/key` into bucket and key.
pub fn parse_object_arn(arn: &str) -> Result<(String, String)> {
    let rest = arn
        .strip_prefix("arn:aws:s3:::")
        .or_else(|| arn.split_once(":s3:::").map(|(_, r)| r))
        .ok_or_else(|| {
            Error::InvalidRequest(format!(
                "{arn:?} is not an S3 object ARN (arn:aws:s3:::bucket/key)"
            ))
        })?;
    match rest.split_once('/') {
        Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
            Ok((bucket.to_string(), key.to_string()))
        }
        _ => Err(Error::InvalidRequest(format!(
            "{arn:?} is not an S3 object ARN (arn:aws:s3:::bucket/key)"
        ))),
    }
}

/// Takes a bucket ARN (`arn:aws:s3:::bucket`) or a plain bucket name.
pub fn bucket_from_arn(arn: &str) -> String {
    arn.rsplit(":::").next().unwrap_or(arn).to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct JobReport {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_scope: Option<ReportScope>,
    /// Sent with every write of the report (and its preflight): S3 refuses it with 403 when the
    /// bucket belongs to another account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_bucket_owner: Option<String>,
}

impl JobReport {
    fn validate(&self) -> Result<()> {
        if !self.enabled {
            return Ok(());
        }
        if self.bucket.as_deref().unwrap_or("").is_empty() {
            return Err(Error::InvalidRequest(
                "Report.Bucket is required when Report.Enabled is true".into(),
            ));
        }
        match self.format.as_deref() {
            None | Some(REPORT_FORMAT) => {}
            Some(other) => {
                return Err(Error::InvalidRequest(format!(
                    "Report.Format {other} is not supported; use {REPORT_FORMAT}"
                )))
            }
        }
        Ok(())
    }

    pub fn scope(&self) -> ReportScope {
        self.report_scope.unwrap_or(ReportScope::AllTasks)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportScope {
    AllTasks,
    FailedTasksOnly,
}

/// Job statuses, spelled as S3 Control spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobStatus {
    New,
    Preparing,
    Suspended,
    Ready,
    Active,
    Pausing,
    Paused,
    Complete,
    Cancelling,
    Cancelled,
    Failing,
    Failed,
}

pub const ALL_STATUSES: &[JobStatus] = &[
    JobStatus::New,
    JobStatus::Preparing,
    JobStatus::Suspended,
    JobStatus::Ready,
    JobStatus::Active,
    JobStatus::Pausing,
    JobStatus::Paused,
    JobStatus::Complete,
    JobStatus::Cancelling,
    JobStatus::Cancelled,
    JobStatus::Failing,
    JobStatus::Failed,
];

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::New => "New",
            JobStatus::Preparing => "Preparing",
            JobStatus::Suspended => "Suspended",
            JobStatus::Ready => "Ready",
            JobStatus::Active => "Active",
            JobStatus::Pausing => "Pausing",
            JobStatus::Paused => "Paused",
            JobStatus::Complete => "Complete",
            JobStatus::Cancelling => "Cancelling",
            JobStatus::Cancelled => "Cancelled",
            JobStatus::Failing => "Failing",
            JobStatus::Failed => "Failed",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        ALL_STATUSES
            .iter()
            .copied()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| Error::InvalidRequest(format!("unknown job status {s:?}")))
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Complete | JobStatus::Cancelled | JobStatus::Failed
        )
    }

    /// Batches of a job in these states are not run: their tasks are counted as not run.
    pub fn stops_execution(self) -> bool {
        matches!(
            self,
            JobStatus::Cancelling | JobStatus::Cancelled | JobStatus::Failing | JobStatus::Failed
        )
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one place that says which status changes are allowed.
pub fn can_transition(from: JobStatus, to: JobStatus) -> bool {
    use JobStatus::*;
    matches!(
        (from, to),
        (New, Preparing)
            | (New, Failed)
            | (New, Cancelled)
            | (Preparing, Suspended)
            | (Preparing, Ready)
            | (Preparing, Active)
            | (Preparing, Failed)
            | (Preparing, Cancelling)
            | (Preparing, Cancelled)
            | (Suspended, Ready)
            | (Suspended, Cancelled)
            // S3 fails a job left awaiting confirmation for 30 days.
            | (Suspended, Failed)
            | (Ready, Active)
            | (Ready, Cancelling)
            | (Ready, Cancelled)
            | (Ready, Failed)
            | (Active, Complete)
            | (Active, Cancelling)
            | (Active, Failing)
            | (Active, Failed)
            | (Active, Pausing)
            | (Pausing, Paused)
            | (Paused, Active)
            | (Pausing, Cancelling)
            | (Paused, Cancelling)
            | (Cancelling, Cancelled)
            | (Failing, Failed)
    )
}

pub fn check_transition(job_id: &str, from: JobStatus, to: JobStatus) -> Result<()> {
    if can_transition(from, to) {
        Ok(())
    } else {
        Err(Error::InvalidTransition {
            job_id: job_id.to_string(),
            from: from.to_string(),
            to: to.to_string(),
        })
    }
}

/// S3 Batch Operations' failure threshold: after the first 1,000 tasks, a job whose failure rate
/// exceeds 50% is stopped.
pub const FAILURE_THRESHOLD_MIN_TASKS: u64 = 1000;

pub fn failure_threshold_exceeded(succeeded: u64, failed: u64) -> bool {
    let done = succeeded + failed;
    done >= FAILURE_THRESHOLD_MIN_TASKS && failed * 2 > done
}

pub const THRESHOLD_FAILURE_CODE: &str = "TaskFailureThresholdExceeded";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FailureReason {
    pub failure_code: String,
    pub failure_reason: String,
}

/// Progress counters, kept in the job record and updated only by batch commits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Known once the manifest has been read through.
    pub total_tasks: Option<u64>,
    pub succeeded: u64,
    pub failed: u64,
    /// Tasks of batches that were not run (job cancelled or failing).
    pub not_run: u64,
    /// Known once planning is complete.
    pub batches_planned: Option<u64>,
    pub batches_committed: u64,
}

impl Progress {
    /// True when planning is finished and every planned batch has committed.
    pub fn all_batches_committed(&self) -> bool {
        self.batches_planned
            .is_some_and(|planned| self.batches_committed >= planned)
    }
}

/// A job as stored: the request that made it plus everything that happened since.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub job_id: String,
    pub request: CreateJobRequest,
    pub status: JobStatus,
    pub priority: i32,
    pub creation_time: DateTime<Utc>,
    pub termination_date: Option<DateTime<Utc>>,
    pub suspended_date: Option<DateTime<Utc>>,
    pub active_since: Option<DateTime<Utc>>,
    pub elapsed_active_seconds: i64,
    pub status_update_reason: Option<String>,
    pub failure_reasons: Vec<FailureReason>,
    pub progress: Progress,
    pub finalize_sent: bool,
    /// The job's own tags (S3 Control's job tagging): the request's `Tags` at first, replaced by
    /// PutJobTagging and emptied by DeleteJobTagging. The request itself keeps what was asked,
    /// so that a repeated CreateJob with the same token still compares equal.
    pub tags: Vec<S3Tag>,
    /// At most this many tasks start per second (`crate::rate`): the request's
    /// `BatchOps.MaxTasksPerSecond` at first, changed by `update-job-rate`; `None`: no limit.
    pub max_tasks_per_second: Option<u32>,
    /// Bookkeeping that is not part of S3's view of a job.
    pub tracking: JobTracking,
}

/// When things last happened to a job: what the sweeper reads to tell a stuck job from a busy one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobTracking {
    /// When the finalize request was last sent (claimed).
    pub finalize_at: Option<DateTime<Utc>>,
    /// The last batch commit or planning checkpoint.
    pub last_progress_at: Option<DateTime<Utc>>,
    /// What the job is planned from, fixed by the first read.
    pub source: Option<JobSource>,
}

/// What a job's tasks are read from, fixed the first time planning reads it: the manifest with
/// its pin (ETag and version), or, for a manifest generator, the CSV manifest its listing was
/// written to (listed once; later reads and continuations use that file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobSource {
    pub manifest: JobManifest,
    pub pin: crate::manifest::ManifestPin,
    /// The number of tasks, when the source says it (a generator's listing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<u64>,
}

impl Job {
    pub fn manifest(&self) -> Result<&JobManifest> {
        self.request
            .manifest
            .as_ref()
            .ok_or_else(|| Error::InvalidRequest(format!("job {} has no manifest", self.job_id)))
    }

    pub fn confirmation_required(&self) -> bool {
        self.request.confirmation_required.unwrap_or(false)
    }

    pub fn job_arn(&self) -> String {
        format!(
            "arn:aws:s3:{}:{}:job/{}",
            std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into()),
            self.request.account_id.as_deref().unwrap_or("000000000000"),
            self.job_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAGGING_JOB: &str = r#"{
        "AccountId": "123456789012",
        "ConfirmationRequired": false,
        "Operation": {"S3PutObjectTagging": {"TagSet": [{"Key": "project", "Value": "x"}]}},
        "Report": {"Bucket": "arn:aws:s3:::reports", "Format": "Report_CSV_20180820",
                   "Enabled": true, "Prefix": "batch", "ReportScope": "AllTasks"},
        "ClientRequestToken": "token-1",
        "Manifest": {"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
                     "Location": {"ObjectArn": "arn:aws:s3:::manifests/m.csv", "ETag": "abc"}},
        "Description": "tag things",
        "Priority": 10,
        "RoleArn": "arn:aws:iam::123456789012:role/batch"
    }"#;

    #[test]
    fn parses_an_s3_control_create_job_file_unchanged() {
        let req = CreateJobRequest::parse(TAGGING_JOB).unwrap();
        req.validate().unwrap();
        assert_eq!(req.priority, 10);
        assert_eq!(req.operation.name(), "S3PutObjectTagging");
        let manifest = req.manifest.as_ref().unwrap();
        assert_eq!(manifest.location.etag.as_deref(), Some("abc"));
        assert_eq!(req.report.scope(), ReportScope::AllTasks);
        // Round trip keeps S3 Control's field names.
        let back = serde_json::to_value(&req).unwrap();
        assert_eq!(
            back["Operation"]["S3PutObjectTagging"]["TagSet"][0]["Key"],
            "project"
        );
        assert_eq!(back["Manifest"]["Location"]["ETag"], "abc");
    }

    fn with_operation(operation: &str) -> String {
        TAGGING_JOB.replace(
            r#""S3PutObjectTagging": {"TagSet": [{"Key": "project", "Value": "x"}]}"#,
            operation,
        )
    }

    #[test]
    fn refuses_replication_and_unknown_operations_clearly() {
        let replicate = with_operation(r#""S3ReplicateObject": {}"#);
        let err = CreateJobRequest::parse(&replicate).unwrap_err().to_string();
        assert!(
            err.contains("S3ReplicateObject is not supported by batchops"),
            "{err}"
        );
        assert!(err.contains("replication engine"), "{err}");
        let bogus = TAGGING_JOB.replace("S3PutObjectTagging", "S3Frobnicate");
        let err = CreateJobRequest::parse(&bogus).unwrap_err().to_string();
        assert!(err.contains("unknown operation S3Frobnicate"), "{err}");
        assert!(err.contains("S3PutObjectCopy"), "{err}");
    }

    #[test]
    fn every_s3_control_operation_but_replication_parses_validates_and_round_trips() {
        for (name, body) in [
            (
                "S3PutObjectCopy",
                r#"{"TargetResource": "arn:aws:s3:::dst", "TargetKeyPrefix": "p/",
                "CannedAccessControlList": "bucket-owner-full-control", "MetadataDirective": "REPLACE",
                "NewObjectMetadata": {"ContentType": "text/plain", "UserMetadata": {"a": "b"}, "SSEAlgorithm": "KMS"},
                "NewObjectTagging": [{"Key": "k", "Value": "v"}], "StorageClass": "GLACIER_IR",
                "SSEAwsKmsKeyId": "arn:aws:kms:us-east-1:1:key/x", "BucketKeyEnabled": true,
                "ChecksumAlgorithm": "CRC32C", "RequesterPays": false,
                "ModifiedSinceConstraint": "2024-01-01T00:00:00Z", "UnModifiedSinceConstraint": 1735689600,
                "ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": "2030-01-01T00:00:00Z",
                "ObjectLockLegalHoldStatus": "OFF", "RedirectLocation": "/x"}"#,
            ),
            (
                "S3PutObjectAcl",
                r#"{"AccessControlPolicy": {"AccessControlList": {"Owner": {"ID": "o", "DisplayName": "me"},
                "Grants": [{"Grantee": {"TypeIdentifier": "emailAddress", "Identifier": "a@b.c"}, "Permission": "READ_ACP"}]}}}"#,
            ),
            (
                "S3InitiateRestoreObject",
                r#"{"ExpirationInDays": 5, "GlacierJobTier": "STANDARD"}"#,
            ),
            ("S3PutObjectLegalHold", r#"{"LegalHold": {"Status": "ON"}}"#),
            (
                "S3PutObjectRetention",
                r#"{"BypassGovernanceRetention": true, "Retention": {"Mode": "COMPLIANCE", "RetainUntilDate": "2030-01-01T00:00:00Z"}}"#,
            ),
            (
                "S3ComputeObjectChecksum",
                r#"{"ChecksumAlgorithm": "CRC64NVME", "ChecksumType": "FULL_OBJECT"}"#,
            ),
        ] {
            let json = with_operation(&format!(r#""{name}": {body}"#));
            let req = CreateJobRequest::parse(&json).unwrap_or_else(|e| panic!("{name}: {e}"));
            req.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(req.operation.name(), name);
            // Round trip: the same request back, in S3 Control's field names.
            let back = serde_json::to_string(&req).unwrap();
            assert_eq!(CreateJobRequest::parse(&back).unwrap(), req, "{name}");
            let original: Value = serde_json::from_str(body).unwrap();
            let written = &serde_json::to_value(&req).unwrap()["Operation"][name];
            for field in original.as_object().unwrap().keys() {
                assert!(
                    written.get(field).is_some(),
                    "{name}.{field} lost in {written}"
                );
            }
        }
    }

    #[test]
    fn copy_timestamps_take_iso_8601_or_epoch_seconds() {
        let json = with_operation(
            r#""S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::d", "ModifiedSinceConstraint": 1700000000, "UnModifiedSinceConstraint": "2023-11-14T22:13:20Z"}"#,
        );
        let req = CreateJobRequest::parse(&json).unwrap();
        let JobOperation::S3PutObjectCopy(op) = &req.operation else {
            panic!("not a copy")
        };
        assert_eq!(
            op.modified_since_constraint,
            op.un_modified_since_constraint
        );
        let bad = with_operation(
            r#""S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::d", "ModifiedSinceConstraint": "yesterday"}"#,
        );
        assert!(CreateJobRequest::parse(&bad).is_err());
    }

    #[test]
    fn invalid_operation_parameters_are_refused_at_creation() {
        for (operation, expected) in [
            (
                r#""S3PutObjectCopy": {"TargetKeyPrefix": "p/"}"#,
                "TargetResource is required",
            ),
            (
                r#""S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::b/prefix"}"#,
                "must be a bucket ARN",
            ),
            (
                r#""S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::b", "MetadataDirective": "COPY", "NewObjectMetadata": {}}"#,
                "needs MetadataDirective REPLACE",
            ),
            (
                r#""S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::b", "ObjectLockMode": "COMPLIANCE"}"#,
                "go together",
            ),
            (
                r#""S3PutObjectAcl": {"AccessControlPolicy": {"CannedAccessControlList": "private", "AccessControlList": {"Owner": {"ID": "o"}}}}"#,
                "not both",
            ),
            (
                r#""S3PutObjectAcl": {"AccessControlPolicy": {"AccessControlList": {"Owner": {}}}}"#,
                "Owner.ID is required",
            ),
            (
                r#""S3InitiateRestoreObject": {"ExpirationInDays": -1}"#,
                "1 or more",
            ),
            (
                r#""S3PutObjectRetention": {"Retention": {"RetainUntilDate": "2030-01-01T00:00:00Z"}}"#,
                "go together",
            ),
            (
                r#""S3ComputeObjectChecksum": {"ChecksumAlgorithm": "SHA1"}"#,
                "SHA1 is not supported",
            ),
            (
                r#""S3ComputeObjectChecksum": {"ChecksumType": "COMPOSITE"}"#,
                "COMPOSITE is not supported",
            ),
        ] {
            let req = CreateJobRequest::parse(&with_operation(operation)).unwrap();
            let err = req.validate().unwrap_err().to_string();
            assert!(err.contains(expected), "{operation}: {err}");
        }
        for (operation, expected) in [
            (
                r#""S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::b", "StorageClass": "COLD"}"#,
                "COLD",
            ),
            (
                r#""S3InitiateRestoreObject": {"GlacierJobTier": "EXPEDITED"}"#,
                "EXPEDITED",
            ),
            (
                r#""S3PutObjectLegalHold": {"LegalHold": {"Status": "MAYBE"}}"#,
                "MAYBE",
            ),
            (
                r#""S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::b", "Typo": 1}"#,
                "Typo",
            ),
        ] {
            let err = CreateJobRequest::parse(&with_operation(operation))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{operation}: {err}");
        }
    }

    #[test]
    fn delete_object_needs_confirmation_required_true() {
        let delete = with_operation(r#""S3DeleteObject": {}"#);
        let req = CreateJobRequest::parse(&delete).unwrap();
        let err = req.validate().unwrap_err().to_string();
        assert!(err.contains("ConfirmationRequired"), "{err}");
        let confirmed = delete.replace(
            r#""ConfirmationRequired": false"#,
            r#""ConfirmationRequired": true"#,
        );
        let req = CreateJobRequest::parse(&confirmed).unwrap();
        req.validate().unwrap();
        assert_eq!(req.operation.name(), "S3DeleteObject");
        let unset = delete.replace(r#""ConfirmationRequired": false,"#, "");
        assert!(CreateJobRequest::parse(&unset).unwrap().validate().is_err());
    }

    #[test]
    fn refuses_two_operations_and_bad_lambda_schema() {
        let two = TAGGING_JOB.replace(
            r#""S3PutObjectTagging": {"TagSet": [{"Key": "project", "Value": "x"}]}"#,
            r#""S3PutObjectTagging": {"TagSet": []}, "S3DeleteObjectTagging": {}"#,
        );
        let err = CreateJobRequest::parse(&two).unwrap_err().to_string();
        assert!(err.contains("exactly one operation"), "{err}");
        let lambda = TAGGING_JOB.replace(
            r#""S3PutObjectTagging": {"TagSet": [{"Key": "project", "Value": "x"}]}"#,
            r#""LambdaInvoke": {"FunctionArn": "arn:aws:lambda:us-east-1:1:function:f", "InvocationSchemaVersion": "3.0"}"#,
        );
        let err = CreateJobRequest::parse(&lambda)
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("must be 1.0 or 2.0"), "{err}");
    }

    #[test]
    fn refuses_misnamed_fields() {
        let typo = TAGGING_JOB.replace("\"Priority\"", "\"Priorty\"");
        assert!(CreateJobRequest::parse(&typo).is_err());
    }

    #[test]
    fn manifest_fields_must_name_bucket_and_key() {
        let bad = TAGGING_JOB.replace(r#"["Bucket", "Key"]"#, r#"["Key"]"#);
        let err = CreateJobRequest::parse(&bad)
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(
            err.to_string().contains("must name Bucket and Key"),
            "{err}"
        );
    }

    #[test]
    fn object_arns() {
        assert_eq!(
            parse_object_arn("arn:aws:s3:::b/dir/m.csv").unwrap(),
            ("b".to_string(), "dir/m.csv".to_string())
        );
        assert!(parse_object_arn("s3://b/k").is_err());
        assert!(parse_object_arn("arn:aws:s3:::b").is_err());
        assert_eq!(bucket_from_arn("arn:aws:s3:::reports"), "reports");
        assert_eq!(bucket_from_arn("reports"), "reports");
    }

    #[test]
    fn status_machine() {
        use JobStatus::*;
        assert!(can_transition(New, Preparing));
        assert!(can_transition(Preparing, Suspended));
        assert!(can_transition(Suspended, Ready));
        assert!(can_transition(Ready, Active));
        assert!(can_transition(Active, Complete));
        assert!(can_transition(Active, Failing));
        assert!(can_transition(Failing, Failed));
        assert!(can_transition(Active, Cancelling));
        assert!(can_transition(Cancelling, Cancelled));
        assert!(!can_transition(Complete, Active));
        assert!(!can_transition(Failed, Cancelled));
        assert!(!can_transition(Suspended, Active));
        assert!(!can_transition(Cancelled, Ready));
        for s in ALL_STATUSES {
            if s.is_terminal() {
                assert!(ALL_STATUSES.iter().all(|t| !can_transition(*s, *t)));
            }
            assert_eq!(JobStatus::parse(s.as_str()).unwrap(), *s);
        }
        assert!(check_transition("j", Complete, Ready).is_err());
    }

    #[test]
    fn failure_threshold() {
        assert!(!failure_threshold_exceeded(0, 999));
        assert!(failure_threshold_exceeded(0, 1000));
        assert!(!failure_threshold_exceeded(500, 500));
        assert!(failure_threshold_exceeded(499, 501));
        assert!(!failure_threshold_exceeded(10_000, 1_000));
    }
}
