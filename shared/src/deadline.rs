//! When an invocation must stop: the one rule the planner, the executor and the reporter share.
//!
//! Each stops starting new work at the earlier of its Lambda deadline less a safety margin and
//! the end of an optional budget (`BATCHOPS_<FUNCTION>_BUDGET_MS`, for `local run`, tests, or to
//! keep invocations short), then saves where it stands and hands the rest on. A budget of 0 means
//! one unit of work (a batch, a task, a result part), then hand on.

use crate::error::{Error, Result};
use std::time::{Duration, Instant, SystemTime};

/// The earlier of `lambda_deadline - margin` and `now + budget`; `None` for no limit. A deadline
/// closer than the margin (or past) means: stop at the first opportunity.
pub fn stop_time(
    now: Instant,
    wall_now: SystemTime,
    lambda_deadline: Option<SystemTime>,
    margin: Duration,
    budget: Option<Duration>,
) -> Option<Instant> {
    let from_deadline = lambda_deadline.map(|deadline| {
        let left = deadline
            .duration_since(wall_now)
            .unwrap_or(Duration::ZERO)
            .saturating_sub(margin);
        now + left
    });
    let from_budget = budget.map(|budget| now + budget);
    match (from_deadline, from_budget) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// True once `stop_at` has passed.
pub fn is_past(stop_at: Option<Instant>) -> bool {
    stop_at.is_some_and(|at| Instant::now() >= at)
}

/// A budget in milliseconds from the environment variable `name`, if set.
pub fn budget_from_env(name: &str) -> Result<Option<Duration>> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => v
            .trim()
            .parse::<u64>()
            .map(|ms| Some(Duration::from_millis(ms)))
            .map_err(|_| {
                Error::Config(format!(
                    "environment variable {name}={v:?} is not a number of milliseconds"
                ))
            }),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earlier_of_deadline_less_margin_and_budget() {
        let now = Instant::now();
        let wall = SystemTime::now();
        let margin = Duration::from_secs(30);
        assert_eq!(stop_time(now, wall, None, margin, None), None);
        let budget = Duration::from_millis(250);
        assert_eq!(
            stop_time(now, wall, None, margin, Some(budget)),
            Some(now + budget)
        );
        let deadline = wall + Duration::from_secs(300);
        assert_eq!(
            stop_time(now, wall, Some(deadline), margin, None),
            Some(now + Duration::from_secs(270))
        );
        assert_eq!(
            stop_time(now, wall, Some(deadline), margin, Some(budget)),
            Some(now + budget)
        );
        let past = wall - Duration::from_secs(5);
        assert_eq!(stop_time(now, wall, Some(past), margin, None), Some(now));
        assert_eq!(
            stop_time(now, wall, None, margin, Some(Duration::ZERO)),
            Some(now)
        );
    }

    #[test]
    fn budgets_read_from_the_environment() {
        assert_eq!(
            budget_from_env("BATCHOPS_TEST_NO_SUCH_BUDGET").unwrap(),
            None
        );
    }
}
