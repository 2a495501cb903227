use super::*;
use serde_json::json;

#[test]
fn an_eventbridge_object_created_event_is_a_manifest_arrival() {
    let event = json!({
        "version": "0", "detail-type": "Object Created", "source": "aws.s3",
        "account": "111122223333", "region": "us-east-1",
        "resources": ["arn:aws:s3:::inv"],
        "detail": {"version": "0", "bucket": {"name": "inv"},
                   "object": {"key": "src/cfg/2026-12-01T01-00Z/manifest.json", "size": 10,
                              "etag": "abc"},
                   "reason": "PutObject"}
    });
    assert_eq!(
        parse_event(&event).unwrap(),
        vec![PlannerWork::ManifestArrived {
            bucket: "inv".into(),
            key: "src/cfg/2026-12-01T01-00Z/manifest.json".into(),
            etag: Some("abc".into()),
        }]
    );
    // Through the plan queue, as the rule's SQS target delivers it.
    let sqs = json!({"Records": [{"eventSource": "aws:sqs", "body": event.to_string()}]});
    assert_eq!(parse_event(&sqs).unwrap().len(), 1);
    let deleted = json!({"source": "aws.s3", "detail-type": "Object Deleted", "detail": {}});
    assert!(parse_event(&deleted).unwrap().is_empty());
    let broken =
        json!({"source": "aws.s3", "detail-type": "Object Created", "detail": {"bucket": {}}});
    assert!(parse_event(&broken).is_err());
}

#[test]
fn reads_plan_requests_direct_and_in_sqs() {
    let direct = json!({"PlanJobId": "j1"});
    assert_eq!(
        parse_event(&direct).unwrap(),
        vec![PlannerWork::Plan("j1".into())]
    );
    let sqs = json!({"Records": [{"eventSource": "aws:sqs", "body": "{\"PlanJobId\":\"j2\"}"}]});
    assert_eq!(
        parse_event(&sqs).unwrap(),
        vec![PlannerWork::Plan("j2".into())]
    );
}

#[test]
fn reads_s3_events_direct_and_wrapped_and_decodes_keys() {
    let s3 = json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-25T01:02:03.000Z", "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "inventory",
               "bucket": {"name": "inv", "arn": "arn:aws:s3:::inv"},
               "object": {"key": "inv/src/cfg/2026-11-25T01-00Z/my+manifest%2B.json", "size": 10, "eTag": "abc"}}
    }]});
    let expected = PlannerWork::ManifestArrived {
        bucket: "inv".into(),
        key: "inv/src/cfg/2026-11-25T01-00Z/my manifest+.json".into(),
        etag: Some("abc".into()),
    };
    assert_eq!(parse_event(&s3).unwrap(), vec![expected.clone()]);
    // moto's notifications leave out userIdentity and requestParameters.
    let moto = json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-25T01:02:03.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "inventory",
               "bucket": {"name": "inv", "arn": "arn:aws:s3:::inv"},
               "object": {"key": "inv/src/cfg/2026-11-25T01-00Z/my+manifest%2B.json", "size": 10, "eTag": "abc"}}
    }]});
    assert_eq!(parse_event(&moto).unwrap(), vec![expected.clone()]);
    let no_bucket = json!({"Records": [{
        "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {}, "object": {"key": "k"}}
    }]});
    assert!(parse_event(&no_bucket)
        .unwrap_err()
        .to_string()
        .contains("missing field `name`"));
    let wrapped = json!({"Records": [{"eventSource": "aws:sqs", "body": s3.to_string()}]});
    assert_eq!(parse_event(&wrapped).unwrap(), vec![expected]);
}

#[test]
fn ignores_test_events_and_removals_and_rejects_garbage() {
    let test_event = json!({"Records": [{"eventSource": "aws:sqs",
        "body": "{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\"}"}]});
    assert!(parse_event(&test_event).unwrap().is_empty());
    let removed = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete",
        "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]});
    assert!(parse_event(&removed).unwrap().is_empty());
    assert!(parse_event(&json!({"hello": 1})).is_err());
    let bad_body = json!({"Records": [{"eventSource": "aws:sqs", "body": "not json"}]});
    assert!(parse_event(&bad_body).is_err());
}
#[test]
fn reads_plan_part_requests_and_rejects_bad_parts() {
    let part = json!({"Records": [{"eventSource": "aws:sqs",
        "body": "{\"PlanJobId\":\"j3\",\"Part\":\"f000002\"}"}]});
    assert_eq!(
        parse_event(&part).unwrap(),
        vec![PlannerWork::PlanPart {
            job_id: "j3".into(),
            part: PlanPart::InventoryFile(2),
            from_task: None,
        }]
    );
    assert_eq!(
        parse_event(&json!({"PlanJobId": "j", "Part": "m", "From": 4000})).unwrap(),
        vec![PlannerWork::PlanPart {
            job_id: "j".into(),
            part: PlanPart::Whole,
            from_task: Some(4000),
        }]
    );
    assert!(parse_event(&json!({"PlanJobId": "j", "Part": "zz"})).is_err());
}

#[test]
fn stop_time_is_the_earlier_of_deadline_less_margin_and_budget() {
    let now = Instant::now();
    let wall = SystemTime::now();
    assert_eq!(stop_time(now, wall, None, None), None);
    let budget = Duration::from_millis(250);
    assert_eq!(stop_time(now, wall, None, Some(budget)), Some(now + budget));
    let deadline = wall + Duration::from_secs(900);
    let from_deadline = now + Duration::from_secs(900) - DEADLINE_MARGIN;
    assert_eq!(
        stop_time(now, wall, Some(deadline), None),
        Some(from_deadline)
    );
    assert_eq!(
        stop_time(now, wall, Some(deadline), Some(budget)),
        Some(now + budget)
    );
    assert_eq!(
        stop_time(now, wall, Some(deadline), Some(Duration::from_secs(3600))),
        Some(from_deadline)
    );
    // A deadline closer than the margin (or past) means: stop at the first batch boundary.
    let close = wall + Duration::from_secs(5);
    assert_eq!(stop_time(now, wall, Some(close), None), Some(now));
    let past = wall - Duration::from_secs(5);
    assert_eq!(stop_time(now, wall, Some(past), None), Some(now));
}

fn numbered(range: std::ops::Range<u32>) -> Vec<Task> {
    range
        .map(|i| Task {
            bucket: "b".into(),
            key: i.to_string(),
            version_id: None,
            size: None,
        })
        .collect()
}

#[test]
fn skip_sent_drops_exactly_the_tasks_sent_before_across_chunks() {
    let mut received = 0;
    assert!(skip_sent(numbered(0..10), 25, &mut received).is_empty());
    assert!(skip_sent(numbered(10..20), 25, &mut received).is_empty());
    assert_eq!(
        skip_sent(numbered(20..30), 25, &mut received),
        numbered(25..30)
    );
    assert_eq!(
        skip_sent(numbered(30..40), 25, &mut received),
        numbered(30..40)
    );
    assert_eq!(received, 40);
    let mut received = 0;
    assert_eq!(skip_sent(numbered(0..5), 0, &mut received), numbered(0..5));
    let mut received = 0;
    assert!(skip_sent(numbered(0..5), 5, &mut received).is_empty());
    assert_eq!(skip_sent(numbered(5..6), 5, &mut received), numbered(5..6));
}
