//! Priorities between jobs, as S3 Batch Operations documents them: between Active jobs, the
//! batches of a job of higher `Priority` run before those of a lower one, best effort (a batch
//! already running finishes).
//!
//! The rule is applied when a batch is about to start. A job is *outranked* while another job of
//! higher priority has batches not yet committed and is Active, or Paused itself (its batches
//! come back to look soon; until then nothing of lower priority should take its place, or a
//! raised priority would only count once the higher job's batches came back). A batch of an outranked job does not
//! start: its job goes Active → Pausing → Paused, and the batch is sent again with a delay
//! (`priority_wait`) to look again later. The first batch of a Paused job that finds it no
//! longer outranked (the higher jobs finished, failed, were cancelled or lowered) makes it
//! Active again and runs. UpdateJobPriority takes effect at the next batch that looks.
//!
//! Each process keeps the list of running jobs for a second or two ([`RunningJobs`]), so that
//! the check costs one read of the job list per process now and then, not one per batch.

use crate::error::Result;
use crate::job::{Job, JobStatus};
use crate::store::Store;
use crate::Context;
use std::time::{Duration, Instant};
use tracing::info;

/// How long a process reuses the list of running jobs.
const LIST_MAX_AGE: Duration = Duration::from_secs(1);

/// A job with batches left to run, as the priority rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningJob {
    /// The job's id.
    pub job_id: String,
    /// The job's `Priority`: the batches of a higher one run first.
    pub priority: i32,
}

/// The running jobs as this process last read them, shared by its clones of the context.
#[derive(Debug, Default)]
pub struct RunningJobs {
    cached: tokio::sync::Mutex<Option<(Instant, Vec<RunningJob>)>>,
}

impl RunningJobs {
    /// The jobs that run or wait to run (Active, Pausing, Paused) with batches not yet
    /// committed, read again when older than `max_age`.
    pub async fn get(&self, store: &Store, max_age: Duration) -> Result<Vec<RunningJob>> {
        let mut cached = self.cached.lock().await;
        if let Some((at, jobs)) = cached.as_ref() {
            if at.elapsed() < max_age {
                return Ok(jobs.clone());
            }
        }
        let jobs: Vec<RunningJob> = store
            .list_jobs(&[JobStatus::Active, JobStatus::Pausing, JobStatus::Paused])
            .await?
            .into_iter()
            .filter(|job| !job.progress.report_due())
            .map(|job| RunningJob {
                job_id: job.job_id,
                priority: job.priority,
            })
            .collect();
        *cached = Some((Instant::now(), jobs.clone()));
        Ok(jobs)
    }

    /// Drops the cached list: this process just changed a job's status.
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }
}

/// The running job of highest priority above `job`'s, if any: the one `job` waits for.
pub fn outranking<'a>(job: &Job, running: &'a [RunningJob]) -> Option<&'a RunningJob> {
    running
        .iter()
        .filter(|r| r.job_id != job.job_id && r.priority > job.priority)
        .max_by_key(|r| r.priority)
}

/// Whether a batch of a job may start now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Turn {
    /// Run it (the job is Active, or was made Active again).
    Run,
    /// Wait: this job of higher priority runs first.
    Wait(RunningJob),
}

/// Applies the priority rule to a batch of `job` (Active, Pausing or Paused) about to start, and
/// moves the job between Active and Paused as its turn goes and comes.
pub async fn take_turn(ctx: &Context, store: &Store, job: &Job) -> Result<Turn> {
    let running = ctx.running_jobs.get(store, LIST_MAX_AGE).await?;
    match outranking(job, &running) {
        Some(higher) => {
            pause(ctx, store, job, higher).await?;
            Ok(Turn::Wait(higher.clone()))
        }
        None => {
            resume(ctx, store, job).await?;
            Ok(Turn::Run)
        }
    }
}

async fn pause(ctx: &Context, store: &Store, job: &Job, higher: &RunningJob) -> Result<()> {
    let reason = format!(
        "waiting for job {} of higher priority ({} > {})",
        higher.job_id, higher.priority, job.priority
    );
    let mut status = job.status;
    for next in [JobStatus::Pausing, JobStatus::Paused] {
        if crate::job::can_transition(status, next)
            && store
                .transition(&job.job_id, status, next, Some(reason.clone()), None)
                .await?
        {
            status = next;
        }
    }
    if status != job.status {
        info!(job_id = %job.job_id, waits_for = %higher.job_id, "job paused for a job of higher priority");
        ctx.running_jobs.forget().await;
    }
    Ok(())
}

async fn resume(ctx: &Context, store: &Store, job: &Job) -> Result<()> {
    let mut status = job.status;
    if status == JobStatus::Pausing
        && store
            .transition(&job.job_id, status, JobStatus::Paused, None, None)
            .await?
    {
        status = JobStatus::Paused;
    }
    if status == JobStatus::Paused
        && store
            .transition(
                &job.job_id,
                status,
                JobStatus::Active,
                Some("no job of higher priority is running".into()),
                None,
            )
            .await?
    {
        info!(job_id = %job.job_id, "job active again: no job of higher priority is running");
        ctx.running_jobs.forget().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, priority: i32) -> Job {
        let request = crate::job::CreateJobRequest::parse(
            r#"{"Operation": {"S3DeleteObjectTagging": {}}, "Report": {"Enabled": false}}"#,
        )
        .unwrap();
        let mut job = crate::control::new_job(id.into(), request, chrono::Utc::now());
        job.priority = priority;
        job
    }

    fn running(id: &str, priority: i32) -> RunningJob {
        RunningJob {
            job_id: id.into(),
            priority,
        }
    }

    #[test]
    fn a_job_waits_for_the_highest_running_job_above_it_and_never_for_itself_or_equals() {
        let all = [running("a", 10), running("b", 50), running("c", 5)];
        assert_eq!(outranking(&job("c", 5), &all), Some(&all[1]));
        assert_eq!(outranking(&job("a", 10), &all), Some(&all[1]));
        assert_eq!(outranking(&job("b", 50), &all), None);
        // Equal priorities share the executors; a job's own stale entry never holds it back.
        assert_eq!(outranking(&job("x", 50), &all), None);
        assert_eq!(outranking(&job("b", 1), &all), Some(&all[0]));
        assert_eq!(outranking(&job("c", 5), &[]), None);
    }
}
