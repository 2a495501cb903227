use super::*;
use serde_json::{json, Value};

fn task(key: &str, version: Option<&str>) -> Task {
    Task {
        bucket: "amzn-s3-demo-bucket".into(),
        key: key.into(),
        version_id: version.map(str::to_string),
        size: None,
    }
}

fn request(schema: SchemaVersion, task_ids: &[&str]) -> InvocationRequest {
    let tasks = task_ids
        .iter()
        .map(|id| InvocationTask::new(schema, *id, &task("k", None)))
        .collect();
    InvocationRequest::new(schema, "inv-1", "job-1", None, tasks)
}

fn violation(payload: &Value, sent: &InvocationRequest) -> String {
    let bytes = serde_json::to_vec(payload).unwrap();
    interpret_response(&bytes, sent).unwrap_err().to_string()
}

#[test]
fn request_1_0_matches_the_documented_example() {
    // AWS Lambda developer guide, "Example Amazon S3 batch request event".
    let documented = json!({
        "invocationSchemaVersion": "1.0",
        "invocationId": "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo",
        "job": {"id": "f3cc4f60-61f6-4a2b-8a21-d07600c373ce"},
        "tasks": [{
            "taskId": "dGFza2lkZ29lc2hlcmUK",
            "s3Key": "customerImage1.jpg",
            "s3VersionId": "1",
            "s3BucketArn": "arn:aws:s3:::amzn-s3-demo-bucket"
        }]
    });
    let mut args = BTreeMap::new();
    args.insert("ignored".to_string(), "in 1.0".to_string());
    let built = InvocationRequest::new(
        SchemaVersion::V1,
        "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo",
        "f3cc4f60-61f6-4a2b-8a21-d07600c373ce",
        Some(&args),
        vec![InvocationTask::new(
            SchemaVersion::V1,
            "dGFza2lkZ29lc2hlcmUK",
            &task("customerImage1.jpg", Some("1")),
        )],
    );
    assert_eq!(serde_json::to_value(&built).unwrap(), documented);
    let parsed: InvocationRequest = serde_json::from_value(documented).unwrap();
    assert_eq!(parsed, built);
    assert_eq!(
        parsed.tasks[0].bucket().as_deref(),
        Some("amzn-s3-demo-bucket")
    );
}

#[test]
fn request_2_0_matches_the_documented_example() {
    // S3 user guide, request example for invocation schema 2.0.
    let documented = json!({
        "invocationSchemaVersion": "2.0",
        "invocationId": "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo",
        "job": {
            "id": "f3cc4f60-61f6-4a2b-8a21-d07600c373ce",
            "userArguments": {"k1": "v1", "k2": "v2"}
        },
        "tasks": [{
            "taskId": "dGFza2lkZ29lc2hlcmUK",
            "s3Key": "customerImage1.jpg",
            "s3VersionId": null,
            "s3Bucket": "amzn-s3-demo-bucket"
        }]
    });
    let args: BTreeMap<String, String> = [("k1", "v1"), ("k2", "v2")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let built = InvocationRequest::new(
        SchemaVersion::V2,
        "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo",
        "f3cc4f60-61f6-4a2b-8a21-d07600c373ce",
        Some(&args),
        vec![InvocationTask::new(
            SchemaVersion::V2,
            "dGFza2lkZ29lc2hlcmUK",
            &task("customerImage1.jpg", None),
        )],
    );
    // Compare the text too: `s3VersionId` must be an explicit null, field order as documented.
    assert_eq!(serde_json::to_value(&built).unwrap(), documented);
    assert_eq!(
        serde_json::to_string(&built).unwrap(),
        concat!(
            r#"{"invocationSchemaVersion":"2.0","invocationId":"YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo","#,
            r#""job":{"id":"f3cc4f60-61f6-4a2b-8a21-d07600c373ce","userArguments":{"k1":"v1","k2":"v2"}},"#,
            r#""tasks":[{"taskId":"dGFza2lkZ29lc2hlcmUK","s3Key":"customerImage1.jpg","s3VersionId":null,"#,
            r#""s3Bucket":"amzn-s3-demo-bucket"}]}"#
        )
    );
    let parsed: InvocationRequest = serde_json::from_value(documented).unwrap();
    assert_eq!(parsed, built);
    assert_eq!(
        parsed.tasks[0].bucket().as_deref(),
        Some("amzn-s3-demo-bucket")
    );
}

#[test]
fn request_2_0_without_user_arguments_omits_them() {
    let built = request(SchemaVersion::V2, &["t"]);
    let value = serde_json::to_value(&built).unwrap();
    assert_eq!(value["job"], json!({"id": "job-1"}));
    assert_eq!(value["tasks"][0]["s3Bucket"], "amzn-s3-demo-bucket");
    assert!(value["tasks"][0].get("s3BucketArn").is_none());
}

#[test]
fn response_matches_the_documented_example() {
    let documented = json!({
        "invocationSchemaVersion": "1.0",
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo",
        "results": [{
            "taskId": "dGFza2lkZ29lc2hlcmUK",
            "resultCode": "Succeeded",
            "resultString": "[\"Mary Major\", \"John Stiles\"]"
        }]
    });
    let built = InvocationResponse {
        invocation_schema_version: SchemaVersion::V1,
        treat_missing_keys_as: Some(ResultCode::PermanentFailure),
        invocation_id: "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo".into(),
        results: vec![TaskResult::new(
            "dGFza2lkZ29lc2hlcmUK",
            ResultCode::Succeeded,
            "[\"Mary Major\", \"John Stiles\"]",
        )],
    };
    assert_eq!(serde_json::to_value(&built).unwrap(), documented);
    assert_eq!(
        serde_json::from_value::<InvocationResponse>(documented).unwrap(),
        built
    );
}

#[test]
fn keys_are_url_encoded_and_decode_back() {
    for key in [
        "customerImage1.jpg",
        "dir/a b+c%d,e.txt",
        "ünï/cödé 1.txt",
        "a~b_c-d.e",
    ] {
        let encoded = encode_s3_key(key);
        assert_eq!(decode_s3_key(&encoded), key, "{encoded}");
    }
    assert_eq!(
        encode_s3_key("dir/a b+c%d,e.txt"),
        "dir/a%20b%2Bc%25d%2Ce.txt"
    );
    // S3 event style (`+` for a space) decodes too.
    assert_eq!(decode_s3_key("a+b%2Bc"), "a b+c");
    let t = InvocationTask::new(SchemaVersion::V1, "t", &task("x y", None));
    assert_eq!(t.s3_key, "x%20y");
    assert_eq!(t.key(), "x y");
}

#[test]
fn schema_versions_parse() {
    assert_eq!(SchemaVersion::parse("1.0").unwrap(), SchemaVersion::V1);
    assert_eq!(SchemaVersion::parse("2.0").unwrap(), SchemaVersion::V2);
    assert!(SchemaVersion::parse("3.0").is_err());
}

#[test]
fn results_come_back_in_the_order_of_the_sent_tasks() {
    let sent = request(SchemaVersion::V1, &["a", "b"]);
    let payload = json!({
        "invocationSchemaVersion": "1.0",
        "invocationId": "inv-1",
        "results": [
            {"taskId": "b", "resultCode": "PermanentFailure", "resultString": "nope"},
            {"taskId": "a", "resultCode": "Succeeded", "resultString": "ok"}
        ]
    });
    let results = interpret_response(&serde_json::to_vec(&payload).unwrap(), &sent).unwrap();
    assert_eq!(
        results[0],
        TaskResult::new("a", ResultCode::Succeeded, "ok")
    );
    assert_eq!(
        results[1],
        TaskResult::new("b", ResultCode::PermanentFailure, "nope")
    );
}

#[test]
fn a_missing_result_string_is_accepted() {
    let sent = request(SchemaVersion::V1, &["a"]);
    let payload = json!({"invocationSchemaVersion": "1.0", "invocationId": "inv-1",
        "results": [{"taskId": "a", "resultCode": "Succeeded", "resultString": null}]});
    let results = interpret_response(&serde_json::to_vec(&payload).unwrap(), &sent).unwrap();
    assert_eq!(results[0].result_string, None);
}

#[test]
fn missing_tasks_default_to_permanent_failure() {
    let sent = request(SchemaVersion::V2, &["a", "b"]);
    let payload = json!({"invocationSchemaVersion": "2.0", "invocationId": "inv-1",
        "results": [{"taskId": "a", "resultCode": "Succeeded", "resultString": "ok"}]});
    let results = interpret_response(&serde_json::to_vec(&payload).unwrap(), &sent).unwrap();
    assert_eq!(results[1].result_code, ResultCode::PermanentFailure);
    assert!(results[1]
        .result_string
        .as_deref()
        .unwrap()
        .contains("treatMissingKeysAs is PermanentFailure"));
}

#[test]
fn missing_tasks_follow_treat_missing_keys_as() {
    let sent = request(SchemaVersion::V1, &["a"]);
    for code in [
        ResultCode::Succeeded,
        ResultCode::TemporaryFailure,
        ResultCode::PermanentFailure,
    ] {
        let payload = json!({"invocationSchemaVersion": "1.0", "invocationId": "inv-1",
            "treatMissingKeysAs": code.as_str(), "results": []});
        let results = interpret_response(&serde_json::to_vec(&payload).unwrap(), &sent).unwrap();
        assert_eq!(results[0].result_code, code);
        assert_eq!(results[0].task_id, "a");
    }
}

#[test]
fn invalid_json_breaks_the_contract() {
    let sent = request(SchemaVersion::V1, &["a"]);
    let err = interpret_response(b"not json", &sent)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with(CONTRACT_VIOLATION), "{err}");
    let err = interpret_response(b"", &sent).unwrap_err().to_string();
    assert!(err.starts_with(CONTRACT_VIOLATION), "{err}");
}

#[test]
fn a_response_without_results_breaks_the_contract() {
    let sent = request(SchemaVersion::V1, &["a"]);
    let err = violation(&json!({"hello": "world"}), &sent);
    assert!(err.starts_with(CONTRACT_VIOLATION), "{err}");
    assert!(err.contains("missing field"), "{err}");
    let err = violation(
        &json!({"invocationSchemaVersion": "1.0", "invocationId": "inv-1"}),
        &sent,
    );
    assert!(err.contains("missing field `results`"), "{err}");
}

#[test]
fn an_unknown_result_code_breaks_the_contract() {
    let sent = request(SchemaVersion::V1, &["a"]);
    let err = violation(
        &json!({"invocationSchemaVersion": "1.0", "invocationId": "inv-1",
            "results": [{"taskId": "a", "resultCode": "Done", "resultString": ""}]}),
        &sent,
    );
    assert!(err.starts_with(CONTRACT_VIOLATION), "{err}");
    assert!(err.contains("Done"), "{err}");
}

#[test]
fn an_unknown_treat_missing_keys_as_or_schema_breaks_the_contract() {
    let sent = request(SchemaVersion::V1, &["a"]);
    let err = violation(
        &json!({"invocationSchemaVersion": "1.0", "invocationId": "inv-1",
            "treatMissingKeysAs": "Ignore", "results": []}),
        &sent,
    );
    assert!(err.contains("Ignore"), "{err}");
    let err = violation(
        &json!({"invocationSchemaVersion": "9.9", "invocationId": "inv-1", "results": []}),
        &sent,
    );
    assert!(err.contains("9.9"), "{err}");
}

#[test]
fn a_task_that_was_not_sent_breaks_the_contract() {
    let sent = request(SchemaVersion::V1, &["a"]);
    let err = violation(
        &json!({"invocationSchemaVersion": "1.0", "invocationId": "inv-1",
        "results": [
            {"taskId": "a", "resultCode": "Succeeded", "resultString": ""},
            {"taskId": "zzz", "resultCode": "Succeeded", "resultString": ""}
        ]}),
        &sent,
    );
    assert!(err.starts_with(CONTRACT_VIOLATION), "{err}");
    assert!(err.contains("\"zzz\", which was not sent"), "{err}");
}

#[test]
fn a_task_answered_twice_breaks_the_contract() {
    let sent = request(SchemaVersion::V1, &["a"]);
    let err = violation(
        &json!({"invocationSchemaVersion": "1.0", "invocationId": "inv-1",
        "results": [
            {"taskId": "a", "resultCode": "Succeeded", "resultString": ""},
            {"taskId": "a", "resultCode": "PermanentFailure", "resultString": ""}
        ]}),
        &sent,
    );
    assert!(err.contains("more than once"), "{err}");
}

#[test]
fn another_invocation_id_breaks_the_contract() {
    let sent = request(SchemaVersion::V1, &["a"]);
    let err = violation(
        &json!({"invocationSchemaVersion": "1.0", "invocationId": "other",
            "results": [{"taskId": "a", "resultCode": "Succeeded", "resultString": ""}]}),
        &sent,
    );
    assert!(err.starts_with(CONTRACT_VIOLATION), "{err}");
    assert!(
        err.contains("invocationId \"other\" does not match"),
        "{err}"
    );
}

#[test]
fn judge_maps_result_codes_to_report_rows() {
    let t = task("k", None);
    let sent = request(SchemaVersion::V1, &["a"]);
    let answer = |code: &str, s: &str| {
        serde_json::to_vec(
            &json!({"invocationSchemaVersion": "1.0", "invocationId": "inv-1",
            "results": [{"taskId": "a", "resultCode": code, "resultString": s}]}),
        )
        .unwrap()
    };
    assert_eq!(
        judge(&t, &sent, &answer("Succeeded", "abc123")),
        Judgement::Final(TaskOutcome {
            task: t.clone(),
            status: TaskStatus::Succeeded,
            error_code: None,
            http_status: Some(200),
            result_message: "abc123".into(),
        })
    );
    assert_eq!(
        judge(&t, &sent, &answer("PermanentFailure", "no such thing")),
        Judgement::Final(TaskOutcome {
            task: t.clone(),
            status: TaskStatus::Failed,
            error_code: Some("PermanentFailure".into()),
            http_status: Some(200),
            result_message: "no such thing".into(),
        })
    );
    assert_eq!(
        judge(&t, &sent, &answer("TemporaryFailure", "busy")),
        Judgement::Retry("busy".into())
    );
}

#[test]
fn judge_fails_the_task_on_a_contract_violation() {
    let t = task("k", None);
    let sent = request(SchemaVersion::V2, &["a"]);
    match judge(&t, &sent, br#"{"hello":"world"}"#) {
        Judgement::Final(outcome) => {
            assert_eq!(outcome.status, TaskStatus::Failed);
            assert_eq!(outcome.error_code.as_deref(), Some("PermanentFailure"));
            assert_eq!(outcome.http_status, Some(200));
            assert!(outcome.result_message.starts_with(CONTRACT_VIOLATION));
        }
        other => panic!("expected a final outcome, got {other:?}"),
    }
}

#[test]
fn judge_applies_treat_missing_keys_as() {
    let t = task("k", None);
    let sent = request(SchemaVersion::V2, &["a"]);
    let omitted = br#"{"invocationSchemaVersion":"2.0","invocationId":"inv-1","results":[]}"#;
    match judge(&t, &sent, omitted) {
        Judgement::Final(outcome) => {
            assert_eq!(outcome.status, TaskStatus::Failed);
            assert_eq!(outcome.error_code.as_deref(), Some("PermanentFailure"));
        }
        other => panic!("expected a final outcome, got {other:?}"),
    }
    let retry = br#"{"invocationSchemaVersion":"2.0","invocationId":"inv-1","treatMissingKeysAs":"TemporaryFailure","results":[]}"#;
    assert!(matches!(judge(&t, &sent, retry), Judgement::Retry(_)));
}

#[test]
fn function_errors_are_permanent_failures_with_lambdas_payload() {
    let t = task("k", None);
    let outcome = function_error_outcome(
        &t,
        br#"{"errorMessage":"Task timed out after 3.00 seconds"}"#,
    );
    assert_eq!(outcome.status, TaskStatus::Failed);
    assert_eq!(outcome.error_code.as_deref(), Some("PermanentFailure"));
    assert_eq!(outcome.http_status, Some(200));
    assert_eq!(
        outcome.result_message,
        r#"Lambda returned function error: {"errorMessage":"Task timed out after 3.00 seconds"}"#
    );
}

#[test]
fn exhausted_temporary_failures_note_the_attempts() {
    let t = task("k", None);
    let outcome = temporary_failure_outcome(&t, 5, "busy");
    assert_eq!(outcome.status, TaskStatus::Failed);
    assert_eq!(outcome.error_code.as_deref(), Some("TemporaryFailure"));
    assert_eq!(outcome.http_status, Some(200));
    assert!(
        outcome.result_message.contains("5 attempts"),
        "{}",
        outcome.result_message
    );
    assert!(outcome.result_message.contains("busy"));
}

#[test]
fn bounded_keeps_a_message_of_exactly_the_limit() {
    let exact = "a".repeat(MAX_MESSAGE_CHARS);
    assert_eq!(bounded(exact.clone()), exact);
    let multi = "é".repeat(MAX_MESSAGE_CHARS);
    assert_eq!(bounded(multi.clone()), multi);
    assert_eq!(bounded(String::new()), "");
}

#[test]
fn bounded_cuts_one_over_the_limit_to_the_limit_with_a_marker() {
    let over = format!("{}Z", "a".repeat(MAX_MESSAGE_CHARS));
    let cut = bounded(over);
    assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS);
    assert_eq!(
        cut,
        format!("{}{CUT_MARKER}", "a".repeat(MAX_MESSAGE_CHARS - 3))
    );
}

#[test]
fn bounded_never_splits_a_multi_byte_character() {
    // 2-, 3- and 4-byte characters, with the cut landing right after each kind.
    for ch in ["é", "€", "😀"] {
        for prefix in 0..4 {
            let message = format!("{}{}", "a".repeat(prefix), ch.repeat(2 * MAX_MESSAGE_CHARS));
            let cut = bounded(message.clone());
            assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS, "{ch} {prefix}");
            let kept = cut.strip_suffix(CUT_MARKER).unwrap();
            assert!(message.starts_with(kept), "{ch} {prefix}");
            assert!(kept.ends_with(ch), "{ch} {prefix}");
        }
    }
}

#[test]
fn function_error_messages_are_bounded_but_result_strings_are_not() {
    let t = task("k", None);
    let trace = format!(
        r#"{{"errorMessage":"boom","stackTrace":"{}"}}"#,
        "é".repeat(5000)
    );
    let outcome = function_error_outcome(&t, trace.as_bytes());
    assert_eq!(outcome.result_message.chars().count(), MAX_MESSAGE_CHARS);
    assert!(outcome
        .result_message
        .starts_with(r#"Lambda returned function error: {"errorMessage":"boom""#));
    assert!(outcome.result_message.ends_with(CUT_MARKER));
    // The function's own resultString goes to the report as returned, as AWS documents.
    let long = "é".repeat(5000);
    assert_eq!(
        permanent_failure_outcome(&t, long.clone()).result_message,
        long
    );
    assert_eq!(succeeded_outcome(&t, long.clone()).result_message, long);
    assert!(temporary_failure_outcome(&t, 2, &long)
        .result_message
        .ends_with(&long));
}

#[test]
fn a_payload_that_is_not_json_is_named_as_s3_names_it() {
    let sent = request(SchemaVersion::V1, &["a"]);
    let err = interpret_response(b"<html>oops</html>", &sent)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "{CONTRACT_VIOLATION}: Invalid JSON returned in Lambda payload ("
        )),
        "{err}"
    );
    // JSON of the wrong shape is a different reason.
    let err = interpret_response(b"[1,2]", &sent).unwrap_err().to_string();
    assert!(
        err.contains("cannot read the response as an invocation response"),
        "{err}"
    );
}
