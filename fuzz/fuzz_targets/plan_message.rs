//! A plan queue message body, any bytes, as the planner receives it inside an SQS event: work or
//! a refusal, never a panic.
#![no_main]

use batchops::planner::parse_event;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let body = String::from_utf8_lossy(data);
    let event = json!({"Records": [{"eventSource": "aws:sqs", "body": body}]});
    let _ = parse_event(&event);
});
