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

mod parse;
mod spool;
pub use parse::{parse_columnar, parse_columnar_sized, ColumnarInput};
pub(super) use spool::read_inventory_file;
pub use spool::{spool, spool_as, Spooled};

/// Rows per record batch: large enough to amortise the decoders, small enough that memory stays
/// flat (a batch of 8192 rows with 200-byte keys is under 2 MiB).
pub const BATCH_ROWS: usize = 8192;

const COPY_BUFFER_BYTES: usize = 256 * 1024;

/// The columnar formats of S3 Inventory (manifest.json `fileFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnarFormat {
    /// Apache Parquet (`fileFormat` `"Parquet"`).
    Parquet,
    /// Apache ORC (`fileFormat` `"ORC"`).
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

#[cfg(test)]
mod tests;
