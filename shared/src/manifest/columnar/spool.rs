//! Reading a data file from S3: copied to an anonymous temporary file with its MD5 computed on
//! the way and checked against manifest.json before anything is parsed.

use super::*;

/// Streams the tasks of one ORC or Parquet data file of an inventory into `tx`: the file is
/// copied to a temporary file in [`std::env::temp_dir`] (on Lambda, /tmp) while its MD5 is
/// computed, checked against `MD5checksum`, then read. No task is sent when the MD5 differs. The
/// temporary file is unlinked as soon as it is created, so nothing is left behind, whatever
/// happens.
pub(in crate::manifest) async fn read_inventory_file(
    s3: &aws_sdk_s3::Client,
    inventory: &InventoryManifest,
    file: &InventoryFile,
    format: ColumnarFormat,
    tx: Sender<Vec<Task>>,
) -> Result<u64> {
    let bucket = inventory.destination_bucket_name();
    let source = inventory.data_file_source(file);
    let body = open_object(
        s3,
        &crate::manifest::Opening {
            source: &source,
            bucket: &bucket,
            key: &file.key,
            version_id: None,
            expected_etag: None,
            pin: &crate::manifest::ManifestPin::default(),
            from_byte: 0,
        },
    )
    .await?;
    tracing::debug!(%bucket, key = %file.key, %format, "reading inventory data file");
    let mut reader = SyncIoBridge::new(body.into_async_read());
    let expected_md5 = file.md5_checksum.clone();
    let sizes = inventory.want_sizes;
    let dir = std::env::temp_dir();
    let parse_source = source.clone();
    let kind = format.to_string();
    crate::manifest::run_blocking(&source, &kind, move || {
        let spooled = spool(
            &mut reader,
            &dir,
            format,
            &parse_source,
            Some(&expected_md5),
        )?;
        let mut chunks = ChunkSender::new(tx);
        let count = parse_columnar_sized(
            format,
            spooled.reader(&parse_source)?,
            &parse_source,
            sizes,
            |t| chunks.push(t),
        )?;
        chunks.flush();
        Ok(count)
    })
    .await
}

/// A data file copied to local disk. Its directory entry is removed as soon as the file is
/// open (where the platform allows), so the space is freed when the last handle closes, even
/// if the process dies; otherwise it is removed on drop.
#[derive(Debug)]
pub struct Spooled {
    file: File,
    path: Option<PathBuf>,
    /// Bytes copied.
    pub bytes: u64,
}

impl Spooled {
    /// A new handle on the copy, for a reader, at the copy's start.
    pub fn reader(&self, source: &str) -> Result<File> {
        use std::io::{Seek, SeekFrom};
        let reopen_error = |e: io::Error| {
            Error::Manifest(format!("{source}: cannot reopen the temporary copy: {e}"))
        };
        let mut file = self.file.try_clone().map_err(reopen_error)?;
        file.seek(SeekFrom::Start(0)).map_err(reopen_error)?;
        Ok(file)
    }
}

impl Drop for Spooled {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Copies `body` to a temporary file in `dir`, computing its MD5 on the way, and compares the MD5
/// with `expected_md5` (the file's `MD5checksum` in manifest.json).
pub fn spool(
    body: &mut dyn Read,
    dir: &Path,
    format: ColumnarFormat,
    source: &str,
    expected_md5: Option<&str>,
) -> Result<Spooled> {
    spool_as(
        body,
        dir,
        format.extension(),
        &format.to_string(),
        source,
        expected_md5,
    )
}

/// [`spool`] of any data file: `extension` names the temporary file, `kind` the format in
/// messages.
pub fn spool_as(
    body: &mut dyn Read,
    dir: &Path,
    extension: &str,
    kind: &str,
    source: &str,
    expected_md5: Option<&str>,
) -> Result<Spooled> {
    let path = dir.join(format!(
        "batchops-inventory-{}.{extension}",
        uuid::Uuid::new_v4(),
    ));
    let temp_error = |e: io::Error| {
        Error::Manifest(format!(
            "{source}: cannot write a temporary copy to {}: {e}; the {kind} reader needs local space as large as the data file (on Lambda, raise the function's ephemeral storage)",
            dir.display()
        ))
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(temp_error)?;
    let mut spooled = Spooled {
        file,
        path: Some(path.clone()),
        bytes: 0,
    };
    if std::fs::remove_file(&path).is_ok() {
        spooled.path = None;
    }
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; COPY_BUFFER_BYTES];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Manifest(format!(
                    "{source}: cannot read the file after {} bytes: {e}",
                    spooled.bytes
                )))
            }
        };
        md5.update(&buf[..n]);
        spooled.file.write_all(&buf[..n]).map_err(temp_error)?;
        spooled.bytes += n as u64;
    }
    spooled.file.flush().map_err(temp_error)?;
    if let Some(expected) = expected_md5 {
        let actual = hex::encode(md5.finalize());
        if !actual.eq_ignore_ascii_case(expected.trim()) {
            return Err(Error::Manifest(format!(
                "{source}: MD5 mismatch: manifest.json gives MD5checksum {expected} but the file's {} bytes hash to {actual}",
                spooled.bytes
            )));
        }
    }
    Ok(spooled)
}
