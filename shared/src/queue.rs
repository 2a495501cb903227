//! The queues: plan requests, task batches and finalize requests, as SQS messages.

use crate::error::{Error, Result};
use crate::Context;
use serde::{Deserialize, Serialize};

/// A message on the plan queue besides S3 event notifications: plan (or prepare) this job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRequest {
    #[serde(rename = "PlanJobId")]
    pub job_id: String,
}

/// A message on the report queue, and the reporter's direct-invocation event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalizeRequest {
    #[serde(rename = "FinalizeJobId")]
    pub job_id: String,
}

async fn send(ctx: &Context, queue_url: &str, body: String) -> Result<()> {
    ctx.sqs
        .send_message()
        .queue_url(queue_url)
        .message_body(body)
        .send()
        .await
        .map_err(|e| Error::aws("SQS", "SendMessage", e))?;
    Ok(())
}

pub async fn send_plan_request(ctx: &Context, job_id: &str) -> Result<()> {
    let body = serde_json::to_string(&PlanRequest {
        job_id: job_id.to_string(),
    })
    .map_err(|e| Error::Message(e.to_string()))?;
    send(ctx, &ctx.settings.plan_queue_url, body).await
}

pub async fn send_finalize_request(ctx: &Context, job_id: &str) -> Result<()> {
    let body = serde_json::to_string(&FinalizeRequest {
        job_id: job_id.to_string(),
    })
    .map_err(|e| Error::Message(e.to_string()))?;
    send(ctx, &ctx.settings.report_queue_url, body).await
}
