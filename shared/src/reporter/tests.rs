use super::*;
use crate::job::{can_transition, ALL_STATUSES};

#[test]
fn final_paths_follow_the_status_machine() {
    for &from in ALL_STATUSES {
        for report_failed in [false, true] {
            let Some(path) = final_path(from, report_failed) else {
                assert_eq!(from, JobStatus::Suspended);
                continue;
            };
            let mut at = from;
            for &to in path {
                assert!(can_transition(at, to), "{from}: {at} -> {to} not allowed");
                at = to;
            }
            assert!(at.is_terminal(), "{from} ends at {at}");
        }
    }
}

#[test]
fn final_statuses() {
    use JobStatus::*;
    let end = |from, failed| *final_path(from, failed).unwrap().last().unwrap();
    assert_eq!(end(Active, false), Complete);
    assert_eq!(end(Active, true), Failed);
    assert_eq!(end(Failing, false), Failed);
    assert_eq!(end(Cancelling, false), Cancelled);
    assert_eq!(end(Cancelling, true), Cancelled);
    assert_eq!(end(Preparing, false), Complete);
    assert_eq!(end(Ready, false), Complete);
    assert!(final_path(Complete, false).unwrap().is_empty());
    assert!(final_path(Suspended, false).is_none());
}

fn offline_context() -> Context {
    let config = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .http_client(crate::context::https_client())
        .build();
    let settings = crate::context::Settings {
        table: "t".into(),
        plan_queue_url: "http://127.0.0.1:9/plan".into(),
        task_queue_url: "http://127.0.0.1:9/tasks".into(),
        report_queue_url: "http://127.0.0.1:9/report".into(),
        system_bucket: "system".into(),
        executor_concurrency: 1,
        lambda_max_attempts: 1,
        lambda_retry_base: std::time::Duration::from_millis(1),
        max_message_bytes: 1024,
        report_read_concurrency: 1,
        ..Default::default()
    };
    Context::from_config(&config, settings)
}

#[tokio::test]
async fn a_malformed_sqs_body_becomes_a_batch_item_failure() {
    let event = json!({"Records": [{"messageId": "m-7", "body": "not json"}]});
    let answer = handle(&offline_context(), event).await.unwrap();
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "m-7"}]})
    );
}

#[tokio::test]
async fn a_direct_event_must_name_the_job() {
    let err = handle(&offline_context(), json!({"JobId": "x"}))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("FinalizeJobId"), "{err}");
}

#[test]
fn long_error_texts_are_cut_on_a_character_boundary() {
    assert_eq!(truncate("short".into(), 10), "short");
    let cut = truncate("é".repeat(10), 5);
    assert_eq!(cut, "éé…");
}

#[test]
fn sqs_records_parse_with_only_the_fields_the_reporter_reads() {
    // What `local run` sends: no receipt handle, attributes or ARNs.
    let event = json!({"Records": [{
        "messageId": "m-1",
        "body": "{\"FinalizeJobId\":\"job-1\"}",
        "eventSource": "aws:sqs"
    }]});
    let event: SqsEvent = serde_json::from_value(event).unwrap();
    assert_eq!(event.records[0].message_id.as_deref(), Some("m-1"));
    let body = event.records[0].body.as_deref().unwrap();
    let request: FinalizeRequest = serde_json::from_str(body).unwrap();
    assert_eq!(request.job_id, "job-1");
}
