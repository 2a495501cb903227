//! The completion report, in S3 Batch Operations' own format.
//!
//! A report is a set of CSV files under `<Prefix>/job-<JobId>/results/` (succeeded tasks and failed
//! tasks in separate files) and a `<Prefix>/job-<JobId>/manifest.json` that lists them with their
//! MD5 checksums. The executor writes the same CSV rows, one staging file per batch ("result
//! part"), and the reporter sorts those rows into the report files.
//!
//! # Column order
//!
//! The manifest's `ReportSchema` says `Bucket, Key, VersionId, TaskStatus, ErrorCode,
//! HTTPStatusCode, ResultMessage`, but the files S3 writes carry the HTTP status code *before* the
//! error code, e.g. `awsexamplebucket,image_14975,,failed,200,PermanentFailure,"Lambda returned
//! …"`. Tools written against real reports read the columns in that order, so batchops writes rows
//! exactly as S3 does (TaskStatus, HTTP status, error code) and keeps the `ReportSchema` string
//! exactly as S3 writes it, inconsistency included.
//!
//! # Keys
//!
//! Object keys in rows are URL-encoded, as in the CSV manifest S3 Batch Operations reads
//! ([`crate::manifest::encode_key`]); this also keeps commas, quotes and newlines of keys out of
//! the CSV syntax. Other fields (mostly `ResultMessage`) are quoted by the `csv` crate when they
//! hold a comma, a quote or a line break.
//!
//! # File names
//!
//! S3 names report files with 40 hex digits. batchops derives them from the job id, the task
//! status and the file's index (the first 40 hex digits of a SHA-256), so writing the report of a
//! job twice produces the same keys and overwrites instead of adding files.
//!
//! # manifest.json
//!
//! Field for field as S3 writes it. Each result's `Key` is the file's full object key, Prefix
//! included (S3's documented example uses no Prefix, hence `job-<id>/results/...`).

use crate::error::{Error, Result};
use crate::job::{ReportScope, REPORT_FORMAT};
use crate::manifest::Task;
use chrono::{DateTime, SecondsFormat, Utc};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The `ReportSchema` of the report's manifest.json, exactly as S3 writes it (see the module doc
/// for the order of the columns in the rows themselves).
pub const REPORT_SCHEMA: &str =
    "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage";

/// Size above which a report file is closed and a new one started, so that the reporter's memory
/// stays bounded whatever the size of the job.
pub const DEFAULT_MAX_FILE_BYTES: usize = 64 * 1024 * 1024;

/// Number of columns of a report row.
const ROW_FIELDS: usize = 7;

/// How a task ended: a report row's `TaskStatus` (`succeeded` or `failed`, lowercase in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// `succeeded`: the operation took effect on the object.
    Succeeded,
    /// `failed`: it did not; the row's error code and message say why.
    Failed,
}

impl TaskStatus {
    /// The spelling of the report rows and of `TaskExecutionStatus`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
        }
    }

    /// Reads `succeeded` or `failed`; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "succeeded" => Some(TaskStatus::Succeeded),
            "failed" => Some(TaskStatus::Failed),
            _ => None,
        }
    }
}

/// What happened to one task: one row of the completion report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskOutcome {
    /// The object the task acted on: the row's `Bucket`, `Key` and `VersionId`.
    pub task: Task,
    /// The row's `TaskStatus`.
    pub status: TaskStatus,
    /// S3's error code (`NoSuchKey`, `AccessDenied`, ...) or the Lambda result code of a failure.
    pub error_code: Option<String>,
    /// The row's `HTTPStatusCode`; an empty column when `None`.
    pub http_status: Option<u16>,
    /// The row's `ResultMessage`: the function's result string or the error message; may be
    /// empty.
    pub result_message: String,
}

impl TaskOutcome {
    /// Every task of `tasks` failed for one reason: the rows of tasks batchops itself gives up
    /// on (a dead-lettered batch, a role that cannot be assumed).
    pub fn all_failed(tasks: &[Task], code: &str, http_status: u16, message: &str) -> Vec<Self> {
        tasks
            .iter()
            .map(|task| TaskOutcome {
                task: task.clone(),
                status: TaskStatus::Failed,
                error_code: Some(code.into()),
                http_status: Some(http_status),
                result_message: message.into(),
            })
            .collect()
    }
}

fn csv_writer(buffer: &mut Vec<u8>) -> csv::Writer<&mut Vec<u8>> {
    csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(buffer)
}

/// The fields of one row, in the order S3 writes them.
fn row_fields(outcome: &TaskOutcome) -> [String; ROW_FIELDS] {
    [
        outcome.task.bucket.clone(),
        crate::manifest::encode_key(&outcome.task.key),
        outcome.task.version_id.clone().unwrap_or_default(),
        outcome.status.as_str().to_string(),
        outcome
            .http_status
            .map(|code| code.to_string())
            .unwrap_or_default(),
        outcome.error_code.clone().unwrap_or_default(),
        outcome.result_message.clone(),
    ]
}

/// Appends the rows of `outcomes` to `buffer`.
fn append_rows<'a>(buffer: &mut Vec<u8>, outcomes: impl IntoIterator<Item = &'a TaskOutcome>) {
    let mut writer = csv_writer(buffer);
    for outcome in outcomes {
        // Writing to a Vec cannot fail: the only errors of csv::Writer come from its sink.
        let _ = writer.write_record(row_fields(outcome));
    }
    let _ = writer.flush();
}

/// Encodes outcomes as completion-report CSV rows (the format of result parts and report files).
pub fn encode_rows(outcomes: &[TaskOutcome]) -> Vec<u8> {
    let mut buffer = Vec::new();
    append_rows(&mut buffer, outcomes);
    buffer
}

/// Reads completion-report CSV rows back (result parts, report files), decoding the keys.
pub fn decode_rows(bytes: &[u8]) -> Result<Vec<TaskOutcome>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut outcomes = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let row = index + 1;
        let record = record.map_err(|e| Error::Malformed {
            what: format!("report row {row}"),
            reason: format!("it is not valid CSV: {e}"),
        })?;
        outcomes.push(decode_record(&record).map_err(|reason| Error::Malformed {
            what: format!("report row {row}"),
            reason,
        })?);
    }
    Ok(outcomes)
}

fn decode_record(record: &csv::StringRecord) -> std::result::Result<TaskOutcome, String> {
    if record.len() != ROW_FIELDS {
        return Err(format!(
            "expected {ROW_FIELDS} fields (Bucket, Key, VersionId, TaskStatus, HTTPStatusCode, ErrorCode, ResultMessage), found {}",
            record.len()
        ));
    }
    let field = |i: usize| record.get(i).unwrap_or_default();
    let optional = |i: usize| Some(field(i).to_string()).filter(|s| !s.is_empty());
    let key = crate::manifest::decode_key(field(1))
        .map_err(|e| format!("key {:?} is not URL-encoded properly: {e}", field(1)))?;
    let status = TaskStatus::parse(field(3))
        .ok_or_else(|| format!("task status {:?} is neither succeeded nor failed", field(3)))?;
    let http_status = match field(4) {
        "" => None,
        code => Some(
            code.parse::<u16>()
                .map_err(|_| format!("HTTP status code {code:?} is not a number"))?,
        ),
    };
    Ok(TaskOutcome {
        task: Task {
            bucket: field(0).to_string(),
            key,
            version_id: optional(2),
            size: None,
        },
        status,
        http_status,
        error_code: optional(5),
        result_message: field(6).to_string(),
    })
}

// ---------------------------------------------------------------------------------------------
// Where things go.

/// `<prefix>/job-<id>`, or `job-<id>` when the prefix is empty; trailing slashes of the prefix
/// are dropped so that keys never hold `//`.
pub fn job_report_prefix(prefix: Option<&str>, job_id: &str) -> String {
    match prefix.map(|p| p.trim_end_matches('/')).unwrap_or_default() {
        "" => format!("job-{job_id}"),
        p => format!("{p}/job-{job_id}"),
    }
}

/// Which report of a job: the completion report, or the report of its canary's tasks
/// (`BatchOps.CanaryTasks`), written beside it under `canary/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// The job's completion report, in `<prefix>/job-<id>`.
    Final,
    /// The report of the canary's tasks, in `<prefix>/job-<id>/canary`.
    Canary,
}

impl ReportKind {
    /// The folder the report is written to: `<prefix>/job-<id>`, or `<prefix>/job-<id>/canary`.
    pub fn dir(self, prefix: Option<&str>, job_id: &str) -> String {
        match self {
            ReportKind::Final => job_report_prefix(prefix, job_id),
            ReportKind::Canary => format!("{}/canary", job_report_prefix(prefix, job_id)),
        }
    }
}

/// Key of a report file: `<prefix>/job-<id>/results/<name>.csv`.
pub fn result_file_key(prefix: Option<&str>, job_id: &str, name: &str) -> String {
    result_file_key_in(&ReportKind::Final.dir(prefix, job_id), name)
}

/// Key of the report's manifest: `<prefix>/job-<id>/manifest.json`.
pub fn report_manifest_key(prefix: Option<&str>, job_id: &str) -> String {
    report_manifest_key_in(&ReportKind::Final.dir(prefix, job_id))
}

/// Key of a report file in the report's folder `dir` ([`ReportKind::dir`]).
pub fn result_file_key_in(dir: &str, name: &str) -> String {
    format!("{dir}/results/{name}.csv")
}

/// Key of a report's manifest in its folder `dir` ([`ReportKind::dir`]).
pub fn report_manifest_key_in(dir: &str) -> String {
    format!("{dir}/manifest.json")
}

/// Key, in the system bucket, of the result part that one attempt at a batch writes.
pub fn part_key(job_id: &str, batch_id: &str, attempt: &str) -> String {
    format!("staging/job-{job_id}/parts/{batch_id}-{attempt}.csv")
}

/// Deterministic report file name: 40 hex digits, like the names S3 gives its report files.
pub fn result_file_name(job_id: &str, status: TaskStatus, index: u32) -> String {
    let digest = Sha256::digest(format!("{job_id}/{}/{index}", status.as_str()).as_bytes());
    let mut name = hex::encode(digest);
    name.truncate(40);
    name
}

/// Hex MD5 of a file, as `MD5Checksum` of the report manifest wants it.
pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

// ---------------------------------------------------------------------------------------------
// The report's manifest.json.

/// The report's `manifest.json`, field for field as S3 writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReportManifest {
    /// `Format`: always `Report_CSV_20180820`.
    pub format: String,
    /// `ReportCreationDate`: when the report was written, e.g. `2019-04-05T17:48:39.725Z`.
    #[serde(with = "millis_utc")]
    pub report_creation_date: DateTime<Utc>,
    /// `Results`: every report file of the report.
    pub results: Vec<ReportResult>,
    /// `ReportSchema`: always [`REPORT_SCHEMA`].
    pub report_schema: String,
}

/// One report file of the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReportResult {
    /// `TaskExecutionStatus`: the status of every row of the file.
    pub task_execution_status: TaskStatus,
    /// `Bucket`: the name of the bucket the file is in.
    pub bucket: String,
    /// `MD5Checksum`: the file's MD5, in hex.
    #[serde(rename = "MD5Checksum")]
    pub md5_checksum: String,
    /// `Key`: the file's full object key, prefix included.
    pub key: String,
}

impl ReportManifest {
    /// A manifest of `results` created at `created`, with S3's `Format` and `ReportSchema`.
    pub fn new(created: DateTime<Utc>, results: Vec<ReportResult>) -> Self {
        ReportManifest {
            format: REPORT_FORMAT.to_string(),
            report_creation_date: created,
            results,
            report_schema: REPORT_SCHEMA.to_string(),
        }
    }
}

/// Dates as S3 writes them in report manifests: `2019-04-05T17:48:39.725Z`.
mod millis_utc {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(date: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&date.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|date| date.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// Formats a date the way the report manifest does (for logs and tests).
pub fn format_report_date(date: DateTime<Utc>) -> String {
    date.to_rfc3339_opts(SecondsFormat::Millis, true)
}

// ---------------------------------------------------------------------------------------------
// Sorting rows into report files.

/// A finished report file, ready to be written to `<prefix>/job-<id>/results/<name>.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFile {
    /// The status of every row of the file.
    pub status: TaskStatus,
    /// 0 for the first file of a status, 1 for the next, ...
    pub index: u32,
    /// The file's name without `.csv`: 40 hex digits ([`result_file_name`]).
    pub name: String,
    /// Rows in the file.
    pub rows: u64,
    /// The file's CSV content.
    pub bytes: Vec<u8>,
}

impl ReportFile {
    /// The file's MD5 in hex, for the manifest's `MD5Checksum`.
    pub fn md5_hex(&self) -> String {
        md5_hex(&self.bytes)
    }
}

/// Where the report file being filled for one status stands: its index and rows so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenFileState {
    /// The file's index among the files of its status (0 for the first).
    pub index: u32,
    /// Rows in the file so far.
    pub rows: u64,
}

/// The file being filled for one status.
#[derive(Debug)]
struct OpenFile {
    status: TaskStatus,
    index: u32,
    rows: u64,
    bytes: Vec<u8>,
}

impl OpenFile {
    fn new(status: TaskStatus) -> Self {
        OpenFile {
            status,
            index: 0,
            rows: 0,
            bytes: Vec::new(),
        }
    }

    /// Hands over the rows so far as a finished file and starts the next one.
    fn take(&mut self, job_id: &str) -> ReportFile {
        let file = ReportFile {
            status: self.status,
            index: self.index,
            name: result_file_name(job_id, self.status, self.index),
            rows: self.rows,
            bytes: std::mem::take(&mut self.bytes),
        };
        self.index += 1;
        self.rows = 0;
        file
    }
}

/// Sorts outcomes into succeeded and failed report files according to the report scope, closing
/// a file when the next row would take it past the size limit. Pure: the caller writes the files
/// it hands back, so at most two files (one per status) are held in memory at a time.
#[derive(Debug)]
pub struct ReportBuilder {
    job_id: String,
    scope: ReportScope,
    max_file_bytes: usize,
    succeeded: OpenFile,
    failed: OpenFile,
}

impl ReportBuilder {
    /// A builder for job `job_id` that keeps the rows `scope` asks for, with files of at most
    /// [`DEFAULT_MAX_FILE_BYTES`].
    pub fn new(job_id: &str, scope: ReportScope) -> Self {
        ReportBuilder {
            job_id: job_id.to_string(),
            scope,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            succeeded: OpenFile::new(TaskStatus::Succeeded),
            failed: OpenFile::new(TaskStatus::Failed),
        }
    }

    /// Sets the size limit of one file; a single row larger than the limit still gets a file.
    pub fn with_max_file_bytes(mut self, max_file_bytes: usize) -> Self {
        self.max_file_bytes = max_file_bytes.max(1);
        self
    }

    /// Adds one outcome. Returns the file that this row closed, if any; the caller writes it now.
    pub fn push(&mut self, outcome: &TaskOutcome) -> Option<ReportFile> {
        if self.scope == ReportScope::FailedTasksOnly && outcome.status == TaskStatus::Succeeded {
            return None;
        }
        let row = encode_rows(std::slice::from_ref(outcome));
        let job_id = &self.job_id;
        let open = match outcome.status {
            TaskStatus::Succeeded => &mut self.succeeded,
            TaskStatus::Failed => &mut self.failed,
        };
        let closed = (!open.bytes.is_empty() && open.bytes.len() + row.len() > self.max_file_bytes)
            .then(|| open.take(job_id));
        open.bytes.extend_from_slice(&row);
        open.rows += 1;
        closed
    }

    /// Where the file being filled for `status` stands, and its bytes so far: what a reporter
    /// that continues in another invocation saves.
    pub fn open_file(&self, status: TaskStatus) -> (OpenFileState, &[u8]) {
        let open = self.open(status);
        (
            OpenFileState {
                index: open.index,
                rows: open.rows,
            },
            &open.bytes,
        )
    }

    /// Takes the file being filled for `status` out of the builder (no copy of its bytes), to
    /// save it; the builder then has that file empty.
    pub fn take_open_file(&mut self, status: TaskStatus) -> (OpenFileState, Vec<u8>) {
        let open = match status {
            TaskStatus::Succeeded => &mut self.succeeded,
            TaskStatus::Failed => &mut self.failed,
        };
        let state = OpenFileState {
            index: open.index,
            rows: open.rows,
        };
        (state, std::mem::take(&mut open.bytes))
    }

    /// Restores a file being filled, as [`ReportBuilder::open_file`] gave it.
    pub fn resume_file(&mut self, status: TaskStatus, state: OpenFileState, bytes: Vec<u8>) {
        let open = match status {
            TaskStatus::Succeeded => &mut self.succeeded,
            TaskStatus::Failed => &mut self.failed,
        };
        open.index = state.index;
        open.rows = state.rows;
        open.bytes = bytes;
    }

    fn open(&self, status: TaskStatus) -> &OpenFile {
        match status {
            TaskStatus::Succeeded => &self.succeeded,
            TaskStatus::Failed => &self.failed,
        }
    }

    /// The files still open (those with rows), succeeded first.
    pub fn finish(mut self) -> Vec<ReportFile> {
        [&mut self.succeeded, &mut self.failed]
            .into_iter()
            .filter(|open| open.rows > 0)
            .map(|open| open.take(&self.job_id))
            .collect()
    }
}

#[cfg(test)]
mod tests;
