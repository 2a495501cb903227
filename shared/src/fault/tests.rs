use super::*;

#[test]
fn rules_fire_after_skip_for_their_times_and_only_on_matches() {
    let plan = FaultPlan::new(
        1,
        vec![
            FaultRule::new("SQS", "SendMessage", Fault::internal_error())
                .containing("FinalizeJobId")
                .after(1)
                .times(2),
        ],
    );
    assert_eq!(plan.choose("SQS", "SendMessage", "{\"JobId\":1}"), None);
    assert_eq!(plan.choose("SQS", "SendMessage", "FinalizeJobId a"), None);
    assert_eq!(
        plan.choose("SQS", "SendMessage", "FinalizeJobId b"),
        Some(0)
    );
    assert_eq!(
        plan.choose("DynamoDB", "SendMessage", "FinalizeJobId"),
        None
    );
    assert_eq!(
        plan.choose("SQS", "SendMessage", "FinalizeJobId c"),
        Some(0)
    );
    assert_eq!(plan.choose("SQS", "SendMessage", "FinalizeJobId d"), None);
    assert_eq!(plan.injected(), 2);
    assert_eq!(plan.fired(0), 2);
}

#[test]
fn a_seed_replays_the_same_faults() {
    let draw = |seed| {
        let plan = FaultPlan::new(
            seed,
            vec![FaultRule::new("S3", "PutObject", Fault::slow_down()).with_probability(0.3)],
        );
        (0..200)
            .map(|_| plan.choose("S3", "PutObject", "").is_some())
            .collect::<Vec<_>>()
    };
    assert_eq!(draw(42), draw(42));
    assert_ne!(draw(42), draw(43));
    let hits = draw(42).iter().filter(|h| **h).count();
    assert!((30..90).contains(&hits), "{hits} of 200 at p=0.3");
}

#[test]
fn plans_read_from_json() {
    let plan = FaultPlan::from_json(
        r#"{"Seed": 9, "Rules": [{"Service": "S3", "Operation": "PutObject", "Times": 1,
            "Fault": {"Kind": "Reject", "Status": 503, "Code": "SlowDown"}}]}"#,
    )
    .unwrap();
    assert_eq!(plan.seed(), 9);
    assert_eq!(plan.choose("S3", "PutObject", ""), Some(0));
    assert_eq!(plan.choose("S3", "PutObject", ""), None);
    assert!(FaultPlan::from_json("{}").is_err());
}

#[test]
fn only_loopback_endpoints_take_faults() {
    assert!(check_loopback(Some("http://127.0.0.1:5000")).is_ok());
    assert!(check_loopback(Some("http://localhost:5000/")).is_ok());
    assert!(check_loopback(Some("https://127.0.0.1:5000")).is_err());
    assert!(check_loopback(Some("http://s3.amazonaws.com")).is_err());
    assert!(check_loopback(None).is_err());
}

#[test]
fn error_bodies_follow_each_protocol() {
    let json = error_response(Protocol::AwsJson, 400, "ThrottlingException", "slow", None);
    assert_eq!(json.status().as_u16(), 400);
    let body = std::str::from_utf8(json.body().bytes().unwrap()).unwrap();
    assert!(
        body.contains("\"__type\":\"ThrottlingException\""),
        "{body}"
    );
    let xml = error_response(Protocol::RestXml, 503, "SlowDown", "a<b", None);
    let body = std::str::from_utf8(xml.body().bytes().unwrap()).unwrap();
    assert!(
        body.contains("<Code>SlowDown</Code><Message>a&lt;b</Message>"),
        "{body}"
    );
}
