use super::*;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;
use aws_sdk_s3::types::{
    ObjectCannedAcl, RequestPayer, ServerSideEncryption, StorageClass as S3StorageClass,
};
use std::time::Duration;

use crate::job::{
    ComputeChecksumAlgorithm, CopyObjectOperation, GrantPermission, GranteeType, S3Grant, S3Tag,
};
use crate::manifest::Task;
use crate::report::TaskStatus;
use aws_sdk_s3::error::ErrorMetadata;
use aws_sdk_s3::operation::put_object_tagging::PutObjectTaggingError;
use aws_smithy_types::body::SdkBody;

fn response(status: u16, body: &str) -> HttpResponse {
    HttpResponse::new(status.try_into().unwrap(), SdkBody::from(body.to_string()))
}

#[test]
fn function_arns_split_into_function_and_qualifier() {
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:resize";
    for (input, name, qualifier) in [
        (arn, arn, None),
        (
            "arn:aws:lambda:us-east-1:123456789012:function:resize:prod",
            arn,
            Some("prod"),
        ),
        (
            "arn:aws:lambda:us-east-1:123456789012:function:resize:7",
            arn,
            Some("7"),
        ),
        (
            "arn:aws:lambda:us-east-1:123456789012:function:resize:$LATEST",
            arn,
            Some("$LATEST"),
        ),
        ("resize", "resize", None),
        ("resize:live", "resize", Some("live")),
        (
            "123456789012:function:resize",
            "123456789012:function:resize",
            None,
        ),
        (
            "123456789012:function:resize:3",
            "123456789012:function:resize",
            Some("3"),
        ),
        ("function:resize:v2", "function:resize", Some("v2")),
    ] {
        assert_eq!(split_function_arn(input), (name, qualifier), "{input}");
    }
}

#[test]
fn exhausted_invokes_say_whether_lambda_throttled() {
    let throttled = Failure {
        retryable: true,
        error_code: "TooManyRequestsException".into(),
        http_status: Some(429),
        message: "Rate Exceeded.".into(),
        bucket_region: None,
    };
    assert_eq!(
        exhausted_invoke_message(&throttled, 3),
        "Lambda throttled the invocation (TooManyRequestsException) on all 3 attempts: Rate Exceeded."
    );
    let broken = Failure {
        retryable: true,
        error_code: "ServiceException".into(),
        http_status: Some(500),
        message: "internal".into(),
        bucket_region: None,
    };
    assert_eq!(
        exhausted_invoke_message(&broken, 1),
        "Lambda Invoke failed (ServiceException) on all 1 attempt: internal"
    );
}

fn s3_service_error(
    code: &str,
    message: &str,
    status: u16,
) -> SdkError<PutObjectTaggingError, HttpResponse> {
    let meta = ErrorMetadata::builder().code(code).message(message).build();
    SdkError::service_error(PutObjectTaggingError::generic(meta), response(status, ""))
}

#[test]
fn no_such_key_is_a_final_failure_with_s3s_code_status_and_message() {
    let failure = classify_s3_error(&s3_service_error(
        "NoSuchKey",
        "The specified key does not exist.",
        404,
    ));
    assert_eq!(
        failure,
        Failure {
            retryable: false,
            error_code: "NoSuchKey".into(),
            http_status: Some(404),
            message: "The specified key does not exist.".into(),
            bucket_region: None,
        }
    );
}

#[test]
fn access_denied_and_invalid_request_are_final() {
    for (code, status) in [
        ("AccessDenied", 403),
        ("InvalidRequest", 400),
        ("InvalidTag", 400),
    ] {
        let failure = classify_s3_error(&s3_service_error(code, "no", status));
        assert!(!failure.retryable, "{code}");
        assert_eq!(failure.error_code, code);
        assert_eq!(failure.http_status, Some(status));
    }
}

#[test]
fn slow_down_and_server_errors_are_retried() {
    for (code, status) in [
        ("SlowDown", 503),
        ("ServiceUnavailable", 503),
        ("InternalError", 500),
        ("SomethingNew", 502),
        ("TooManyRequestsException", 429),
        ("RequestTimeout", 400),
    ] {
        let failure = classify_s3_error(&s3_service_error(code, "later", status));
        assert!(failure.retryable, "{code}");
        assert_eq!(failure.error_code, code);
        assert_eq!(failure.http_status, Some(status));
    }
}

#[test]
fn a_response_without_an_error_code_is_named_after_its_status() {
    let err: SdkError<PutObjectTaggingError, HttpResponse> = SdkError::service_error(
        PutObjectTaggingError::generic(ErrorMetadata::builder().build()),
        response(503, ""),
    );
    let failure = classify_s3_error(&err);
    assert!(failure.retryable);
    assert_eq!(failure.error_code, "ServiceUnavailable");
    assert_eq!(failure.http_status, Some(503));
    assert_eq!(failure.message, "HTTP 503 with no error message");
}

#[test]
fn an_unparsed_error_body_is_quoted_briefly_in_the_message() {
    let html = format!("<html>{}</html>", "x".repeat(1000));
    let err: SdkError<PutObjectTaggingError, HttpResponse> = SdkError::service_error(
        PutObjectTaggingError::generic(ErrorMetadata::builder().build()),
        response(500, &html),
    );
    let failure = classify_s3_error(&err);
    assert_eq!(failure.error_code, "InternalError");
    assert!(
        failure.message.starts_with("HTTP 500: <html>xxx"),
        "{}",
        failure.message
    );
    assert!(failure.message.ends_with("..."));
    assert!(failure.message.len() < 320, "{}", failure.message);
}

#[test]
fn timeouts_and_broken_connections_are_retried_without_a_status() {
    let timeout: SdkError<PutObjectTaggingError, HttpResponse> =
        SdkError::timeout_error("operation timed out");
    let failure = classify_s3_error(&timeout);
    assert!(failure.retryable);
    assert_eq!(failure.error_code, "RequestTimeout");
    assert_eq!(failure.http_status, None);
    assert!(failure.message.contains("timed out"), "{}", failure.message);

    let failure = classify_parts(None, None, None, Some(Transport::Connection), || {
        "connection refused".into()
    });
    assert!(failure.retryable);
    assert_eq!(failure.error_code, "ConnectionError");
    assert_eq!(failure.message, "connection refused");
}

#[test]
fn construction_failures_are_final() {
    let err: SdkError<PutObjectTaggingError, HttpResponse> =
        SdkError::construction_failure("bucket is required");
    let failure = classify_s3_error(&err);
    assert!(!failure.retryable);
    assert_eq!(failure.error_code, "InvalidRequest");
}

#[test]
fn failures_become_report_rows() {
    let task = Task {
        bucket: "b".into(),
        key: "k".into(),
        version_id: None,
        size: None,
    };
    let outcome =
        classify_s3_error(&s3_service_error("NoSuchKey", "gone", 404)).into_outcome(&task);
    assert_eq!(outcome.status, TaskStatus::Failed);
    assert_eq!(outcome.error_code.as_deref(), Some("NoSuchKey"));
    assert_eq!(outcome.http_status, Some(404));
    assert_eq!(outcome.result_message, "gone");
    let ok = s3_success_outcome(&task);
    assert_eq!(ok.status, TaskStatus::Succeeded);
    assert_eq!(ok.http_status, Some(200));
    assert_eq!(ok.error_code, None);
    assert_eq!(ok.result_message, "Successful");
}

mod lambda {
    use super::*;
    use aws_sdk_lambda::operation::invoke::InvokeError;

    fn unhandled(status: u16, body: &str) -> SdkError<InvokeError, HttpResponse> {
        SdkError::service_error(
            InvokeError::generic(ErrorMetadata::builder().build()),
            response(status, body),
        )
    }

    fn service(code: &str, status: u16) -> SdkError<InvokeError, HttpResponse> {
        let meta = ErrorMetadata::builder().code(code).message("m").build();
        SdkError::service_error(InvokeError::generic(meta), response(status, "{}"))
    }

    #[test]
    fn a_500_with_lambdas_error_document_is_a_function_error() {
        // What `cargo lambda watch` answers when the handler returns an error.
        let body = r#"{"errorType":"SimulatedFunctionError","errorMessage":"boom"}"#;
        assert_eq!(
            classify_invoke_error(&unhandled(500, body)),
            InvokeFailure::FunctionError(body.as_bytes().to_vec())
        );
    }

    #[test]
    fn a_500_from_the_service_is_retried_not_a_function_error() {
        match classify_invoke_error(&service("ServiceException", 500)) {
            InvokeFailure::Api(f) => {
                assert!(f.retryable);
                assert_eq!(f.error_code, "ServiceException");
                assert_eq!(f.http_status, Some(500));
            }
            other => panic!("expected an API failure, got {other:?}"),
        }
        match classify_invoke_error(&unhandled(500, "<html>oops</html>")) {
            InvokeFailure::Api(f) => assert!(f.retryable),
            other => panic!("expected an API failure, got {other:?}"),
        }
    }

    #[test]
    fn throttling_is_retried() {
        for (code, status) in [
            ("TooManyRequestsException", 429),
            ("ResourceConflictException", 409),
        ] {
            match classify_invoke_error(&service(code, status)) {
                InvokeFailure::Api(f) => {
                    assert!(f.retryable, "{code}");
                    assert_eq!(f.error_code, code);
                    assert_eq!(f.http_status, Some(status));
                }
                other => panic!("expected an API failure, got {other:?}"),
            }
        }
        let timeout: SdkError<InvokeError, HttpResponse> = SdkError::timeout_error("slow");
        assert!(matches!(classify_invoke_error(&timeout), InvokeFailure::Api(f) if f.retryable));
    }

    #[test]
    fn a_missing_function_is_final() {
        match classify_invoke_error(&service("ResourceNotFoundException", 404)) {
            InvokeFailure::Api(f) => {
                assert!(!f.retryable);
                assert_eq!(f.error_code, "ResourceNotFoundException");
                assert_eq!(f.http_status, Some(404));
            }
            other => panic!("expected an API failure, got {other:?}"),
        }
        // cargo lambda's answer for a function it does not serve.
        let body = r#"{"detail":"that function doesn't exist","title":"Missing function"}"#;
        match classify_invoke_error(&unhandled(404, body)) {
            InvokeFailure::Api(f) => {
                assert!(!f.retryable);
                assert_eq!(f.error_code, "NotFound");
                assert_eq!(f.http_status, Some(404));
            }
            other => panic!("expected an API failure, got {other:?}"),
        }
    }

    #[test]
    fn function_error_documents_are_recognised_only_on_500() {
        assert!(is_function_error_document(500, br#"{"errorMessage":"x"}"#));
        assert!(is_function_error_document(500, br#"{"errorType":"x"}"#));
        assert!(!is_function_error_document(502, br#"{"errorMessage":"x"}"#));
        assert!(!is_function_error_document(
            500,
            br#"{"Type":"Service","message":"x"}"#
        ));
        assert!(!is_function_error_document(500, b"not json"));
    }
}

#[test]
fn backoff_doubles_is_capped_and_jittered_into_the_upper_half() {
    let base = Duration::from_millis(200);
    assert_eq!(backoff_delay(base, 1, 1.0), Duration::from_millis(200));
    assert_eq!(backoff_delay(base, 1, 0.0), Duration::from_millis(100));
    assert_eq!(backoff_delay(base, 2, 1.0), Duration::from_millis(400));
    assert_eq!(backoff_delay(base, 4, 1.0), Duration::from_millis(1600));
    assert_eq!(backoff_delay(base, 40, 1.0), MAX_BACKOFF);
    assert_eq!(backoff_delay(base, u32::MAX, 0.0), MAX_BACKOFF / 2);
    assert_eq!(backoff_delay(base, 0, 1.0), base);
    assert_eq!(backoff_delay(base, 1, f64::NAN), Duration::from_millis(100));
    for i in 0..100 {
        let d = backoff_delay(base, 3, i as f64 / 100.0);
        assert!(d >= Duration::from_millis(400) && d <= Duration::from_millis(800));
    }
}

mod operations {
    use super::*;
    use crate::job::{S3Grantee, SetObjectAclOperation};

    fn task(key: &str, version: Option<&str>) -> Task {
        Task {
            bucket: "src".into(),
            key: key.into(),
            version_id: version.map(String::from),
            size: None,
        }
    }

    #[test]
    fn parts_cover_the_object_in_order_and_never_exceed_ten_thousand() {
        let mib = 1024 * 1024;
        assert_eq!(
            part_ranges(12 * mib, 5 * mib),
            vec![
                (0, 5 * mib - 1),
                (5 * mib, 10 * mib - 1),
                (10 * mib, 12 * mib - 1)
            ]
        );
        assert_eq!(part_ranges(5 * mib, 5 * mib), vec![(0, 5 * mib - 1)]);
        assert!(part_ranges(0, 5 * mib).is_empty());
        // 5 TB in 5 MiB parts would be a million parts: the part size grows instead.
        let size = 5 * 1024 * 1024 * mib;
        let parts = part_ranges(size, 5 * mib);
        assert!(parts.len() as u64 <= MAX_PARTS, "{}", parts.len());
        assert_eq!(parts.first().map(|p| p.0), Some(0));
        assert_eq!(parts.last().map(|p| p.1), Some(size - 1));
        assert!(parts.windows(2).all(|w| w[1].0 == w[0].1 + 1));
    }

    #[test]
    fn multipart_starts_above_the_threshold_which_defaults_to_s3s_copy_limit() {
        let settings = CopySettings::default();
        assert!(!settings.needs_multipart(MAX_SINGLE_COPY_BYTES));
        assert!(settings.needs_multipart(MAX_SINGLE_COPY_BYTES + 1));
    }

    #[test]
    fn a_copy_asks_nothing_first_unless_its_size_or_a_lower_threshold_calls_for_parts() {
        let default = CopySettings::default();
        assert!(
            default.copies_whole(None),
            "S3 itself refuses a source over 5 GiB"
        );
        assert!(default.copies_whole(Some(MAX_SINGLE_COPY_BYTES)));
        assert!(!default.copies_whole(Some(MAX_SINGLE_COPY_BYTES + 1)));
        let small = CopySettings::bounded(6 << 20, 5 << 20, 8);
        assert!(
            !small.copies_whole(None),
            "a lower threshold needs the size"
        );
        assert!(small.copies_whole(Some(6 << 20)));
        assert!(!small.copies_whole(Some((6 << 20) + 1)));
    }

    #[test]
    fn only_s3s_too_large_answer_sends_a_copy_to_parts() {
        let too_large = Failure {
            retryable: false,
            error_code: "InvalidRequest".into(),
            http_status: Some(400),
            message: "The specified copy source is larger than the maximum allowable size for a copy source: 5368709120".into(),
            bucket_region: None,
        };
        assert!(is_too_large_for_one_copy(&too_large));
        let other = Failure {
            message: "This copy request is illegal".into(),
            ..too_large.clone()
        };
        assert!(!is_too_large_for_one_copy(&other));
    }

    #[test]
    fn copy_sources_are_url_encoded_and_keep_the_version() {
        assert_eq!(
            copy_source(&task("a b/c+d.txt", None)),
            "src/a%20b/c%2Bd.txt"
        );
        assert_eq!(
            copy_source(&task("k", Some("v1+x"))),
            "src/k?versionId=v1%2Bx"
        );
    }

    #[test]
    fn tags_and_grants_become_s3_headers() {
        let tags = vec![
            S3Tag {
                key: "a b".into(),
                value: "x&y".into(),
            },
            S3Tag {
                key: "c".into(),
                value: "".into(),
            },
        ];
        assert_eq!(tagging_header(&tags), "a%20b=x%26y&c=");
        let grant = |kind, id: &str, permission| S3Grant {
            grantee: S3Grantee {
                type_identifier: kind,
                identifier: id.into(),
                display_name: None,
            },
            permission,
        };
        let grants = vec![
            grant(GranteeType::Id, "abc", GrantPermission::Read),
            grant(
                GranteeType::Uri,
                "http://acs/AllUsers",
                GrantPermission::Read,
            ),
            grant(
                GranteeType::EmailAddress,
                "a@b.c",
                GrantPermission::FullControl,
            ),
        ];
        assert_eq!(
            grant_header(&grants, GrantPermission::Read).as_deref(),
            Some(r#"id="abc", uri="http://acs/AllUsers""#)
        );
        assert_eq!(
            grant_header(&grants, GrantPermission::FullControl).as_deref(),
            Some(r#"emailAddress="a@b.c""#)
        );
        assert_eq!(grant_header(&grants, GrantPermission::WriteAcp), None);
    }

    #[test]
    fn a_copy_plan_refuses_write_grants_and_sets_replace_only_when_asked() {
        let op: CopyObjectOperation = serde_json::from_value(serde_json::json!({
            "TargetResource": "arn:aws:s3:::dst",
            "AccessControlGrants": [{"Grantee": {"TypeIdentifier": "id", "Identifier": "x"}, "Permission": "WRITE"}]
        }))
        .unwrap();
        assert!(CopyPlan::new(&op, CopySettings::default())
            .unwrap_err()
            .contains("WRITE"));
        let op: CopyObjectOperation = serde_json::from_value(serde_json::json!({
            "TargetResource": "arn:aws:s3:::dst", "TargetKeyPrefix": "p/"
        }))
        .unwrap();
        let plan = CopyPlan::new(&op, CopySettings::default()).unwrap();
        assert_eq!(plan.target_bucket, "dst");
        assert_eq!(plan.target_key(&task("k", None)), "p/k");
        assert!(plan.replace_metadata.is_none());
        assert!(plan.tagging.is_none());
        let op: CopyObjectOperation = serde_json::from_value(serde_json::json!({
            "TargetResource": "arn:aws:s3:::dst",
            "NewObjectMetadata": {"ContentType": "text/plain", "SSEAlgorithm": "KMS"},
            "RequesterPays": true
        }))
        .unwrap();
        let plan = CopyPlan::new(&op, CopySettings::default()).unwrap();
        assert_eq!(
            plan.replace_metadata
                .as_ref()
                .and_then(|m| m.content_type.as_deref()),
            Some("text/plain")
        );
        assert_eq!(
            plan.server_side_encryption,
            Some(ServerSideEncryption::AwsKms)
        );
        assert_eq!(plan.request_payer, Some(RequestPayer::Requester));
    }

    #[test]
    fn a_missing_source_is_named_as_copy_object_names_it() {
        let head_404 = classify_parts(None, None, Some(404), None, || "HTTP 404".into());
        let failure = source_head_failure(&head_404, &task("k", None));
        assert_eq!(failure.error_code, "NoSuchKey");
        assert_eq!(failure.http_status, Some(404));
        assert_eq!(failure.message, "The specified key does not exist.");
        let failure = source_head_failure(&head_404, &task("k", Some("v")));
        assert_eq!(failure.error_code, "NoSuchVersion");
        let head_403 = classify_parts(None, None, Some(403), None, || "HTTP 403".into());
        let failure = source_head_failure(&head_403, &task("k", None));
        assert_eq!(
            (failure.error_code.as_str(), failure.http_status),
            ("AccessDenied", Some(403))
        );
    }

    #[test]
    fn archived_sources_fail_with_invalid_object_state_until_restored() {
        let head = |class: S3StorageClass, restore: Option<&str>| {
            HeadObjectOutput::builder()
                .storage_class(class)
                .set_restore(restore.map(String::from))
                .build()
        };
        let failure = archived_source_failure(&head(S3StorageClass::Glacier, None)).unwrap();
        assert_eq!(failure.error_code, "InvalidObjectState");
        assert_eq!(failure.http_status, Some(403));
        assert!(!failure.retryable);
        assert!(archived_source_failure(&head(
            S3StorageClass::DeepArchive,
            Some(r#"ongoing-request="true""#)
        ))
        .is_some());
        assert!(archived_source_failure(&head(
            S3StorageClass::Glacier,
            Some(r#"ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT""#)
        ))
        .is_none());
        assert!(archived_source_failure(&head(S3StorageClass::StandardIa, None)).is_none());
    }

    #[test]
    fn acl_policies_become_grant_headers() {
        let op: SetObjectAclOperation = serde_json::from_value(serde_json::json!({
            "AccessControlPolicy": {"AccessControlList": {
                "Owner": {"ID": "owner"},
                "Grants": [{"Grantee": {"TypeIdentifier": "id", "Identifier": "owner"}, "Permission": "FULL_CONTROL"}]
            }}
        }))
        .unwrap();
        match AclPlan::new(&op).unwrap() {
            AclPlan::Grants {
                full_control, read, ..
            } => {
                assert_eq!(full_control.as_deref(), Some(r#"id="owner""#));
                assert_eq!(read, None);
            }
            other => panic!("expected grants, got {other:?}"),
        }
        let op: SetObjectAclOperation = serde_json::from_value(serde_json::json!({
            "AccessControlPolicy": {"CannedAccessControlList": "bucket-owner-full-control"}
        }))
        .unwrap();
        assert!(matches!(
            AclPlan::new(&op).unwrap(),
            AclPlan::Canned(ObjectCannedAcl::BucketOwnerFullControl)
        ));
    }

    #[test]
    fn checksums_match_the_standard_check_values() {
        let check = |algorithm| {
            let mut sum = Checksummer::new(algorithm).unwrap();
            // Fed in two pieces: a stream arrives in chunks.
            sum.update(b"1234");
            sum.update(b"56789");
            hex::encode(sum.finish())
        };
        assert_eq!(check(ComputeChecksumAlgorithm::Crc32), "cbf43926");
        assert_eq!(check(ComputeChecksumAlgorithm::Crc32c), "e3069283");
        assert_eq!(
            check(ComputeChecksumAlgorithm::Crc64nvme),
            "ae8b14860a799888"
        );
        assert_eq!(
            check(ComputeChecksumAlgorithm::Md5),
            "25f9e794323b453885f5181f1b624d0b"
        );
        assert_eq!(
            check(ComputeChecksumAlgorithm::Sha256),
            "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225"
        );
        assert!(Checksummer::new(ComputeChecksumAlgorithm::Sha1).is_none());
        let message: serde_json::Value = serde_json::from_str(&checksum_message(
            ComputeChecksumAlgorithm::Crc32,
            &[0xcb, 0xf4, 0x39, 0x26],
        ))
        .unwrap();
        assert_eq!(message["checksumBase64"], "y/Q5Jg==");
        assert_eq!(message["checksumType"], "FULL_OBJECT");
    }
}

mod concurrency {
    use crate::operation::concurrency::{BucketConcurrency, Sent, WindowState};
    use std::time::{Duration, Instant};

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_throttle_halves_the_limit_once_per_round_and_never_below_one() {
        let mut w = WindowState::new(32, 32);
        let t0 = Instant::now();
        let later = t0 + 10 * MS;
        assert!(w.adapt(Sent::Throttled, t0, later));
        assert_eq!(w.limit, 16.0);
        // Sent before the halving: the same round, it counts once.
        assert!(!w.adapt(Sent::Throttled, t0 + MS, later + MS));
        assert_eq!(w.limit, 16.0);
        // Sent after it: a new round.
        for i in 0..10 {
            w.adapt(Sent::Throttled, later + (2 + i) * MS, later + (3 + i) * MS);
        }
        assert_eq!(w.limit, 1.0);
    }

    #[test]
    fn answers_whose_latency_holds_grow_the_limit_by_about_one_per_round_up_to_the_max() {
        let mut w = WindowState::new(8, 16);
        let t = Instant::now();
        w.adapt(Sent::Throttled, t, t);
        assert_eq!(w.limit, 4.0);
        // Four answers at the same latency with the window full: about one more in flight.
        for _ in 0..4 {
            w.in_flight = w.limit as usize;
            w.adapt(Sent::Answered(20 * MS), t, t);
        }
        assert!((4.9..5.1).contains(&w.limit), "{}", w.limit);
        // A window that is not full does not grow.
        w.in_flight = 1;
        let before = w.limit;
        w.adapt(Sent::Answered(20 * MS), t, t);
        assert_eq!(w.limit, before);
        for _ in 0..1_000 {
            w.in_flight = w.limit as usize;
            w.adapt(Sent::Answered(20 * MS), t, t);
        }
        assert_eq!(w.limit, 16.0, "grows past its start, to its max");
    }

    #[test]
    fn slow_answers_hold_the_limit_where_it_is() {
        let mut w = WindowState::new(8, 8);
        let t = Instant::now();
        w.adapt(Sent::Answered(10 * MS), t, t);
        w.adapt(Sent::Throttled, t, t);
        let held = w.limit;
        // Five times the fastest: the bucket is busy, the limit does not grow.
        for _ in 0..5 {
            w.in_flight = w.limit as usize;
            w.adapt(Sent::Answered(50 * MS), t, t);
        }
        assert_eq!(w.limit, held);
    }

    #[tokio::test]
    async fn a_bucket_has_room_for_as_many_requests_as_its_limit_and_others_are_not_held() {
        let limits = BucketConcurrency::default();
        let held: Vec<_> =
            futures::future::join_all((0..2).map(|_| limits.acquire("a", 2, 2))).await;
        // "a" is full; "b" is not.
        let other = limits.acquire("b", 2, 2).await;
        let waiting = tokio::time::timeout(20 * MS, limits.acquire("a", 2, 2)).await;
        assert!(waiting.is_err(), "a third request to a full bucket waits");
        let mut held = held.into_iter();
        held.next().unwrap().finish(Sent::Throttled);
        assert_eq!(limits.limit("a"), Some(1.0));
        // One still in flight and a limit of one: still full.
        assert!(tokio::time::timeout(20 * MS, limits.acquire("a", 2, 2))
            .await
            .is_err());
        drop(held);
        let next = tokio::time::timeout(Duration::from_secs(1), limits.acquire("a", 2, 2)).await;
        assert!(next.is_ok(), "room once the request in flight is back");
        drop(other);
    }
}
