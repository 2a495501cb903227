//! Synchronous parsing of a spooled Parquet or ORC file: the ORC footer's type tree checked
//! first, then record batches of the task columns turned into tasks.

use super::*;

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

pub(super) fn unreadable(format: ColumnarFormat, source: &str, e: impl Display) -> Error {
    Error::Manifest(format!("{source}: not a readable {format} file: {e}"))
}

pub(super) fn parse_parquet<R: parquet::file::reader::ChunkReader + 'static>(
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

pub(super) fn parse_orc<R: orc_rust::reader::ChunkReader>(
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
pub(super) const MAX_ORC_TYPES: usize = 10_000;
/// A footer decompresses to a few kilobytes; more is not an inventory file.
pub(super) const MAX_ORC_FOOTER_BYTES: u64 = 16 << 20;

/// Checks an ORC file's type tree before orc-rust reads it: orc-rust follows each type's
/// `subtypes` recursively without checking them, so a corrupt footer whose type names itself (or
/// an earlier type) as a child recursed until the stack overflowed, which no error handling can
/// catch (found by the `columnar` fuzz target). ORC numbers types in pre-order, so every child's
/// index is greater than its parent's: checked here, the recursion ends. A footer that cannot be
/// read here is left for orc-rust to report; LZO footers are not checked (S3 writes ZLIB).
/// True when the types were checked.
pub(super) fn check_orc_types<R: orc_rust::reader::ChunkReader>(
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
pub(super) fn orc_footer_bytes(
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

pub(super) fn emit_batches(
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
pub(super) fn emit_batch(
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
pub(super) struct Columns {
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

pub(super) fn is_string_type(data_type: &DataType) -> bool {
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
pub(super) enum StrColumn<'a> {
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
