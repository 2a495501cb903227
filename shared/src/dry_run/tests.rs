use super::*;
use serde_json::json;

fn request(operation: serde_json::Value, rate: Option<u32>) -> CreateJobRequest {
    let mut job = json!({
        "Operation": operation,
        "Manifest": {
            "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
            "Location": {"ObjectArn": "arn:aws:s3:::m/manifest.csv"}
        },
        "Report": {"Enabled": false},
        "Priority": 1,
        "RoleArn": "arn:aws:iam::123456789012:role/batch"
    });
    if let Some(rate) = rate {
        job["BatchOps"] = json!({"MaxTasksPerSecond": rate});
    }
    CreateJobRequest::parse(&job.to_string()).unwrap()
}

fn stats(tasks: u64, batches: u64) -> ManifestStats {
    ManifestStats {
        tasks,
        batches,
        batch_chunks: batches * 4,
        manifest_gets: 1,
        ..ManifestStats::default()
    }
}

const STACK: StackShape = StackShape {
    executor_invocations: 20,
    executor_concurrency: 32,
};

fn count(answer: &DryRunJobResponse, service: &str, name: &str) -> Option<u64> {
    answer
        .requests
        .iter()
        .find(|r| r.service == service && r.request == name)
        .map(|r| r.count)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9 * b.abs().max(1.0)
}

#[test]
fn a_million_tags_cost_the_same_requests_on_both_and_s3_batch_operations_its_fees_besides() {
    let job = request(json!({"S3PutObjectTagging": {"TagSet": []}}), None);
    let answer = estimate(
        &job,
        "s3://m/manifest.csv".into(),
        stats(1_000_000, 160),
        STACK,
        &pricing::US_EAST_1,
    );
    assert_eq!(count(&answer, "S3", "PutObjectTagging"), Some(1_000_000));
    let s3bo = answer.cost.s3_batch_operations.as_ref().unwrap();
    // $0.25 per job, $1.00 per million tasks, $0.005 per 1,000 PUTs.
    assert!(close(
        answer.cost.s3_batch_operations_total_usd.unwrap(),
        0.25 + 1.00 + 5.00
    ));
    assert!(close(s3bo[2].usd, 5.00));
    assert!(
        close(answer.cost.batchops[0].usd, 5.00),
        "{:?}",
        answer.cost
    );
    let orchestration = answer.cost.batchops_total_usd - 5.00;
    assert!(
        orchestration > 0.0 && orchestration < 0.10,
        "{orchestration}"
    );
    // 160 batches: SQS sends and receives their 4 chunks each, plus the plan and finalize
    // requests.
    assert_eq!(
        count(&answer, "SQS", "SendMessage (64 KiB chunks)"),
        Some(642)
    );
    assert_eq!(count(&answer, "S3", "PutObject"), Some(163));
    assert_eq!(answer.duration.limited_by, "Concurrency");
    assert_eq!(answer.duration.tasks_in_flight, 640);
    assert!(close(answer.duration.tasks_per_second, 640.0 / 0.03));
}

#[test]
fn a_rate_limit_below_what_concurrency_allows_sets_the_duration() {
    let job = request(json!({"S3PutObjectTagging": {"TagSet": []}}), Some(500));
    let answer = estimate(
        &job,
        String::new(),
        stats(1_000_000, 160),
        STACK,
        &pricing::US_EAST_1,
    );
    assert_eq!(answer.duration.limited_by, "MaxTasksPerSecond");
    assert!(close(
        answer.duration.seconds,
        JOB_OVERHEAD_SECONDS + 2_000.0
    ));
    let fast = request(json!({"S3PutObjectTagging": {"TagSet": []}}), Some(100_000));
    let answer = estimate(
        &fast,
        String::new(),
        stats(1_000_000, 160),
        STACK,
        &pricing::US_EAST_1,
    );
    assert_eq!(answer.duration.limited_by, "Concurrency");
}

#[test]
fn copies_count_the_head_the_multipart_parts_and_what_s3_batch_operations_cannot_copy() {
    let job = request(
        json!({"S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::t"}}),
        None,
    );
    let copy = CopySettings::default();
    let mut s = ManifestStats::default();
    let small = Task {
        bucket: "b".into(),
        key: "small".into(),
        version_id: None,
        size: Some(1_000),
    };
    let huge = Task {
        key: "huge".into(),
        size: Some(10 << 30),
        ..small.clone()
    };
    let unknown = Task {
        key: "unknown".into(),
        size: None,
        ..small.clone()
    };
    for task in [&small, &huge, &unknown] {
        count_task(&mut s, task, &job.operation, &copy, 2);
    }
    assert_eq!(s.first_tasks.len(), 2);
    assert_eq!((s.tasks, s.tasks_with_size), (3, 2));
    assert_eq!(s.bytes, 1_000 + (10 << 30));
    assert_eq!(
        (
            s.multipart_copies,
            s.copy_parts,
            s.tasks_over_5_gb,
            s.copy_heads
        ),
        (1, 20, 1, 1)
    );
    s.batches = 1;
    let answer = estimate(&job, String::new(), s, STACK, &pricing::US_EAST_1);
    // Only the copy in parts is HEADed first (for the ETag its parts are pinned to): the small
    // one and the one of unknown size are one CopyObject each.
    assert_eq!(count(&answer, "S3", "HeadObject"), Some(1));
    assert_eq!(count(&answer, "S3", "CopyObject"), Some(2));
    assert_eq!(count(&answer, "S3", "UploadPartCopy"), Some(20));
    assert_eq!(count(&answer, "S3", "CompleteMultipartUpload"), Some(1));
    // 24 PUT-class requests and 1 HEAD; S3 Batch Operations makes no HEAD.
    let ours = 24.0 * pricing::US_EAST_1.s3_put_request + pricing::US_EAST_1.s3_get_request;
    assert!(close(answer.cost.batchops[0].usd, ours));
    let theirs = &answer.cost.s3_batch_operations.as_ref().unwrap()[2];
    assert!(close(theirs.usd, 24.0 * pricing::US_EAST_1.s3_put_request));
    assert!(
        answer
            .notes
            .iter()
            .any(|n| n.contains("1 objects are over 5 GB")),
        "{:?}",
        answer.notes
    );
    assert!(
        answer
            .notes
            .iter()
            .any(|n| n.contains("sizes known for 2 of 3")),
        "{:?}",
        answer.notes
    );
}

#[test]
fn an_encryption_update_is_a_head_and_a_copy_here_and_one_request_on_s3() {
    let job = request(
        json!({"S3UpdateObjectEncryption": {"ObjectEncryption": {"SSEKMS": {
            "KMSKeyArn": "arn:aws:kms:us-east-1:123456789012:key/k-1"}}}}),
        None,
    );
    let answer = estimate(
        &job,
        String::new(),
        stats(1_000, 4),
        STACK,
        &pricing::US_EAST_1,
    );
    assert_eq!(count(&answer, "S3", "HeadObject"), Some(1_000));
    assert_eq!(count(&answer, "S3", "CopyObject"), Some(1_000));
    let p = pricing::US_EAST_1;
    assert!(close(
        answer.cost.batchops[0].usd,
        1_000.0 * (p.s3_get_request + p.s3_put_request)
    ));
    let theirs = &answer.cost.s3_batch_operations.as_ref().unwrap()[2];
    assert!(close(theirs.usd, 1_000.0 * p.s3_put_request));
}

#[test]
fn deletes_are_free_and_have_no_s3_batch_operations_figure() {
    let job = request(json!({"S3DeleteObject": {}}), None);
    let answer = estimate(
        &job,
        String::new(),
        stats(10, 1),
        STACK,
        &pricing::US_EAST_1,
    );
    assert_eq!(answer.cost.batchops[0].usd, 0.0);
    assert!(answer.cost.s3_batch_operations.is_none());
    assert!(render(&answer).contains("Total"));
}

#[test]
fn the_text_says_tasks_bytes_requests_costs_and_duration() {
    let job = request(json!({"S3PutObjectTagging": {"TagSet": []}}), Some(50));
    let mut s = stats(1_234_567, 200);
    s.tasks_with_size = 1_234_567;
    s.bytes = 3 << 30;
    s.first_tasks = vec![DryRunTask {
        bucket: "b".into(),
        key: "k 1".into(),
        version_id: Some("v1".into()),
        size: Some(2048),
    }];
    let text = render(&estimate(
        &job,
        "s3://m/x.csv".into(),
        s,
        STACK,
        &pricing::US_EAST_1,
    ));
    for expected in [
        "Dry run of S3PutObjectTagging over s3://m/x.csv",
        "Tasks:    1,234,567",
        "Bytes:    3.0 GiB",
        "Batches:  200",
        "  s3://b/k 1 version v1 (2.0 KiB)",
        "S3 PutObjectTagging",
        "Job fee",
        "$0.25",
        "6 h 51 min at 50 tasks/s (limited by the job's rate limit of 50 tasks/s)",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
}

#[test]
fn the_function_memory_the_estimate_assumes_is_the_templates() {
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    for mb in [
        pricing::PLANNER_MEMORY_MB,
        pricing::EXECUTOR_MEMORY_MB,
        pricing::REPORTER_MEMORY_MB,
    ] {
        assert!(
            template.contains(&format!("MemorySize: {mb}\n")),
            "MemorySize: {mb}"
        );
    }
    assert!(template.contains("Architectures: [arm64]"));
    assert!(template.contains(&format!(
        "ExecutorMaxConcurrency:\n    Type: Number\n    Default: {}\n",
        pricing::DEFAULT_EXECUTOR_INVOCATIONS
    )));
}
