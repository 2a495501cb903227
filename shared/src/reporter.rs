//! The reporter: composes result parts into the completion report and sets the final status.

use crate::error::Result;
use crate::store::Store;
use crate::Context;

/// Sends the finalize request once, when planning is complete and every batch has committed.
/// Called after every commit and at the end of planning; the store's conditional flag makes
/// exactly one caller win.
pub async fn finalize_if_done(ctx: &Context, job_id: &str) -> Result<()> {
    if Store::from_context(ctx).claim_finalize(job_id).await? {
        crate::queue::send_finalize_request(ctx, job_id).await?;
    }
    Ok(())
}

/// Writes the completion report (if enabled) and moves the job to its final status.
pub async fn finalize_job(_ctx: &Context, _job_id: &str) -> Result<()> {
    Err(crate::Error::Other(
        "reporter::finalize_job is not implemented yet".into(),
    ))
}
