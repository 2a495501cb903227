//! Requests in flight to each bucket, with a limit that adapts as TCP's window does (AIMD): S3
//! answering `503 SlowDown` (or any throttle) halves the bucket's limit, and every answered
//! request whose latency holds (at most twice the fastest seen) while the window was full grows
//! it by `1/limit`, about one more request in flight per round of requests. A bucket's limit
//! starts at the process's task slots and grows at most to what the process would send anyway
//! (its task slots times a copy's parts at once). One process's tasks share a bucket's limit
//! across batches and jobs; a limit is only ever halved once for the requests sent before the
//! last halving, so a burst of throttles answering one round counts once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How a request sent under a [`Permit`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// S3 answered (success or not) after this long.
    Answered(Duration),
    /// S3 asked for fewer requests (503 SlowDown, throttling).
    Throttled,
}

/// The adaptive limits of one process, one per bucket.
#[derive(Debug, Default)]
pub struct BucketConcurrency {
    windows: Mutex<HashMap<String, Arc<Window>>>,
}

impl BucketConcurrency {
    /// Waits until `bucket` has room for one more request (its limit starting at `start`, never
    /// above `max`), and takes it.
    pub async fn acquire(&self, bucket: &str, start: usize, max: usize) -> Permit {
        let window = lock(&self.windows)
            .entry(bucket.to_string())
            .or_insert_with(|| Arc::new(Window::new(start, max)))
            .clone();
        loop {
            // Registered before the check, so that a release between the two is not missed.
            let released = window.released.notified();
            if window.try_take() {
                drop(released);
                return Permit {
                    window,
                    sent_at: Instant::now(),
                    finished: false,
                };
            }
            released.await;
        }
    }

    /// The current limit of `bucket` (`None` before its first request).
    pub fn limit(&self, bucket: &str) -> Option<f64> {
        lock(&self.windows)
            .get(bucket)
            .map(|w| lock(&w.state).limit)
    }
}

/// One request's room in its bucket's window; given back by [`Permit::finish`] (or, without a
/// verdict, when dropped).
#[derive(Debug)]
pub struct Permit {
    window: Arc<Window>,
    sent_at: Instant,
    finished: bool,
}

impl Permit {
    /// Gives the room back, and adapts the limit to how the request ended.
    pub fn finish(mut self, sent: Sent) {
        self.finished = true;
        self.window.release(Some(sent), self.sent_at);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.finished {
            self.window.release(None, self.sent_at);
        }
    }
}

#[derive(Debug)]
struct Window {
    state: Mutex<WindowState>,
    released: Notify,
}

impl Window {
    fn new(start: usize, max: usize) -> Window {
        Window {
            state: Mutex::new(WindowState::new(start, max)),
            released: Notify::new(),
        }
    }

    fn try_take(&self) -> bool {
        let mut state = lock(&self.state);
        let room = state.in_flight < state.limit.floor() as usize;
        if room {
            state.in_flight += 1;
        }
        room
    }

    fn release(&self, sent: Option<Sent>, sent_at: Instant) {
        let halved = {
            let mut state = lock(&self.state);
            // Adapted while the request still counts in flight: was the window full?
            let halved = sent.is_some_and(|sent| state.adapt(sent, sent_at, Instant::now()));
            state.in_flight = state.in_flight.saturating_sub(1);
            halved
        };
        if halved {
            tracing::info!(
                limit = lock(&self.state).limit,
                "S3 asked for fewer requests: fewer in flight to this bucket"
            );
        }
        self.released.notify_waiters();
    }
}

/// The arithmetic of one bucket's window, apart from waiting.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowState {
    /// Requests allowed in flight (its whole part counts).
    pub limit: f64,
    /// The most it grows to.
    pub max: f64,
    /// Requests in flight now.
    pub in_flight: usize,
    /// About the fastest answer seen: latency "holds" while answers take at most twice this.
    pub fastest: Option<Duration>,
    /// When the limit was last halved: throttles of requests sent before it do not halve again.
    pub halved_at: Option<Instant>,
}

impl WindowState {
    /// A window open to `start` requests at once, growing to `max` at most.
    pub fn new(start: usize, max: usize) -> WindowState {
        let max = max.max(start).max(1) as f64;
        WindowState {
            limit: (start.max(1) as f64).min(max),
            max,
            in_flight: 0,
            fastest: None,
            halved_at: None,
        }
    }

    /// Adapts the limit to one request sent at `sent_at` that ended at `now` (still counted in
    /// `in_flight`); true when it was halved. Only a full window grows: a limit that nothing
    /// presses against would only have to be halved more often before it bites.
    pub fn adapt(&mut self, sent: Sent, sent_at: Instant, now: Instant) -> bool {
        match sent {
            Sent::Throttled => {
                if self.halved_at.is_some_and(|halved| sent_at < halved) {
                    return false;
                }
                self.limit = (self.limit / 2.0).max(1.0);
                self.halved_at = Some(now);
                true
            }
            Sent::Answered(latency) => {
                // The fastest answer, drifting slowly towards slower ones, so that a bucket whose
                // answers all become slower (larger objects, say) is not held back for good.
                let fastest = match self.fastest {
                    Some(fastest) if latency >= fastest => fastest + (latency - fastest) / 64,
                    _ => latency,
                };
                self.fastest = Some(fastest);
                let full = self.in_flight >= self.limit.floor() as usize;
                if full && latency <= fastest * 2 {
                    self.limit = (self.limit + 1.0 / self.limit).min(self.max);
                }
                false
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
