//! The generated manifest as S3 Batch Operations writes it when `EnableManifestOutput` asks
//! for it (`ManifestFormat` `S3InventoryReport_CSV_20211130`): an S3 Inventory report of the
//! selected objects, that is a gzipped CSV data file (`"bucket","url-encoded key"` rows) and a
//! `manifest.json` naming it with its size and MD5, under
//! `<ManifestPrefix>/job-<job id>/` in the output bucket. A later job takes that manifest.json as
//! its `Manifest` with format `S3InventoryReport_CSV_20161130`.

use flate2::write::GzEncoder;
use md5::{Digest, Md5};
use std::io::Write;

use super::{bucket_name, ManifestWriter, S3ManifestOutputLocation, SnapshotTarget};
use crate::error::{Error, Result};

/// Compressed bytes gathered before they go to the data file's writer.
const DRAIN_BYTES: usize = 1024 * 1024;

/// Writes the generated manifest as the objects are selected.
pub(super) struct InventoryOutput<'a> {
    data: ManifestWriter<'a>,
    encoder: GzEncoder<Vec<u8>>,
    md5: Md5,
    size: u64,
    manifest: SnapshotTarget,
    data_key: String,
    source_bucket: String,
}

impl<'a> InventoryOutput<'a> {
    pub(super) fn new(
        s3: &'a aws_sdk_s3::Client,
        location: &S3ManifestOutputLocation,
        job_id: &str,
        source_bucket: &str,
    ) -> Result<Self> {
        let bucket = bucket_name(&location.bucket, "ManifestOutputLocation.Bucket")
            .map_err(|e| Error::Manifest(e.to_string()))?;
        let target = |key: String| SnapshotTarget {
            bucket: bucket.clone(),
            key,
            expected_owner: location.expected_manifest_bucket_owner.clone(),
            encryption: location.manifest_encryption.clone(),
        };
        let data_key = location.data_key(job_id);
        Ok(InventoryOutput {
            data: ManifestWriter::to(s3, &target(data_key.clone()))
                .content_type("application/gzip"),
            encoder: GzEncoder::new(Vec::new(), flate2::Compression::default()),
            md5: Md5::new(),
            size: 0,
            manifest: target(location.manifest_key(job_id)),
            data_key,
            source_bucket: source_bucket.to_string(),
        })
    }

    /// One selected object, its key URL-encoded as S3 Inventory writes keys.
    pub(super) async fn push(&mut self, bucket: &str, encoded_key: &str) -> Result<()> {
        // Neither field needs escaping: bucket names and encoded keys hold no quote.
        writeln!(self.encoder, "\"{bucket}\",\"{encoded_key}\"")
            .map_err(|e| self.error(&format!("cannot compress a row: {e}")))?;
        if self.encoder.get_ref().len() >= DRAIN_BYTES {
            let bytes = std::mem::take(self.encoder.get_mut());
            self.write(&bytes).await?;
        }
        Ok(())
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.md5.update(bytes);
        self.size += bytes.len() as u64;
        self.data.push_raw(bytes).await
    }

    /// Ends the data file, then writes the manifest.json that names it.
    pub(super) async fn finish(mut self) -> Result<()> {
        let encoder = std::mem::replace(
            &mut self.encoder,
            GzEncoder::new(Vec::new(), flate2::Compression::default()),
        );
        let rest = encoder
            .finish()
            .map_err(|e| self.error(&format!("cannot end the gzip stream: {e}")))?;
        self.write(&rest).await?;
        let manifest = serde_json::json!({
            "sourceBucket": self.source_bucket,
            "destinationBucket": format!("arn:aws:s3:::{}", self.manifest.bucket),
            "version": "2016-11-30",
            "creationTimestamp": chrono::Utc::now().timestamp_millis().to_string(),
            "fileFormat": "CSV",
            "fileSchema": "Bucket, Key",
            "files": [{
                "key": self.data_key,
                "size": self.size,
                "MD5checksum": hex::encode(self.md5.finalize_reset()),
            }]
        });
        let s3 = self.data.s3;
        self.data.finish().await?;
        let mut writer = ManifestWriter::to(s3, &self.manifest).content_type("application/json");
        writer.push_raw(manifest.to_string().as_bytes()).await?;
        writer.finish().await
    }

    pub(super) async fn abort(self) {
        self.data.abort().await;
    }

    fn error(&self, what: &str) -> Error {
        Error::Manifest(format!(
            "generated manifest s3://{}/{}: {what}",
            self.manifest.bucket, self.data_key
        ))
    }
}
