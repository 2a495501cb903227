//! S3 Inventory data files in Apache Parquet and Apache ORC.
//!
//! Both formats keep their metadata in a footer at the end of the file, so a data file cannot be
//! read as a stream: it is copied to an anonymous temporary file (its MD5 checked against
//! manifest.json on the way), then read back in record batches of [`BATCH_ROWS`] rows with only
//! the columns a task needs (`bucket`, `key`, `version_id`, `is_delete_marker`). Memory stays at
//! one batch (plus one row group or stripe of those columns) whatever the file's size.
//!
//! Column names are S3 Inventory's lower snake case; unlike CSV inventories, keys are not
//! URL-encoded in ORC and Parquet, so they are taken as they are.

use std::fmt::Display;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, BooleanArray, RecordBatch};
use arrow_schema::{ArrowError, DataType, Schema};
use md5::{Digest, Md5};
use tokio::sync::mpsc::Sender;
use tokio_util::io::SyncIoBridge;

use super::{open_object, ChunkSender, InventoryFile, InventoryManifest, Task};
use crate::error::{Error, Result};

/// Rows per record batch: large enough to amortise the decoders, small enough that memory stays
/// flat (a batch of 8192 rows with 200-byte keys is under 2 MiB).
pub const BATCH_ROWS: usize = 8192;

const COPY_BUFFER_BYTES: usize = 256 * 1024;

/// The columnar formats of S3 Inventory (manifest.json `fileFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnarFormat {
    Parquet,
    Orc,
}

impl ColumnarFormat {
    /// The format of a manifest.json `fileFormat` ("Parquet", "ORC"); `None` for CSV and others.
    pub fn from_file_format(file_format: &str) -> Option<Self> {
        let format = file_format.trim();
        if format.eq_ignore_ascii_case("Parquet") {
            Some(ColumnarFormat::Parquet)
        } else if format.eq_ignore_ascii_case("ORC") {
            Some(ColumnarFormat::Orc)
        } else {
            None
        }
    }

    /// The name S3 Inventory uses, for messages.
    pub fn name(self) -> &'static str {
        match self {
            ColumnarFormat::Parquet => "Parquet",
            ColumnarFormat::Orc => "ORC",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            ColumnarFormat::Parquet => "parquet",
            ColumnarFormat::Orc => "orc",
        }
    }
}

impl Display for ColumnarFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------------------------
// manifest.json fileSchema
// ---------------------------------------------------------------------------------------------

/// The column names of an ORC (`struct<bucket:string,key:string,...>`) or Parquet
/// (`message s3.inventory { required binary bucket (UTF8); ... }`) `fileSchema`.
pub fn file_schema_columns(format: ColumnarFormat, file_schema: &str) -> Vec<String> {
    match format {
        ColumnarFormat::Orc => orc_schema_columns(file_schema),
        ColumnarFormat::Parquet => parquet_schema_columns(file_schema),
    }
}

fn orc_schema_columns(file_schema: &str) -> Vec<String> {
    let schema = file_schema.trim();
    let Some(inner) = schema
        .strip_prefix("struct<")
        .and_then(|s| s.strip_suffix('>'))
    else {
        return Vec::new();
    };
    // Split at top-level commas only: a field type may be a struct<...> of its own.
    let mut columns = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in inner.char_indices() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                columns.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    columns.push(&inner[start..]);
    columns
        .into_iter()
        .filter_map(|field| {
            field
                .split_once(':')
                .map(|(name, _)| name.trim().to_string())
        })
        .filter(|name| !name.is_empty())
        .collect()
}

fn parquet_schema_columns(file_schema: &str) -> Vec<String> {
    let (Some(open), Some(close)) = (file_schema.find('{'), file_schema.rfind('}')) else {
        return Vec::new();
    };
    if close <= open {
        return Vec::new();
    }
    file_schema[open + 1..close]
        .split(';')
        .filter_map(|field| {
            // "required binary bucket (UTF8)": repetition, type, name, annotation.
            let name = field.split_whitespace().nth(2)?;
            let name = name.split(['(', '=']).next().unwrap_or_default();
            (!name.is_empty()).then(|| name.to_string())
        })
        .collect()
}

/// Checks, before any data file is read, that the inventory's `fileSchema` has the columns a task
/// needs.
pub fn check_file_schema(format: ColumnarFormat, file_schema: &str, source: &str) -> Result<()> {
    let columns = file_schema_columns(format, file_schema);
    for required in ["bucket", "key"] {
        if !columns.iter().any(|c| c.eq_ignore_ascii_case(required)) {
            return Err(Error::Manifest(format!(
                "{source}: the {format} inventory fileSchema {file_schema:?} has no {required} column"
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reading a data file from S3
// ---------------------------------------------------------------------------------------------

/// Streams the tasks of one ORC or Parquet data file of an inventory into `tx`: the file is
/// copied to a temporary file in [`std::env::temp_dir`] (on Lambda, /tmp) while its MD5 is
/// computed, checked against `MD5checksum`, then read. No task is sent when the MD5 differs. The
/// temporary file is unlinked as soon as it is created, so nothing is left behind, whatever
/// happens.
pub(super) async fn read_inventory_file(
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
        &super::Opening {
            source: &source,
            bucket: &bucket,
            key: &file.key,
            version_id: None,
            expected_etag: None,
            pin: &super::ManifestPin::default(),
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
    super::run_blocking(&source, &kind, move || {
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

// ---------------------------------------------------------------------------------------------
// Synchronous parsing
// ---------------------------------------------------------------------------------------------

/// Something both readers can read at any offset: a `File` or `bytes::Bytes`.
pub trait ColumnarInput:
    parquet::file::reader::ChunkReader + orc_rust::reader::ChunkReader + 'static
{
}

impl<T> ColumnarInput for T where
    T: parquet::file::reader::ChunkReader + orc_rust::reader::ChunkReader + 'static
{
}

/// Reads an ORC or Parquet inventory data file and calls `emit` for each task in file order;
/// delete markers are skipped. Stops early, without error, when `emit` returns false. Returns the
/// number of tasks emitted. `source` names the file in error messages.
pub fn parse_columnar<R: ColumnarInput>(
    format: ColumnarFormat,
    input: R,
    source: &str,
    emit: impl FnMut(Task) -> bool,
) -> Result<u64> {
    parse_columnar_sized(format, input, source, false, emit)
}

/// [`parse_columnar`], also reading each object's `size` into its task when `sizes` asks (the
/// column is decoded only then).
pub fn parse_columnar_sized<R: ColumnarInput>(
    format: ColumnarFormat,
    input: R,
    source: &str,
    sizes: bool,
    mut emit: impl FnMut(Task) -> bool,
) -> Result<u64> {
    // The ORC and Parquet readers are other crates, and a corrupt file can make them panic (a
    // fuzzed ORC file with a bad compression chunk header did: `split_to out of bounds`). A panic
    // must not kill the planner and leave the job to the dead-letter queue: it fails the job with
    // the file named, like any other unreadable file. What `emit` saw before is discarded with it.
    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match format {
        ColumnarFormat::Parquet => parse_parquet(input, source, sizes, &mut emit),
        ColumnarFormat::Orc => parse_orc(input, source, sizes, &mut emit),
    }));
    parsed.unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        tracing::error!(source, %format, reason = %what, "the columnar reader panicked on a corrupt file");
        Err(unreadable(
            format,
            source,
            format!("the {format} reader failed on it ({what}); the file is corrupt"),
        ))
    })
}

fn unreadable(format: ColumnarFormat, source: &str, e: impl Display) -> Error {
    Error::Manifest(format!("{source}: not a readable {format} file: {e}"))
}

fn parse_parquet<R: parquet::file::reader::ChunkReader + 'static>(
    input: R,
    source: &str,
    sizes: bool,
    emit: &mut dyn FnMut(Task) -> bool,
) -> Result<u64> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::arrow::ProjectionMask;

    let format = ColumnarFormat::Parquet;
    let builder = ParquetRecordBatchReaderBuilder::try_new(input)
        .map_err(|e| unreadable(format, source, e))?;
    let columns = Columns::find(builder.schema(), format, source, sizes)?;
    // Top-level arrow fields are the Parquet schema's root columns, in the same order.
    let mask = ProjectionMask::roots(builder.parquet_schema(), columns.indices());
    let batches = builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| unreadable(format, source, e))?;
    emit_batches(batches, &columns, format, source, emit)
}

fn parse_orc<R: orc_rust::reader::ChunkReader>(
    mut input: R,
    source: &str,
    sizes: bool,
    emit: &mut dyn FnMut(Task) -> bool,
) -> Result<u64> {
    use orc_rust::array_decoder::NaiveStripeDecoder;
    use orc_rust::projection::ProjectionMask;
    use orc_rust::reader::metadata::read_metadata;
    use orc_rust::stripe::Stripe;

    let format = ColumnarFormat::Orc;
    check_orc_types(&input).map_err(|e| unreadable(format, source, e))?;
    let metadata = read_metadata(&mut input).map_err(|e| unreadable(format, source, e))?;
    let no_metadata = std::collections::HashMap::new();
    let file_schema = metadata.root_data_type().create_arrow_schema(&no_metadata);
    let columns = Columns::find(&file_schema, format, source, sizes)?;
    let mask = ProjectionMask::named_roots(metadata.root_data_type(), &columns.names());
    let projected = metadata.root_data_type().project(&mask);
    let schema = Arc::new(projected.create_arrow_schema(&no_metadata));
    // One stripe at a time, rather than orc-rust's ArrowReader, which reads the next stripe's
    // streams while still holding the last one's: a stripe's projected streams are read whole, so
    // they are what memory is made of. `flat_map` drops a stripe's decoder before it reads the
    // next stripe.
    let orc_error = |e: orc_rust::error::OrcError| ArrowError::ExternalError(Box::new(e));
    let batches = metadata.stripe_metadatas().iter().flat_map(|info| {
        let decoder = Stripe::new(&mut input, &metadata, &projected, info)
            .and_then(|stripe| NaiveStripeDecoder::new(stripe, schema.clone(), BATCH_ROWS));
        let batches: Box<dyn Iterator<Item = _>> = match decoder {
            Ok(decoder) => Box::new(decoder.map(move |batch| batch.map_err(orc_error))),
            Err(e) => Box::new(std::iter::once(Err(orc_error(e)))),
        };
        batches
    });
    emit_batches(batches, &columns, format, source, emit)
}

/// More types than any S3 Inventory schema has (it has about 20), and a bound on the depth of
/// orc-rust's recursion over them.
const MAX_ORC_TYPES: usize = 10_000;
/// A footer decompresses to a few kilobytes; more is not an inventory file.
const MAX_ORC_FOOTER_BYTES: u64 = 16 << 20;

/// Checks an ORC file's type tree before orc-rust reads it: orc-rust follows each type's
/// `subtypes` recursively without checking them, so a corrupt footer whose type names itself (or
/// an earlier type) as a child recursed until the stack overflowed, which no error handling can
/// catch (found by the `columnar` fuzz target). ORC numbers types in pre-order, so every child's
/// index is greater than its parent's: checked here, the recursion ends. A footer that cannot be
/// read here is left for orc-rust to report; LZO footers are not checked (S3 writes ZLIB).
/// True when the types were checked.
fn check_orc_types<R: orc_rust::reader::ChunkReader>(
    input: &R,
) -> std::result::Result<bool, String> {
    use orc_rust::proto::{Footer, PostScript};
    use prost::Message;
    let len = input.len();
    let Some(tail) = len
        .checked_sub(1)
        .and_then(|at| input.get_bytes(at, 1).ok())
    else {
        return Ok(false);
    };
    let ps_len = u64::from(tail[0]);
    let Some(ps) = (len - 1)
        .checked_sub(ps_len)
        .and_then(|at| input.get_bytes(at, ps_len).ok())
        .and_then(|bytes| PostScript::decode(bytes).ok())
    else {
        return Ok(false);
    };
    let footer_len = ps.footer_length();
    // orc-rust allocates what the postscript asks for before it reads: lengths beyond the file
    // would be an allocation without bound (found by the fuzz target: 2 PiB).
    let room = len - 1 - ps_len;
    if footer_len.saturating_add(ps.metadata_length()) > room {
        return Err(format!(
            "its postscript gives a footer of {footer_len} bytes and metadata of {} bytes, more than the {room} bytes before it",
            ps.metadata_length()
        ));
    }
    let Some(raw) = (len - 1 - ps_len)
        .checked_sub(footer_len)
        .and_then(|at| input.get_bytes(at, footer_len).ok())
    else {
        return Ok(false);
    };
    let Some(bytes) = orc_footer_bytes(&raw, ps.compression(), ps.compression_block_size()) else {
        return Ok(false);
    };
    let Ok(footer) = Footer::decode(bytes?.as_slice()) else {
        return Ok(false);
    };
    let types = &footer.types;
    if types.len() > MAX_ORC_TYPES {
        return Err(format!(
            "its footer declares {} types; an S3 Inventory file has about 20",
            types.len()
        ));
    }
    for (index, ty) in types.iter().enumerate() {
        if let Some(&child) = ty
            .subtypes
            .iter()
            .find(|&&child| child as usize <= index || child as usize >= types.len())
        {
            return Err(format!(
                "type {index} of its footer names type {child} as a child; ORC numbers children after their parent, so the footer is corrupt"
            ));
        }
    }
    Ok(true)
}

/// The footer's bytes, decompressed from ORC's chunks (a 3-byte header: length << 1 | original).
fn orc_footer_bytes(
    raw: &[u8],
    compression: orc_rust::proto::CompressionKind,
    block_size: u64,
) -> Option<std::result::Result<Vec<u8>, String>> {
    use orc_rust::proto::CompressionKind as Kind;
    use std::io::Read as _;
    if compression == Kind::None {
        return Some(Ok(raw.to_vec()));
    }
    let mut out = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let header = rest.get(..3)?;
        let header = u32::from(header[0]) | u32::from(header[1]) << 8 | u32::from(header[2]) << 16;
        let (original, chunk_len) = (header & 1 == 1, (header >> 1) as usize);
        let chunk = rest.get(3..3 + chunk_len)?;
        rest = &rest[3 + chunk_len..];
        let limit = MAX_ORC_FOOTER_BYTES.saturating_sub(out.len() as u64);
        let mut piece = Vec::new();
        if original {
            piece.extend_from_slice(chunk);
        } else {
            match compression {
                Kind::Zlib => {
                    flate2::read::DeflateDecoder::new(chunk)
                        .take(limit)
                        .read_to_end(&mut piece)
                        .ok()?;
                }
                Kind::Snappy => {
                    // The declared length is allocated at once: bounded first (fuzzing found a
                    // chunk declaring 2 GiB).
                    let declared = snap::raw::decompress_len(chunk).ok()?;
                    if declared as u64 > limit {
                        return Some(Err(format!(
                            "a chunk of its footer declares {declared} bytes; a footer is a few kilobytes"
                        )));
                    }
                    piece = snap::raw::Decoder::new().decompress_vec(chunk).ok()?;
                }
                Kind::Zstd => {
                    zstd::stream::read::Decoder::new(chunk)
                        .ok()?
                        .take(limit)
                        .read_to_end(&mut piece)
                        .ok()?;
                }
                Kind::Lz4 => {
                    let max = usize::try_from(block_size.min(limit)).ok()?;
                    piece = lz4_flex::block::decompress(chunk, max).ok()?;
                }
                _ => return None,
            }
        }
        out.extend_from_slice(&piece);
        if out.len() as u64 > MAX_ORC_FOOTER_BYTES {
            return None;
        }
    }
    Some(Ok(out))
}

fn emit_batches(
    batches: impl Iterator<Item = std::result::Result<RecordBatch, ArrowError>>,
    columns: &Columns,
    format: ColumnarFormat,
    source: &str,
    emit: &mut dyn FnMut(Task) -> bool,
) -> Result<u64> {
    let mut rows = 0u64;
    let mut count = 0u64;
    for batch in batches {
        let batch = batch.map_err(|e| {
            let place = if rows == 0 {
                "at the start".to_string()
            } else {
                format!("after row {rows}")
            };
            Error::Manifest(format!(
                "{source}: cannot read the {format} file {place}: {e}"
            ))
        })?;
        let (emitted, more) = emit_batch(&batch, columns, rows, source, emit)?;
        count += emitted;
        rows += batch.num_rows() as u64;
        if !more {
            break;
        }
    }
    Ok(count)
}

/// Emits the tasks of one batch; `first_row` is the number of rows before it in the file.
/// Returns the tasks emitted and whether to go on.
fn emit_batch(
    batch: &RecordBatch,
    columns: &Columns,
    first_row: u64,
    source: &str,
    emit: &mut dyn FnMut(Task) -> bool,
) -> Result<(u64, bool)> {
    let column = |name: &str| {
        batch.column_by_name(name).ok_or_else(|| {
            Error::Manifest(format!(
                "{source}: the reader returned no {name} column after row {first_row}"
            ))
        })
    };
    let bucket = StrColumn::new(column(&columns.bucket)?.as_ref());
    let key = StrColumn::new(column(&columns.key)?.as_ref());
    let version_id = match &columns.version_id {
        Some(name) => Some(StrColumn::new(column(name)?.as_ref())),
        None => None,
    };
    let delete_marker: Option<&BooleanArray> = match &columns.delete_marker {
        Some(name) => column(name)?.as_boolean_opt(),
        None => None,
    };
    let size = match &columns.size {
        Some(name) => column(name)?
            .as_primitive_opt::<arrow_array::types::Int64Type>()
            .cloned(),
        None => None,
    };
    let (Some(bucket), Some(key)) = (bucket, key) else {
        return Err(Error::Manifest(format!(
            "{source}: the bucket and key columns must be strings"
        )));
    };
    let version_id = version_id.flatten();
    let mut count = 0;
    for i in 0..batch.num_rows() {
        let row = first_row + i as u64 + 1;
        if delete_marker.is_some_and(|c| c.is_valid(i) && c.value(i)) {
            continue;
        }
        let bad = |reason: &str| Error::Manifest(format!("{source} row {row}: {reason}"));
        let bucket = match bucket.get(i).map_err(|e| bad(&format!("the bucket {e}")))? {
            None => return Err(bad("the bucket is null")),
            Some("") => return Err(bad("the bucket name is empty")),
            Some(b) => b,
        };
        let key = match key.get(i).map_err(|e| bad(&format!("the key {e}")))? {
            None => return Err(bad("the key is null")),
            Some("") => return Err(bad("the key is empty")),
            Some(k) => k,
        };
        let version_id = match &version_id {
            Some(column) => column
                .get(i)
                .map_err(|e| bad(&format!("the version ID {e}")))?
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            None => None,
        };
        count += 1;
        let task = Task {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id,
            size: size
                .as_ref()
                .filter(|c| c.is_valid(i))
                .and_then(|c| u64::try_from(c.value(i)).ok()),
        };
        if !emit(task) {
            return Ok((count, false));
        }
    }
    Ok((count, true))
}

/// The file's names of the columns a task is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Columns {
    bucket: String,
    key: String,
    version_id: Option<String>,
    delete_marker: Option<String>,
    /// Read only when asked for, and only when it is a 64-bit integer.
    size: Option<String>,
    /// Positions of the above in the file's schema.
    indices: Vec<usize>,
}

impl Columns {
    /// Finds the columns by S3 Inventory's names (exactly, else ignoring case) and checks their
    /// types, before any row is read.
    fn find(schema: &Schema, format: ColumnarFormat, source: &str, sizes: bool) -> Result<Self> {
        let mut indices = Vec::new();
        let mut find = |name: &str, string: bool| -> Result<Option<String>> {
            let fields = schema.fields();
            let found = fields.iter().position(|f| f.name() == name).or_else(|| {
                fields
                    .iter()
                    .position(|f| f.name().eq_ignore_ascii_case(name))
            });
            let Some(index) = found else {
                return Ok(None);
            };
            let field = &fields[index];
            let fits = if string {
                is_string_type(field.data_type())
            } else {
                field.data_type() == &DataType::Boolean
            };
            if !fits {
                return Err(Error::Manifest(format!(
                    "{source}: the {format} column {} has type {}; S3 Inventory writes it as {}",
                    field.name(),
                    field.data_type(),
                    if string { "a string" } else { "a boolean" }
                )));
            }
            indices.push(index);
            Ok(Some(field.name().clone()))
        };
        let bucket = find("bucket", true)?;
        let key = find("key", true)?;
        let version_id = find("version_id", true)?;
        let delete_marker = find("is_delete_marker", false)?;
        let size = schema
            .fields()
            .iter()
            .position(|f| {
                f.name().eq_ignore_ascii_case("size") && f.data_type() == &DataType::Int64
            })
            .filter(|_| sizes)
            .map(|index| {
                indices.push(index);
                schema.fields()[index].name().clone()
            });
        let missing = |name: &str| {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            Error::Manifest(format!(
                "{source}: the {format} file has no {name} column (its columns: {})",
                names.join(", ")
            ))
        };
        indices.sort_unstable();
        Ok(Columns {
            bucket: bucket.ok_or_else(|| missing("bucket"))?,
            key: key.ok_or_else(|| missing("key"))?,
            version_id,
            delete_marker,
            size,
            indices,
        })
    }

    fn indices(&self) -> Vec<usize> {
        self.indices.clone()
    }

    fn names(&self) -> Vec<&str> {
        [
            Some(self.bucket.as_str()),
            Some(self.key.as_str()),
            self.version_id.as_deref(),
            self.delete_marker.as_deref(),
            self.size.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

fn is_string_type(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
    )
}

/// A string column of any of arrow's string or binary layouts.
enum StrColumn<'a> {
    Utf8(&'a arrow_array::StringArray),
    LargeUtf8(&'a arrow_array::LargeStringArray),
    Utf8View(&'a arrow_array::StringViewArray),
    Binary(&'a arrow_array::BinaryArray),
    LargeBinary(&'a arrow_array::LargeBinaryArray),
    BinaryView(&'a arrow_array::BinaryViewArray),
}

impl<'a> StrColumn<'a> {
    fn new(array: &'a dyn Array) -> Option<Self> {
        Some(match array.data_type() {
            DataType::Utf8 => StrColumn::Utf8(array.as_string_opt()?),
            DataType::LargeUtf8 => StrColumn::LargeUtf8(array.as_string_opt()?),
            DataType::Utf8View => StrColumn::Utf8View(array.as_string_view_opt()?),
            DataType::Binary => StrColumn::Binary(array.as_binary_opt()?),
            DataType::LargeBinary => StrColumn::LargeBinary(array.as_binary_opt()?),
            DataType::BinaryView => StrColumn::BinaryView(array.as_binary_view_opt()?),
            _ => return None,
        })
    }

    /// The value of row `i`; `None` when null.
    fn get(&self, i: usize) -> std::result::Result<Option<&'a str>, &'static str> {
        let utf8 = |bytes: &'a [u8]| std::str::from_utf8(bytes).map_err(|_| "is not valid UTF-8");
        Ok(match self {
            StrColumn::Utf8(a) => a.is_valid(i).then(|| a.value(i)),
            StrColumn::LargeUtf8(a) => a.is_valid(i).then(|| a.value(i)),
            StrColumn::Utf8View(a) => a.is_valid(i).then(|| a.value(i)),
            StrColumn::Binary(a) => a.is_valid(i).then(|| utf8(a.value(i))).transpose()?,
            StrColumn::LargeBinary(a) => a.is_valid(i).then(|| utf8(a.value(i))).transpose()?,
            StrColumn::BinaryView(a) => a.is_valid(i).then(|| utf8(a.value(i))).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, BooleanArray, Int64Array, StringArray};
    use arrow_schema::Field;
    use bytes::Bytes;
    use std::sync::Arc;

    const FILE: &str = "inventory data file s3://inv/data/f";
    const BUCKET: &str = "example-source-bucket";

    fn task(key: &str, version_id: Option<&str>) -> Task {
        Task {
            bucket: BUCKET.into(),
            key: key.into(),
            version_id: version_id.map(str::to_string),
            size: None,
        }
    }

    /// Found by the `columnar` fuzz target: orc-rust panics on this file's compression chunk
    /// header (`split_to out of bounds`); the job must fail with the file named instead.
    #[test]
    fn an_orc_file_that_makes_the_reader_panic_is_an_unreadable_file() {
        let data = include_bytes!("../../../tests/fixtures/fuzz/orc-bad-compression-chunk.orc");
        match tasks(ColumnarFormat::Orc, Bytes::from_static(data)) {
            Err(Error::Manifest(reason)) => {
                assert!(
                    reason.starts_with(&format!(
                        "{FILE}: not a readable ORC file: the ORC reader failed on it ("
                    )),
                    "{reason}"
                );
                assert!(reason.ends_with("the file is corrupt"), "{reason}");
            }
            other => panic!("expected a manifest error, got {other:?}"),
        }
    }

    /// Found by the `columnar` fuzz target: a footer whose type names an earlier type as its
    /// child made orc-rust recurse until the stack overflowed (an abort, not an error).
    #[test]
    fn an_orc_footer_whose_types_form_a_cycle_is_an_unreadable_file() {
        let data = include_bytes!("../../../tests/fixtures/fuzz/orc-cyclic-schema.orc");
        match tasks(ColumnarFormat::Orc, Bytes::from_static(data)) {
            Err(Error::Manifest(reason)) => assert!(
                reason.contains("of its footer names type")
                    && reason.contains("the footer is corrupt"),
                "{reason}"
            ),
            other => panic!("expected a manifest error, got {other:?}"),
        }
    }

    /// Found by the `columnar` fuzz target: a postscript whose footer and metadata lengths run
    /// past the start of the file made orc-rust allocate them (2 PiB) before reading.
    #[test]
    fn an_orc_postscript_with_lengths_beyond_the_file_is_an_unreadable_file() {
        let data = include_bytes!("../../../tests/fixtures/fuzz/orc-huge-footer-length.orc");
        match tasks(ColumnarFormat::Orc, Bytes::from_static(data)) {
            Err(Error::Manifest(reason)) => {
                assert!(
                    reason.contains("its postscript gives a footer of"),
                    "{reason}"
                )
            }
            other => panic!("expected a manifest error, got {other:?}"),
        }
    }

    /// Found by the `columnar` fuzz target: a SNAPPY footer chunk declaring 2 GiB was allocated
    /// (by the type check, and by orc-rust after it); such a file is refused before either.
    #[test]
    fn an_orc_footer_declaring_gigabytes_is_not_allocated() {
        let data =
            include_bytes!("../../../tests/fixtures/fuzz/orc-snappy-footer-declares-2gib.orc");
        match tasks(ColumnarFormat::Orc, Bytes::from_static(data)) {
            Err(Error::Manifest(reason)) => {
                assert!(reason.contains("a footer is a few kilobytes"), "{reason}")
            }
            other => panic!("expected a manifest error, got {other:?}"),
        }
    }

    #[test]
    fn the_orc_fixtures_pass_the_type_check() {
        for name in ["versioned.orc", "versioned-snappy.orc"] {
            let path = format!(
                "{}/../tests/fixtures/inventory/{name}",
                env!("CARGO_MANIFEST_DIR")
            );
            let data = Bytes::from(std::fs::read(&path).unwrap());
            assert_eq!(
                check_orc_types(&data),
                Ok(true),
                "{name}: checked, and sound"
            );
        }
    }

    fn tasks(format: ColumnarFormat, data: impl Into<Bytes>) -> Result<Vec<Task>> {
        let mut out = Vec::new();
        let count = parse_columnar(format, data.into(), FILE, |t| {
            out.push(t);
            true
        })?;
        assert_eq!(count, out.len() as u64, "the count is the number emitted");
        Ok(out)
    }

    fn manifest_error<T: std::fmt::Debug>(result: Result<T>) -> String {
        match result {
            Err(Error::Manifest(reason)) => reason,
            other => panic!("expected Error::Manifest, got {other:?}"),
        }
    }

    /// The tasks of scripts/make_inventory_fixtures.py's rows: the delete marker is gone, keys are
    /// raw ('+', '%', spaces, unicode unchanged), null and empty version ids are None.
    fn golden_tasks() -> Vec<Task> {
        vec![
            task("photos/2026/IMG_0001.JPG", Some("3HL4kqtJvjVBH40Nrjfkd")),
            task("docs/with space/Quarterly report (final).pdf", Some("null")),
            task("unicode/日本語/été 🦀.txt", Some("a1b2c3")),
            task("math/1+1=2 & 100%.txt", Some("Q8d9")),
            task("pre-versioning/object.bin", None),
            task("empty-version/object.bin", None),
            task("marker-null/object.bin", Some("v9")),
        ]
    }

    macro_rules! fixture {
        ($name:literal) => {
            &include_bytes!(concat!("../../../tests/fixtures/inventory/", $name))[..]
        };
    }

    #[test]
    fn pyarrow_parquet_golden_files_give_the_exact_tasks() {
        for (name, data) in [
            ("versioned.parquet (snappy)", fixture!("versioned.parquet")),
            ("versioned-gzip.parquet", fixture!("versioned-gzip.parquet")),
            ("versioned-zstd.parquet", fixture!("versioned-zstd.parquet")),
        ] {
            let got = tasks(ColumnarFormat::Parquet, data).unwrap();
            assert_eq!(got, golden_tasks(), "{name}");
        }
    }

    #[test]
    fn pyarrow_orc_golden_files_give_the_exact_tasks() {
        for (name, data) in [
            ("versioned.orc (zlib)", fixture!("versioned.orc")),
            ("versioned-snappy.orc", fixture!("versioned-snappy.orc")),
        ] {
            let got = tasks(ColumnarFormat::Orc, data).unwrap();
            assert_eq!(got, golden_tasks(), "{name}");
        }
    }

    #[test]
    fn truncated_golden_files_fail_naming_the_file() {
        let reason = manifest_error(tasks(
            ColumnarFormat::Parquet,
            fixture!("truncated-versioned.parquet"),
        ));
        assert!(
            reason.starts_with(&format!("{FILE}: not a readable Parquet file:")),
            "{reason}"
        );
        let reason = manifest_error(tasks(
            ColumnarFormat::Orc,
            fixture!("truncated-versioned.orc"),
        ));
        assert!(
            reason.starts_with(&format!("{FILE}: not a readable ORC file:")),
            "{reason}"
        );
    }

    #[test]
    fn a_file_of_the_other_format_or_garbage_is_unreadable() {
        let reason = manifest_error(tasks(ColumnarFormat::Orc, fixture!("versioned.parquet")));
        assert!(
            reason.starts_with(&format!("{FILE}: not a readable ORC file")),
            "{reason}"
        );
        let reason = manifest_error(tasks(ColumnarFormat::Parquet, fixture!("versioned.orc")));
        assert!(
            reason.starts_with(&format!("{FILE}: not a readable Parquet file")),
            "{reason}"
        );
        for format in [ColumnarFormat::Parquet, ColumnarFormat::Orc] {
            for data in [&b""[..], b"\"b\",\"k\"\n", &[0u8; 4096][..]] {
                let reason = manifest_error(tasks(format, data));
                assert!(reason.starts_with(FILE), "{format}: {reason}");
            }
        }
    }

    #[test]
    fn early_stop_returns_the_count_so_far() {
        for (format, data) in [
            (ColumnarFormat::Parquet, fixture!("versioned.parquet")),
            (ColumnarFormat::Orc, fixture!("versioned.orc")),
        ] {
            let mut seen = 0;
            let count = parse_columnar(format, Bytes::from_static(data), FILE, |_| {
                seen += 1;
                seen < 2
            })
            .unwrap();
            assert_eq!((count, seen), (2, 2), "{format}");
        }
    }

    // --- files written by the Rust writers ------------------------------------------------

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
            .collect();
        let arrays = columns.into_iter().map(|(_, a)| a).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
    }

    fn strings(values: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(values.to_vec()))
    }

    fn write(format: ColumnarFormat, batch: &RecordBatch) -> Bytes {
        let mut out = Vec::new();
        match format {
            ColumnarFormat::Parquet => {
                let mut writer =
                    parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
                writer.write(batch).unwrap();
                writer.close().unwrap();
            }
            ColumnarFormat::Orc => {
                let mut writer = orc_rust::ArrowWriterBuilder::new(&mut out, batch.schema())
                    .try_build()
                    .unwrap();
                writer.write(batch).unwrap();
                writer.close().unwrap();
            }
        }
        out.into()
    }

    const FORMATS: [ColumnarFormat; 2] = [ColumnarFormat::Parquet, ColumnarFormat::Orc];

    #[test]
    fn non_versioned_inventory_with_only_bucket_and_key() {
        let data = batch(vec![
            ("bucket", strings(&[Some(BUCKET), Some(BUCKET)])),
            ("key", strings(&[Some("a b+c%20"), Some("dir/é")])),
        ]);
        for format in FORMATS {
            let got = tasks(format, write(format, &data)).unwrap();
            assert_eq!(
                got,
                vec![task("a b+c%20", None), task("dir/é", None)],
                "{format}"
            );
        }
    }

    #[test]
    fn columns_in_another_order_with_extra_columns() {
        let data = batch(vec![
            ("storage_class", strings(&[Some("STANDARD"); 3])),
            (
                "is_delete_marker",
                Arc::new(BooleanArray::from(vec![Some(false), Some(true), None])),
            ),
            (
                "size",
                Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
            ),
            ("key", strings(&[Some("k1"), Some("gone"), Some("k3")])),
            ("e_tag", strings(&[Some("x"), None, Some("y")])),
            ("version_id", strings(&[Some("v1"), Some("v2"), Some("")])),
            (
                "is_latest",
                Arc::new(BooleanArray::from(vec![true, true, false])),
            ),
            ("bucket", strings(&[Some(BUCKET); 3])),
        ]);
        for format in FORMATS {
            let got = tasks(format, write(format, &data)).unwrap();
            assert_eq!(
                got,
                vec![task("k1", Some("v1")), task("k3", None)],
                "{format}"
            );
        }
    }

    #[test]
    fn many_batches_keep_file_order_and_skip_every_delete_marker() {
        let n = BATCH_ROWS * 2 + 17;
        let keys: Vec<String> = (0..n).map(|i| format!("k/{i}")).collect();
        let data = batch(vec![
            ("bucket", strings(&vec![Some(BUCKET); n])),
            (
                "key",
                strings(&keys.iter().map(|k| Some(k.as_str())).collect::<Vec<_>>()),
            ),
            (
                "is_delete_marker",
                Arc::new(BooleanArray::from(
                    (0..n).map(|i| i % 3 == 0).collect::<Vec<_>>(),
                )),
            ),
        ]);
        let expected: Vec<Task> = (0..n)
            .filter(|i| i % 3 != 0)
            .map(|i| task(&keys[i], None))
            .collect();
        for format in FORMATS {
            let got = tasks(format, write(format, &data)).unwrap();
            assert_eq!(got.len(), expected.len(), "{format}");
            assert_eq!(got, expected, "{format}");
        }
    }

    #[test]
    fn orc_stripes_are_read_one_after_another_in_order() {
        let n = 5000;
        let keys: Vec<String> = (0..n).map(|i| format!("stripe/{i:05}")).collect();
        let data = batch(vec![
            ("bucket", strings(&vec![Some(BUCKET); n])),
            (
                "key",
                strings(&keys.iter().map(|k| Some(k.as_str())).collect::<Vec<_>>()),
            ),
        ]);
        let mut out = Vec::new();
        let mut writer = orc_rust::ArrowWriterBuilder::new(&mut out, data.schema())
            .with_stripe_byte_size(4096)
            .try_build()
            .unwrap();
        for start in (0..n).step_by(500) {
            writer.write(&data.slice(start, 500)).unwrap();
        }
        writer.close().unwrap();
        let mut file = Bytes::from(out);
        let stripes = orc_rust::reader::metadata::read_metadata(&mut file)
            .unwrap()
            .stripe_metadatas()
            .len();
        assert!(stripes >= 5, "the file has {stripes} stripes");
        let got = tasks(ColumnarFormat::Orc, file).unwrap();
        let expected: Vec<Task> = keys.iter().map(|k| task(k, None)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_file_without_a_key_column_is_refused() {
        let data = batch(vec![
            ("bucket", strings(&[Some(BUCKET)])),
            ("size", Arc::new(Int64Array::from(vec![1]))),
        ]);
        for format in FORMATS {
            let reason = manifest_error(tasks(format, write(format, &data)));
            assert_eq!(
                reason,
                format!("{FILE}: the {format} file has no key column (its columns: bucket, size)")
            );
        }
        let data = batch(vec![("key", strings(&[Some("k")]))]);
        for format in FORMATS {
            let reason = manifest_error(tasks(format, write(format, &data)));
            assert!(reason.contains("has no bucket column"), "{reason}");
        }
    }

    #[test]
    fn a_key_column_of_the_wrong_type_is_refused() {
        let data = batch(vec![
            ("bucket", strings(&[Some(BUCKET)])),
            ("key", Arc::new(Int64Array::from(vec![1]))),
        ]);
        for format in FORMATS {
            let reason = manifest_error(tasks(format, write(format, &data)));
            assert_eq!(
                reason,
                format!("{FILE}: the {format} column key has type Int64; S3 Inventory writes it as a string")
            );
        }
    }

    #[test]
    fn null_or_empty_key_or_bucket_fails_with_the_row() {
        type Column<'a> = &'a [Option<&'a str>];
        let cases: [(Column, Column, &str); 3] = [
            (
                &[Some(BUCKET), Some(BUCKET)],
                &[Some("k"), None],
                "row 2: the key is null",
            ),
            (
                &[Some(BUCKET), Some(BUCKET)],
                &[Some(""), Some("k")],
                "row 1: the key is empty",
            ),
            (
                &[Some(BUCKET), None],
                &[Some("k"), Some("k2")],
                "row 2: the bucket is null",
            ),
        ];
        for (buckets, keys, expected) in cases {
            let data = batch(vec![("bucket", strings(buckets)), ("key", strings(keys))]);
            for format in FORMATS {
                let reason = manifest_error(tasks(format, write(format, &data)));
                assert_eq!(reason, format!("{FILE} {expected}"), "{format}");
            }
        }
    }

    #[test]
    fn a_null_key_on_a_delete_marker_is_not_an_error() {
        let data = batch(vec![
            ("bucket", strings(&[Some(BUCKET), Some(BUCKET)])),
            ("key", strings(&[None, Some("k")])),
            (
                "is_delete_marker",
                Arc::new(BooleanArray::from(vec![true, false])),
            ),
        ]);
        for format in FORMATS {
            assert_eq!(
                tasks(format, write(format, &data)).unwrap(),
                vec![task("k", None)]
            );
        }
    }

    #[test]
    fn column_names_match_ignoring_case() {
        let data = batch(vec![
            ("Bucket", strings(&[Some(BUCKET)])),
            ("Key", strings(&[Some("k")])),
            ("VERSION_ID", strings(&[Some("v")])),
        ]);
        for format in FORMATS {
            assert_eq!(
                tasks(format, write(format, &data)).unwrap(),
                vec![task("k", Some("v"))]
            );
        }
    }

    // --- spooling to a temporary file -----------------------------------------------------

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "batchops-columnar-test-{name}-{}",
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn entries(dir: &Path) -> usize {
        std::fs::read_dir(dir).unwrap().count()
    }

    #[test]
    fn spool_checks_the_md5_and_leaves_no_file() {
        let dir = temp_dir("spool");
        let data = fixture!("versioned.parquet");
        let md5 = hex::encode(Md5::digest(data));
        {
            let spooled = spool(
                &mut &data[..],
                &dir,
                ColumnarFormat::Parquet,
                FILE,
                Some(&md5.to_uppercase()),
            )
            .unwrap();
            assert_eq!(spooled.bytes, data.len() as u64);
            let got = parse_columnar(
                ColumnarFormat::Parquet,
                spooled.reader(FILE).unwrap(),
                FILE,
                |_| true,
            )
            .unwrap();
            assert_eq!(got, golden_tasks().len() as u64);
            assert_eq!(
                entries(&dir),
                0,
                "the copy has no directory entry while read"
            );
        }
        assert_eq!(entries(&dir), 0);

        let wrong = "0".repeat(32);
        let reason = manifest_error(spool(
            &mut &data[..],
            &dir,
            ColumnarFormat::Parquet,
            FILE,
            Some(&wrong),
        ));
        assert_eq!(
            reason,
            format!(
                "{FILE}: MD5 mismatch: manifest.json gives MD5checksum {wrong} but the file's {} bytes hash to {md5}",
                data.len()
            )
        );
        assert_eq!(entries(&dir), 0, "no copy is left after a mismatch");

        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("connection reset"))
            }
        }
        let reason = manifest_error(spool(&mut Failing, &dir, ColumnarFormat::Orc, FILE, None));
        assert_eq!(
            reason,
            format!("{FILE}: cannot read the file after 0 bytes: connection reset")
        );
        assert_eq!(entries(&dir), 0);
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn spool_into_a_missing_directory_names_the_file() {
        let dir = std::env::temp_dir().join(format!("batchops-missing-{}", uuid::Uuid::new_v4()));
        let reason = manifest_error(spool(&mut &b"x"[..], &dir, ColumnarFormat::Orc, FILE, None));
        assert!(
            reason.starts_with(&format!("{FILE}: cannot write a temporary copy to")),
            "{reason}"
        );
    }

    // --- manifest.json fileFormat and fileSchema ------------------------------------------

    const PARQUET_SCHEMA: &str = "message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); optional binary version_id (UTF8); optional boolean is_latest; optional boolean is_delete_marker; optional int64 size; optional int64 last_modified_date (TIMESTAMP_MILLIS); optional binary e_tag (UTF8); optional binary storage_class (UTF8); optional boolean is_multipart_uploaded; optional binary replication_status (UTF8); optional binary encryption_status (UTF8); optional int64 object_lock_retain_until_date (TIMESTAMP_MILLIS); optional binary object_lock_mode (UTF8); optional binary object_lock_legal_hold_status (UTF8); optional binary intelligent_tiering_access_tier (UTF8); optional binary bucket_key_status (UTF8); optional binary checksum_algorithm (UTF8); optional binary object_access_control_list (UTF8); optional binary object_owner (UTF8);}";
    const ORC_SCHEMA: &str = "struct<bucket:string,key:string,version_id:string,is_latest:boolean,is_delete_marker:boolean,size:bigint,last_modified_date:timestamp,e_tag:string,storage_class:string,is_multipart_uploaded:boolean,replication_status:string,encryption_status:string,object_lock_retain_until_date:timestamp,object_lock_mode:string,object_lock_legal_hold_status:string,intelligent_tiering_access_tier:string,bucket_key_status:string,checksum_algorithm:string,object_access_control_list:string,object_owner:string>";

    #[test]
    fn file_formats_are_recognised() {
        assert_eq!(
            ColumnarFormat::from_file_format("Parquet"),
            Some(ColumnarFormat::Parquet)
        );
        assert_eq!(
            ColumnarFormat::from_file_format("ORC"),
            Some(ColumnarFormat::Orc)
        );
        assert_eq!(
            ColumnarFormat::from_file_format(" parquet "),
            Some(ColumnarFormat::Parquet)
        );
        assert_eq!(ColumnarFormat::from_file_format("CSV"), None);
        assert_eq!(ColumnarFormat::from_file_format("Avro"), None);
    }

    #[test]
    fn s3_inventory_file_schemas_give_their_columns() {
        let parquet = file_schema_columns(ColumnarFormat::Parquet, PARQUET_SCHEMA);
        let orc = file_schema_columns(ColumnarFormat::Orc, ORC_SCHEMA);
        assert_eq!(parquet.len(), 20);
        assert_eq!(parquet, orc);
        assert_eq!(
            &parquet[..6],
            [
                "bucket",
                "key",
                "version_id",
                "is_latest",
                "is_delete_marker",
                "size"
            ]
        );
        assert_eq!(parquet[19], "object_owner");
        assert_eq!(
            file_schema_columns(
                ColumnarFormat::Orc,
                "struct<bucket:string,tags:struct<a:string,b:int>,key:string>"
            ),
            ["bucket", "tags", "key"]
        );
        check_file_schema(ColumnarFormat::Parquet, PARQUET_SCHEMA, "m").unwrap();
        check_file_schema(ColumnarFormat::Orc, ORC_SCHEMA, "m").unwrap();
    }

    #[test]
    fn a_file_schema_without_key_is_refused() {
        let reason = manifest_error(check_file_schema(
            ColumnarFormat::Orc,
            "struct<bucket:string,size:bigint>",
            "manifest s3://b/manifest.json",
        ));
        assert_eq!(
            reason,
            "manifest s3://b/manifest.json: the ORC inventory fileSchema \"struct<bucket:string,size:bigint>\" has no key column"
        );
        let reason = manifest_error(check_file_schema(
            ColumnarFormat::Parquet,
            "Bucket, Key",
            "m",
        ));
        assert!(reason.contains("has no bucket column"), "{reason}");
    }

    const INVENTORY_JSON: &str = r#"{
        "sourceBucket": "example-source-bucket",
        "destinationBucket": "arn:aws:s3:::example-inventory-destination-bucket",
        "version": "2016-11-30",
        "creationTimestamp": "1514944800000",
        "fileFormat": "FORMAT",
        "fileSchema": "SCHEMA",
        "files": [{"key": "inv/data/f.FORMAT", "size": 1, "MD5checksum": "00"}]
    }"#;

    fn inventory(format: &str, schema: &str) -> InventoryManifest {
        let json = INVENTORY_JSON
            .replace("FORMAT", format)
            .replace("SCHEMA", schema);
        InventoryManifest::parse(json.as_bytes(), "m").unwrap()
    }

    #[test]
    fn inventory_manifests_in_parquet_and_orc_are_supported() {
        inventory("Parquet", PARQUET_SCHEMA)
            .check_supported("m")
            .unwrap();
        inventory("ORC", ORC_SCHEMA).check_supported("m").unwrap();
        let reason = manifest_error(inventory("ORC", "struct<bucket:string>").check_supported("m"));
        assert!(reason.contains("has no key column"), "{reason}");
        let reason = manifest_error(inventory("Avro", "x").check_supported("m"));
        assert_eq!(
            reason,
            "m: inventory fileFormat Avro is not supported; S3 Inventory writes CSV, ORC or Parquet"
        );
    }
}
