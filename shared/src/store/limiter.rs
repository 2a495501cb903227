//! A job's rate limiter: one item holding when the next lease of tasks may start (`crate::rate`).

use super::*;
use crate::error::{Error, Result};

impl Store {
    /// The job's rate limiter item (`crate::rate`), as it stands.
    pub async fn get_limiter(&self, job_id: &str) -> Result<Limiter> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(RATE_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "GetItem", e))?;
        let Some(item) = out.item else {
            return Ok(Limiter::default());
        };
        Ok(Limiter {
            next_start_ms: get_opt_n(&item, A_NEXT_START)?,
            rate: get_opt_n(&item, A_LIMITER_RATE)?,
        })
    }
    /// Moves the limiter's next start from `last` (as read) to `next`; false when another
    /// executor moved it first.
    pub async fn advance_limiter(
        &self,
        job_id: &str,
        last: Option<u64>,
        next: u64,
    ) -> Result<bool> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(RATE_SK))
            .update_expression("SET next_start_ms = :next")
            .expression_attribute_values(":next", n(next));
        update = match last {
            Some(last) => update
                .condition_expression("next_start_ms = :last")
                .expression_attribute_values(":last", n(last)),
            None => update.condition_expression("attribute_not_exists(next_start_ms)"),
        };
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(Error::aws("DynamoDB", "UpdateItem", e)),
        }
    }
    /// Sets the rate the limiter uses from its next lease on (0: no limit), so that a change
    /// reaches the batches already running.
    pub async fn set_limiter_rate(&self, job_id: &str, rate: u32) -> Result<()> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(PK, s(&job_pk(job_id)))
            .key(SK, s(RATE_SK))
            .update_expression("SET #rate = :r")
            .expression_attribute_names("#rate", A_LIMITER_RATE)
            .expression_attribute_values(":r", n(rate))
            .send()
            .await
            .map_err(|e| Error::aws("DynamoDB", "UpdateItem", e))?;
        Ok(())
    }
}
