//! A user's Lambda function's answer, any bytes: a task outcome with a bounded message, never a
//! panic (a function that returns garbage fails its task with a reason).
#![no_main]

use batchops::invocation::{judge, InvocationRequest, InvocationTask, SchemaVersion};
use batchops::manifest::Task;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let task = Task {
        bucket: "bucket".into(),
        key: "key".into(),
        version_id: None,
        size: None,
    };
    for schema in [SchemaVersion::V1, SchemaVersion::V2] {
        let sent = InvocationRequest::new(
            schema,
            "invocation-1",
            "job-1",
            None,
            vec![InvocationTask::new(schema, "task-1", &task)],
        );
        let _ = judge(&task, &sent, data);
    }
});
