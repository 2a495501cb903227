//! A task batch message body, any bytes: a batch or a refusal, never a panic; a batch read is
//! written back the same.
#![no_main]

use batchops::plan::TaskBatch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(batch) = TaskBatch::from_body(text) {
        let body = batch.to_body();
        let again = TaskBatch::from_body(&body).expect("read back what we wrote");
        assert_eq!(again.tasks, batch.tasks);
        assert_eq!(again.batch_id, batch.batch_id);
        let _ = batch.rest_from(batch.offset + 1);
    }
});
