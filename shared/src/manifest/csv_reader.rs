//! CSV manifests and CSV inventory data files: rows read in constant memory, with the line number
//! of every malformed row, and the resume points of a CSV manifest.

use super::*;
use std::io::{self, Read};

use crate::error::{Error, Result};

// ---------------------------------------------------------------------------------------------
// Synchronous parsing
// ---------------------------------------------------------------------------------------------

/// Parses a `S3BatchOperations_CSV_20180820` manifest: no header, columns as `fields` names them
/// (Bucket, Key, VersionId, Ignore), URL-encoded keys. Calls `emit` for each task in order and
/// stops early, without error, when `emit` returns false. Returns the number of tasks emitted.
/// `source` names the manifest in error messages, e.g. `manifest s3://bucket/key`.
pub fn parse_csv_manifest<R: Read>(
    reader: R,
    fields: &[String],
    source: &str,
    mut emit: impl FnMut(Task) -> bool,
) -> Result<u64> {
    let layout = Layout::csv_manifest(fields, source)?;
    let (count, _) = parse_rows(reader, &layout, source, "the CSV", None, &mut |t, _| {
        emit(t)
    })?;
    Ok(count)
}

/// Like [`parse_csv_manifest`] for a manifest read from `start` on (`reader` begins at
/// `start.byte` of the file): line numbers and the resume points given to `emit` with each task
/// count from the start of the file.
pub fn parse_csv_manifest_from<R: Read>(
    reader: R,
    fields: &[String],
    source: &str,
    start: ResumePoint,
    mut emit: impl FnMut(Task, ResumePoint) -> bool,
) -> Result<u64> {
    let layout = Layout::csv_manifest(fields, source)?;
    let (count, _) = parse_rows(
        reader,
        &layout,
        source,
        "the CSV",
        Some(start),
        &mut |t, p| emit(t, p.unwrap_or(start)),
    )?;
    Ok(count)
}

/// Parses the (already decompressed) CSV of an S3 Inventory data file, columns in the order of the
/// inventory's `fileSchema`. Delete markers are skipped; keys are URL-decoded.
pub fn parse_inventory_csv<R: Read>(
    reader: R,
    file_schema: &str,
    source: &str,
    mut emit: impl FnMut(Task) -> bool,
) -> Result<u64> {
    let layout = Layout::inventory(file_schema, source)?.with_sizes(false);
    let (count, _) = parse_rows(reader, &layout, source, "the CSV", None, &mut |t, _| {
        emit(t)
    })?;
    Ok(count)
}

/// Where the task's parts are in a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Layout {
    width: usize,
    bucket: usize,
    key: usize,
    version_id: Option<usize>,
    delete_marker: Option<usize>,
    /// The `Size` column, read only when asked for.
    size: Option<usize>,
    /// Column names for error messages, e.g. "Bucket, Key".
    names: String,
}

impl Layout {
    pub(super) fn csv_manifest(fields: &[String], source: &str) -> Result<Self> {
        let invalid =
            |reason: String| Error::Manifest(format!("{source}: Manifest.Spec.Fields {reason}"));
        if let Some(bad) = fields
            .iter()
            .find(|f| !matches!(f.as_str(), "Bucket" | "Key" | "VersionId" | "Ignore"))
        {
            return Err(invalid(format!(
                "names {bad:?}, which is not one of Bucket, Key, VersionId, Ignore"
            )));
        }
        let position = |name: &str| -> Result<Option<usize>> {
            let mut found = fields
                .iter()
                .enumerate()
                .filter(|(_, f)| f.as_str() == name);
            match (found.next(), found.next()) {
                (Some((i, _)), None) => Ok(Some(i)),
                (None, _) => Ok(None),
                (Some(_), Some(_)) => Err(invalid(format!("names {name} more than once"))),
            }
        };
        let bucket = position("Bucket")?.ok_or_else(|| invalid("must name Bucket".into()))?;
        let key = position("Key")?.ok_or_else(|| invalid("must name Key".into()))?;
        Ok(Layout {
            width: fields.len(),
            bucket,
            key,
            version_id: position("VersionId")?,
            delete_marker: None,
            size: None,
            names: fields.join(", "),
        })
    }

    pub(super) fn inventory(file_schema: &str, source: &str) -> Result<Self> {
        let columns: Vec<&str> = file_schema.split(',').map(str::trim).collect();
        let position = |name: &str| columns.iter().position(|c| *c == name);
        let required = |name: &str| {
            position(name).ok_or_else(|| {
                Error::Manifest(format!(
                    "{source}: the inventory fileSchema {file_schema:?} has no {name} column"
                ))
            })
        };
        Ok(Layout {
            width: columns.len(),
            bucket: required("Bucket")?,
            key: required("Key")?,
            version_id: position("VersionId"),
            delete_marker: position("IsDeleteMarker"),
            size: position("Size"),
            names: columns.join(", "),
        })
    }

    /// Reads the `Size` column (when there is one) only if `sizes`.
    pub(super) fn with_sizes(mut self, sizes: bool) -> Self {
        if !sizes {
            self.size = None;
        }
        self
    }

    /// The task of a row; `None` for rows that are not tasks (delete markers).
    pub(super) fn task(&self, row: &csv::ByteRecord) -> std::result::Result<Option<Task>, String> {
        if row.len() != self.width {
            return Err(format!(
                "expected {} columns ({}), found {}",
                self.width,
                self.names,
                row.len()
            ));
        }
        let field = |i: usize| row.get(i).unwrap_or_default();
        if let Some(i) = self.delete_marker {
            if field(i).eq_ignore_ascii_case(b"true") {
                return Ok(None);
            }
        }
        let bucket = std::str::from_utf8(field(self.bucket))
            .map_err(|_| "the bucket name is not valid UTF-8".to_string())?;
        if bucket.is_empty() {
            return Err("the bucket name is empty".into());
        }
        let raw_key = field(self.key);
        let key = decode_key_bytes(raw_key).map_err(|e| {
            format!(
                "cannot decode key {:?}: {e}",
                String::from_utf8_lossy(raw_key)
            )
        })?;
        if key.is_empty() {
            return Err("the key is empty".into());
        }
        let version_id = match self.version_id.map(field) {
            None | Some(b"") => None,
            Some(raw) => Some(
                std::str::from_utf8(raw)
                    .map_err(|_| "the version ID is not valid UTF-8".to_string())?
                    .to_string(),
            ),
        };
        let size = match self.size.map(field) {
            None | Some(b"") => None,
            Some(raw) => Some(
                std::str::from_utf8(raw)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| {
                        format!(
                            "the size {:?} is not a number",
                            String::from_utf8_lossy(raw)
                        )
                    })?,
            ),
        };
        Ok(Some(Task {
            bucket: bucket.to_string(),
            key,
            version_id,
            size,
        }))
    }
}

/// Reads CSV rows and emits their tasks. Returns the count and whether the input was read to the
/// end (false when `emit` asked to stop). With `start` (a CSV manifest read from a resume point
/// on), each task comes with the point just after its row, and line numbers count from the start
/// of the file; without, no points are worked out.
pub(super) fn parse_rows<R: Read>(
    reader: R,
    layout: &Layout,
    source: &str,
    what: &str,
    start: Option<ResumePoint>,
    emit: &mut dyn FnMut(Task, Option<ResumePoint>) -> bool,
) -> Result<(u64, bool)> {
    let base = start.unwrap_or_default();
    let read_error = |line: u64, e: &dyn std::fmt::Display| {
        let line = base.line + line;
        let place = if line == 0 {
            "at the start".to_string()
        } else {
            format!("after line {line}")
        };
        Error::Manifest(format!("{source}: cannot read {what} {place}: {e}"))
    };
    // A byte order mark can only be at the start of the file.
    let (reader, bom) = if base.byte == 0 {
        skip_bom(reader).map_err(|e| read_error(0, &e))?
    } else {
        (io::Cursor::new(Vec::new()).chain(reader), 0)
    };
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(READ_BUFFER_BYTES)
        .from_reader(LineCounter::new(RowGuard::new(reader)));
    let mut row = csv::ByteRecord::new();
    let mut count = 0u64;
    loop {
        match csv.read_byte_record(&mut row) {
            Ok(true) => {}
            Ok(false) => return Ok((count, true)),
            Err(e) => {
                if let Some(problem) = RowProblem::of(&e) {
                    let line = base.line + problem.line;
                    return Err(Error::Manifest(format!(
                        "{source} line {line}: {}",
                        problem.reason
                    )));
                }
                // The lines read whole so far: the newlines the reader has consumed.
                let consumed = csv.position().byte();
                return Err(read_error(csv.get_ref().newlines_before(consumed), &e));
            }
        }
        match layout.task(&row) {
            Ok(Some(task)) => {
                count += 1;
                let point = start.map(|_| {
                    let end = csv.position().byte();
                    ResumePoint {
                        task: base.task + count,
                        byte: base.byte + bom + end,
                        line: base.line + csv.get_mut().newlines_until(end),
                    }
                });
                if !emit(task, point) {
                    return Ok((count, false));
                }
            }
            Ok(None) => {}
            Err(reason) => {
                let line = base.line + start_line(&mut csv, &row);
                return Err(Error::Manifest(format!("{source} line {line}: {reason}")));
            }
        }
    }
}

/// The line on which the row just read starts; worked out only for a row in error. The csv
/// crate's own line numbers skip blank lines and CRLF pairs, so lines are counted here: after a
/// row, the reader stands just past the first byte of its terminator ('\n', or the '\r' of
/// "\r\n"; the end of input for a last row without one), and the row's own newlines are the
/// ones inside quoted fields.
pub(super) fn start_line<R: Read>(
    csv: &mut csv::Reader<LineCounter<R>>,
    row: &csv::ByteRecord,
) -> u64 {
    let end = csv.position().byte().saturating_sub(1);
    let inside = newline_count(row.as_slice());
    1 + csv.get_mut().newlines_before(end).saturating_sub(inside)
}

/// Counts in byte-wide counters (at most 255 bytes per chunk) so that it vectorises well: every
/// byte of a manifest passes through here once.
pub(super) fn newline_count(bytes: &[u8]) -> u64 {
    bytes
        .chunks(255)
        .map(|chunk| {
            let n = chunk
                .iter()
                .fold(0u8, |n, &b| n.wrapping_add(u8::from(b == b'\n')));
            u64::from(n)
        })
        .sum()
}

/// Passes bytes through, counting the newlines of every read and keeping a copy of the last one,
/// so that the line of a row in error can be worked out. The CSV reader refills its buffer only
/// once it has used it up, so the row just read always ends inside the last read.
pub(super) struct LineCounter<R> {
    inner: R,
    last: Vec<u8>,
    /// Offset of the first byte of `last` in the stream.
    last_start: u64,
    /// Newlines before `last_start`.
    newlines_before_last: u64,
    /// [`LineCounter::newlines_until`]'s last answer (position, newlines before it), so that
    /// positions asked for in order are counted once in all.
    memo: (u64, u64),
}

impl<R: Read> LineCounter<R> {
    pub(super) fn new(inner: R) -> Self {
        LineCounter {
            inner,
            last: Vec::new(),
            last_start: 0,
            newlines_before_last: 0,
            memo: (0, 0),
        }
    }

    /// Newlines before `position` (within the last read), counting on from the last position
    /// asked for when this one is not before it.
    pub(super) fn newlines_until(&mut self, position: u64) -> u64 {
        let (at, count) = self.memo;
        if position < at || at < self.last_start {
            let count = self.newlines_before(position);
            self.memo = (position, count);
            return count;
        }
        let from = usize::try_from(at - self.last_start)
            .unwrap_or(usize::MAX)
            .min(self.last.len());
        let to = usize::try_from(position.saturating_sub(self.last_start))
            .unwrap_or(usize::MAX)
            .min(self.last.len());
        let count = count + newline_count(&self.last[from..to.max(from)]);
        self.memo = (position, count);
        count
    }

    /// Newlines at byte offsets before `position`, which must not be before the last read.
    pub(super) fn newlines_before(&self, position: u64) -> u64 {
        let within = usize::try_from(position.saturating_sub(self.last_start))
            .unwrap_or(usize::MAX)
            .min(self.last.len());
        self.newlines_before_last + newline_count(&self.last[..within])
    }
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.newlines_before_last += newline_count(&self.last);
            self.last_start += self.last.len() as u64;
            self.last.clear();
            self.last.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }
}

/// The longest row a manifest may have. A row is a bucket (63 bytes), a URL-encoded key (at most
/// 3 x 1,024 bytes), a version ID and a few more columns; anything near this is not a manifest,
/// or a quote was left open and swallowed the lines after it.
pub const MAX_ROW_BYTES: usize = 64 * 1024;

/// Why a CSV row is malformed in a way the CSV parser itself lets through: a quoted field that is
/// never closed (the parser would run it to the end of the file, many lines as one key), or a row
/// without bound. `line` counts from the start of what was read, from 1.
#[derive(Debug)]
pub(super) struct RowProblem {
    line: u64,
    reason: String,
}

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for RowProblem {}

impl RowProblem {
    pub(super) fn of(error: &csv::Error) -> Option<&RowProblem> {
        match error.kind() {
            csv::ErrorKind::Io(io) => io.get_ref()?.downcast_ref::<RowProblem>(),
            _ => None,
        }
    }

    pub(super) fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }
}

/// Where the bytes read so far leave the CSV grammar (RFC 4180, as the csv crate reads it: a
/// quote opens a quoted field only at the start of a field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum QuoteState {
    Unquoted {
        field_start: bool,
    },
    Quoted,
    /// Just after a quote inside a quoted field: the end of the field, or the first half of `""`.
    QuoteInQuoted,
}

/// Bytes that move [`QuoteState`]; every other byte is field content.
pub(super) const CSV_SPECIAL: [bool; 256] = {
    let mut table = [false; 256];
    table[b'"' as usize] = true;
    table[b',' as usize] = true;
    table[b'\n' as usize] = true;
    table[b'\r' as usize] = true;
    table
};

/// Passes bytes through while following the quoting of the CSV, so that an unterminated quote
/// and an unbounded row fail with their line instead of becoming one huge task (the csv crate
/// accepts a quote left open and buffers the rest of the file as one field).
pub(super) struct RowGuard<R> {
    inner: R,
    state: QuoteState,
    row_bytes: usize,
    newlines: u64,
    row_line: u64,
    quote_line: u64,
}

impl<R: Read> RowGuard<R> {
    pub(super) fn new(inner: R) -> Self {
        RowGuard {
            inner,
            state: QuoteState::Unquoted { field_start: true },
            row_bytes: 0,
            newlines: 0,
            row_line: 1,
            quote_line: 0,
        }
    }

    pub(super) fn end_row(&mut self) {
        self.state = QuoteState::Unquoted { field_start: true };
        self.row_bytes = 0;
        self.row_line = self.newlines + 1;
    }

    pub(super) fn scan(&mut self, bytes: &[u8]) -> std::result::Result<(), RowProblem> {
        let mut i = 0;
        while i < bytes.len() {
            let rest = &bytes[i..];
            let plain = rest
                .iter()
                .position(|&b| CSV_SPECIAL[usize::from(b)])
                .unwrap_or(rest.len());
            if plain > 0 {
                if self.state != QuoteState::Quoted {
                    self.state = QuoteState::Unquoted { field_start: false };
                }
                self.row_bytes += plain;
                i += plain;
            } else {
                self.step(bytes[i]);
                i += 1;
            }
            if self.row_bytes > MAX_ROW_BYTES {
                let reason = if self.state == QuoteState::Quoted {
                    format!("a quoted field opened on line {} runs on for more than {MAX_ROW_BYTES} bytes: a quote is not closed", self.quote_line)
                } else {
                    format!("a row is longer than {MAX_ROW_BYTES} bytes; a manifest row is a bucket, a URL-encoded key and a version ID")
                };
                return Err(RowProblem {
                    line: self.row_line,
                    reason,
                });
            }
        }
        Ok(())
    }

    pub(super) fn step(&mut self, byte: u8) {
        self.row_bytes += 1;
        if byte == b'\n' {
            self.newlines += 1;
        }
        match (self.state, byte) {
            (QuoteState::Quoted, b'"') => self.state = QuoteState::QuoteInQuoted,
            (QuoteState::Quoted, _) => {}
            (QuoteState::QuoteInQuoted, b'"') => self.state = QuoteState::Quoted,
            (QuoteState::Unquoted { field_start: true }, b'"') => {
                self.state = QuoteState::Quoted;
                self.quote_line = self.newlines + 1;
            }
            (_, b'\n' | b'\r') => self.end_row(),
            (_, b',') => self.state = QuoteState::Unquoted { field_start: true },
            _ => self.state = QuoteState::Unquoted { field_start: false },
        }
    }
}

impl<R: Read> Read for RowGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.state == QuoteState::Quoted {
            return Err(RowProblem {
                line: self.quote_line,
                reason: "a quoted field opened on this line is never closed (a quote is missing, or a quote inside a key is not URL-encoded as %22)".into(),
            }
            .into_io());
        }
        self.scan(&buf[..n]).map_err(RowProblem::into_io)?;
        Ok(n)
    }
}

/// A reader with bytes read ahead put back in front.
pub(super) type Unread<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

/// Drops a UTF-8 byte order mark. The CSV parser only strips one that arrives in its first read,
/// so it is done here, whatever sizes the reads come in.
pub(super) fn skip_bom<R: Read>(mut reader: R) -> io::Result<(Unread<R>, u64)> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let mut start = Vec::with_capacity(BOM.len());
    while start.len() < BOM.len() {
        let mut byte = [0u8; 1];
        match reader.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => {
                start.push(byte[0]);
                if !BOM.starts_with(&start) {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let mut dropped = 0;
    if start == BOM {
        start.clear();
        dropped = BOM.len() as u64;
    }
    Ok((io::Cursor::new(start).chain(reader), dropped))
}
