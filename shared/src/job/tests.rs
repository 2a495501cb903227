use super::*;
use serde_json::Value;

const TAGGING_JOB: &str = r#"{
    "AccountId": "123456789012",
    "ConfirmationRequired": false,
    "Operation": {"S3PutObjectTagging": {"TagSet": [{"Key": "project", "Value": "x"}]}},
    "Report": {"Bucket": "arn:aws:s3:::reports", "Format": "Report_CSV_20180820",
               "Enabled": true, "Prefix": "batch", "ReportScope": "AllTasks"},
    "ClientRequestToken": "token-1",
    "Manifest": {"Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
                 "Location": {"ObjectArn": "arn:aws:s3:::manifests/m.csv", "ETag": "abc"}},
    "Description": "tag things",
    "Priority": 10,
    "RoleArn": "arn:aws:iam::123456789012:role/batch"
}"#;

#[test]
fn a_canary_is_between_one_task_and_the_most_a_canary_may_run() {
    let with = |tasks: u64| {
        let mut req = CreateJobRequest::parse(TAGGING_JOB).unwrap();
        req.batch_ops = Some(BatchOpsOptions {
            canary_tasks: Some(tasks),
            ..Default::default()
        });
        req.validate()
    };
    assert!(with(1).is_ok());
    assert!(with(MAX_CANARY_TASKS).is_ok());
    for bad in [0, MAX_CANARY_TASKS + 1] {
        let err = with(bad).unwrap_err().to_string();
        assert!(
            err.contains("BatchOps.CanaryTasks must be between 1"),
            "{err}"
        );
    }
    let json = TAGGING_JOB.replacen('{', r#"{"BatchOps": {"CanaryTasks": 25},"#, 1);
    let req = CreateJobRequest::parse(&json).unwrap();
    assert_eq!(req.batch_ops.unwrap().canary_tasks, Some(25));
}

#[test]
fn a_report_is_due_for_the_canary_only_before_planning_ends() {
    let mut p = Progress {
        canary_batches: Some(3),
        batches_committed: 2,
        ..Default::default()
    };
    assert!(!p.report_due());
    p.batches_committed = 3;
    assert!(p.canary_committed() && p.report_due());
    // Once planning has ended, only the final report counts.
    p.batches_planned = Some(9);
    assert!(!p.canary_committed() && !p.report_due());
    p.batches_committed = 9;
    assert!(p.all_batches_committed() && p.report_due());
}

#[test]
fn parses_an_s3_control_create_job_file_unchanged() {
    let req = CreateJobRequest::parse(TAGGING_JOB).unwrap();
    req.validate().unwrap();
    assert_eq!(req.priority, 10);
    assert_eq!(req.operation.name(), "S3PutObjectTagging");
    let manifest = req.manifest.as_ref().unwrap();
    assert_eq!(manifest.location.etag.as_deref(), Some("abc"));
    assert_eq!(req.report.scope(), ReportScope::AllTasks);
    // Round trip keeps S3 Control's field names.
    let back = serde_json::to_value(&req).unwrap();
    assert_eq!(
        back["Operation"]["S3PutObjectTagging"]["TagSet"][0]["Key"],
        "project"
    );
    assert_eq!(back["Manifest"]["Location"]["ETag"], "abc");
}

fn with_operation(operation: &str) -> String {
    TAGGING_JOB.replace(
        r#""S3PutObjectTagging": {"TagSet": [{"Key": "project", "Value": "x"}]}"#,
        operation,
    )
}

#[test]
fn refuses_replication_and_unknown_operations_clearly() {
    let replicate = with_operation(r#""S3ReplicateObject": {}"#);
    let err = CreateJobRequest::parse(&replicate).unwrap_err().to_string();
    assert!(
        err.contains("S3ReplicateObject is not supported by batchops"),
        "{err}"
    );
    assert!(err.contains("replication engine"), "{err}");
    let bogus = TAGGING_JOB.replace("S3PutObjectTagging", "S3Frobnicate");
    let err = CreateJobRequest::parse(&bogus).unwrap_err().to_string();
    assert!(err.contains("unknown operation S3Frobnicate"), "{err}");
    assert!(err.contains("S3PutObjectCopy"), "{err}");
}

#[test]
fn every_s3_control_operation_but_replication_parses_validates_and_round_trips() {
    for (name, body) in [
        (
            "S3PutObjectCopy",
            r#"{"TargetResource": "arn:aws:s3:::dst", "TargetKeyPrefix": "p/",
            "CannedAccessControlList": "bucket-owner-full-control", "MetadataDirective": "REPLACE",
            "NewObjectMetadata": {"ContentType": "text/plain", "UserMetadata": {"a": "b"}, "SSEAlgorithm": "KMS"},
            "NewObjectTagging": [{"Key": "k", "Value": "v"}], "StorageClass": "GLACIER_IR",
            "SSEAwsKmsKeyId": "arn:aws:kms:us-east-1:1:key/x", "BucketKeyEnabled": true,
            "ChecksumAlgorithm": "CRC32C", "RequesterPays": false,
            "ModifiedSinceConstraint": "2024-01-01T00:00:00Z", "UnModifiedSinceConstraint": 1735689600,
            "ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": "2030-01-01T00:00:00Z",
            "ObjectLockLegalHoldStatus": "OFF", "RedirectLocation": "/x"}"#,
        ),
        (
            "S3PutObjectAcl",
            r#"{"AccessControlPolicy": {"AccessControlList": {"Owner": {"ID": "o", "DisplayName": "me"},
            "Grants": [{"Grantee": {"TypeIdentifier": "emailAddress", "Identifier": "a@b.c"}, "Permission": "READ_ACP"}]}}}"#,
        ),
        (
            "S3InitiateRestoreObject",
            r#"{"ExpirationInDays": 5, "GlacierJobTier": "STANDARD"}"#,
        ),
        ("S3PutObjectLegalHold", r#"{"LegalHold": {"Status": "ON"}}"#),
        (
            "S3PutObjectRetention",
            r#"{"BypassGovernanceRetention": true, "Retention": {"Mode": "COMPLIANCE", "RetainUntilDate": "2030-01-01T00:00:00Z"}}"#,
        ),
        (
            "S3ComputeObjectChecksum",
            r#"{"ChecksumAlgorithm": "CRC64NVME", "ChecksumType": "FULL_OBJECT"}"#,
        ),
    ] {
        let json = with_operation(&format!(r#""{name}": {body}"#));
        let req = CreateJobRequest::parse(&json).unwrap_or_else(|e| panic!("{name}: {e}"));
        req.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(req.operation.name(), name);
        // Round trip: the same request back, in S3 Control's field names.
        let back = serde_json::to_string(&req).unwrap();
        assert_eq!(CreateJobRequest::parse(&back).unwrap(), req, "{name}");
        let original: Value = serde_json::from_str(body).unwrap();
        let written = &serde_json::to_value(&req).unwrap()["Operation"][name];
        for field in original.as_object().unwrap().keys() {
            assert!(
                written.get(field).is_some(),
                "{name}.{field} lost in {written}"
            );
        }
    }
}

#[test]
fn copy_timestamps_take_iso_8601_or_epoch_seconds() {
    let json = with_operation(
        r#""S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::d", "ModifiedSinceConstraint": 1700000000, "UnModifiedSinceConstraint": "2023-11-14T22:13:20Z"}"#,
    );
    let req = CreateJobRequest::parse(&json).unwrap();
    let JobOperation::S3PutObjectCopy(op) = &req.operation else {
        panic!("not a copy")
    };
    assert_eq!(
        op.modified_since_constraint,
        op.un_modified_since_constraint
    );
    let bad = with_operation(
        r#""S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::d", "ModifiedSinceConstraint": "yesterday"}"#,
    );
    assert!(CreateJobRequest::parse(&bad).is_err());
}

#[test]
fn invalid_operation_parameters_are_refused_at_creation() {
    for (operation, expected) in [
        (
            r#""S3PutObjectCopy": {"TargetKeyPrefix": "p/"}"#,
            "TargetResource is required",
        ),
        (
            r#""S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::b/prefix"}"#,
            "must be a bucket ARN",
        ),
        (
            r#""S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::b", "MetadataDirective": "COPY", "NewObjectMetadata": {}}"#,
            "needs MetadataDirective REPLACE",
        ),
        (
            r#""S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::b", "ObjectLockMode": "COMPLIANCE"}"#,
            "go together",
        ),
        (
            r#""S3PutObjectAcl": {"AccessControlPolicy": {"CannedAccessControlList": "private", "AccessControlList": {"Owner": {"ID": "o"}}}}"#,
            "not both",
        ),
        (
            r#""S3PutObjectAcl": {"AccessControlPolicy": {"AccessControlList": {"Owner": {}}}}"#,
            "Owner.ID is required",
        ),
        (
            r#""S3InitiateRestoreObject": {"ExpirationInDays": -1}"#,
            "1 or more",
        ),
        (
            r#""S3PutObjectRetention": {"Retention": {"RetainUntilDate": "2030-01-01T00:00:00Z"}}"#,
            "go together",
        ),
        (
            r#""S3ComputeObjectChecksum": {"ChecksumAlgorithm": "SHA1"}"#,
            "SHA1 is not supported",
        ),
        (
            r#""S3ComputeObjectChecksum": {"ChecksumType": "COMPOSITE"}"#,
            "COMPOSITE is not supported",
        ),
    ] {
        let req = CreateJobRequest::parse(&with_operation(operation)).unwrap();
        let err = req.validate().unwrap_err().to_string();
        assert!(err.contains(expected), "{operation}: {err}");
    }
    for (operation, expected) in [
        (
            r#""S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::b", "StorageClass": "COLD"}"#,
            "COLD",
        ),
        (
            r#""S3InitiateRestoreObject": {"GlacierJobTier": "EXPEDITED"}"#,
            "EXPEDITED",
        ),
        (
            r#""S3PutObjectLegalHold": {"LegalHold": {"Status": "MAYBE"}}"#,
            "MAYBE",
        ),
        (
            r#""S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::b", "Typo": 1}"#,
            "Typo",
        ),
    ] {
        let err = CreateJobRequest::parse(&with_operation(operation))
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{operation}: {err}");
    }
}

#[test]
fn delete_object_needs_confirmation_required_true() {
    let delete = with_operation(r#""S3DeleteObject": {}"#);
    let req = CreateJobRequest::parse(&delete).unwrap();
    let err = req.validate().unwrap_err().to_string();
    assert!(err.contains("ConfirmationRequired"), "{err}");
    let confirmed = delete.replace(
        r#""ConfirmationRequired": false"#,
        r#""ConfirmationRequired": true"#,
    );
    let req = CreateJobRequest::parse(&confirmed).unwrap();
    req.validate().unwrap();
    assert_eq!(req.operation.name(), "S3DeleteObject");
    let unset = delete.replace(r#""ConfirmationRequired": false,"#, "");
    assert!(CreateJobRequest::parse(&unset).unwrap().validate().is_err());
}

#[test]
fn refuses_two_operations_and_bad_lambda_schema() {
    let two = TAGGING_JOB.replace(
        r#""S3PutObjectTagging": {"TagSet": [{"Key": "project", "Value": "x"}]}"#,
        r#""S3PutObjectTagging": {"TagSet": []}, "S3DeleteObjectTagging": {}"#,
    );
    let err = CreateJobRequest::parse(&two).unwrap_err().to_string();
    assert!(err.contains("exactly one operation"), "{err}");
    let lambda = TAGGING_JOB.replace(
        r#""S3PutObjectTagging": {"TagSet": [{"Key": "project", "Value": "x"}]}"#,
        r#""LambdaInvoke": {"FunctionArn": "arn:aws:lambda:us-east-1:1:function:f", "InvocationSchemaVersion": "3.0"}"#,
    );
    let err = CreateJobRequest::parse(&lambda)
        .unwrap()
        .validate()
        .unwrap_err();
    assert!(err.to_string().contains("must be 1.0 or 2.0"), "{err}");
}

#[test]
fn refuses_misnamed_fields() {
    let typo = TAGGING_JOB.replace("\"Priority\"", "\"Priorty\"");
    assert!(CreateJobRequest::parse(&typo).is_err());
}

#[test]
fn manifest_fields_must_name_bucket_and_key() {
    let bad = TAGGING_JOB.replace(r#"["Bucket", "Key"]"#, r#"["Key"]"#);
    let err = CreateJobRequest::parse(&bad)
        .unwrap()
        .validate()
        .unwrap_err();
    assert!(
        err.to_string().contains("must name Bucket and Key"),
        "{err}"
    );
}

#[test]
fn object_arns() {
    assert_eq!(
        parse_object_arn("arn:aws:s3:::b/dir/m.csv").unwrap(),
        ("b".to_string(), "dir/m.csv".to_string())
    );
    assert!(parse_object_arn("s3://b/k").is_err());
    assert!(parse_object_arn("arn:aws:s3:::b").is_err());
    assert_eq!(bucket_from_arn("arn:aws:s3:::reports"), "reports");
    assert_eq!(bucket_from_arn("reports"), "reports");
}

#[test]
fn status_machine() {
    use JobStatus::*;
    assert!(can_transition(New, Preparing));
    assert!(can_transition(Preparing, Suspended));
    assert!(can_transition(Suspended, Ready));
    assert!(can_transition(Ready, Active));
    assert!(can_transition(Active, Complete));
    assert!(can_transition(Active, Failing));
    assert!(can_transition(Failing, Failed));
    assert!(can_transition(Active, Cancelling));
    assert!(can_transition(Cancelling, Cancelled));
    assert!(!can_transition(Complete, Active));
    assert!(!can_transition(Failed, Cancelled));
    assert!(!can_transition(Suspended, Active));
    assert!(!can_transition(Cancelled, Ready));
    for s in ALL_STATUSES {
        if s.is_terminal() {
            assert!(ALL_STATUSES.iter().all(|t| !can_transition(*s, *t)));
        }
        assert_eq!(JobStatus::parse(s.as_str()).unwrap(), *s);
    }
    assert!(check_transition("j", Complete, Ready).is_err());
}

#[test]
fn failure_threshold() {
    assert!(!failure_threshold_exceeded(0, 999));
    assert!(failure_threshold_exceeded(0, 1000));
    assert!(!failure_threshold_exceeded(500, 500));
    assert!(failure_threshold_exceeded(499, 501));
    assert!(!failure_threshold_exceeded(10_000, 1_000));
}
