//! The one backoff: how long to wait before another attempt, for task retries (S3, Lambda) and
//! DynamoDB commits alike.

use std::time::Duration;

/// The wait after the `failed_attempt`-th attempt (1-based): `base` doubled per attempt, capped at
/// `cap`, then scaled into its upper half by `jitter` (0.0..1.0) so that callers that failed
/// together do not come back together.
pub fn delay(base: Duration, cap: Duration, failed_attempt: u32, jitter: f64) -> Duration {
    let doublings = failed_attempt.saturating_sub(1).min(20);
    let exponential = base.saturating_mul(1u32 << doublings).min(cap);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    exponential.mul_f64(0.5 + 0.5 * jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_base_to_cap_within_its_upper_half() {
        let ms = Duration::from_millis;
        let cap = Duration::from_secs(4);
        assert_eq!(delay(ms(50), cap, 1, 1.0), ms(50));
        assert_eq!(delay(ms(50), cap, 1, 0.0), ms(25));
        assert_eq!(delay(ms(50), cap, 3, 1.0), ms(200));
        assert_eq!(delay(ms(50), cap, 30, 1.0), cap);
        assert_eq!(delay(ms(50), cap, 30, 0.0), cap / 2);
        assert_eq!(delay(ms(50), cap, 0, f64::NAN), ms(25));
        assert_eq!(delay(ms(50), cap, 2, 7.0), ms(100), "jitter is clamped");
    }
}
