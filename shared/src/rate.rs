//! A rate limit per job: at most `MaxTasksPerSecond` tasks start per second, across every
//! executor of the stack (the job's `"BatchOps": {"MaxTasksPerSecond": N}`, `create-job
//! --max-tasks-per-second`, changed on a running job by `update-job-rate`).
//!
//! The job's limiter is one item in the table: the time from which the next *lease* may start
//! (`Store::lease_tasks`, a read and a conditional write). An executor leases several tasks at
//! once, a quarter of a second's worth at the job's rate (at least 1, at most [`MAX_LEASE`], and
//! no more than its batch has left), and starts them evenly spaced over the lease. Leases follow
//! each other without overlap whichever executor takes them, so the rate holds however many
//! executors run; time nobody used is not saved up for a burst. The limiter costs about four
//! reads and four writes a second per job at any rate of four tasks a second or more, and one
//! of each per task below that.
//!
//! A lease cut short (the executor's time ran out) leaves its last slots unused, which slows the
//! job a little rather than exceeding the limit. `update-job-rate` also writes the new rate into
//! the limiter item, so it applies from the next lease, in batches already running too (a job
//! that had no limit gets one from the batches that start after the change). Should the table refuse a lease for a while, the task
//! runs unpaced (logged): the limit protects a bucket from sustained load, and one batch does not
//! make that.

use crate::job::Job;
use crate::Context;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::warn;

/// How long one lease lasts at the job's rate.
const LEASE_SECONDS: f64 = 0.25;
/// The most tasks of one lease.
pub const MAX_LEASE: u32 = 500;

/// How many times a lease is tried against other executors' before the task runs unpaced.
const LEASE_ATTEMPTS: u32 = 50;
/// How long a process trusts that a job's limit was lifted before it looks again.
const UNLIMITED_FOR: Duration = Duration::from_secs(1);

/// The leases this process holds, one per job, shared by its clones of the context.
#[derive(Debug, Default)]
pub struct RateGates {
    gates: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Lease>>>>,
}

impl RateGates {
    fn gate(&self, job_id: &str) -> Arc<tokio::sync::Mutex<Lease>> {
        let mut gates = self.gates.lock().unwrap_or_else(|e| e.into_inner());
        gates.entry(job_id.to_string()).or_default().clone()
    }
}

/// A lease: `size` tasks at `rate` per second from `start_ms`, `used` of them started; or, with
/// `unlimited_until`, the knowledge that the job's limit was lifted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Lease {
    /// When the lease's first task may start, in milliseconds since the Unix epoch.
    pub start_ms: u64,
    /// The job's rate when the lease was taken, in tasks per second.
    pub rate: u32,
    /// Tasks the lease covers, evenly spaced at `rate`.
    pub size: u32,
    /// Tasks of the lease started so far.
    pub used: u32,
    /// Until when the job is known to have no limit (then no lease is needed); `None`: not
    /// known so.
    pub unlimited_until: Option<Instant>,
}

impl Lease {
    /// When the next task of the lease may start, if it has one left.
    pub fn next_slot(&self) -> Option<u64> {
        (self.rate > 0 && self.used < self.size)
            .then(|| self.start_ms + self.used as u64 * 1000 / self.rate as u64)
    }
}

/// The size of a lease at `rate` for a batch with `wanted` tasks left.
pub fn lease_size(rate: u32, wanted: usize) -> u32 {
    let quarter = (rate as f64 * LEASE_SECONDS).ceil() as u32;
    quarter
        .clamp(1, MAX_LEASE)
        .min(wanted.clamp(1, MAX_LEASE as usize) as u32)
}

/// Where a new lease starts and how long it lasts: right after the last one, never before now.
pub fn place_lease(last: Option<u64>, now_ms: u64, size: u32, rate: u32) -> (u64, u64) {
    let start = last.unwrap_or(0).max(now_ms);
    let length = (size as u64 * 1000).div_ceil(rate.max(1) as u64);
    (start, start + length)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Takes a new lease for a batch with `wanted` tasks left, at the rate `update-job-rate` set or
/// else `rate` (the job's when its batch started). `None`: no limit now.
async fn take_lease(
    ctx: &Context,
    job_id: &str,
    rate: u32,
    wanted: usize,
) -> crate::Result<Option<Lease>> {
    let store = ctx.store();
    for attempt in 1..=LEASE_ATTEMPTS {
        let limiter = store.get_limiter(job_id).await?;
        let rate = limiter.rate.unwrap_or(rate);
        if rate == 0 {
            return Ok(None);
        }
        let size = lease_size(rate, wanted);
        let (start_ms, next) = place_lease(limiter.next_start_ms, now_ms(), size, rate);
        if store
            .advance_limiter(job_id, limiter.next_start_ms, next)
            .await?
        {
            return Ok(Some(Lease {
                start_ms,
                rate,
                size,
                used: 0,
                unlimited_until: None,
            }));
        }
        // Another executor leased first: look again.
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=5 * attempt as u64))).await;
    }
    Err(crate::Error::Conflict(format!(
        "job {job_id}: the rate limiter's lease lost {LEASE_ATTEMPTS} races in a row"
    )))
}

/// Waits until the next task of `job` (whose batch has `wanted` tasks left) may start under the
/// job's rate limit. False when that time comes after `stop_at`: the task must not start in
/// this invocation (the first task of an invocation always waits, so every invocation makes
/// progress). True at once for a job without a limit.
pub async fn pace(
    ctx: &Context,
    job: &Job,
    wanted: usize,
    stop_at: Option<Instant>,
    first: bool,
) -> bool {
    let Some(rate) = job.max_tasks_per_second.filter(|r| *r > 0) else {
        return true;
    };
    let gate = ctx.rate_gates.gate(&job.job_id);
    let mut lease = gate.lock().await;
    if lease
        .unlimited_until
        .is_some_and(|until| Instant::now() < until)
    {
        return true;
    }
    let slot = match lease.next_slot() {
        Some(slot) => slot,
        None => match take_lease(ctx, &job.job_id, rate, wanted).await {
            Ok(Some(new)) => {
                *lease = new;
                lease.start_ms
            }
            Ok(None) => {
                lease.unlimited_until = Some(Instant::now() + UNLIMITED_FOR);
                return true;
            }
            Err(err) => {
                warn!(job_id = %job.job_id, error = %err, "no lease from the rate limiter; this task runs unpaced");
                return true;
            }
        },
    };
    let wait = Duration::from_millis(slot.saturating_sub(now_ms()));
    if !first && stop_at.is_some_and(|stop| Instant::now() + wait > stop) {
        return false;
    }
    lease.used += 1;
    // Let go of the lease before sleeping: the next task takes the next slot meanwhile.
    drop(lease);
    tokio::time::sleep(wait).await;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_a_quarter_second_of_the_rate_within_bounds_and_the_batch() {
        assert_eq!(lease_size(2000, 10_000), 500);
        assert_eq!(lease_size(100_000, 10_000), MAX_LEASE);
        assert_eq!(lease_size(100, 10_000), 25);
        assert_eq!(lease_size(10, 10_000), 3);
        assert_eq!(lease_size(1, 10_000), 1);
        assert_eq!(lease_size(2000, 7), 7, "no more than the batch has left");
        assert_eq!(lease_size(2000, 0), 1);
    }

    #[test]
    fn the_slots_of_a_lease_are_evenly_spaced_and_end_with_it() {
        let mut lease = Lease {
            start_ms: 1_000,
            rate: 4,
            size: 2,
            ..Lease::default()
        };
        assert_eq!(lease.next_slot(), Some(1_000));
        lease.used = 1;
        assert_eq!(lease.next_slot(), Some(1_250));
        lease.used = 2;
        assert_eq!(lease.next_slot(), None);
        assert_eq!(Lease::default().next_slot(), None);
    }

    #[test]
    fn leases_follow_each_other_and_idle_time_is_not_saved_up() {
        // Right after the last lease, 25 tasks at 100/s lasting 250 ms.
        assert_eq!(place_lease(Some(5_000), 4_000, 25, 100), (5_000, 5_250));
        // The limiter was idle: from now, not from the past (no burst).
        assert_eq!(place_lease(Some(1_000), 4_000, 25, 100), (4_000, 4_250));
        assert_eq!(place_lease(None, 4_000, 1, 3), (4_000, 4_334));
    }
}
