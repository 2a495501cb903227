//! S3ComputeObjectChecksum: the object's bytes streamed through the asked algorithm.

use super::*;

use crate::job::{ComputeChecksumAlgorithm, ComputeObjectChecksumOperation};
use crate::manifest::Task;
use crate::report::{TaskOutcome, TaskStatus};
use crate::Context;

/// A running full-object checksum.
pub enum Checksummer {
    /// CRC-32 (`CRC32`); holds the running register, inverted only by `finish`.
    Crc32(u32),
    /// CRC-32C, Castagnoli (`CRC32C`); the running register, inverted only by `finish`.
    Crc32c(u32),
    /// CRC-64/NVME (`CRC64NVME`); the running register, inverted only by `finish`.
    Crc64Nvme(u64),
    /// MD5 (`MD5`), as a running digest.
    Md5(md5::Md5),
    /// SHA-256 (`SHA256`), as a running digest.
    Sha256(sha2::Sha256),
}

/// Reflected CRC tables, built at compile time.
pub(super) const fn crc64_table(poly: u64) -> [u64; 256] {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ poly
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// A reflected CRC's register only ever shifts right and XORs in the polynomial, so with a
/// 32-bit polynomial every entry of the 64-bit table fits in 32 bits: one builder serves both.
pub(super) const fn crc32_table(poly: u32) -> [u32; 256] {
    let wide = crc64_table(poly as u64);
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = wide[i] as u32;
        i += 1;
    }
    table
}

pub(super) static CRC32_TABLE: [u32; 256] = crc32_table(0xEDB8_8320);
pub(super) static CRC32C_TABLE: [u32; 256] = crc32_table(0x82F6_3B78);
pub(super) static CRC64NVME_TABLE: [u64; 256] = crc64_table(0x9A6C_9329_AC4B_C9B5);

pub(super) fn crc32_update(table: &[u32; 256], mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc = table[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    crc
}

pub(super) fn crc64_update(table: &[u64; 256], mut crc: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        crc = table[((crc ^ u64::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    crc
}

impl Checksummer {
    /// `None` for algorithms batchops does not compute (refused at job creation).
    pub fn new(algorithm: ComputeChecksumAlgorithm) -> Option<Self> {
        use md5::Digest as _;
        match algorithm {
            ComputeChecksumAlgorithm::Crc32 => Some(Checksummer::Crc32(u32::MAX)),
            ComputeChecksumAlgorithm::Crc32c => Some(Checksummer::Crc32c(u32::MAX)),
            ComputeChecksumAlgorithm::Crc64nvme => Some(Checksummer::Crc64Nvme(u64::MAX)),
            ComputeChecksumAlgorithm::Md5 => Some(Checksummer::Md5(md5::Md5::new())),
            ComputeChecksumAlgorithm::Sha256 => Some(Checksummer::Sha256(sha2::Sha256::new())),
            ComputeChecksumAlgorithm::Sha1 => None,
        }
    }

    /// Feeds the next bytes of the object; call with the bytes in order.
    pub fn update(&mut self, bytes: &[u8]) {
        use md5::Digest as _;
        match self {
            Checksummer::Crc32(crc) => *crc = crc32_update(&CRC32_TABLE, *crc, bytes),
            Checksummer::Crc32c(crc) => *crc = crc32_update(&CRC32C_TABLE, *crc, bytes),
            Checksummer::Crc64Nvme(crc) => *crc = crc64_update(&CRC64NVME_TABLE, *crc, bytes),
            Checksummer::Md5(h) => h.update(bytes),
            Checksummer::Sha256(h) => h.update(bytes),
        }
    }

    /// The checksum's bytes, big-endian for CRCs, as S3's `x-amz-checksum-*` headers carry them.
    pub fn finish(self) -> Vec<u8> {
        use md5::Digest as _;
        match self {
            Checksummer::Crc32(crc) | Checksummer::Crc32c(crc) => (!crc).to_be_bytes().to_vec(),
            Checksummer::Crc64Nvme(crc) => (!crc).to_be_bytes().to_vec(),
            Checksummer::Md5(h) => h.finalize().to_vec(),
            Checksummer::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// The ResultMessage of a computed checksum: JSON with the algorithm, the type, and the value in
/// base64 (as S3's checksum headers show it) and in hex.
pub fn checksum_message(algorithm: ComputeChecksumAlgorithm, digest: &[u8]) -> String {
    use base64::Engine as _;
    serde_json::json!({
        "checksumAlgorithm": algorithm.as_str(),
        "checksumType": "FULL_OBJECT",
        "checksumBase64": base64::engine::general_purpose::STANDARD.encode(digest),
        "checksumHex": hex::encode(digest),
    })
    .to_string()
}

/// Reads the object as a stream (constant memory whatever its size) and reports its checksum.
pub(super) async fn compute_checksum(
    ctx: &Context,
    op: &ComputeObjectChecksumOperation,
    task: &Task,
) -> TaskOutcome {
    let algorithm = op.algorithm();
    let result = s3_call(ctx, &task.bucket, |s3| async move {
        let Some(mut checksum) = Checksummer::new(algorithm) else {
            return Err(Failure {
                retryable: false,
                error_code: "InvalidRequest".into(),
                http_status: Some(400),
                message: format!("checksum algorithm {} is not supported", algorithm.as_str()),
                bucket_region: None,
            });
        };
        let output = s3
            .get_object()
            .bucket(&task.bucket)
            .key(&task.key)
            .set_version_id(task.version_id.clone())
            .send()
            .await
            .classified()?;
        let mut body = output.body;
        loop {
            match body.try_next().await {
                Ok(Some(chunk)) => checksum.update(&chunk),
                Ok(None) => break,
                // A body cut short is worth reading again from the start.
                Err(e) => {
                    return Err(Failure {
                        retryable: true,
                        error_code: "RequestTimeout".into(),
                        http_status: None,
                        message: format!("reading the object failed midway: {e}"),
                        bucket_region: None,
                    })
                }
            }
        }
        Ok(checksum.finish())
    })
    .await;
    match result {
        Ok(digest) => TaskOutcome {
            task: task.clone(),
            status: TaskStatus::Succeeded,
            error_code: None,
            http_status: Some(200),
            result_message: checksum_message(algorithm, &digest),
        },
        Err(failure) => failure.into_outcome(task),
    }
}
