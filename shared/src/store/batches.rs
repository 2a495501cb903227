//! Batch commits: each segment of a batch in one transaction with the job's counts (exactly
//! once, however often SQS delivers it), the deferrals of batches that wait, and the records of
//! multipart uploads in flight.

use super::*;
use crate::error::{Error, Result};
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use std::time::Duration;
use tracing::{debug, warn};

impl Store {
    /// Commits a whole batch of `counts.succeeded + failed + not_run` tasks as one segment.
    /// Returns false (and changes nothing) for a batch that was committed before.
    pub async fn commit_batch(
        &self,
        job_id: &str,
        batch_id: &str,
        counts: BatchCounts,
        part_key: Option<&str>,
    ) -> Result<bool> {
        let tasks = counts.succeeded + counts.failed + counts.not_run;
        let segment = Segment {
            from: 0,
            to: tasks,
            batch_tasks: tasks,
            counts,
            part_key: part_key.map(str::to_string),
        };
        Ok(matches!(
            self.commit_segment(job_id, batch_id, &segment).await?,
            SegmentCommit::Committed { .. }
        ))
    }
    /// Commits one segment of a batch exactly once: in one transaction, moves the batch's
    /// `tasks_done` from `segment.from` to `segment.to` (creating the batch record for the first
    /// segment), appends the segment's result part, and adds its counts to the job (and the batch
    /// to `batches_committed` when it is the last). A segment whose `from` is not where the batch
    /// stands was committed by another delivery: nothing changes and the answer is `Lost`.
    /// Throttling, server errors and conflicts with concurrent commits are retried with backoff.
    pub async fn commit_segment(
        &self,
        job_id: &str,
        batch_id: &str,
        segment: &Segment,
    ) -> Result<SegmentCommit> {
        let now = time_to_string(Utc::now());
        let batch_done = segment.to >= segment.batch_tasks;
        let counts = segment.counts;
        let mut set = vec![
            "batch_id = :id",
            "tasks = :tasks",
            "tasks_done = :to",
            "updated_at = :now",
        ];
        if segment.part_key.is_some() {
            set.push("parts = list_append(if_not_exists(parts, :empty), :part)");
        }
        let condition = if segment.from == 0 {
            "attribute_not_exists(pk)"
        } else {
            "tasks_done = :from"
        };
        let mut batch_update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(&format!("{BATCH_SK_PREFIX}{batch_id}")))
            .update_expression(format!(
                "SET {} ADD succeeded :s, failed :f, not_run :n",
                set.join(", ")
            ))
            .condition_expression(condition)
            .expression_attribute_values(":id", s(batch_id))
            .expression_attribute_values(":tasks", n(segment.batch_tasks))
            .expression_attribute_values(":to", n(segment.to))
            .expression_attribute_values(":now", s(&now))
            .expression_attribute_values(":s", n(counts.succeeded))
            .expression_attribute_values(":f", n(counts.failed))
            .expression_attribute_values(":n", n(counts.not_run));
        if let Some(part) = &segment.part_key {
            batch_update = batch_update
                .expression_attribute_values(":empty", AttributeValue::L(vec![]))
                .expression_attribute_values(":part", AttributeValue::L(vec![s(part)]));
        }
        if segment.from > 0 {
            batch_update = batch_update.expression_attribute_values(":from", n(segment.from));
        }
        let batch_update = batch_update
            .build()
            .map_err(|e| Error::encode("the batch update", e))?;
        let add_batch = if batch_done {
            ", batches_committed :one"
        } else {
            ""
        };
        let mut job_update = Update::builder()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(JOB_SK))
            .update_expression(format!(
                "SET last_progress_at = :now ADD succeeded :s, failed :f, not_run :n{add_batch}"
            ))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", s(&now))
            .expression_attribute_values(":s", n(counts.succeeded))
            .expression_attribute_values(":f", n(counts.failed))
            .expression_attribute_values(":n", n(counts.not_run));
        if batch_done {
            job_update = job_update.expression_attribute_values(":one", n(1u64));
        }
        let job_update = job_update
            .build()
            .map_err(|e| Error::encode("the job update", e))?;
        let started = std::time::Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .transact_write_items()
                .transact_items(
                    TransactWriteItem::builder()
                        .update(batch_update.clone())
                        .build(),
                )
                .transact_items(
                    TransactWriteItem::builder()
                        .update(job_update.clone())
                        .build(),
                )
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(SegmentCommit::Committed { batch_done }),
                Err(e) => e,
            };
            match cancellation_codes(&err) {
                Some(codes) if is_condition_failure(&codes, 0) => {
                    if self.holds_own_part(job_id, batch_id, segment).await? {
                        debug!(
                            job_id,
                            batch_id,
                            from = segment.from,
                            "an earlier attempt of this commit took effect; its answer was lost"
                        );
                        return Ok(SegmentCommit::Committed { batch_done });
                    }
                    debug!(
                        job_id,
                        batch_id,
                        from = segment.from,
                        "segment committed before; counting nothing"
                    );
                    return Ok(SegmentCommit::Lost);
                }
                Some(codes) if is_condition_failure(&codes, 1) => {
                    return Err(Error::JobNotFound(job_id.to_string()))
                }
                _ if started.elapsed() < self.commit_patience
                    && is_transient_transaction_error(&err) =>
                {
                    warn!(
                        job_id,
                        batch_id,
                        attempt,
                        error = %aws_smithy_types::error::display::DisplayErrorContext(&err),
                        "batch commit failed for now; retrying"
                    );
                    tokio::time::sleep(commit_backoff(attempt)).await;
                }
                _ => return Err(Error::aws("DynamoDB", "TransactWriteItems", err)),
            }
        }
    }
    /// Whether the batch's record lists this commit's own result part: then the condition that
    /// failed met this very commit, applied by an attempt whose answer was lost (the SDK retries
    /// a 500 or a timeout), not another delivery's. Its part must then be kept. A segment
    /// without a part cannot be told apart, and need not be: it has nothing to delete, and a
    /// batch that is not done yet is taken up again from where it stands.
    pub(super) async fn holds_own_part(
        &self,
        job_id: &str,
        batch_id: &str,
        segment: &Segment,
    ) -> Result<bool> {
        let Some(part) = &segment.part_key else {
            return Ok(false);
        };
        Ok(self
            .get_batch(job_id, batch_id)
            .await?
            .is_some_and(|record| record.parts.contains(part)))
    }
    /// The commit record of a batch (strongly consistent); `None` before its first commit.
    pub async fn get_batch(&self, job_id: &str, batch_id: &str) -> Result<Option<BatchRecord>> {
        self.get_item(job_pk(job_id), format!("{BATCH_SK_PREFIX}{batch_id}"))
            .await?
            .map(|item| batch_from_item(&item))
            .transpose()
    }
    /// Names `deferral` as the batch's deferred copy, which the caller has just sent, unless the
    /// copy named before is still on its way (due after `now`) and is not `previous` (the copy
    /// the caller is itself). `false` when another copy holds the claim: the caller's copy then
    /// stands down when it arrives (it is not the one named), and the named one carries on.
    /// Sending before claiming keeps the rule that a named copy exists.
    pub async fn claim_deferral(
        &self,
        job_id: &str,
        batch_id: &str,
        deferral: &Deferral,
        previous: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let mut condition = format!(
            "attribute_exists(pk) AND (attribute_not_exists({A_DEFERRAL_DUE}) OR {A_DEFERRAL_DUE} <= :now"
        );
        if previous.is_some() {
            condition.push_str(&format!(" OR {A_DEFERRAL_ID} = :previous"));
        }
        condition.push(')');
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(&format!("{BATCH_SK_PREFIX}{batch_id}")))
            .update_expression(format!(
                "SET {A_DEFERRAL_ID} = :id, {A_DEFERRAL_DUE} = :due"
            ))
            .condition_expression(condition)
            .expression_attribute_values(":id", s(&deferral.id))
            .expression_attribute_values(":due", n(deferral.due.timestamp_millis()))
            .expression_attribute_values(":now", n(now.timestamp_millis()));
        if let Some(previous) = previous {
            update = update.expression_attribute_values(":previous", s(previous));
        }
        condition_held(update.send().await, "UpdateItem")
    }
    /// Up to `limit` batch records of a job after batch `after` (in batch id order), and the id
    /// to continue after when there are more.
    pub async fn batches_after(
        &self,
        job_id: &str,
        after: Option<&str>,
        limit: i32,
    ) -> Result<(Vec<BatchRecord>, Option<String>)> {
        let after_sk = after.map(|id| format!("{BATCH_SK_PREFIX}{id}"));
        let (items, more) = self
            .query_page(&job_pk(job_id), BATCH_SK_PREFIX, after_sk, limit, None)
            .await?;
        let records = items
            .iter()
            .map(batch_from_item)
            .collect::<Result<Vec<_>>>()?;
        let next = more
            .then(|| records.last().map(|r| r.batch_id.clone()))
            .flatten();
        Ok((records, next))
    }
    /// One page of a partition's items in sort key order after `after_sk` (keys only when
    /// `projection` is given), and whether more follow.
    pub(super) async fn query_page(
        &self,
        pk: &str,
        sk_prefix: &str,
        after_sk: Option<String>,
        limit: i32,
        projection: Option<&str>,
    ) -> Result<(Vec<Item>, bool)> {
        let start = after_sk.map(|sk| {
            Item::from([
                (PK.to_string(), s(pk)),
                (SK.to_string(), AttributeValue::S(sk)),
            ])
        });
        let mut request = self.client.query().table_name(&self.table);
        // DynamoDB refuses an empty string in a key condition: no prefix, no begins_with.
        request = if sk_prefix.is_empty() {
            request.key_condition_expression("pk = :pk")
        } else {
            request
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", s(sk_prefix))
        };
        let out = request
            .expression_attribute_values(":pk", s(pk))
            .consistent_read(true)
            .limit(limit)
            .set_exclusive_start_key(start)
            .set_projection_expression(projection.map(str::to_string))
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "Query", e))?;
        let more = out
            .last_evaluated_key
            .as_ref()
            .is_some_and(|k| !k.is_empty());
        Ok((out.items.unwrap_or_default(), more))
    }
    /// The multipart copy left by an earlier run of task `index` of a batch, if any.
    pub async fn get_upload(
        &self,
        job_id: &str,
        batch_id: &str,
        index: u64,
    ) -> Result<Option<UploadRecord>> {
        self.get_item(job_pk(job_id), upload_sk(batch_id, index))
            .await?
            .map(|item| upload_from_item(&item))
            .transpose()
    }
    /// Records the multipart copy that task `index` of a batch left unfinished, replacing any
    /// record kept before, so that the task's next run resumes it.
    pub async fn put_upload(
        &self,
        job_id: &str,
        batch_id: &str,
        index: u64,
        record: &UploadRecord,
    ) -> Result<()> {
        let json =
            serde_json::to_string(record).map_err(|e| Error::encode("an upload record", e))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(&job_pk(job_id)))
            .item(SK, s(&upload_sk(batch_id, index)))
            .item(A_UPLOAD, s(&json))
            .item(A_UPDATED_AT, s(&time_to_string(Utc::now())))
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "PutItem", e))?;
        Ok(())
    }
    /// Forgets the multipart copy recorded for task `index` of a batch (once completed or aborted);
    /// a missing record is no error.
    pub async fn delete_upload(&self, job_id: &str, batch_id: &str, index: u64) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(&upload_sk(batch_id, index)))
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "DeleteItem", e))?;
        Ok(())
    }
    /// The multipart copies a job (or, with `batch_id`, one of its batches) left unfinished:
    /// `(batch id, task index, record)`.
    pub async fn list_uploads(
        &self,
        job_id: &str,
        batch_id: Option<&str>,
    ) -> Result<Vec<(String, u64, UploadRecord)>> {
        let prefix = match batch_id {
            Some(batch) => format!("{UPLOAD_SK_PREFIX}{batch}#"),
            None => UPLOAD_SK_PREFIX.to_string(),
        };
        let items = self.query_all(&job_pk(job_id), Some(&prefix)).await?;
        items
            .iter()
            .map(|item| {
                let sk = get_s(item, SK)?;
                let (batch, index) = sk
                    .strip_prefix(UPLOAD_SK_PREFIX)
                    .and_then(|rest| rest.rsplit_once('#'))
                    .and_then(|(batch, index)| Some((batch, index.parse().ok()?)))
                    .ok_or_else(|| malformed(SK, format!("{sk:?} is not an upload key")))?;
                Ok((batch.to_string(), index, upload_from_item(item)?))
            })
            .collect()
    }
    /// The committed batches of a job (all pages).
    pub async fn list_batches(&self, job_id: &str) -> Result<Vec<BatchRecord>> {
        let items = self
            .query_all(&job_pk(job_id), Some(BATCH_SK_PREFIX))
            .await?;
        items.iter().map(batch_from_item).collect()
    }
}

/// The cancellation reason codes of a cancelled transaction ("None" for items that were fine),
/// in the order of the transaction's items; None for any other error.
pub(super) fn cancellation_codes<R>(
    err: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        R,
    >,
) -> Option<Vec<String>> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match err.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(e) => Some(
            e.cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_string())
                .collect(),
        ),
        _ => None,
    }
}

pub(super) fn is_condition_failure(codes: &[String], index: usize) -> bool {
    codes.get(index).map(String::as_str) == Some("ConditionalCheckFailed")
}

/// Backoff between commit attempts, with jitter: from 50 ms doubling up to four seconds, so that
/// the attempts of the commit's patience (30 s by default) outlast a DynamoDB hiccup of several
/// seconds (each attempt also carries the SDK's own retries).
pub(super) fn commit_backoff(attempt: u32) -> Duration {
    crate::backoff::delay(
        Duration::from_millis(100),
        Duration::from_secs(4),
        attempt,
        fastrand::f64(),
    )
}

/// Errors of a transaction that may pass on another try: throttling, server errors, timeouts,
/// broken connections, and cancellations for conflicts or throttling (never a failed condition).
pub(super) fn is_transient_transaction_error(
    err: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
) -> bool {
    use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
    if let Some(codes) = cancellation_codes(err) {
        return !codes.iter().any(|c| c == "ConditionalCheckFailed")
            && codes.iter().any(|c| {
                matches!(
                    c.as_str(),
                    "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
                )
            });
    }
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            status >= 500
                || matches!(
                    service.err().code(),
                    Some(
                        "ProvisionedThroughputExceededException"
                            | "ThrottlingException"
                            | "RequestLimitExceeded"
                            | "TransactionInProgressException"
                            | "InternalServerError"
                    )
                )
        }
        _ => false,
    }
}

pub(super) fn upload_sk(batch_id: &str, index: u64) -> String {
    format!("{UPLOAD_SK_PREFIX}{batch_id}#{index:06}")
}

pub(super) fn upload_from_item(item: &Item) -> Result<UploadRecord> {
    serde_json::from_str(get_s(item, A_UPLOAD)?).map_err(|e| malformed(A_UPLOAD, e))
}

/// A batch commit record as a DynamoDB item.
pub fn batch_to_item(job_id: &str, batch: &BatchRecord) -> Item {
    let mut item = Item::from([
        (PK.to_string(), s(&job_pk(job_id))),
        (
            SK.to_string(),
            s(&format!("{BATCH_SK_PREFIX}{}", batch.batch_id)),
        ),
        (A_BATCH_ID.to_string(), s(&batch.batch_id)),
        (A_SUCCEEDED.to_string(), n(batch.counts.succeeded)),
        (A_FAILED.to_string(), n(batch.counts.failed)),
        (A_NOT_RUN.to_string(), n(batch.counts.not_run)),
        (A_TASKS.to_string(), n(batch.tasks)),
        (A_TASKS_DONE.to_string(), n(batch.tasks_done)),
    ]);
    if !batch.parts.is_empty() {
        item.insert(
            A_PARTS.to_string(),
            AttributeValue::L(batch.parts.iter().map(|p| s(p)).collect()),
        );
    }
    if let Some(at) = batch.updated_at {
        item.insert(A_UPDATED_AT.to_string(), s(&time_to_string(at)));
    }
    if let Some(deferral) = &batch.deferral {
        item.insert(A_DEFERRAL_ID.to_string(), s(&deferral.id));
        item.insert(
            A_DEFERRAL_DUE.to_string(),
            n(deferral.due.timestamp_millis()),
        );
    }
    item
}

/// A batch commit record from its DynamoDB item; records without `tasks`/`tasks_done` count as
/// done. Fails with `Malformed` on a missing or mistyped attribute.
pub fn batch_from_item(item: &Item) -> Result<BatchRecord> {
    let counts = BatchCounts {
        succeeded: get_n_or_zero(item, A_SUCCEEDED)?,
        failed: get_n_or_zero(item, A_FAILED)?,
        not_run: get_n_or_zero(item, A_NOT_RUN)?,
    };
    let parts = match item.get(A_PARTS) {
        None | Some(AttributeValue::Null(_)) => Vec::new(),
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| match v {
                AttributeValue::S(key) => Ok(key.clone()),
                other => Err(malformed(
                    A_PARTS,
                    format!("expected strings, got {other:?}"),
                )),
            })
            .collect::<Result<_>>()?,
        Some(other) => {
            return Err(malformed(
                A_PARTS,
                format!("expected a list, got {other:?}"),
            ))
        }
    };
    let done = counts.succeeded + counts.failed + counts.not_run;
    Ok(BatchRecord {
        batch_id: get_s(item, A_BATCH_ID)?.to_string(),
        counts,
        tasks: get_opt_n(item, A_TASKS)?.unwrap_or(done),
        tasks_done: get_opt_n(item, A_TASKS_DONE)?.unwrap_or(done),
        parts,
        updated_at: get_opt_time(item, A_UPDATED_AT)?,
        deferral: deferral_from_item(item)?,
    })
}

pub(super) fn deferral_from_item(item: &Item) -> Result<Option<Deferral>> {
    let (Some(id), Some(due)) = (
        get_opt_s(item, A_DEFERRAL_ID)?,
        get_opt_n::<i64>(item, A_DEFERRAL_DUE)?,
    ) else {
        return Ok(None);
    };
    let due = DateTime::from_timestamp_millis(due)
        .ok_or_else(|| malformed(A_DEFERRAL_DUE, format!("{due} is not a time")))?;
    Ok(Some(Deferral {
        id: id.to_string(),
        due,
    }))
}
