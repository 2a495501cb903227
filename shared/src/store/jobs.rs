//! Job records: creation (once per ClientRequestToken), reads, the job list index, status
//! transitions (each one conditional on the status it leaves) and the finalize claim.

use super::*;
use crate::error::{Error, Result};
use crate::job::{FailureReason, Job, JobSource, JobStatus, S3Tag};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::HashMap;
use std::time::Duration;
use tracing::{debug, warn};

impl Store {
    /// Stores a new job. With a ClientRequestToken, a second call with the same token stores
    /// nothing and returns the first job's id.
    pub async fn put_new_job(&self, job: &Job) -> Result<PutJobOutcome> {
        let item = job_to_item(job)?;
        let Some(token) = job.request.client_request_token.as_deref() else {
            return self.put_job_without_token(job, item).await;
        };
        let token_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(token_item(token, &job.job_id)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| Error::encode("the token put", e))?;
        let job_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| Error::encode("the job put", e))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(token_put).build())
            .transact_items(TransactWriteItem::builder().put(job_put).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(PutJobOutcome::Created),
            Err(e) => match cancellation_codes(&e) {
                Some(codes) if is_condition_failure(&codes, 0) => {
                    let existing = self.job_id_of_token(token).await?;
                    debug!(token, job_id = %existing, "ClientRequestToken seen before");
                    Ok(PutJobOutcome::Existing(existing))
                }
                Some(codes) if is_condition_failure(&codes, 1) => Err(Error::Conflict(format!(
                    "a job with id {} exists already",
                    job.job_id
                ))),
                _ => Err(Error::aws("DynamoDB", "TransactWriteItems", e)),
            },
        }
    }
    pub(super) async fn put_job_without_token(
        &self,
        job: &Job,
        item: Item,
    ) -> Result<PutJobOutcome> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(PutJobOutcome::Created),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(Error::Conflict(format!(
                    "a job with id {} exists already",
                    job.job_id
                )))
            }
            Err(e) => Err(Error::aws("DynamoDB", "PutItem", e)),
        }
    }
    pub(super) async fn job_id_of_token(&self, token: &str) -> Result<String> {
        let item = self
            .get_item(format!("TOKEN#{token}"), TOKEN_SK.to_string())
            .await?
            .ok_or_else(|| {
                Error::Conflict(format!(
                    "ClientRequestToken {token:?} is taken but its record is gone"
                ))
            })?;
        Ok(get_s(&item, A_JOB_ID)?.to_string())
    }
    /// Reads a job (strongly consistent). `Error::JobNotFound` when there is none, or when it
    /// ended more than [`RETENTION`] ago (DynamoDB deletes expired items only eventually).
    pub async fn get_job(&self, job_id: &str) -> Result<Job> {
        let item = self
            .get_item(job_pk(job_id), JOB_SK.to_string())
            .await?
            .filter(|item| !is_expired(item, Utc::now()))
            .ok_or_else(|| Error::JobNotFound(job_id.to_string()))?;
        job_from_item(&item)
    }
    /// Every job, or those in the given statuses, newest first (all pages of the index).
    pub async fn list_jobs(&self, statuses: &[JobStatus]) -> Result<Vec<Job>> {
        let mut jobs = Vec::new();
        let mut token = None;
        loop {
            let (page, next) = self
                .list_jobs_page(statuses, MAX_LIST_RESULTS, token.as_deref())
                .await?;
            jobs.extend(page);
            match next {
                Some(next) => token = Some(next),
                None => return Ok(jobs),
            }
        }
    }
    /// Up to `max_results` jobs (those in `statuses`, or all), newest first, after the position
    /// `next_token` names, and the token of the next page when there may be more. Reads the job
    /// list index (no Scan), so a page costs the same whatever the number of jobs; jobs that
    /// ended more than 90 days ago are not listed.
    pub async fn list_jobs_page(
        &self,
        statuses: &[JobStatus],
        max_results: usize,
        next_token: Option<&str>,
    ) -> Result<(Vec<Job>, Option<String>)> {
        let max_results = max_results.clamp(1, MAX_LIST_RESULTS);
        let mut start = next_token.map(decode_list_token).transpose()?;
        let mut keys: Vec<Item> = Vec::new();
        let token = loop {
            let remaining = (max_results - keys.len()) as i32;
            let mut filter = "(attribute_not_exists(#ttl) OR #ttl > :now)".to_string();
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(JOBS_INDEX)
                .key_condition_expression("list_pk = :jobs")
                .expression_attribute_values(":jobs", s(LIST_PK_JOBS))
                .expression_attribute_values(":now", n(Utc::now().timestamp()))
                .expression_attribute_names("#ttl", A_TTL)
                .scan_index_forward(false)
                .limit(remaining)
                .set_exclusive_start_key(start.take());
            if !statuses.is_empty() {
                let names: Vec<String> = (0..statuses.len()).map(|i| format!(":s{i}")).collect();
                filter.push_str(&format!(" AND #status IN ({})", names.join(", ")));
                request = request.expression_attribute_names("#status", A_STATUS);
                for (name, status) in names.iter().zip(statuses) {
                    request = request.expression_attribute_values(name, s(status.as_str()));
                }
            }
            let out = request
                .filter_expression(filter)
                .send()
                .await
                .map_err(|e| Error::aws("DynamoDB", "Query", e))?;
            keys.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(last) if keys.len() >= max_results => break Some(encode_list_token(&last)?),
                Some(last) => start = Some(last),
                None => break None,
            }
        };
        let jobs = self.get_jobs(&keys).await?;
        Ok((jobs, token))
    }
    /// The job items of the given index entries, in their order (consistent reads).
    pub(super) async fn get_jobs(&self, entries: &[Item]) -> Result<Vec<Job>> {
        let mut jobs = Vec::with_capacity(entries.len());
        for chunk in entries.chunks(100) {
            let keys: Vec<Item> = chunk
                .iter()
                .map(|e| {
                    Ok(Item::from([
                        (PK.to_string(), s(get_s(e, PK)?)),
                        (SK.to_string(), s(JOB_SK)),
                    ]))
                })
                .collect::<Result<_>>()?;
            let mut found: HashMap<String, Job> = HashMap::new();
            let mut pending = keys;
            let mut attempt = 0;
            while !pending.is_empty() {
                attempt += 1;
                let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| Error::encode("the BatchGetItem request", e))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| Error::aws("DynamoDB", "BatchGetItem", e))?;
                for item in out
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    let job = job_from_item(&item)?;
                    found.insert(job.job_id.clone(), job);
                }
                pending = out
                    .unprocessed_keys
                    .unwrap_or_default()
                    .remove(&self.table)
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if !pending.is_empty() {
                    tokio::time::sleep(commit_backoff(attempt)).await;
                }
            }
            for entry in chunk {
                let pk = get_s(entry, PK)?;
                let id = pk.strip_prefix("JOB#").unwrap_or(pk);
                // An entry whose item vanished meanwhile (expired) is skipped.
                if let Some(job) = found.remove(id) {
                    jobs.push(job);
                }
            }
        }
        Ok(jobs)
    }
    /// Moves a job to `to` if its current status is `from` and `job::can_transition(from, to)`.
    /// Records the termination date (terminal statuses), suspended date, active time, the status
    /// update reason and appends `failure` to FailureReasons. Returns false when the job was not in
    /// `from` any more (somebody else moved it first).
    pub async fn transition(
        &self,
        job_id: &str,
        from: JobStatus,
        to: JobStatus,
        reason: Option<String>,
        failure: Option<FailureReason>,
    ) -> Result<bool> {
        crate::job::check_transition(job_id, from, to)?;
        // Read first: leaving Active adds the time spent there, which needs `active_since`. The
        // write below is conditional on the status, so nothing read here can be stale.
        let job = self.get_job(job_id).await?;
        if job.status != from {
            debug!(job_id, %from, %to, current = %job.status, "transition lost: status moved");
            return Ok(false);
        }
        let now = Utc::now();
        let update = transition_update(
            from,
            to,
            job.active_since,
            now,
            reason.as_deref(),
            failure.as_ref(),
        );
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(JOB_SK))
            .update_expression(update.expression())
            .condition_expression("#status = :from")
            .expression_attribute_names("#status", A_STATUS)
            .expression_attribute_values(":from", s(from.as_str()));
        for (name, value) in update.values {
            request = request.expression_attribute_values(name, value);
        }
        if to.is_terminal() {
            request = request.expression_attribute_names("#ttl", A_TTL);
        }
        match request.send().await {
            Ok(_) => {
                debug!(job_id, %from, %to, "job status changed");
                if let Some(sink) = &self.events {
                    let detail = crate::events::status_changed(
                        &job,
                        to,
                        reason.as_deref(),
                        failure.as_ref(),
                        now,
                    );
                    crate::events::send(sink, &detail).await;
                }
                Ok(true)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(Error::aws("DynamoDB", "UpdateItem", e)),
        }
    }
    /// Runs `SET <expression>` on an existing job; JobNotFound when there is no such job.
    pub(super) async fn set_on_job(
        &self,
        job_id: &str,
        expression: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<()> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(JOB_SK))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)");
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(Error::JobNotFound(job_id.to_string()))
            }
            Err(e) => Err(Error::aws("DynamoDB", "UpdateItem", e)),
        }
    }
    /// Sets TotalNumberOfTasks (counted while preparing a job that awaits confirmation).
    pub async fn set_total_tasks(&self, job_id: &str, total: u64) -> Result<()> {
        self.set_on_job(job_id, "SET total_tasks = :t", vec![(":t", n(total))])
            .await
    }
    /// Records that planning is complete: the total number of tasks and of batches sent.
    /// Idempotent (SET, not ADD), so a replanned manifest does not double anything.
    pub async fn finish_planning(
        &self,
        job_id: &str,
        total_tasks: u64,
        batches: u64,
    ) -> Result<()> {
        self.set_on_job(
            job_id,
            "SET total_tasks = :t, batches_planned = :b",
            vec![(":t", n(total_tasks)), (":b", n(batches))],
        )
        .await
    }
    /// Records that every batch of the job's canary is sent: `batches` of them. Its report is
    /// due once they have committed ([`Store::claim_finalize`]).
    pub async fn finish_canary(&self, job_id: &str, batches: u64) -> Result<()> {
        self.set_on_job(job_id, "SET canary_batches = :b", vec![(":b", n(batches))])
            .await
    }
    /// Claims the right to send the finalize request: planning is complete, every batch has
    /// committed, and finalize was not sent, or (with `resend_after`) was sent longer ago than
    /// that without the job ending. Returns the claim's time for exactly one caller, which then
    /// sends the request (and gives the claim back with [`Store::release_finalize`] if it cannot).
    pub async fn claim_finalize(
        &self,
        job_id: &str,
        now: DateTime<Utc>,
        resend_after: Option<Duration>,
    ) -> Result<Option<DateTime<Utc>>> {
        let stale_before = resend_after
            .map(|after| now - chrono::Duration::from_std(after).unwrap_or(chrono::TimeDelta::MAX));
        // The final report once every planned batch has committed, or a canary's report once
        // its batches have (planning waits after a canary, so nothing else is planned then).
        let mut condition = String::from(
            "((attribute_exists(batches_planned) AND batches_committed >= batches_planned) \
              OR (attribute_not_exists(batches_planned) AND attribute_exists(canary_batches) \
                  AND batches_committed >= canary_batches)) \
             AND (attribute_not_exists(finalize_sent) OR finalize_sent = :false",
        );
        if stale_before.is_some() {
            condition.push_str(" OR attribute_not_exists(finalize_at) OR finalize_at < :stale");
        }
        condition.push(')');
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(JOB_SK))
            .update_expression("SET finalize_sent = :true, finalize_at = :now")
            .condition_expression(condition)
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":now", s(&time_to_string(now)));
        if let Some(stale) = stale_before {
            request = request.expression_attribute_values(":stale", s(&time_to_string(stale)));
        }
        match request.send().await {
            Ok(_) => Ok(Some(now)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::aws("DynamoDB", "UpdateItem", e)),
        }
    }
    /// Gives back a finalize claim made at `claimed_at` whose request could not be sent, so that
    /// the next caller (a redelivered batch, the sweeper) claims and sends it. Best effort: if
    /// this fails too, the sweeper resends once the claim is old.
    pub async fn release_finalize(&self, job_id: &str, claimed_at: DateTime<Utc>) {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(JOB_SK))
            .update_expression("SET finalize_sent = :false")
            .condition_expression("finalize_at = :at")
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .expression_attribute_values(":at", s(&time_to_string(claimed_at)))
            .send()
            .await;
        if let Err(e) = result {
            warn!(job_id, error = %Error::aws("DynamoDB", "UpdateItem", e), "could not give back the finalize claim; the sweeper will resend it");
        }
    }
    /// Records what the job is planned from (its pinned manifest, or the snapshot of its
    /// manifest generator's listing), unless something is recorded already; returns what is.
    pub async fn set_job_source(&self, job_id: &str, source: &JobSource) -> Result<JobSource> {
        let json =
            serde_json::to_string(source).map_err(|e| Error::encode("the job's source", e))?;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(JOB_SK))
            .update_expression("SET #source = if_not_exists(#source, :source)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#source", A_SOURCE)
            .expression_attribute_values(":source", s(&json))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "UpdateItem", e))?;
        match out.attributes.as_ref().and_then(|a| a.get(A_SOURCE)) {
            Some(AttributeValue::S(stored)) => {
                serde_json::from_str(stored).map_err(|e| malformed(A_SOURCE, e))
            }
            _ => Ok(source.clone()),
        }
    }
    /// Records a repair or diagnosis as the job's StatusUpdateReason.
    pub async fn set_status_update_reason(&self, job_id: &str, reason: &str) -> Result<()> {
        self.set_on_job(
            job_id,
            "SET status_update_reason = :r",
            vec![(":r", s(reason))],
        )
        .await
    }
    /// Sets the job's rate limit (tasks per second), or removes it.
    pub async fn set_rate(&self, job_id: &str, rate: Option<u32>) -> Result<()> {
        match rate {
            Some(rate) => {
                self.set_on_job(job_id, "SET max_tps = :r", vec![(":r", n(rate))])
                    .await
            }
            None => self.set_on_job(job_id, "REMOVE max_tps", Vec::new()).await,
        }
    }
    /// Replaces the job's tags; an empty set leaves it with none (stored as `[]`, so that the
    /// request's tags do not come back).
    pub async fn set_job_tags(&self, job_id: &str, tags: &[S3Tag]) -> Result<()> {
        self.set_on_job(job_id, "SET tags = :t", vec![(":t", s(&tags_json(tags)?))])
            .await
    }
    /// Sets the job's priority. Fails with `JobNotFound` when the job is not stored.
    pub async fn update_priority(&self, job_id: &str, priority: i32) -> Result<()> {
        self.set_on_job(job_id, "SET priority = :p", vec![(":p", n(priority))])
            .await
    }
}

/// The changes of one status transition, as an update expression and its values.
#[derive(Debug, Default, PartialEq)]
pub(super) struct TransitionUpdate {
    pub(super) set: Vec<String>,
    pub(super) remove: Vec<String>,
    pub(super) values: Vec<(String, AttributeValue)>,
}

impl TransitionUpdate {
    pub(super) fn set(&mut self, clause: &str, placeholder: &str, value: AttributeValue) {
        self.set.push(clause.to_string());
        self.values.push((placeholder.to_string(), value));
    }

    pub(super) fn expression(&self) -> String {
        let mut expression = format!("SET {}", self.set.join(", "));
        if !self.remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", self.remove.join(", ")));
        }
        expression
    }
}

/// What a transition writes: the status, the dates and timers it implies, the reason and failure.
pub(super) fn transition_update(
    from: JobStatus,
    to: JobStatus,
    active_since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    reason: Option<&str>,
    failure: Option<&FailureReason>,
) -> TransitionUpdate {
    let mut update = TransitionUpdate::default();
    update.set("#status = :to", ":to", s(to.as_str()));
    if to.is_terminal() {
        update.set("termination_date = :now", ":now", s(&time_to_string(now)));
        update.set("#ttl = :ttl", ":ttl", n(expiry_of(now)));
    } else if to == JobStatus::Suspended {
        update.set("suspended_date = :now", ":now", s(&time_to_string(now)));
        if from != JobStatus::Preparing {
            // After a canary: its report is written, the finalize claim is free for the
            // job's final report, and planning goes on past the canary once confirmed.
            update.set(
                "canary_done = :canary_done",
                ":canary_done",
                AttributeValue::Bool(true),
            );
            update.remove.extend([
                A_CANARY_BATCHES.to_string(),
                A_FINALIZE.to_string(),
                A_FINALIZE_AT.to_string(),
            ]);
        }
    }
    if from == JobStatus::Active {
        // Whole seconds, as S3 reports them; a job that was never marked active adds nothing.
        let elapsed = active_since
            .map(|since| (now - since).num_seconds().max(0))
            .unwrap_or(0);
        update.set(
            "elapsed_active_seconds = if_not_exists(elapsed_active_seconds, :zero) + :elapsed",
            ":elapsed",
            n(elapsed),
        );
        update.values.push((":zero".into(), n(0)));
        update.remove.push(A_ACTIVE_SINCE.to_string());
    }
    if to == JobStatus::Active {
        update.set("active_since = :since", ":since", s(&time_to_string(now)));
    }
    if let Some(reason) = reason {
        update.set("status_update_reason = :reason", ":reason", s(reason));
    }
    if let Some(failure) = failure {
        update.set(
            "failure_reasons = list_append(if_not_exists(failure_reasons, :empty), :failure)",
            ":failure",
            AttributeValue::L(vec![failure_to_value(failure)]),
        );
        update
            .values
            .push((":empty".into(), AttributeValue::L(vec![])));
    }
    update
}

/// The job list index's sort key: creation time with a fixed number of digits (so that text
/// order is time order), then the id.
pub(super) fn list_sort_key(job: &Job) -> String {
    format!(
        "{}#{}",
        job.creation_time
            .to_rfc3339_opts(SecondsFormat::Nanos, true),
        job.job_id
    )
}

/// A ListJobs NextToken: the index position to go on after, base64 of its keys.
pub(super) fn encode_list_token(last: &Item) -> Result<String> {
    use base64::Engine;
    let keys = serde_json::json!({
        "ListSk": get_s(last, A_LIST_SK)?,
        "Pk": get_s(last, PK)?,
    });
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(keys.to_string()))
}

pub(super) fn decode_list_token(token: &str) -> Result<Item> {
    use base64::Engine;
    let invalid = || {
        Error::InvalidRequest(format!(
            "NextToken {token:?} is not a token that ListJobs gave"
        ))
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?;
    let keys: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let list_sk = keys["ListSk"].as_str().ok_or_else(invalid)?;
    let pk = keys["Pk"]
        .as_str()
        .filter(|pk| pk.starts_with("JOB#"))
        .ok_or_else(invalid)?;
    Ok(Item::from([
        (A_LIST_PK.to_string(), s(LIST_PK_JOBS)),
        (A_LIST_SK.to_string(), s(list_sk)),
        (PK.to_string(), s(pk)),
        (SK.to_string(), s(JOB_SK)),
    ]))
}
