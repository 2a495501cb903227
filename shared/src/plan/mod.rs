//! The plan: packing a manifest's tasks into task-batch messages for the task queue.

/// SQS's message size limit (256 KiB) less room for attributes and the envelope.
pub const MAX_MESSAGE_BYTES: usize = 250 * 1024;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::manifest::Task;

/// One message on the task queue: a batch of tasks of one job, or the rest of one.
///
/// Body JSON: `{"JobId":"…","BatchId":"…","Tasks":[["bucket","key"],["bucket","key","versionId"],…]}`.
/// Batch ids are deterministic (position in the manifest), so a manifest planned twice yields the
/// same batches and the commit counts each once. An executor that runs out of time commits the
/// tasks it ran and sends the rest of the batch on as a continuation, whose `"Offset"` is the
/// index in the batch of its first task (absent, and 0, for a whole batch). A deferred copy (see
/// `executor`) carries its `"Deferral"` id, the one its batch record names while it is on its way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskBatch {
    /// `JobId`: the job the tasks belong to.
    pub job_id: String,
    /// `BatchId`: the batch's deterministic id (see [`PlanPart::batch_prefix`]); a continuation
    /// keeps its batch's id.
    pub batch_id: String,
    /// Index in the batch of `tasks[0]`.
    pub offset: u64,
    /// `Tasks`: the tasks, in manifest order. Sizes do not travel in the message: tasks read
    /// from a body have `size: None`.
    pub tasks: Vec<Task>,
    /// The id of a deferred copy; `None` for the planner's batches and their continuations.
    pub deferral: Option<String>,
}

impl TaskBatch {
    /// The message body. Written by hand (with serde_json's escaping) so that [`BatchPacker`] can
    /// know its exact length without encoding it.
    pub fn to_body(&self) -> String {
        // A close estimate, not body_len(): escapes are rare and scanning every key again for
        // them costs more than an occasional regrowth.
        let mut body = String::with_capacity(self.raw_len());
        body.push_str(r#"{"JobId":"#);
        push_json_str(&mut body, &self.job_id);
        body.push_str(r#","BatchId":"#);
        push_json_str(&mut body, &self.batch_id);
        if self.offset > 0 {
            body.push_str(&format!(r#","Offset":{}"#, self.offset));
        }
        if let Some(deferral) = &self.deferral {
            body.push_str(r#","Deferral":"#);
            push_json_str(&mut body, deferral);
        }
        body.push_str(r#","Tasks":["#);
        for (i, task) in self.tasks.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push('[');
            push_json_str(&mut body, &task.bucket);
            body.push(',');
            push_json_str(&mut body, &task.key);
            if let Some(version_id) = &task.version_id {
                body.push(',');
                push_json_str(&mut body, version_id);
            }
            body.push(']');
        }
        body.push_str("]}");
        body
    }

    /// The body length if no character needed escaping.
    fn raw_len(&self) -> usize {
        let quoted = |s: &str| s.len() + 2;
        envelope_len(&self.job_id, &self.batch_id)
            + self
                .tasks
                .iter()
                .map(|t| {
                    3 + quoted(&t.bucket)
                        + quoted(&t.key)
                        + t.version_id.as_deref().map_or(0, |v| 1 + quoted(v))
                })
                .sum::<usize>()
    }

    /// The length in bytes of [`TaskBatch::to_body`].
    pub fn body_len(&self) -> usize {
        let separators = self.tasks.len().saturating_sub(1);
        let offset = if self.offset > 0 {
            r#","Offset":"#.len() + self.offset.to_string().len()
        } else {
            0
        };
        let deferral = self
            .deferral
            .as_deref()
            .map_or(0, |d| r#","Deferral":"#.len() + json_str_len(d));
        envelope_len(&self.job_id, &self.batch_id)
            + offset
            + deferral
            + self.tasks.iter().map(task_len).sum::<usize>()
            + separators
    }

    /// The tasks from index `from` of the batch on, as a continuation message (not a deferred
    /// copy: the deferral id is not carried over).
    pub fn rest_from(&self, from: u64) -> TaskBatch {
        let skip = from
            .saturating_sub(self.offset)
            .min(self.tasks.len() as u64) as usize;
        TaskBatch {
            job_id: self.job_id.clone(),
            batch_id: self.batch_id.clone(),
            offset: self.offset + skip as u64,
            tasks: self.tasks[skip..].to_vec(),
            deferral: None,
        }
    }

    /// Index in the batch just past the last task: the batch's size.
    pub fn end(&self) -> u64 {
        self.offset + self.tasks.len() as u64
    }

    /// Reads a message body written by [`TaskBatch::to_body`]; fails with `Error::Message` when
    /// it is not that JSON or a task is not `[bucket, key]` or `[bucket, key, versionId]`.
    pub fn from_body(body: &str) -> Result<Self> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Body {
            job_id: String,
            batch_id: String,
            #[serde(default)]
            offset: u64,
            #[serde(default)]
            deferral: Option<String>,
            tasks: Vec<Vec<String>>,
        }
        let parsed: Body = serde_json::from_str(body).map_err(|e| {
            Error::Message(format!(
                "task batch body is not {{\"JobId\",\"BatchId\",\"Tasks\"}} JSON: {e}"
            ))
        })?;
        let batch_id = parsed.batch_id;
        let tasks = parsed
            .tasks
            .into_iter()
            .enumerate()
            .map(|(i, fields)| {
                task_from_fields(fields).map_err(|reason| {
                    Error::Message(format!("task batch {batch_id}: task {i} {reason}"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(TaskBatch {
            job_id: parsed.job_id,
            batch_id,
            offset: parsed.offset,
            tasks,
            deferral: parsed.deferral,
        })
    }
}

fn task_from_fields(fields: Vec<String>) -> std::result::Result<Task, String> {
    let count = fields.len();
    let mut fields = fields.into_iter();
    match (fields.next(), fields.next(), fields.next(), fields.next()) {
        (Some(bucket), Some(key), version_id, None) => {
            if bucket.is_empty() || key.is_empty() {
                return Err("has an empty bucket or key".into());
            }
            Ok(Task {
                bucket,
                key,
                version_id,
                size: None,
            })
        }
        _ => Err(format!(
            "has {count} elements; expected [bucket, key] or [bucket, key, versionId]"
        )),
    }
}

/// How large a batch of one operation may be besides the message size: slow tasks go in small
/// batches, so that a batch is quick to run and many executors share the work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchLimits {
    /// Tasks per batch at most.
    pub max_tasks: Option<usize>,
    /// The objects' bytes per batch at most, counting the tasks whose size the manifest gives
    /// (an inventory's `Size`); a larger object travels alone.
    pub max_object_bytes: Option<u64>,
}

/// Tasks per batch of a LambdaInvoke job: one invocation each, of the user's function, which
/// may take seconds.
pub const LAMBDA_BATCH_TASKS: usize = 128;
/// Tasks per batch of a copy. A copy is one request when S3 moves the bytes, so a batch's fixed
/// costs (its commit, message and result part: about $0.04 per million tasks at 256) are spread
/// over many; large objects are kept apart by [`COPY_BATCH_BYTES`] when the manifest gives sizes,
/// and a batch that outlasts one invocation goes on as a continuation.
pub const COPY_BATCH_TASKS: usize = 1024;
/// Tasks per batch of a checksum, which reads each object whole.
pub const CHECKSUM_BATCH_TASKS: usize = 256;
/// Object bytes per batch of a copy (server-side: S3 moves the bytes, several GB/s in all).
pub const COPY_BATCH_BYTES: u64 = 64 << 30;
/// Object bytes per batch of a checksum (the executor reads them: about a minute at 32 streams).
pub const CHECKSUM_BATCH_BYTES: u64 = 16 << 30;

impl BatchLimits {
    /// The limits of a job's operation. They never change for a job, so its batches are the
    /// same however often it is planned.
    pub fn of(operation: &crate::job::JobOperation) -> Self {
        use crate::job::JobOperation::*;
        match operation {
            LambdaInvoke(_) => BatchLimits {
                max_tasks: Some(LAMBDA_BATCH_TASKS),
                max_object_bytes: None,
            },
            // An encryption update is a copy of each object onto itself.
            S3PutObjectCopy(_) | S3UpdateObjectEncryption(_) => BatchLimits {
                max_tasks: Some(COPY_BATCH_TASKS),
                max_object_bytes: Some(COPY_BATCH_BYTES),
            },
            S3ComputeObjectChecksum(_) => BatchLimits {
                max_tasks: Some(CHECKSUM_BATCH_TASKS),
                max_object_bytes: Some(CHECKSUM_BATCH_BYTES),
            },
            _ => BatchLimits::default(),
        }
    }

    /// Whether the batch is sized by its objects' bytes (so the readers must give sizes).
    pub fn wants_sizes(&self) -> bool {
        self.max_object_bytes.is_some()
    }
}

/// Packs tasks, in order, into batches whose bodies are as large as possible but at most
/// `max_bytes`, within the operation's [`BatchLimits`]. Batch ids are `{batch_prefix}{seq:08}`
/// with seq counting from 0, so the same manifest always yields the same ids.
#[derive(Debug)]
pub struct BatchPacker {
    job_id: String,
    batch_prefix: String,
    max_bytes: usize,
    limits: BatchLimits,
    tasks: Vec<Task>,
    /// Exact body length of the batch being filled.
    body_len: usize,
    /// Known object bytes of the batch being filled.
    object_bytes: u64,
    emitted: u64,
}

impl BatchPacker {
    /// A packer for job `job_id` whose batch ids start with `batch_prefix` and whose bodies
    /// stay within `max_bytes`, with no operation limits until [`BatchPacker::with_limits`].
    pub fn new(job_id: &str, batch_prefix: &str, max_bytes: usize) -> Self {
        let mut packer = BatchPacker {
            job_id: job_id.to_string(),
            batch_prefix: batch_prefix.to_string(),
            max_bytes,
            limits: BatchLimits::default(),
            tasks: Vec::new(),
            body_len: 0,
            object_bytes: 0,
            emitted: 0,
        };
        packer.body_len = packer.empty_len();
        packer
    }

    /// Adds a task. When it would not fit in the current batch, returns that batch (full) and
    /// starts the next one with the task. A task too large for any batch travels alone.
    pub fn push(&mut self, task: Task) -> Option<TaskBatch> {
        let added = task_len(&task) + usize::from(!self.tasks.is_empty());
        let bytes = task.size.unwrap_or(0);
        let full = !self.tasks.is_empty()
            && (self.body_len + added > self.max_bytes
                || self
                    .limits
                    .max_tasks
                    .is_some_and(|max| self.tasks.len() >= max)
                || self
                    .limits
                    .max_object_bytes
                    .is_some_and(|max| self.object_bytes + bytes > max));
        if full {
            let full = self.take_batch();
            self.body_len += task_len(&task);
            self.object_bytes = bytes;
            self.tasks.push(task);
            return Some(full);
        }
        self.body_len += added;
        self.object_bytes += bytes;
        self.tasks.push(task);
        None
    }

    /// Applies an operation's limits. Call before any `push`.
    pub fn with_limits(mut self, limits: BatchLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The last, partly filled batch, if any task is waiting.
    pub fn finish(mut self) -> Option<TaskBatch> {
        if self.tasks.is_empty() {
            return None;
        }
        Some(self.take_batch())
    }

    /// Batches returned so far by `push` (and `finish`, which consumes the packer), counting the
    /// batches of earlier planning runs given to [`BatchPacker::resume_at`].
    pub fn batches_emitted(&self) -> u64 {
        self.emitted
    }

    /// Continues the deterministic batch id sequence of a run that stopped after `emitted`
    /// batches: the next batch gets id `{prefix}{emitted:08}`. Call before any `push`.
    pub fn resume_at(mut self, emitted: u64) -> Self {
        self.emitted = emitted;
        self.body_len = self.empty_len();
        self
    }

    fn batch_id(&self) -> String {
        format!("{}{:08}", self.batch_prefix, self.emitted)
    }

    fn empty_len(&self) -> usize {
        envelope_len(&self.job_id, &self.batch_id())
    }

    fn take_batch(&mut self) -> TaskBatch {
        let batch = TaskBatch {
            job_id: self.job_id.clone(),
            batch_id: self.batch_id(),
            offset: 0,
            tasks: std::mem::take(&mut self.tasks),
            deferral: None,
        };
        self.emitted += 1;
        self.body_len = self.empty_len();
        self.object_bytes = 0;
        batch
    }
}

/// One unit of planning with its own checkpoint: the whole task list of a CSV manifest or a
/// manifest generator, or one data file of an S3 Inventory report (planned in parallel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PlanPart {
    /// The whole task list: a CSV manifest or a manifest generator's listing.
    Whole,
    /// The data file at this index of the inventory's `manifest.json` `files`.
    InventoryFile(usize),
}

impl PlanPart {
    /// The part's id in the store and in plan messages: `m`, or `f` and the file index.
    pub fn id(&self) -> String {
        match self {
            PlanPart::Whole => "m".into(),
            PlanPart::InventoryFile(index) => format!("f{index:06}"),
        }
    }

    /// The part named by an id from [`PlanPart::id`]; fails with `Error::Message` for any
    /// other string.
    pub fn parse(id: &str) -> Result<Self> {
        if id == "m" {
            return Ok(PlanPart::Whole);
        }
        id.strip_prefix('f')
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse().ok())
            .map(PlanPart::InventoryFile)
            .ok_or_else(|| {
                Error::Message(format!(
                    "plan part {id:?} is neither \"m\" nor \"f\" followed by a file index"
                ))
            })
    }

    /// Prefix of the part's batch ids. A whole manifest keeps the plain `b00000000` sequence;
    /// each inventory file has its own sequence, so parts planned in parallel never share an id.
    pub fn batch_prefix(&self) -> String {
        match self {
            PlanPart::Whole => "b".into(),
            PlanPart::InventoryFile(index) => format!("f{index:06}b"),
        }
    }

    /// The part and sequence number of a batch id the planner makes (`b00000012`,
    /// `f000003b00000012`); `None` for any other string.
    pub fn of_batch_id(batch_id: &str) -> Option<(PlanPart, u64)> {
        let (part, seq) = match batch_id.strip_prefix('b') {
            Some(seq) => (PlanPart::Whole, seq),
            None => {
                let rest = batch_id.strip_prefix('f')?;
                let (index, seq) = rest.split_once('b')?;
                if index.len() < 6 || !index.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (PlanPart::InventoryFile(index.parse().ok()?), seq)
            }
        };
        if seq.len() < 8 || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let seq = seq.parse().ok()?;
        (format!("{}{seq:08}", part.batch_prefix()) == batch_id).then_some((part, seq))
    }
}

/// Where planning of one part stands: everything before `next_task` is in the `batches` batches
/// already on the task queue, so a continuation skips `next_task` tasks of the part's stream and
/// packs the rest into batches numbered from `batches`. Stored in the job's partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanCheckpoint {
    /// The part this checkpoint is for.
    pub part: PlanPart,
    /// Tasks of the part already sent (the index of the first task not yet sent).
    pub next_task: u64,
    /// Batches of the part already sent (the sequence number of the next batch).
    pub batches: u64,
    /// The part is planned to its end (or stopped for good because the job stopped).
    pub done: bool,
    /// The `next_task` for which a continue message was sent (and is on the plan queue).
    pub continued_at: Option<u64>,
    /// Batches with a sequence number below this may be on the task queue: a run records it
    /// before it sends past it (write-ahead), so that a run that died after sending batches but
    /// before saving its checkpoint leaves a bound on what it sent. Never below `batches`.
    pub reserved: u64,
    /// When the checkpoint (or its reservation) was last written: a part that does not move
    /// for long has lost its run, and the sweeper wakes it.
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// For a CSV manifest: where reading can start again, at or before `next_task`, so that a
    /// continuation reads from there (a ranged GET) instead of from byte 0.
    pub resume: Option<crate::manifest::ResumePoint>,
}

impl PlanCheckpoint {
    /// The checkpoint of a part not yet planned: nothing sent, nothing reserved.
    pub fn start(part: PlanPart) -> Self {
        PlanCheckpoint {
            part,
            next_task: 0,
            batches: 0,
            done: false,
            continued_at: None,
            reserved: 0,
            updated_at: None,
            resume: None,
        }
    }

    /// The checkpoint after a run from `self` that sent `tasks` tasks in `batches` batches.
    pub fn advanced(&self, tasks: u64, batches: u64, done: bool) -> Self {
        let batches = self.batches + batches;
        PlanCheckpoint {
            part: self.part,
            next_task: self.next_task + tasks,
            batches,
            done,
            continued_at: self.continued_at,
            reserved: self.reserved.max(batches),
            updated_at: self.updated_at,
            resume: self.resume,
        }
    }

    /// Batches that may have been sent beyond the checkpoint by a run that died: the sequence
    /// numbers `batches..reserved`.
    pub fn unconfirmed_batches(&self) -> std::ops::Range<u64> {
        self.batches..self.reserved.max(self.batches)
    }

    /// Whether a continue message sent when the part stood at `from_task` is an old copy: the
    /// part has moved on since, and its own continuation is on the queue. A message without
    /// `From` (a plan request, a file's first message) is never stale: it just wakes the part.
    pub fn is_stale(&self, from_task: Option<u64>) -> bool {
        from_task
            .is_some_and(|from| from < self.next_task && self.continued_at == Some(self.next_task))
    }
}

/// The job's totals once every part is done: (tasks, batches); `None` while a part is planning.
pub fn planning_totals(parts: &[PlanCheckpoint]) -> Option<(u64, u64)> {
    parts.iter().all(|p| p.done).then(|| {
        parts
            .iter()
            .fold((0, 0), |(t, b), p| (t + p.next_task, b + p.batches))
    })
}

/// `{"JobId":…,"BatchId":…,"Tasks":[]}` without tasks.
fn envelope_len(job_id: &str, batch_id: &str) -> usize {
    r#"{"JobId":"#.len()
        + json_str_len(job_id)
        + r#","BatchId":"#.len()
        + json_str_len(batch_id)
        + r#","Tasks":["#.len()
        + "]}".len()
}

/// `["bucket","key"]` or `["bucket","key","version"]`.
fn task_len(task: &Task) -> usize {
    let version = task
        .version_id
        .as_deref()
        .map_or(0, |v| 1 + json_str_len(v));
    2 + json_str_len(&task.bucket) + 1 + json_str_len(&task.key) + version
}

/// How serde_json escapes one byte inside a string, if it does. Only ASCII bytes are escaped
/// (unicode is written raw), so working on bytes never splits a character.
fn escape(byte: u8) -> Option<&'static str> {
    const CONTROL: [&str; 32] = [
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
        "\\b", "\\t", "\\n", "\\u000b", "\\f", "\\r", "\\u000e", "\\u000f", "\\u0010", "\\u0011",
        "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017", "\\u0018", "\\u0019",
        "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
    ];
    match byte {
        b'"' => Some("\\\""),
        b'\\' => Some("\\\\"),
        b if b < 0x20 => Some(CONTROL[usize::from(b)]),
        _ => None,
    }
}

/// How many bytes of `s` JSON escapes. Keys are scanned once per task on the planner's hot path
/// and almost never need escaping, so this is a branch-free count in byte-wide counters (at most
/// 255 bytes per chunk), which the compiler turns into 16 or 32 bytes per instruction.
fn escaped_bytes(s: &str) -> usize {
    s.as_bytes()
        .chunks(255)
        .map(|chunk| {
            let n = chunk.iter().fold(0u8, |n, &b| {
                n.wrapping_add(u8::from(b < 0x20 || b == b'"' || b == b'\\'))
            });
            usize::from(n)
        })
        .sum()
}

/// Length of `s` as a JSON string literal, quotes included.
fn json_str_len(s: &str) -> usize {
    if escaped_bytes(s) == 0 {
        return 2 + s.len();
    }
    let escapes: usize = s
        .bytes()
        .filter_map(escape)
        .map(|escaped| escaped.len() - 1)
        .sum();
    2 + s.len() + escapes
}

fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    if escaped_bytes(s) == 0 {
        out.push_str(s);
    } else {
        let mut plain_from = 0;
        for (i, byte) in s.bytes().enumerate() {
            if let Some(escaped) = escape(byte) {
                out.push_str(&s[plain_from..i]);
                out.push_str(escaped);
                plain_from = i + 1;
            }
        }
        out.push_str(&s[plain_from..]);
    }
    out.push('"');
}

#[cfg(test)]
mod tests;
