//! An event given to the planner directly (an S3 notification, a plan request, a test event),
//! any JSON: work or a refusal, never a panic.
#![no_main]

use batchops::planner::parse_event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = parse_event(&event);
    }
});
