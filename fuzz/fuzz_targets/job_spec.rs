//! The CreateJob JSON: parsed and validated, or refused with a reason, never a panic.
#![no_main]

use batchops::job::CreateJobRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(request) = CreateJobRequest::parse(text) {
        if request.validate().is_ok() {
            // What is accepted survives a round trip through the store's JSON.
            let json = serde_json::to_string(&request).expect("serialise an accepted request");
            let again = CreateJobRequest::parse(&json).expect("parse what we wrote");
            assert_eq!(again, request);
        }
    }
});
