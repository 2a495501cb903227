//! S3 Inventory: the delivery's `manifest.json` and its data files (each checked against its
//! MD5), in CSV here and in Parquet or ORC in [`super::columnar`].

use super::*;
use std::io::{self, Read};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Parses an S3 Inventory data file as stored: gzipped CSV. The MD5 of the stored bytes is
/// computed while streaming and compared with `expected_md5` (the file's `MD5checksum` in
/// manifest.json) at the end, unless `emit` asked to stop early.
pub fn parse_inventory_data_file<R: Read>(
    reader: R,
    file_schema: &str,
    source: &str,
    expected_md5: Option<&str>,
    mut emit: impl FnMut(Task) -> bool,
) -> Result<u64> {
    let layout = Layout::inventory(file_schema, source)?.with_sizes(false);
    let mut hashed = Md5Reader::new(reader);
    let (count, completed) = {
        let gunzip = flate2::read::MultiGzDecoder::new(&mut hashed);
        parse_rows(
            gunzip,
            &layout,
            source,
            "the gzipped CSV",
            None,
            &mut |t, _| emit(t),
        )?
    };
    if !completed {
        return Ok(count);
    }
    // The decoder stops at the end of the last gzip member; hash anything after it too.
    io::copy(&mut hashed, &mut io::sink())
        .map_err(|e| Error::Manifest(format!("{source}: cannot read the file: {e}")))?;
    if let Some(expected) = expected_md5 {
        let actual = hashed.hex_digest();
        if !actual.eq_ignore_ascii_case(expected.trim()) {
            return Err(Error::Manifest(format!(
                "{source}: MD5 mismatch: manifest.json gives MD5checksum {expected} but the file's {} bytes hash to {actual}",
                hashed.bytes
            )));
        }
    }
    Ok(count)
}

/// Passes bytes through and keeps their MD5 and count.
pub(super) struct Md5Reader<R> {
    inner: R,
    md5: Md5,
    bytes: u64,
}

impl<R: Read> Md5Reader<R> {
    pub(super) fn new(inner: R) -> Self {
        Md5Reader {
            inner,
            md5: Md5::new(),
            bytes: 0,
        }
    }

    pub(super) fn hex_digest(&self) -> String {
        hex::encode(self.md5.clone().finalize())
    }
}

impl<R: Read> Read for Md5Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.md5.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// S3 Inventory manifest.json
// ---------------------------------------------------------------------------------------------

/// An S3 Inventory `manifest.json`, as S3 writes it next to the data files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryManifest {
    /// `sourceBucket`: name of the bucket the inventory lists.
    pub source_bucket: String,
    /// An ARN, `arn:aws:s3:::bucket`.
    pub destination_bucket: String,
    /// `version`: the manifest format's version, such as `"2016-11-30"`; not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Milliseconds since the epoch, as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    /// CSV, ORC or Parquet.
    pub file_format: String,
    /// For CSV, the column names in order, e.g. "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size";
    /// for ORC, `struct<bucket:string,key:string,...>`; for Parquet,
    /// `message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); ... }`.
    pub file_schema: String,
    /// `files`: the data files of the report, read in this order.
    pub files: Vec<InventoryFile>,
    /// Whether the readers put each object's size into its task (not part of the file: the
    /// planner asks for sizes when the job's batches are sized by them).
    #[serde(skip)]
    pub want_sizes: bool,
}

/// One data file of an inventory report, in the destination bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InventoryFile {
    /// `key`: the data file's key in the destination bucket.
    pub key: String,
    /// `size`: the data file's size in bytes, as stored.
    pub size: u64,
    /// Hex MD5 of the file as stored (gzipped CSV, or the ORC or Parquet file).
    #[serde(rename = "MD5checksum")]
    pub md5_checksum: String,
}

impl InventoryManifest {
    /// `source` names the manifest.json in error messages.
    pub fn parse(json: &[u8], source: &str) -> Result<Self> {
        let json = json.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(json);
        let invalid = |e: &dyn std::fmt::Display| {
            Error::Manifest(format!(
                "{source}: not a valid S3 Inventory manifest.json: {e}"
            ))
        };
        let value: serde_json::Value = serde_json::from_slice(json).map_err(|e| invalid(&e))?;
        if !value.is_object() {
            return Err(invalid(&format!(
                "expected an object with sourceBucket, fileFormat, fileSchema and files, got {}",
                crate::error::json_kind(&value)
            )));
        }
        serde_json::from_value(value).map_err(|e| invalid(&e))
    }

    /// Checks that batchops can read the data files: CSV, ORC or Parquet, with bucket and key
    /// columns in the `fileSchema`.
    pub fn check_supported(&self, source: &str) -> Result<()> {
        if let Some(format) = columnar::ColumnarFormat::from_file_format(&self.file_format) {
            return columnar::check_file_schema(format, &self.file_schema, source);
        }
        if !self.file_format.eq_ignore_ascii_case("CSV") {
            return Err(Error::Manifest(format!(
                "{source}: inventory fileFormat {} is not supported; S3 Inventory writes CSV, ORC or Parquet",
                self.file_format
            )));
        }
        Layout::inventory(&self.file_schema, source).map(|_| ())
    }

    /// The name of the bucket that holds the data files.
    pub fn destination_bucket_name(&self) -> String {
        bucket_from_arn(&self.destination_bucket)
    }

    /// How errors name one data file.
    pub fn data_file_source(&self, file: &InventoryFile) -> String {
        format!(
            "inventory data file s3://{}/{}",
            self.destination_bucket_name(),
            file.key
        )
    }
}
