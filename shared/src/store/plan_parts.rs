//! Planning checkpoints, one per plan part: where planning resumes, and the batches it has
//! reserved before sending (see `crate::plan::PlanCheckpoint`).

use super::*;
use crate::error::{Error, Result};
use crate::plan::{PlanCheckpoint, PlanPart};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;

impl Store {
    /// Creates the checkpoints of a job's plan parts, at their start, unless they exist already
    /// (a plan request delivered again must not move a part back).
    pub async fn put_plan_parts(&self, job_id: &str, parts: &[PlanPart]) -> Result<()> {
        for part in parts {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(checkpoint_to_item(
                    job_id,
                    &PlanCheckpoint {
                        updated_at: Some(Utc::now()),
                        ..PlanCheckpoint::start(*part)
                    },
                )))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            match result {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
                Err(e) => return Err(Error::aws("DynamoDB", "PutItem", e)),
            }
        }
        Ok(())
    }
    /// The checkpoint of one plan part (strongly consistent); `None` when planning has not
    /// created it.
    pub async fn get_plan_part(
        &self,
        job_id: &str,
        part: PlanPart,
    ) -> Result<Option<PlanCheckpoint>> {
        self.get_item(job_pk(job_id), plan_sk(part))
            .await?
            .map(|item| checkpoint_from_item(&item))
            .transpose()
    }
    /// Every plan part checkpoint of a job (all pages, consistent), in part order.
    pub async fn list_plan_parts(&self, job_id: &str) -> Result<Vec<PlanCheckpoint>> {
        let items = self
            .query_all(&job_pk(job_id), Some(PLAN_SK_PREFIX))
            .await?;
        let mut parts = items
            .iter()
            .map(checkpoint_from_item)
            .collect::<Result<Vec<_>>>()?;
        parts.sort_by_key(|p| p.part);
        Ok(parts)
    }
    /// Moves a part's checkpoint from `from` to `to` if it still is at `from`. False when another
    /// run of the same part (a redelivered message) moved it first: that run's batches are the
    /// same batches (same ids, same tasks), and the loser stops without a continuation.
    pub async fn advance_plan_part(
        &self,
        job_id: &str,
        from: &PlanCheckpoint,
        to: &PlanCheckpoint,
    ) -> Result<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(&plan_sk(to.part)))
            .update_expression(
                "SET next_task = :nt, batches = :nb, done = :nd, updated_at = :now, #resume = :resume",
            )
            .expression_attribute_names("#resume", A_RESUME)
            .expression_attribute_values(":resume", resume_value(to.resume))
            .expression_attribute_values(":now", s(&time_to_string(Utc::now())))
            .condition_expression("next_task = :ot AND batches = :ob AND done = :od")
            .expression_attribute_values(":nt", n(to.next_task))
            .expression_attribute_values(":nb", n(to.batches))
            .expression_attribute_values(":nd", AttributeValue::Bool(to.done))
            .expression_attribute_values(":ot", n(from.next_task))
            .expression_attribute_values(":ob", n(from.batches))
            .expression_attribute_values(":od", AttributeValue::Bool(from.done))
            .send()
            .await;
        condition_held(result, "UpdateItem")
    }
    /// Records that the continue message for `next_task` is on the plan queue.
    pub async fn mark_plan_part_continued(
        &self,
        job_id: &str,
        part: PlanPart,
        next_task: u64,
    ) -> Result<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(&plan_sk(part)))
            .update_expression("SET continued_at = :n, updated_at = :now")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":n", n(next_task))
            .expression_attribute_values(":now", s(&time_to_string(Utc::now())))
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "UpdateItem", e))?;
        Ok(())
    }
    /// Records that a run of `part` may send batches with sequence numbers below `up_to`
    /// (write-ahead: before it sends them). Only ever raises the mark.
    pub async fn reserve_plan_batches(
        &self,
        job_id: &str,
        part: PlanPart,
        up_to: u64,
    ) -> Result<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(&plan_sk(part)))
            .update_expression("SET reserved = :up, updated_at = :now")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(reserved) OR reserved < :up)",
            )
            .expression_attribute_values(":up", n(up_to))
            .expression_attribute_values(":now", s(&time_to_string(Utc::now())))
            .send()
            .await;
        // Not applied: already reserved that far (a concurrent run of the same part).
        condition_held(result, "UpdateItem").map(|_| ())
    }
    /// Gives back the reservations of a part that stopped at its canary with every batch sent
    /// (`batches` of them): a cancel after the canary must not send batches past it again.
    pub async fn release_plan_reservations(
        &self,
        job_id: &str,
        part: PlanPart,
        batches: u64,
    ) -> Result<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(&plan_sk(part)))
            .update_expression("SET reserved = :b")
            .condition_expression("batches = :b AND done = :false")
            .expression_attribute_values(":b", n(batches))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .send()
            .await;
        // Not applied: the part has moved on since (confirmed, or closed by a cancel).
        condition_held(result, "UpdateItem").map(|_| ())
    }
}

pub(super) fn plan_sk(part: PlanPart) -> String {
    format!("{PLAN_SK_PREFIX}{}", part.id())
}

/// A plan part checkpoint as a DynamoDB item.
pub fn checkpoint_to_item(job_id: &str, checkpoint: &PlanCheckpoint) -> Item {
    let mut item = Item::from([
        (PK.to_string(), s(&job_pk(job_id))),
        (SK.to_string(), s(&plan_sk(checkpoint.part))),
        (A_PART.to_string(), s(&checkpoint.part.id())),
        (A_NEXT_TASK.to_string(), n(checkpoint.next_task)),
        (A_BATCHES.to_string(), n(checkpoint.batches)),
        (A_DONE.to_string(), AttributeValue::Bool(checkpoint.done)),
    ]);
    if let Some(at) = checkpoint.continued_at {
        item.insert(A_CONTINUED_AT.to_string(), n(at));
    }
    if checkpoint.reserved > 0 {
        item.insert(A_RESERVED.to_string(), n(checkpoint.reserved));
    }
    if let Some(at) = checkpoint.updated_at {
        item.insert(A_UPDATED_AT.to_string(), s(&time_to_string(at)));
    }
    if checkpoint.resume.is_some() {
        item.insert(A_RESUME.to_string(), resume_value(checkpoint.resume));
    }
    item
}

/// A CSV resume point as `[task, byte, line]`, or NULL.
pub(super) fn resume_value(point: Option<crate::manifest::ResumePoint>) -> AttributeValue {
    match point {
        Some(p) => AttributeValue::L(vec![n(p.task), n(p.byte), n(p.line)]),
        None => AttributeValue::Null(true),
    }
}

pub(super) fn resume_from_item(item: &Item) -> Result<Option<crate::manifest::ResumePoint>> {
    match item.get(A_RESUME) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::L(values)) => {
            let number = |i: usize| -> Result<u64> {
                match values.get(i) {
                    Some(AttributeValue::N(v)) => {
                        v.parse().map_err(|_| malformed(A_RESUME, format!("{v:?}")))
                    }
                    other => Err(malformed(A_RESUME, format!("{other:?}"))),
                }
            };
            Ok(Some(crate::manifest::ResumePoint {
                task: number(0)?,
                byte: number(1)?,
                line: number(2)?,
            }))
        }
        Some(other) => Err(malformed(A_RESUME, format!("{other:?}"))),
    }
}

/// A plan part's checkpoint from its DynamoDB item (the inverse of [`checkpoint_to_item`]);
/// fails with `Malformed` on a missing or mistyped attribute.
pub fn checkpoint_from_item(item: &Item) -> Result<PlanCheckpoint> {
    Ok(PlanCheckpoint {
        part: PlanPart::parse(get_s(item, A_PART)?).map_err(|e| malformed(A_PART, e))?,
        next_task: get_n_or_zero(item, A_NEXT_TASK)?,
        batches: get_n_or_zero(item, A_BATCHES)?,
        done: get_bool(item, A_DONE)?,
        continued_at: get_opt_n(item, A_CONTINUED_AT)?,
        reserved: get_n_or_zero(item, A_RESERVED)?,
        updated_at: get_opt_time(item, A_UPDATED_AT)?,
        resume: resume_from_item(item)?,
    })
}
