//! Live progress of a job: `describe-job --watch`, and `local run --job-id` on a terminal.
//!
//! On a terminal (stderr), a progress bar: tasks done of the total, succeeded and failed, tasks
//! per second over the last half minute, the time left at that rate, and a line for every
//! status change. Elsewhere (a pipe, a CI log), one plain line per refresh. The job's final
//! DescribeJob answer is what the command prints on stdout, as `describe-job` does.

use anyhow::{Context as _, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use std::collections::VecDeque;
use std::future::Future;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How far back the rate looks.
const RATE_WINDOW: Duration = Duration::from_secs(30);

/// What the watch shows of a job, read from its DescribeJob answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub status: String,
    pub total: Option<u64>,
    pub succeeded: u64,
    pub failed: u64,
    pub reason: Option<String>,
}

impl Snapshot {
    /// From `{"Job": {...}}` as DescribeJob answers.
    pub fn of(describe: &Value) -> Result<Self> {
        let job = describe
            .get("Job")
            .context("the DescribeJob answer has no Job")?;
        let progress = &job["ProgressSummary"];
        Ok(Snapshot {
            status: job["Status"]
                .as_str()
                .context("the DescribeJob answer has no Job.Status")?
                .to_string(),
            total: progress["TotalNumberOfTasks"].as_u64(),
            succeeded: progress["NumberOfTasksSucceeded"].as_u64().unwrap_or(0),
            failed: progress["NumberOfTasksFailed"].as_u64().unwrap_or(0),
            reason: job["StatusUpdateReason"].as_str().map(str::to_string),
        })
    }

    pub fn done(&self) -> u64 {
        self.succeeded + self.failed
    }

    /// Complete, Failed or Cancelled.
    pub fn is_terminal(&self) -> bool {
        matches!(self.status.as_str(), "Complete" | "Failed" | "Cancelled")
    }

    /// The job has ended, or waits in Suspended for confirmation (after its canary, or before
    /// it starts): nothing changes until somebody acts, so the watch ends.
    pub fn ends_watch(&self) -> bool {
        self.is_terminal() || self.status == "Suspended"
    }
}

/// Tasks per second over the last [`RATE_WINDOW`].
#[derive(Debug, Default)]
pub struct Rate {
    samples: VecDeque<(Instant, u64)>,
}

impl Rate {
    pub fn push(&mut self, at: Instant, done: u64) {
        self.samples.push_back((at, done));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| at.duration_since(*t) > RATE_WINDOW)
            && self.samples.len() > 2
        {
            self.samples.pop_front();
        }
    }

    /// `None` until two samples some time apart exist.
    pub fn per_second(&self) -> Option<f64> {
        let (first, last) = (self.samples.front()?, self.samples.back()?);
        let seconds = last.0.duration_since(first.0).as_secs_f64();
        (seconds > 0.0).then(|| last.1.saturating_sub(first.1) as f64 / seconds)
    }
}

/// The time left for the tasks not yet done at `per_second`; `None` when unknown or stalled.
pub fn eta(snapshot: &Snapshot, per_second: Option<f64>) -> Option<Duration> {
    let left = snapshot.total?.saturating_sub(snapshot.done());
    let rate = per_second.filter(|r| *r > 0.0)?;
    Some(Duration::from_secs_f64(left as f64 / rate))
}

/// `1h02m`, `3m05s`, `12s`.
pub fn short_duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, sec) => format!("{min}m{sec:02}s"),
        (h, min, _) => format!("{h}h{min:02}m"),
    }
}

/// The figures after the bar (or the whole line when there is none).
pub fn summary(snapshot: &Snapshot, per_second: Option<f64>) -> String {
    let total = snapshot
        .total
        .map_or_else(|| "?".to_string(), |t| t.to_string());
    let mut line = format!(
        "{}: {}/{total} tasks ({} succeeded, {} failed)",
        snapshot.status,
        snapshot.done(),
        snapshot.succeeded,
        snapshot.failed
    );
    if let Some(rate) = per_second {
        line.push_str(&format!(", {rate:.1} tasks/s"));
    }
    if let Some(left) = eta(snapshot, per_second).filter(|_| !snapshot.is_terminal()) {
        line.push_str(&format!(", ETA {}", short_duration(left)));
    }
    line
}

/// Where the progress goes: a bar on a terminal, plain lines elsewhere.
pub struct Display {
    job_id: String,
    bar: Option<ProgressBar>,
    rate: Rate,
    status: Option<String>,
}

impl Display {
    pub fn new(job_id: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{bar:30}] {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Display {
            job_id: job_id.to_string(),
            bar,
            rate: Rate::default(),
            status: None,
        }
    }

    pub fn show(&mut self, snapshot: &Snapshot) {
        self.rate.push(Instant::now(), snapshot.done());
        let changed = self.status.as_deref() != Some(snapshot.status.as_str());
        let line = summary(snapshot, self.rate.per_second());
        match &self.bar {
            Some(bar) => {
                if changed {
                    let from = self.status.as_deref().unwrap_or("-");
                    let mut note = format!("job {}: {from} → {}", self.job_id, snapshot.status);
                    if let Some(reason) = &snapshot.reason {
                        note.push_str(&format!(" ({reason})"));
                    }
                    bar.println(note);
                }
                if let Some(total) = snapshot.total {
                    bar.set_length(total);
                }
                bar.set_position(snapshot.done());
                bar.set_message(line);
                if snapshot.ends_watch() {
                    bar.finish();
                }
            }
            None => eprintln!("job {}: {line}", self.job_id),
        }
        self.status = Some(snapshot.status.clone());
    }
}

/// DescribeJob on the stack's table directly, as JSON (what `watch` reads without a control
/// function).
pub async fn describe(ctx: &batchops::Context, job_id: &str) -> Result<Value> {
    let answer = batchops::control::describe_job(ctx, job_id).await?;
    Ok(serde_json::to_value(answer)?)
}

/// Shows the job's progress every `every` until it ends; returns its last DescribeJob answer.
pub async fn watch<F, Fut>(job_id: &str, every: Duration, mut describe: F) -> Result<Value>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Value>>,
{
    let mut display = Display::new(job_id);
    loop {
        let answer = describe().await?;
        let snapshot = Snapshot::of(&answer)?;
        display.show(&snapshot);
        if snapshot.ends_watch() {
            return Ok(answer);
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snapshot(status: &str, total: Option<u64>, ok: u64, failed: u64) -> Snapshot {
        Snapshot {
            status: status.into(),
            total,
            succeeded: ok,
            failed,
            reason: None,
        }
    }

    #[test]
    fn a_snapshot_reads_describe_job_and_knows_the_end() {
        let answer = json!({"Job": {"JobId": "j", "Status": "Active",
            "ProgressSummary": {"TotalNumberOfTasks": 100, "NumberOfTasksSucceeded": 40,
                                "NumberOfTasksFailed": 2, "Timers": {"ElapsedTimeInActiveSeconds": 3}},
            "StatusUpdateReason": "waiting for job x"}});
        let s = Snapshot::of(&answer).unwrap();
        assert_eq!((s.total, s.done(), s.is_terminal()), (Some(100), 42, false));
        assert_eq!(s.reason.as_deref(), Some("waiting for job x"));
        let preparing = json!({"Job": {"Status": "Preparing", "ProgressSummary": {
            "NumberOfTasksSucceeded": 0, "NumberOfTasksFailed": 0}}});
        assert_eq!(Snapshot::of(&preparing).unwrap().total, None);
        for end in ["Complete", "Failed", "Cancelled"] {
            assert!(snapshot(end, None, 0, 0).is_terminal());
            assert!(snapshot(end, None, 0, 0).ends_watch());
        }
        // Waiting for confirmation (after a canary) ends the watch but not the job.
        let waiting = snapshot("Suspended", None, 25, 0);
        assert!(waiting.ends_watch() && !waiting.is_terminal());
        assert!(!snapshot("Active", None, 0, 0).ends_watch());
        assert!(Snapshot::of(&json!({"Jobs": []})).is_err());
    }

    #[test]
    fn the_rate_is_over_the_last_half_minute_and_gives_the_time_left() {
        let start = Instant::now();
        let mut rate = Rate::default();
        rate.push(start, 0);
        assert_eq!(rate.per_second(), None);
        rate.push(start + Duration::from_secs(10), 500);
        assert_eq!(rate.per_second(), Some(50.0));
        // Old samples drop out: the rate follows the job as it speeds up.
        rate.push(start + Duration::from_secs(40), 3500);
        rate.push(start + Duration::from_secs(50), 4500);
        assert_eq!(rate.per_second(), Some(100.0));
        let s = snapshot("Active", Some(10_000), 4400, 100);
        assert_eq!(eta(&s, rate.per_second()), Some(Duration::from_secs(55)));
        assert_eq!(eta(&s, Some(0.0)), None);
        assert_eq!(eta(&snapshot("Active", None, 1, 0), Some(5.0)), None);
    }

    #[test]
    fn the_plain_line_says_everything_a_log_reader_needs() {
        let s = snapshot("Active", Some(1000), 390, 10);
        assert_eq!(
            summary(&s, Some(20.0)),
            "Active: 400/1000 tasks (390 succeeded, 10 failed), 20.0 tasks/s, ETA 30s"
        );
        assert_eq!(
            summary(&snapshot("Preparing", None, 0, 0), None),
            "Preparing: 0/? tasks (0 succeeded, 0 failed)"
        );
        assert_eq!(
            summary(&snapshot("Complete", Some(5), 5, 0), Some(1.0)),
            "Complete: 5/5 tasks (5 succeeded, 0 failed), 1.0 tasks/s"
        );
        assert_eq!(short_duration(Duration::from_secs(3725)), "1h02m");
        assert_eq!(short_duration(Duration::from_secs(185)), "3m05s");
    }
}
