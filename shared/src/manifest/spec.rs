//! Where a job's manifest is and how it is laid out: the `Manifest` member of a CreateJob
//! request (S3 Control's JSON), its formats, and the S3 ARNs it names.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// `Spec.Format` of a CSV manifest: one object per row, with the columns `Spec.Fields` names.
pub const CSV_MANIFEST_FORMAT: &str = "S3BatchOperations_CSV_20180820";

/// `Spec.Format` of an S3 Inventory report: the location names its `manifest.json`.
pub const INVENTORY_CSV_FORMAT: &str = "S3InventoryReport_CSV_20161130";

/// The `Manifest` member of a CreateJob request: the manifest's format and where it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct JobManifest {
    /// `Spec`: the manifest's format and, for a CSV manifest, its columns.
    pub spec: ManifestSpec,
    /// `Location`: the manifest object.
    pub location: ManifestLocation,
}

impl JobManifest {
    /// Checks the spec and that `Location.ObjectArn` is an S3 object ARN; fails with
    /// `Error::InvalidRequest`.
    pub fn validate(&self) -> Result<()> {
        self.spec.validate()?;
        parse_object_arn(&self.location.object_arn)?;
        Ok(())
    }
}

/// `Manifest.Spec`: the manifest's format and columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ManifestSpec {
    /// `Format`: [`CSV_MANIFEST_FORMAT`] or [`INVENTORY_CSV_FORMAT`].
    pub format: String,
    /// `Fields`: a CSV manifest's columns in order (`Ignore`, `Bucket`, `Key`, `VersionId`);
    /// required for that format, with `Bucket` and `Key` once each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
}

impl ManifestSpec {
    /// Checks the format is one batchops reads and, for a CSV manifest, its `Fields`; fails
    /// with `Error::InvalidRequest`.
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

/// `Manifest.Location`: the manifest object, optionally pinned to a version or ETag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ManifestLocation {
    /// `ObjectArn`: the manifest's ARN, `arn:aws:s3:::bucket/key`.
    pub object_arn: String,
    /// `ObjectVersionId`: the version of the manifest to read; `None` reads the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_version_id: Option<String>,
    /// `ETag`: the manifest's expected ETag, checked before any of it is read; `None` checks
    /// nothing.
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
