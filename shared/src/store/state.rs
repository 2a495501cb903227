//! The states that long work saves between invocations (the reports, a generator's listing), and
//! the TTL every item of an ended job gets.

use super::*;
use crate::error::{Error, Result};
use crate::job::Job;
use crate::report::ReportKind;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use tracing::warn;

impl Store {
    /// The reporter's saved state of a job's report (its step number and the state), if any:
    /// its final report, or its canary's.
    pub async fn get_report_state<T: serde::de::DeserializeOwned>(
        &self,
        job_id: &str,
        kind: ReportKind,
    ) -> Result<Option<(u64, T)>> {
        self.get_job_state(job_id, report_sk(kind)).await
    }
    /// Saves the report state; see [`Store::save_job_state`].
    pub async fn save_report_state<T: Serialize>(
        &self,
        job_id: &str,
        kind: ReportKind,
        step: u64,
        state: &T,
        expires_at: Option<i64>,
    ) -> Result<bool> {
        self.save_job_state(job_id, report_sk(kind), step, state, expires_at)
            .await
    }
    /// A state that a piece of work saves between invocations (item `sk=<name>` in the job's
    /// partition): its step number and the state, if any.
    pub async fn get_job_state<T: serde::de::DeserializeOwned>(
        &self,
        job_id: &str,
        name: &str,
    ) -> Result<Option<(u64, T)>> {
        let Some(item) = self.get_item(job_pk(job_id), name.to_string()).await? else {
            return Ok(None);
        };
        let state =
            serde_json::from_str(get_s(&item, A_STATE)?).map_err(|e| malformed(A_STATE, e))?;
        Ok(Some((get_n_or_zero(&item, A_STEP)?, state)))
    }
    /// When the report state was last saved; `None` before the reporter began.
    pub async fn report_saved_at(&self, job_id: &str) -> Result<Option<DateTime<Utc>>> {
        let mut latest = None;
        for sk in [REPORT_SK, CANARY_REPORT_SK] {
            if let Some(item) = self.get_item(job_pk(job_id), sk.to_string()).await? {
                latest = latest.max(get_opt_time(&item, A_UPDATED_AT)?);
            }
        }
        Ok(latest)
    }
    /// Saves a job state as step `step`, if the saved one is still step `step - 1` (or, for
    /// step 0, none is saved): of two invocations working on the same thing, one saves and the
    /// other learns that it lost (false).
    pub async fn save_job_state<T: Serialize>(
        &self,
        job_id: &str,
        name: &str,
        step: u64,
        state: &T,
        expires_at: Option<i64>,
    ) -> Result<bool> {
        let json = serde_json::to_string(state)
            .map_err(|e| Error::encode(format!("the {name} state"), e))?;
        let mut item = Item::from([
            (PK.to_string(), s(&job_pk(job_id))),
            (SK.to_string(), s(name)),
            (A_STEP.to_string(), n(step)),
            (A_STATE.to_string(), s(&json)),
            (A_UPDATED_AT.to_string(), s(&time_to_string(Utc::now()))),
        ]);
        if let Some(ttl) = expires_at {
            item.insert(A_TTL.to_string(), n(ttl));
        }
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        request = if step == 0 {
            request.condition_expression("attribute_not_exists(pk)")
        } else {
            request
                .condition_expression("step = :prev")
                .expression_attribute_values(":prev", n(step - 1))
        };
        condition_held(request.send().await, "PutItem")
    }
    /// Gives the job's items (batches, plan parts, report state, and its ClientRequestToken's
    /// record) the table's TTL `expires_at` (epoch seconds), a page at a time from `after_sk`.
    /// Stops between pages once `stop_at` has passed and returns the sort key to go on after;
    /// `None` when every item has its TTL.
    pub async fn expire_job_items(
        &self,
        job: &Job,
        expires_at: i64,
        mut after_sk: Option<String>,
        stop_at: Option<std::time::Instant>,
    ) -> Result<Option<String>> {
        let pk = job_pk(&job.job_id);
        if after_sk.is_none() {
            if let Some(token) = &job.request.client_request_token {
                self.set_ttl(&format!("TOKEN#{token}"), TOKEN_SK, expires_at)
                    .await?;
            }
        }
        loop {
            let (items, more) = self
                .query_page(&pk, "", after_sk.clone(), 500, Some("pk, sk"))
                .await?;
            let keys: Vec<String> = items
                .iter()
                .map(|item| get_s(item, SK).map(str::to_string))
                .collect::<Result<_>>()?;
            futures::stream::iter(keys.iter())
                .map(|sk| self.set_ttl(&pk, sk, expires_at))
                .buffer_unordered(16)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<Vec<()>>>()?;
            after_sk = keys.last().cloned();
            if !more || after_sk.is_none() {
                return Ok(None);
            }
            if crate::deadline::is_past(stop_at) {
                return Ok(after_sk);
            }
        }
    }
    /// Gives the items of a job that ended without the reporter (failed while preparing,
    /// cancelled before it ran, Suspended too long) their TTL: a few items, all at once. Best
    /// effort: a failure is logged, and the items then stay until deleted by hand.
    pub async fn expire_ended_job(&self, job_id: &str) {
        let result = async {
            let job = self.get_job(job_id).await?;
            let ended = job.termination_date.unwrap_or_else(Utc::now);
            self.expire_job_items(&job, expiry_of(ended), None, None)
                .await
                .map(|_| ())
        }
        .await;
        if let Err(err) = result {
            warn!(job_id, error = %err, "could not give the items of an ended job their TTL");
        }
    }
    pub(super) async fn set_ttl(&self, pk: &str, sk: &str, expires_at: i64) -> Result<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .key(SK, s(sk))
            .update_expression("SET #ttl = :ttl")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#ttl", A_TTL)
            .expression_attribute_values(":ttl", n(expires_at))
            .send()
            .await;
        // Not applied: gone already (expired, or a token whose record was never written).
        condition_held(result, "UpdateItem").map(|_| ())
    }
}

pub(super) fn report_sk(kind: ReportKind) -> &'static str {
    match kind {
        ReportKind::Final => REPORT_SK,
        ReportKind::Canary => CANARY_REPORT_SK,
    }
}

/// The TTL (epoch seconds) of the items of a job that ended at `ended`.
pub fn expiry_of(ended: DateTime<Utc>) -> i64 {
    ended.timestamp() + RETENTION.as_secs() as i64
}

/// An item whose TTL has passed: DynamoDB deletes it eventually, batchops treats it as gone now.
pub(super) fn is_expired(item: &Item, now: DateTime<Utc>) -> bool {
    matches!(get_opt_n::<i64>(item, A_TTL), Ok(Some(ttl)) if ttl <= now.timestamp())
}
