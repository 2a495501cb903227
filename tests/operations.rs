//! Every S3 operation against a real moto server: a batch of tasks that succeed and fail runs
//! through `operation::run_tasks` (what the executor calls), each effect is checked on the objects
//! with the S3 API, and the completion-report rows are compared with what S3 would write.

use crate::common;
use crate::common::stack::{stack, stack_with, Stack};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ObjectLockLegalHoldStatus, ObjectLockMode, Permission, ServerSideEncryption, StorageClass,
};
use batchops::fault::{Fault, FaultPlan, FaultRule};
use batchops::job::{CreateJobRequest, Job, JobStatus, Progress, REPLICATE_OBJECT_REFUSAL};
use batchops::manifest::Task;
use batchops::operation::{self, CopySettings};
use batchops::report::encode_rows;
use batchops::Context;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const MIB: usize = 1024 * 1024;

/// Multipart copies from 6 MiB up, in 5 MiB parts (S3's and moto's smallest non-final part), so
/// that a 12 MiB object takes three parts.
fn small_multipart_copies() -> CopySettings {
    CopySettings::bounded(6 * MIB as u64, 5 * MIB as u64, 8)
}

/// A stack whose multipart copies are small (see [`small_multipart_copies`]).
async fn env() -> Stack {
    stack_with(false, |settings| {
        settings.executor_concurrency = 8;
        settings.lambda_max_attempts = 5;
        settings.report_read_concurrency = 16;
        settings.copy = small_multipart_copies();
    })
    .await
}

/// What the operation tests add to the common stack.
impl Stack {
    async fn new_bucket_with(&self, name: &str, versioned: bool, object_lock: bool) -> String {
        let bucket = self.bucket(name);
        self.ctx
            .s3
            .create_bucket()
            .bucket(&bucket)
            .object_lock_enabled_for_bucket(object_lock)
            .send()
            .await
            .unwrap();
        if versioned && !object_lock {
            self.enable_versioning(&bucket).await;
        }
        bucket
    }

    /// Puts an object and returns its version id (empty when unversioned).
    async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> String {
        let out = common::put_object(&self.ctx, bucket, key, body).await;
        out.version_id().unwrap_or_default().to_string()
    }

    async fn run(&self, operation: Value, confirmation: bool, tasks: &[Task]) -> Vec<String> {
        let job = job(operation, confirmation);
        let outcomes = operation::run_tasks(&self.ctx, &job, "batch-1", tasks).await;
        assert_eq!(outcomes.len(), tasks.len());
        let csv = String::from_utf8(encode_rows(&outcomes)).unwrap();
        csv.lines().map(String::from).collect()
    }
}

fn request(operation: Value, confirmation: bool) -> Value {
    json!({
        "AccountId": "123456789012",
        "ConfirmationRequired": confirmation,
        "Operation": operation,
        "Report": {"Enabled": false},
        "Manifest": {
            "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key", "VersionId"]},
            "Location": {"ObjectArn": "arn:aws:s3:::manifests/m.csv", "ETag": "x"}
        },
        "Priority": 1,
        "RoleArn": "arn:aws:iam::123456789012:role/batch"
    })
}

/// A job as the control plane would store it, after the same parse and validation.
fn job(operation: Value, confirmation: bool) -> Job {
    let request = CreateJobRequest::parse(&request(operation, confirmation).to_string()).unwrap();
    request.validate().unwrap();
    Job {
        job_id: "job-1".into(),
        priority: request.priority,
        request,
        status: JobStatus::Active,
        creation_time: chrono::Utc::now(),
        termination_date: None,
        suspended_date: None,
        active_since: None,
        elapsed_active_seconds: 0,
        status_update_reason: None,
        failure_reasons: Vec::new(),
        progress: Progress::default(),
        finalize_sent: false,
        tags: Vec::new(),
        max_tasks_per_second: None,
        tracking: Default::default(),
    }
}

fn creation_error(operation: Value, confirmation: bool) -> String {
    match CreateJobRequest::parse(&request(operation, confirmation).to_string()) {
        Err(e) => e.to_string(),
        Ok(req) => req.validate().unwrap_err().to_string(),
    }
}

fn task(bucket: &str, key: &str, version: Option<&str>) -> Task {
    Task {
        bucket: bucket.into(),
        key: key.into(),
        version_id: version.map(String::from),
        size: None,
    }
}

fn ok_row(bucket: &str, key: &str, version: &str) -> String {
    format!("{bucket},{key},{version},succeeded,200,,Successful")
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn copy_replaces_metadata_and_tags_keeps_versions_and_copies_large_objects_in_parts() {
    let env = env().await;
    let src = env.new_bucket_with("src", true, false).await;
    let dst = env.new_bucket_with("dst", false, false).await;
    env.put_object(&src, "a.txt", b"alpha".to_vec()).await;
    let big = pattern(12 * MIB + 7);
    env.put_object(&src, "big.bin", big.clone()).await;
    let v1 = env.put_object(&src, "v.txt", b"first".to_vec()).await;
    env.put_object(&src, "v.txt", b"second".to_vec()).await;

    let op = json!({"S3PutObjectCopy": {
        "TargetResource": format!("arn:aws:s3:::{dst}"),
        "TargetKeyPrefix": "copied/",
        "MetadataDirective": "REPLACE",
        "NewObjectMetadata": {"ContentType": "application/x-test", "UserMetadata": {"owner": "ops"}},
        "NewObjectTagging": [{"Key": "project", "Value": "x"}],
        "StorageClass": "STANDARD_IA"
    }});
    let tasks = [
        task(&src, "a.txt", None),
        task(&src, "big.bin", None),
        task(&src, "v.txt", Some(&v1)),
        task(&src, "nope.txt", None),
    ];
    let rows = env.run(op, false, &tasks).await;
    assert_eq!(
        rows,
        vec![
            ok_row(&src, "a.txt", ""),
            ok_row(&src, "big.bin", ""),
            ok_row(&src, "v.txt", &v1),
            format!("{src},nope.txt,,failed,404,NoSuchKey,The specified key does not exist."),
        ]
    );

    assert_eq!(env.get(&dst, "copied/a.txt").await, b"alpha");
    assert_eq!(env.get(&dst, "copied/big.bin").await, big);
    // The listed version was copied, not the latest.
    assert_eq!(env.get(&dst, "copied/v.txt").await, b"first");
    for key in ["copied/a.txt", "copied/big.bin"] {
        let head = env
            .ctx
            .s3
            .head_object()
            .bucket(&dst)
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_type(), Some("application/x-test"), "{key}");
        assert_eq!(
            head.metadata()
                .and_then(|m| m.get("owner"))
                .map(String::as_str),
            Some("ops"),
            "{key}"
        );
        assert_eq!(
            head.storage_class(),
            Some(&StorageClass::StandardIa),
            "{key}"
        );
        assert_eq!(
            env.tags(&dst, key).await,
            BTreeMap::from([("project".to_string(), "x".to_string())]),
            "{key}"
        );
    }
    // The large copy was assembled from parts: its ETag is a multipart ETag ("...-3").
    let head = env
        .ctx
        .s3
        .head_object()
        .bucket(&dst)
        .key("copied/big.bin")
        .send()
        .await
        .unwrap();
    assert!(
        head.e_tag().unwrap_or_default().ends_with("-3\""),
        "{:?}",
        head.e_tag()
    );
}

#[tokio::test]
async fn multipart_copy_keeps_source_metadata_and_tags_and_an_archived_source_fails_before_any_upload(
) {
    let env = env().await;
    let src = env.new_bucket_with("src", false, false).await;
    let dst = env.new_bucket_with("dst", false, false).await;
    let big = pattern(11 * MIB);
    env.ctx
        .s3
        .put_object()
        .bucket(&src)
        .key("big.bin")
        .content_type("image/x-big")
        .metadata("origin", "camera")
        .tagging("kind=raw")
        .body(ByteStream::from(big.clone()))
        .send()
        .await
        .unwrap();
    let op = json!({"S3PutObjectCopy": {"TargetResource": format!("arn:aws:s3:::{dst}")}});
    let rows = env.run(op, false, &[task(&src, "big.bin", None)]).await;
    assert_eq!(rows, vec![ok_row(&src, "big.bin", "")]);
    assert_eq!(env.get(&dst, "big.bin").await, big);
    let head = env
        .ctx
        .s3
        .head_object()
        .bucket(&dst)
        .key("big.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("image/x-big"));
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("origin"))
            .map(String::as_str),
        Some("camera")
    );
    assert_eq!(
        env.tags(&dst, "big.bin").await,
        BTreeMap::from([("kind".to_string(), "raw".to_string())])
    );

    // An archived source fails as S3 fails it, before any multipart upload starts; a conditional
    // copy whose condition does not hold fails with S3's PreconditionFailed.
    env.ctx
        .s3
        .put_object()
        .bucket(&src)
        .key("cold.bin")
        .storage_class(StorageClass::Glacier)
        .body(ByteStream::from(big.clone()))
        .send()
        .await
        .unwrap();
    let op = json!({"S3PutObjectCopy": {
        "TargetResource": format!("arn:aws:s3:::{dst}"),
        "TargetKeyPrefix": "late/",
    }});
    let rows = env.run(op, false, &[task(&src, "cold.bin", None)]).await;
    assert_eq!(
        rows,
        vec![format!(
            "{src},cold.bin,,failed,403,InvalidObjectState,The operation is not valid for the object's storage class"
        )]
    );
    let uploads = env
        .ctx
        .s3
        .list_multipart_uploads()
        .bucket(&dst)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "{:?}", uploads.uploads());
    let copied = env
        .ctx
        .s3
        .list_objects_v2()
        .bucket(&dst)
        .prefix("late/")
        .send()
        .await
        .unwrap();
    assert!(copied.contents().is_empty());
}

#[tokio::test]
async fn every_operation_sends_one_request_per_task_counted_at_the_server() {
    // The default copy settings: one CopyObject up to S3's 5 GiB, nothing asked first.
    let env = stack().await;
    let data = env.new_bucket_with("per-task", false, false).await;
    let locked = env.new_bucket_with("per-task-locked", true, true).await;
    let dst = env.new_bucket_with("per-task-dst", false, false).await;
    let until = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let cases = [
        (
            "tag",
            json!({"S3PutObjectTagging": {"TagSet": [{"Key": "k", "Value": "v"}]}}),
            &data,
        ),
        ("untag", json!({"S3DeleteObjectTagging": {}}), &data),
        (
            "acl",
            json!({"S3PutObjectAcl": {"AccessControlPolicy": {"CannedAccessControlList": "private"}}}),
            &data,
        ),
        (
            "copy",
            json!({"S3PutObjectCopy": {"TargetResource": format!("arn:aws:s3:::{dst}")}}),
            &data,
        ),
        (
            "hold",
            json!({"S3PutObjectLegalHold": {"LegalHold": {"Status": "OFF"}}}),
            &locked,
        ),
        (
            "retain",
            json!({"S3PutObjectRetention": {"Retention": {"Mode": "GOVERNANCE", "RetainUntilDate": until}}}),
            &locked,
        ),
        (
            "restore",
            json!({"S3InitiateRestoreObject": {"ExpirationInDays": 1, "GlacierJobTier": "BULK"}}),
            &data,
        ),
        ("delete", json!({"S3DeleteObject": {}}), &data),
    ];
    for (name, op, bucket) in cases {
        let keys: Vec<String> = (0..3).map(|i| format!("{name}-{i}.txt")).collect();
        for key in &keys {
            let put = env.ctx.s3.put_object().bucket(bucket).key(key);
            let put = if name == "restore" {
                put.storage_class(StorageClass::Glacier)
            } else {
                put
            };
            put.body(ByteStream::from_static(b"x"))
                .set_content_md5(Some("ndTkYSaMgDT1yFZOFVxnpg==".into()))
                .send()
                .await
                .unwrap();
        }
        let path = |key: &str| format!("/{key}");
        let before: Vec<usize> = keys
            .iter()
            .map(|k| common::server_requests(&path(k)).len())
            .collect();
        let tasks: Vec<Task> = keys.iter().map(|k| task(bucket, k, None)).collect();
        let rows = env.run(op, name == "delete", &tasks).await;
        assert!(
            rows.iter().all(|r| r.contains(",succeeded,")),
            "{name}: {rows:?}"
        );
        for (key, before) in keys.iter().zip(before) {
            let seen = common::server_requests(&path(key));
            assert_eq!(
                seen.len() - before,
                1,
                "{name}: one request for {key}, the server saw {:?}",
                &seen[before..]
            );
        }
    }
}

#[tokio::test]
async fn copy_parameters_are_checked_when_the_job_is_created() {
    let err = creation_error(json!({"S3PutObjectCopy": {}}), false);
    assert!(err.contains("TargetResource is required"), "{err}");
    let err = creation_error(
        json!({"S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::b",
            "CannedAccessControlList": "private",
            "AccessControlGrants": [{"Grantee": {"TypeIdentifier": "id", "Identifier": "abc"}, "Permission": "READ"}]}}),
        false,
    );
    assert!(err.contains("not both"), "{err}");
    let err = creation_error(
        json!({"S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::b", "StorageClass": "COLD"}}),
        false,
    );
    assert!(
        err.contains("StorageClass") || err.contains("COLD"),
        "{err}"
    );
}

/// A second canonical user. (Group grantees in a policy body are dropped by moto, not by batchops.)
const READER: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

#[tokio::test]
async fn put_object_acl_sets_a_canned_acl_or_a_full_policy() {
    let env = env().await;
    let bucket = env.new_bucket_with("acl", false, false).await;
    env.put_object(&bucket, "a.txt", b"a".to_vec()).await;
    env.put_object(&bucket, "b.txt", b"b".to_vec()).await;
    let owner = env
        .ctx
        .s3
        .get_object_acl()
        .bucket(&bucket)
        .key("a.txt")
        .send()
        .await
        .unwrap()
        .owner()
        .and_then(|o| o.id())
        .unwrap_or_default()
        .to_string();

    let canned = json!({"S3PutObjectAcl": {"AccessControlPolicy": {"CannedAccessControlList": "public-read"}}});
    let rows = env
        .run(
            canned,
            false,
            &[
                task(&bucket, "a.txt", None),
                task(&bucket, "gone.txt", None),
            ],
        )
        .await;
    assert_eq!(
        rows,
        vec![
            ok_row(&bucket, "a.txt", ""),
            format!("{bucket},gone.txt,,failed,404,NoSuchKey,The specified key does not exist."),
        ]
    );
    let all_users = "http://acs.amazonaws.com/groups/global/AllUsers";
    let acl = env
        .ctx
        .s3
        .get_object_acl()
        .bucket(&bucket)
        .key("a.txt")
        .send()
        .await
        .unwrap();
    assert!(
        acl.grants()
            .iter()
            .any(|g| g.permission() == Some(&Permission::Read)
                && g.grantee().and_then(|e| e.uri()) == Some(all_users)),
        "{acl:?}"
    );

    let policy = json!({"S3PutObjectAcl": {"AccessControlPolicy": {"AccessControlList": {
        "Owner": {"ID": owner},
        "Grants": [
            {"Grantee": {"TypeIdentifier": "id", "Identifier": owner}, "Permission": "FULL_CONTROL"},
            {"Grantee": {"TypeIdentifier": "id", "Identifier": READER}, "Permission": "READ"}
        ]
    }}}});
    let rows = env
        .run(policy, false, &[task(&bucket, "b.txt", None)])
        .await;
    assert_eq!(rows, vec![ok_row(&bucket, "b.txt", "")]);
    let acl = env
        .ctx
        .s3
        .get_object_acl()
        .bucket(&bucket)
        .key("b.txt")
        .send()
        .await
        .unwrap();
    let mut grants: Vec<(String, String)> = acl
        .grants()
        .iter()
        .map(|g| {
            let who = g
                .grantee()
                .and_then(|e| e.id().filter(|id| !id.is_empty()).or(e.uri()))
                .unwrap_or_default();
            (
                who.to_string(),
                g.permission()
                    .map(|p| p.as_str())
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    grants.sort();
    let mut expected = vec![
        (owner.clone(), "FULL_CONTROL".to_string()),
        (READER.to_string(), "READ".to_string()),
    ];
    expected.sort();
    assert_eq!(grants, expected);

    let err = creation_error(
        json!({"S3PutObjectAcl": {"AccessControlPolicy": {}}}),
        false,
    );
    assert!(err.contains("AccessControlList"), "{err}");
}

#[tokio::test]
async fn legal_hold_and_retention_lock_objects_in_an_object_lock_bucket() {
    let env = env().await;
    let bucket = env.new_bucket_with("locked", true, true).await;
    let plain = env.new_bucket_with("plain", false, false).await;
    let v_hold = env.put_object(&bucket, "hold.txt", b"h".to_vec()).await;
    let v_keep = env.put_object(&bucket, "keep.txt", b"k".to_vec()).await;
    env.put_object(&plain, "p.txt", b"p".to_vec()).await;

    let hold = json!({"S3PutObjectLegalHold": {"LegalHold": {"Status": "ON"}}});
    let rows = env
        .run(
            hold,
            false,
            &[
                task(&bucket, "hold.txt", Some(&v_hold)),
                task(&plain, "p.txt", None),
            ],
        )
        .await;
    assert_eq!(rows[0], ok_row(&bucket, "hold.txt", &v_hold));
    assert!(
        // A bucket without object lock refuses, as S3 does.
        rows[1].starts_with(&format!("{plain},p.txt,,failed,400,InvalidRequest,")),
        "{rows:?}"
    );
    let status = env
        .ctx
        .s3
        .get_object_legal_hold()
        .bucket(&bucket)
        .key("hold.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.legal_hold().and_then(|h| h.status()),
        Some(&ObjectLockLegalHoldStatus::On)
    );

    let until = (chrono::Utc::now() + chrono::Duration::days(2))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let retention = json!({"S3PutObjectRetention": {
        "BypassGovernanceRetention": false,
        "Retention": {"Mode": "GOVERNANCE", "RetainUntilDate": until}
    }});
    let rows = env
        .run(
            retention,
            false,
            &[
                task(&bucket, "keep.txt", Some(&v_keep)),
                task(&plain, "p.txt", None),
            ],
        )
        .await;
    assert_eq!(rows[0], ok_row(&bucket, "keep.txt", &v_keep));
    // A bucket without object lock refuses, as S3 does.
    assert!(
        rows[1].starts_with(&format!("{plain},p.txt,,failed,400,InvalidRequest,")),
        "{rows:?}"
    );
    // Read back through HEAD: moto answers GetObjectRetention with the object body.
    let head = env
        .ctx
        .s3
        .head_object()
        .bucket(&bucket)
        .key("keep.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Governance));
    assert_eq!(
        head.object_lock_retain_until_date().map(|d| d.secs()),
        Some(
            chrono::DateTime::parse_from_rfc3339(&until)
                .unwrap()
                .timestamp()
        )
    );

    // The locked version cannot be deleted: S3DeleteObject reports S3's AccessDenied.
    let delete = json!({"S3DeleteObject": {}});
    let rows = env
        .run(delete, true, &[task(&bucket, "keep.txt", Some(&v_keep))])
        .await;
    assert!(
        rows[0].starts_with(&format!(
            "{bucket},keep.txt,{v_keep},failed,403,AccessDenied,"
        )),
        "{rows:?}"
    );
    let err = creation_error(
        json!({"S3PutObjectRetention": {"Retention": {"Mode": "GOVERNANCE"}}}),
        false,
    );
    assert!(err.contains("go together"), "{err}");
}

#[tokio::test]
async fn restore_starts_for_archived_objects_and_fails_as_s3_does_for_others() {
    let env = env().await;
    let bucket = env.new_bucket_with("restore", false, false).await;
    env.ctx
        .s3
        .put_object()
        .bucket(&bucket)
        .key("cold.txt")
        .storage_class(StorageClass::Glacier)
        .body(ByteStream::from_static(b"cold"))
        .send()
        .await
        .unwrap();
    env.put_object(&bucket, "warm.txt", b"warm".to_vec()).await;
    let op = json!({"S3InitiateRestoreObject": {"ExpirationInDays": 3, "GlacierJobTier": "BULK"}});
    let rows = env
        .run(
            op,
            false,
            &[
                task(&bucket, "cold.txt", None),
                task(&bucket, "warm.txt", None),
                task(&bucket, "gone.txt", None),
            ],
        )
        .await;
    assert_eq!(rows[0], ok_row(&bucket, "cold.txt", ""));
    assert!(
        rows[1].starts_with(&format!(
            "{bucket},warm.txt,,failed,403,InvalidObjectState,"
        )),
        "{rows:?}"
    );
    assert!(
        rows[2].starts_with(&format!("{bucket},gone.txt,,failed,404,NoSuchKey,")),
        "{rows:?}"
    );
    let head = env
        .ctx
        .s3
        .head_object()
        .bucket(&bucket)
        .key("cold.txt")
        .send()
        .await
        .unwrap();
    assert!(head.restore().is_some(), "{head:?}");
    // Restoring an object that is already restored succeeds (S3 answers 200 and extends it).
    let again = json!({"S3InitiateRestoreObject": {"ExpirationInDays": 5}});
    let rows = env
        .run(again, false, &[task(&bucket, "cold.txt", None)])
        .await;
    assert_eq!(rows, vec![ok_row(&bucket, "cold.txt", "")]);
    let err = creation_error(
        json!({"S3InitiateRestoreObject": {"ExpirationInDays": 0}}),
        false,
    );
    assert!(err.contains("1 or more"), "{err}");
    let err = creation_error(
        json!({"S3InitiateRestoreObject": {"GlacierJobTier": "EXPEDITED"}}),
        false,
    );
    assert!(err.contains("EXPEDITED"), "{err}");
}

#[tokio::test]
async fn compute_checksum_reports_each_objects_checksum() {
    let env = env().await;
    let bucket = env.new_bucket_with("sums", false, false).await;
    env.put_object(&bucket, "check.txt", b"123456789".to_vec())
        .await;
    let big = pattern(3 * MIB + 1);
    env.put_object(&bucket, "big.bin", big.clone()).await;
    for (algorithm, hex) in [
        ("CRC32", "cbf43926"),
        ("CRC32C", "e3069283"),
        ("CRC64NVME", "ae8b14860a799888"),
        ("MD5", "25f9e794323b453885f5181f1b624d0b"),
        (
            "SHA256",
            "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225",
        ),
    ] {
        let op = json!({"S3ComputeObjectChecksum": {"ChecksumAlgorithm": algorithm, "ChecksumType": "FULL_OBJECT"}});
        let job = job(op, false);
        let outcomes = operation::run_tasks(
            &env.ctx,
            &job,
            "b",
            &[
                task(&bucket, "check.txt", None),
                task(&bucket, "gone.txt", None),
            ],
        )
        .await;
        assert_eq!(outcomes[0].http_status, Some(200));
        let message: Value = serde_json::from_str(&outcomes[0].result_message).unwrap();
        assert_eq!(message["checksumAlgorithm"], algorithm);
        assert_eq!(message["checksumType"], "FULL_OBJECT");
        assert_eq!(message["checksumHex"], hex, "{algorithm}");
        assert_eq!(outcomes[1].error_code.as_deref(), Some("NoSuchKey"));
        assert_eq!(outcomes[1].http_status, Some(404));
    }
    // A large object is streamed, and gives the same digest as the bytes themselves.
    let op = json!({"S3ComputeObjectChecksum": {"ChecksumAlgorithm": "SHA256"}});
    let outcomes = operation::run_tasks(
        &env.ctx,
        &job(op, false),
        "b",
        &[task(&bucket, "big.bin", None)],
    )
    .await;
    let message: Value = serde_json::from_str(&outcomes[0].result_message).unwrap();
    use sha2::Digest;
    assert_eq!(
        message["checksumHex"],
        hex::encode(sha2::Sha256::digest(&big))
    );

    let err = creation_error(
        json!({"S3ComputeObjectChecksum": {"ChecksumAlgorithm": "SHA256", "ChecksumType": "COMPOSITE"}}),
        false,
    );
    assert!(err.contains("COMPOSITE"), "{err}");
}

#[tokio::test]
async fn delete_object_removes_versions_or_adds_delete_markers_and_needs_confirmation() {
    let env = env().await;
    let bucket = env.new_bucket_with("del", true, false).await;
    let v_old = env.put_object(&bucket, "doc.txt", b"old".to_vec()).await;
    let v_new = env.put_object(&bucket, "doc.txt", b"new".to_vec()).await;
    env.put_object(&bucket, "marker.txt", b"m".to_vec()).await;
    let rows = env
        .run(
            json!({"S3DeleteObject": {}}),
            true,
            &[
                task(&bucket, "doc.txt", Some(&v_old)),
                task(&bucket, "marker.txt", None),
            ],
        )
        .await;
    assert_eq!(
        rows,
        vec![
            ok_row(&bucket, "doc.txt", &v_old),
            ok_row(&bucket, "marker.txt", "")
        ]
    );
    let versions = env
        .ctx
        .s3
        .list_object_versions()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let doc_versions: Vec<&str> = versions
        .versions()
        .iter()
        .filter(|v| v.key() == Some("doc.txt"))
        .filter_map(|v| v.version_id())
        .collect();
    assert_eq!(doc_versions, vec![v_new.as_str()]);
    assert_eq!(env.get(&bucket, "doc.txt").await, b"new");
    let markers: Vec<&str> = versions
        .delete_markers()
        .iter()
        .filter_map(|m| m.key())
        .collect();
    assert_eq!(markers, vec!["marker.txt"]);
    // The data is still there under its version: only a delete marker was added.
    assert_eq!(
        versions
            .versions()
            .iter()
            .filter(|v| v.key() == Some("marker.txt"))
            .count(),
        1
    );

    let err = creation_error(json!({"S3DeleteObject": {}}), false);
    assert!(err.contains("ConfirmationRequired"), "{err}");
}

#[test]
fn replicate_object_is_refused_with_the_reason() {
    let err = creation_error(json!({"S3ReplicateObject": {}}), false);
    assert!(err.contains(REPLICATE_OBJECT_REFUSAL), "{err}");
    assert!(err.contains("replication engine"), "{err}");
}

/// A scripted S3 endpoint for what moto cannot do: a part copy that S3 refuses midway, a restore
/// already in progress, a failed copy precondition, an archived Intelligent-Tiering source, and
/// the exact headers of a copy with SSE-KMS, checksum, object lock and requester-pays fields.
mod scripted {
    pub use crate::common::scripted::Log;
    use crate::common::scripted::{self, Reply};

    pub const SIZE: u64 = 12 * 1024 * 1024;
    /// A source too large for one CopyObject.
    pub const HUGE: u64 = 6 * 1024 * 1024 * 1024;

    /// Part 1 is throttled once (SlowDown, 503, retried); with `refuse_part2`, part 2 is refused
    /// (AccessDenied, 403), otherwise the upload completes. Keys with `small` are small objects
    /// copied in one request; see `answer` for the other scripted keys.
    pub async fn start(refuse_part2: bool) -> (String, Log) {
        scripted::start(move |request, seen| {
            let part1_attempts = seen
                .iter()
                .map(|r| r.line())
                .filter(|r| r.starts_with("PUT") && r.contains("partNumber=1&"))
                .count();
            answer(&request.line(), part1_attempts, refuse_part2)
        })
        .await
    }

    fn answer(request: &str, part1_attempts: usize, refuse_part2: bool) -> Reply {
        let xml = Reply::xml;
        // A source over 5 GiB: CopyObject refuses it as S3 does; its HEAD says 6 GiB.
        if request.starts_with("PUT /dst/huge") && !request.contains("partNumber=") {
            return xml(
                400,
                "<Error><Code>InvalidRequest</Code><Message>The specified copy source is larger than the maximum allowable size for a copy source: 5368709120</Message></Error>",
            );
        }
        if request.starts_with("HEAD") && request.contains("huge") {
            return Reply::empty(
                200,
                &[("content-length", &HUGE.to_string()), ("etag", "\"src\"")],
            );
        }
        if request.starts_with("HEAD") && request.contains("glacier") {
            return Reply::empty(
                200,
                &[
                    ("content-length", "10"),
                    ("etag", "\"src\""),
                    ("x-amz-storage-class", "GLACIER"),
                ],
            );
        }
        if request.starts_with("HEAD") && request.contains("tiered") {
            // In the Deep Archive Access tier: HEAD still says INTELLIGENT_TIERING.
            return Reply::empty(
                200,
                &[
                    ("content-length", "10"),
                    ("etag", "\"src\""),
                    ("x-amz-storage-class", "INTELLIGENT_TIERING"),
                    ("x-amz-archive-status", "DEEP_ARCHIVE_ACCESS"),
                ],
            );
        }
        if request.starts_with("HEAD") && request.contains("small") {
            return Reply::empty(200, &[("content-length", "10"), ("etag", "\"src\"")]);
        }
        if request.starts_with("HEAD") {
            return Reply::empty(
                200,
                &[("content-length", &SIZE.to_string()), ("etag", "\"src\"")],
            );
        }
        // RestoreObject: a restore in progress (409), an object already restored (200, S3
        // extends it), a new restore (202).
        if request.starts_with("POST") && request.contains("restore") {
            if request.contains("restoring") {
                return xml(
                    409,
                    "<Error><Code>RestoreAlreadyInProgress</Code><Message>Object restore is already in progress</Message></Error>",
                );
            }
            if request.contains("restored") {
                return Reply::empty(200, &[]);
            }
            return Reply::empty(202, &[]);
        }
        // CopyObject of a small object.
        if request.starts_with("PUT") && request.contains("small-conditional") {
            return xml(
                412,
                "<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>x-amz-copy-source-If-Unmodified-Since</Condition></Error>",
            );
        }
        if request.starts_with("PUT") && request.contains("tiered") {
            return xml(
                403,
                "<Error><Code>InvalidObjectState</Code><Message>The operation is not valid for the object's access tier</Message><StorageClass>INTELLIGENT_TIERING</StorageClass><AccessTier>DEEP_ARCHIVE_ACCESS</AccessTier></Error>",
            );
        }
        if request.starts_with("PUT") && request.contains("small") {
            return xml(
                200,
                "<CopyObjectResult><ETag>\"copied\"</ETag><LastModified>2026-11-25T10:00:00.000Z</LastModified></CopyObjectResult>",
            );
        }
        if request.starts_with("GET") && request.contains("tagging") {
            return xml(200, "<Tagging><TagSet></TagSet></Tagging>");
        }
        if request.starts_with("POST") && request.contains("uploads") {
            return xml(
                200,
                "<InitiateMultipartUploadResult><Bucket>dst</Bucket><Key>big.bin</Key><UploadId>up-1</UploadId></InitiateMultipartUploadResult>",
            );
        }
        if request.starts_with("PUT") && request.contains("partNumber=1&") && part1_attempts == 1 {
            return xml(
                503,
                "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
            );
        }
        // The source is overwritten after part 1: S3 refuses the next parts pinned to its ETag.
        if request.starts_with("PUT")
            && request.contains("overwritten")
            && !request.contains("partNumber=1&")
            && request.contains("partNumber=")
        {
            return xml(
                412,
                "<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>x-amz-copy-source-If-Match</Condition></Error>",
            );
        }
        if refuse_part2 && request.starts_with("PUT") && request.contains("partNumber=2&") {
            return xml(
                403,
                "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>",
            );
        }
        if request.starts_with("PUT") && request.contains("partNumber=") {
            return xml(
                200,
                "<CopyPartResult><ETag>\"part\"</ETag></CopyPartResult>",
            );
        }
        if request.starts_with("POST") && request.contains("uploadId=up-1") {
            return xml(
                200,
                "<CompleteMultipartUploadResult><Bucket>dst</Bucket><Key>big.bin</Key><ETag>\"done-3\"</ETag></CompleteMultipartUploadResult>",
            );
        }
        if request.starts_with("DELETE") && request.contains("uploadId=up-1") {
            return Reply::empty(204, &[]);
        }
        xml(
            400,
            "<Error><Code>InvalidRequest</Code><Message>unexpected</Message></Error>",
        )
    }
}

/// An executor context whose S3 is the scripted server, with multipart copies forced small.
async fn scripted_env(refuse_part2: bool) -> (Stack, scripted::Log) {
    scripted_env_with(refuse_part2, small_multipart_copies()).await
}

/// [`scripted_env`] with these copy settings.
async fn scripted_env_with(refuse_part2: bool, copy: CopySettings) -> (Stack, scripted::Log) {
    let (url, log) = scripted::start(refuse_part2).await;
    let env = stack_on(&url, |settings| {
        settings.lambda_max_attempts = 3;
        settings.copy = copy;
    })
    .await;
    (env, log)
}

/// A stack whose every client goes to `url` (a scripted endpoint), with test settings tweaked.
async fn stack_on(url: &str, tweak: impl FnOnce(&mut batchops::context::Settings)) -> Stack {
    let config = common::sdk_config_on(url).await;
    let mut settings = common::test_settings(
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
    );
    tweak(&mut settings);
    Stack {
        ctx: Context::from_config(&config, settings),
        config,
        id: String::new(),
    }
}

/// A slow request does not hold back the tasks after it: with two tasks at a time, every other
/// task of the batch runs while the first one's answer is awaited, and the report keeps the
/// manifest's order.
#[tokio::test]
async fn a_slow_task_does_not_hold_back_the_tasks_after_it() {
    const TASKS: usize = 12;
    let (url, log) = crate::common::scripted::start(|request, _| {
        let reply = crate::common::scripted::Reply::empty(200, &[]);
        if request.path().ends_with("/slow") {
            reply.after(std::time::Duration::from_millis(1500))
        } else {
            reply
        }
    })
    .await;
    let env = stack_on(&url, |settings| settings.executor_concurrency = 2).await;
    let op = json!({"S3PutObjectTagging": {"TagSet": [{"Key": "k", "Value": "v"}]}});
    let mut tasks = vec![task("busy", "slow", None)];
    tasks.extend((1..TASKS).map(|i| task("busy", &format!("k{i}"), None)));
    let rows = env.run(op, false, &tasks).await;
    assert_eq!(rows.len(), TASKS);
    assert!(rows.iter().all(|r| r.contains(",succeeded,")), "{rows:?}");
    assert!(
        rows[0].starts_with("busy,slow,"),
        "manifest order: {rows:?}"
    );
    let seen = log.lock().unwrap().clone();
    let fast: Vec<_> = seen
        .iter()
        .filter(|r| !r.path().ends_with("/slow"))
        .collect();
    assert_eq!(fast.len(), TASKS - 1);
    assert!(
        fast.iter().all(|r| r.in_flight == 2),
        "each of the other tasks ran beside the slow one: requests in flight {:?}",
        fast.iter().map(|r| r.in_flight).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_bucket_that_throttles_gets_fewer_requests_at_once_and_every_task_still_succeeds() {
    // S3 with room for 4 requests at a time: a fifth gets 503 SlowDown; the others an answer
    // after 20 ms.
    const ROOM: usize = 4;
    const TASKS: usize = 400;
    let (url, log) = crate::common::scripted::start(|request, _| {
        if request.in_flight > ROOM {
            crate::common::scripted::Reply::xml(
                503,
                "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
            )
        } else {
            crate::common::scripted::Reply::empty(200, &[])
                .after(std::time::Duration::from_millis(20))
        }
    })
    .await;
    // 32 tasks at once, as the executor runs them; retries enough that none runs out.
    let env = stack_on(&url, |settings| {
        settings.executor_concurrency = 32;
        settings.lambda_max_attempts = 20;
        settings.lambda_retry_base = std::time::Duration::from_millis(5);
    })
    .await;
    let op = json!({"S3PutObjectTagging": {"TagSet": [{"Key": "k", "Value": "v"}]}});
    let tasks: Vec<Task> = (0..TASKS)
        .map(|i| task("busy", &format!("k{i}"), None))
        .collect();
    let rows = env.run(op, false, &tasks).await;
    assert!(
        rows.iter().all(|r| r.contains(",succeeded,")),
        "every task succeeds: {:?}",
        rows.iter().find(|r| !r.contains(",succeeded,"))
    );
    let seen = log.lock().unwrap().clone();
    let throttled = seen.iter().filter(|r| r.in_flight > ROOM).count();
    let limit = env.ctx.s3_concurrency.limit("busy").unwrap_or_default();
    let late = &seen[seen.len() / 2..];
    let late_throttled = late.iter().filter(|r| r.in_flight > ROOM).count();
    println!(
        "{TASKS} tasks, {} requests: {throttled} SlowDown ({late_throttled} of the last {}), \
         limit now {limit:.1}",
        seen.len(),
        late.len()
    );
    // 32 requests at once against room for 4 would be answered SlowDown 7 times in 8 until the
    // tasks' retries spread them out; the bucket's limit comes down to its room instead, and
    // stays near it: few requests are refused, most of all once it has settled.
    assert!(
        limit <= 2.0 * ROOM as f64,
        "the bucket's limit came down to {limit:.1}"
    );
    assert!(
        throttled * 4 < TASKS,
        "{throttled} SlowDown answers for {TASKS} tasks"
    );
    assert!(
        late_throttled * 10 < late.len(),
        "{late_throttled} SlowDown answers among the last {} requests",
        late.len()
    );
}

#[tokio::test]
async fn a_multipart_copy_with_a_refused_part_is_aborted_and_never_completed() {
    let (env, log) = scripted_env(true).await;
    let op = json!({"S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::dst"}});
    let rows = env.run(op, false, &[task("src", "big.bin", None)]).await;
    assert_eq!(
        rows,
        vec!["src,big.bin,,failed,403,AccessDenied,Access Denied".to_string()]
    );
    let seen = lines(&log);
    let count = |what: &str| seen.iter().filter(|r| r.contains(what)).count();
    assert_eq!(count("uploads"), 1, "{seen:?}");
    assert!(count("partNumber=1&") >= 1, "{seen:?}");
    assert_eq!(
        count("partNumber=2&"),
        1,
        "AccessDenied is not retried: {seen:?}"
    );
    assert_eq!(
        seen.iter()
            .filter(|r| r.starts_with("DELETE") && r.contains("uploadId=up-1"))
            .count(),
        1,
        "the upload is aborted: {seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|r| r.starts_with("POST") && r.contains("uploadId=")),
        "never completed: {seen:?}"
    );
}

#[tokio::test]
async fn a_source_overwritten_mid_copy_fails_the_task_with_412_and_no_torn_object() {
    let (env, log) = scripted_env(false).await;
    let op = json!({"S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::dst"}});
    let rows = env
        .run(op, false, &[task("src", "overwritten.bin", None)])
        .await;
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0].starts_with("src,overwritten.bin,,failed,412,PreconditionFailed,"),
        "{rows:?}"
    );
    // Every part was pinned to the ETag the HEAD saw.
    let parts: Vec<_> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.method == "PUT" && r.query.contains("partNumber="))
        .map(|r| r.headers.get("x-amz-copy-source-if-match").cloned())
        .collect();
    assert!(!parts.is_empty());
    assert!(
        parts.iter().all(|p| p.as_deref() == Some("\"src\"")),
        "{parts:?}"
    );
    let seen = lines(&log);
    assert!(
        seen.iter()
            .any(|r| r.starts_with("DELETE") && r.contains("uploadId=up-1")),
        "the upload is aborted: {seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|r| r.starts_with("POST") && r.contains("uploadId=")),
        "never completed, so no torn object: {seen:?}"
    );
}

#[tokio::test]
async fn a_throttled_part_copy_is_retried_and_the_copy_succeeds() {
    let (env, log) = scripted_env(false).await;
    let op = json!({"S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::dst"}});
    let rows = env.run(op, false, &[task("src", "big.bin", None)]).await;
    let seen = lines(&log);
    assert_eq!(
        rows,
        vec!["src,big.bin,,succeeded,200,,Successful".to_string()],
        "{seen:?}"
    );
    let count = |what: &str| seen.iter().filter(|r| r.contains(what)).count();
    assert_eq!(
        count("partNumber=1&"),
        2,
        "SlowDown is retried once: {seen:?}"
    );
    assert_eq!(count("partNumber=2&"), 1, "{seen:?}");
    assert_eq!(count("partNumber=3&"), 1, "{seen:?}");
    assert_eq!(
        seen.iter()
            .filter(|r| r.starts_with("POST") && r.contains("uploadId=up-1"))
            .count(),
        1,
        "completed once: {seen:?}"
    );
}

/// The request lines (`METHOD path?query`) the scripted server saw.
fn lines(log: &scripted::Log) -> Vec<String> {
    log.lock().unwrap().iter().map(|r| r.line()).collect()
}

/// The headers of the first request the scripted server saw whose line starts with `prefix`.
fn request_headers(log: &scripted::Log, prefix: &str) -> BTreeMap<String, String> {
    log.lock()
        .unwrap()
        .iter()
        .find(|r| r.line().starts_with(prefix))
        .map(|r| r.headers.clone())
        .unwrap_or_else(|| panic!("no request {prefix}"))
}

#[tokio::test]
async fn a_restore_already_in_progress_fails_with_s3s_409_and_an_already_restored_object_succeeds()
{
    // S3 user guide, "Restore objects with Batch Operations", Overlapping restores: a task whose
    // restore is already in progress (same or slower tier) fails; one whose object is already
    // restored succeeds (S3 extends the restored copy). Batch Operations passes every object to
    // RestoreObject, so the failed row carries RestoreObject's own answer: 409
    // RestoreAlreadyInProgress.
    let (env, log) = scripted_env(false).await;
    let op =
        json!({"S3InitiateRestoreObject": {"ExpirationInDays": 2, "GlacierJobTier": "STANDARD"}});
    let rows = env
        .run(
            op,
            false,
            &[
                task("src", "restoring.bin", None),
                task("src", "restored.bin", None),
                task("src", "fresh.bin", None),
            ],
        )
        .await;
    assert_eq!(
        rows,
        vec![
            "src,restoring.bin,,failed,409,RestoreAlreadyInProgress,Object restore is already in progress".to_string(),
            ok_row("src", "restored.bin", ""),
            ok_row("src", "fresh.bin", ""),
        ]
    );
    let seen = lines(&log);
    assert_eq!(
        seen.iter().filter(|r| r.contains("restoring.bin")).count(),
        1,
        "a 409 is final, not retried: {seen:?}"
    );
}

/// Requests per copy task, as the scripted server saw them: `METHOD path` lines of the source
/// and the target key.
fn requests_for(log: &scripted::Log, key: &str) -> Vec<String> {
    lines(log)
        .into_iter()
        .filter(|line| line.contains(key))
        .map(|line| line.split('?').next().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn a_copy_is_one_copy_object_request_and_only_a_source_s3_refuses_as_too_large_is_headed() {
    // The default settings: one CopyObject up to S3's 5 GiB, no size in the manifest.
    let (env, log) = scripted_env_with(false, CopySettings::default()).await;
    let op = json!({"S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::dst"}});
    let rows = env
        .run(
            op.clone(),
            false,
            &[
                task("src", "small-1.bin", None),
                task("src", "huge.bin", None),
            ],
        )
        .await;
    assert_eq!(
        rows,
        vec![
            ok_row("src", "small-1.bin", ""),
            ok_row("src", "huge.bin", "")
        ]
    );
    assert_eq!(
        requests_for(&log, "small-1.bin"),
        vec!["PUT /dst/small-1.bin"],
        "one request, no HEAD"
    );
    let huge = requests_for(&log, "huge.bin");
    assert_eq!(
        huge[..2],
        ["PUT /dst/huge.bin", "HEAD /src/huge.bin"],
        "refused whole, then HEADed: {huge:?}"
    );
    assert_eq!(
        huge.iter().filter(|r| *r == "POST /dst/huge.bin").count(),
        2,
        "an upload created and completed: {huge:?}"
    );
    let parts = huge
        .iter()
        .filter(|r| r.starts_with("PUT /dst/huge.bin"))
        .count();
    // 12 parts of 512 MiB, part 1 once more after its SlowDown, and the refused CopyObject.
    assert_eq!(parts, 12 + 1 + 1, "{huge:?}");

    // A size in the manifest decides without asking S3: within the threshold, one CopyObject;
    // above it, a HEAD (for the ETag every part is pinned to) and parts.
    let (env, log) = scripted_env(false).await;
    let sized = |key: &str, size: u64| Task {
        size: Some(size),
        ..task("src", key, None)
    };
    let rows = env
        .run(
            op,
            false,
            &[sized("small-2.bin", 10), sized("big.bin", scripted::SIZE)],
        )
        .await;
    assert_eq!(
        rows,
        vec![
            ok_row("src", "small-2.bin", ""),
            ok_row("src", "big.bin", "")
        ]
    );
    assert_eq!(
        requests_for(&log, "small-2.bin"),
        vec!["PUT /dst/small-2.bin"]
    );
    assert_eq!(requests_for(&log, "big.bin")[0], "HEAD /src/big.bin");
}

#[tokio::test]
async fn a_copy_whose_unmodified_since_condition_fails_reports_s3s_412() {
    let (env, log) = scripted_env(false).await;
    let op = json!({"S3PutObjectCopy": {
        "TargetResource": "arn:aws:s3:::dst",
        "UnModifiedSinceConstraint": "2020-01-02T03:04:05Z"
    }});
    let rows = env
        .run(op, false, &[task("src", "small-conditional.bin", None)])
        .await;
    assert_eq!(
        rows,
        vec!["src,small-conditional.bin,,failed,412,PreconditionFailed,At least one of the pre-conditions you specified did not hold".to_string()]
    );
    let sent = request_headers(&log, "PUT /dst/small-conditional.bin");
    assert_eq!(
        sent.get("x-amz-copy-source-if-unmodified-since")
            .map(String::as_str),
        Some("Thu, 02 Jan 2020 03:04:05 GMT")
    );
}

#[tokio::test]
async fn a_copy_sends_sse_kms_checksum_object_lock_requester_pays_and_storage_class_headers() {
    let (env, log) = scripted_env(false).await;
    let kms = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let op = json!({"S3PutObjectCopy": {
        "TargetResource": "arn:aws:s3:::dst",
        "TargetKeyPrefix": "copies/",
        "SSEAwsKmsKeyId": kms,
        "BucketKeyEnabled": true,
        "ChecksumAlgorithm": "SHA256",
        "ObjectLockMode": "GOVERNANCE",
        "ObjectLockRetainUntilDate": "2030-01-01T00:00:00Z",
        "ObjectLockLegalHoldStatus": "ON",
        "RequesterPays": true,
        "StorageClass": "GLACIER_IR"
    }});
    let rows = env
        .run(op, false, &[task("src", "dir/small full.bin", Some("v-7"))])
        .await;
    // The report's Key column is URL-encoded, as in S3's reports.
    assert_eq!(rows, vec![ok_row("src", "dir/small%20full.bin", "v-7")]);

    // The source is read as the requester too.
    let head = request_headers(&log, "HEAD /src/dir/small%20full.bin");
    assert_eq!(
        head.get("x-amz-request-payer").map(String::as_str),
        Some("requester")
    );
    // Target key = prefix + source key; the listed version is the copy source.
    let sent = request_headers(&log, "PUT /dst/copies/dir/small%20full.bin");
    let header = |name: &str| sent.get(name).map(String::as_str);
    assert_eq!(
        header("x-amz-copy-source"),
        Some("src/dir/small%20full.bin?versionId=v-7")
    );
    assert_eq!(header("x-amz-server-side-encryption"), Some("aws:kms"));
    assert_eq!(
        header("x-amz-server-side-encryption-aws-kms-key-id"),
        Some(kms)
    );
    assert_eq!(
        header("x-amz-server-side-encryption-bucket-key-enabled"),
        Some("true")
    );
    assert_eq!(header("x-amz-checksum-algorithm"), Some("SHA256"));
    assert_eq!(header("x-amz-object-lock-mode"), Some("GOVERNANCE"));
    assert_eq!(
        header("x-amz-object-lock-retain-until-date"),
        Some("2030-01-01T00:00:00Z")
    );
    assert_eq!(header("x-amz-object-lock-legal-hold"), Some("ON"));
    assert_eq!(header("x-amz-request-payer"), Some("requester"));
    assert_eq!(header("x-amz-storage-class"), Some("GLACIER_IR"));
    // COPY directives: nothing replaced, so S3 copies metadata and tags from the source.
    assert_eq!(header("x-amz-metadata-directive"), None);
    assert_eq!(header("x-amz-tagging-directive"), None);
}

#[tokio::test]
async fn archived_sources_fail_with_invalid_object_state_403() {
    let (env, log) = scripted_env(false).await;
    let op = json!({"S3PutObjectCopy": {"TargetResource": "arn:aws:s3:::dst"}});
    let rows = env
        .run(
            op,
            false,
            &[
                task("src", "glacier.bin", None),
                task("src", "tiered.bin", None),
            ],
        )
        .await;
    assert_eq!(
        rows,
        vec![
            "src,glacier.bin,,failed,403,InvalidObjectState,The operation is not valid for the object's storage class".to_string(),
            "src,tiered.bin,,failed,403,InvalidObjectState,The operation is not valid for the object's access tier".to_string(),
        ]
    );
    let seen = lines(&log);
    // A GLACIER source is refused before any copy request; the archived Intelligent-Tiering one
    // is refused by S3's CopyObject itself, once (403 is final).
    assert!(
        !seen.iter().any(|r| r.starts_with("PUT /dst/glacier.bin")),
        "{seen:?}"
    );
    assert_eq!(
        seen.iter()
            .filter(|r| r.starts_with("PUT /dst/tiered.bin"))
            .count(),
        1,
        "{seen:?}"
    );
}

/// S3's answer to a request signed for the wrong Region, as a bucket elsewhere gets it.
fn redirect_to(region: &str) -> Fault {
    Fault::Answer {
        status: 301,
        headers: vec![("x-amz-bucket-region".into(), region.into())],
        body: format!(
            "<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access \
             must be addressed using the specified endpoint.</Message><Region>{region}</Region></Error>"
        ),
    }
}

/// Requests of `operation` on `bucket` signed for `region` (the credential scope names it).
fn signed_for(operation: &str, bucket: &str, region: &str, fault: Fault) -> FaultRule {
    FaultRule::new("S3", operation, fault)
        .containing(&format!("/{region}/s3/aws4_request"))
        .containing_also(bucket)
}

#[tokio::test]
async fn tasks_and_copies_on_buckets_in_another_region_are_sent_there() {
    let e = env().await;
    let far = e.bucket("far");
    e.ctx
        .s3
        .create_bucket()
        .bucket(&far)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let location = e
        .ctx
        .s3
        .get_bucket_location()
        .bucket(&far)
        .send()
        .await
        .unwrap();
    assert_eq!(
        location.location_constraint().map(|l| l.as_str()),
        Some("eu-west-1")
    );
    let near = e.new_bucket_with("near", false, false).await;
    for i in 0..4 {
        e.put_object(&near, &format!("n{i}"), b"near".to_vec())
            .await;
        e.put_object(&far, &format!("f{i}"), b"far".to_vec()).await;
    }
    // moto keeps the bucket in eu-west-1 but serves every Region on one endpoint and does not
    // redirect; these rules make it answer as S3 does, and count what reaches it signed for
    // eu-west-1.
    let rules = vec![
        signed_for(
            "PutObjectTagging",
            &far,
            "us-east-1",
            redirect_to("eu-west-1"),
        ),
        signed_for("CopyObject", &far, "us-east-1", redirect_to("eu-west-1")),
        signed_for(
            "PutObjectTagging",
            &far,
            "eu-west-1",
            Fault::Delay { millis: 0 },
        ),
        signed_for("CopyObject", &far, "eu-west-1", Fault::Delay { millis: 0 }),
    ];
    let plan = FaultPlan::new(1, rules);
    let mut ctx = e
        .ctx
        .clone()
        .with_faults(&common::sdk_config().await, plan.clone())
        .expect("faults on loopback");
    ctx.settings.executor_concurrency = 1;

    let tags = json!({"S3PutObjectTagging": {"TagSet": [{"Key": "where", "Value": "far"}]}});
    let tasks: Vec<Task> = (0..4).map(|i| task(&far, &format!("f{i}"), None)).collect();
    let outcomes = operation::run_tasks(&ctx, &job(tags, false), "batch-1", &tasks).await;
    assert!(
        outcomes.iter().all(|o| o.error_code.is_none()),
        "{outcomes:?}"
    );
    assert_eq!(plan.fired(0), 1, "one redirect, then the Region is known");
    assert_eq!(plan.fired(2), 4, "every tagging request went to eu-west-1");
    assert_eq!(e.tags(&far, "f3").await["where"], "far");

    let copy = json!({"S3PutObjectCopy": {"TargetResource": format!("arn:aws:s3:::{far}"), "TargetKeyPrefix": "copied/"}});
    let tasks: Vec<Task> = (0..4)
        .map(|i| task(&near, &format!("n{i}"), None))
        .collect();
    let outcomes = operation::run_tasks(&ctx, &job(copy, false), "batch-2", &tasks).await;
    assert!(
        outcomes.iter().all(|o| o.error_code.is_none()),
        "{outcomes:?}"
    );
    assert_eq!(
        plan.fired(1),
        0,
        "the target's Region was learned from the tagging job"
    );
    assert_eq!(plan.fired(3), 4, "every copy went to the target's Region");
    assert_eq!(e.get(&far, "copied/n2").await, b"near");
}

const KMS_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn update_encryption(bucket_key: bool) -> Value {
    json!({"S3UpdateObjectEncryption": {"ObjectEncryption": {"SSEKMS": {
        "KMSKeyArn": KMS_KEY, "BucketKeyEnabled": bucket_key
    }}}})
}

/// Puts an object encrypted with SSE-S3 (or not encrypted, `sse: false`); returns its version.
async fn put_encrypted(
    env: &Stack,
    bucket: &str,
    key: &str,
    body: Vec<u8>,
    class: StorageClass,
    sse: bool,
) -> String {
    let mut put = env
        .ctx
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .storage_class(class)
        .content_type("text/x-kept")
        .metadata("origin", "camera")
        .tagging("kind=raw")
        .website_redirect_location("/elsewhere.html")
        .body(ByteStream::from(body));
    if sse {
        put = put.server_side_encryption(ServerSideEncryption::Aes256);
    }
    let out = put.send().await.unwrap();
    out.version_id().unwrap_or_default().to_string()
}

#[tokio::test]
async fn update_object_encryption_re_encrypts_in_place_keeping_class_metadata_and_tags() {
    let env = env().await;
    let bucket = env.new_bucket_with("enc", false, false).await;
    let small = pattern(1000);
    let big = pattern(11 * MIB);
    put_encrypted(
        &env,
        &bucket,
        "small.txt",
        small.clone(),
        StorageClass::StandardIa,
        true,
    )
    .await;
    put_encrypted(
        &env,
        &bucket,
        "big.bin",
        big.clone(),
        StorageClass::Standard,
        true,
    )
    .await;
    put_encrypted(
        &env,
        &bucket,
        "cold.bin",
        small.clone(),
        StorageClass::Glacier,
        true,
    )
    .await;
    put_encrypted(
        &env,
        &bucket,
        "plain.txt",
        small.clone(),
        StorageClass::Standard,
        false,
    )
    .await;
    let plain_sse = env
        .ctx
        .s3
        .head_object()
        .bucket(&bucket)
        .key("plain.txt")
        .send()
        .await
        .unwrap()
        .server_side_encryption()
        .cloned();
    let tasks = [
        task(&bucket, "small.txt", None),
        task(&bucket, "big.bin", None),
        task(&bucket, "cold.bin", None),
        task(&bucket, "plain.txt", None),
        task(&bucket, "missing.txt", None),
    ];
    let rows = env.run(update_encryption(true), false, &tasks).await;
    assert_eq!(rows[0], ok_row(&bucket, "small.txt", ""));
    assert_eq!(
        rows[1],
        ok_row(&bucket, "big.bin", ""),
        "multipart, in place"
    );
    assert_eq!(
        rows[2],
        format!("{bucket},cold.bin,,failed,403,InvalidObjectState,The operation is not valid for the object's storage class")
    );
    if plain_sse.is_none() {
        assert_eq!(
            rows[3],
            format!("{bucket},plain.txt,,failed,400,InvalidRequest,the object is not encrypted: UpdateObjectEncryption changes only objects encrypted with SSE-S3 or SSE-KMS (S3PutObjectCopy can encrypt others)")
        );
    } else {
        // A server that encrypts every object by default, as S3 does: the object is SSE-S3.
        assert_eq!(rows[3], ok_row(&bucket, "plain.txt", ""));
    }
    assert_eq!(
        rows[4],
        format!("{bucket},missing.txt,,failed,404,NoSuchKey,The specified key does not exist.")
    );
    for (key, body, class) in [
        ("small.txt", &small, Some(StorageClass::StandardIa)),
        ("big.bin", &big, None),
    ] {
        let head = env
            .ctx
            .s3
            .head_object()
            .bucket(&bucket)
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.server_side_encryption(),
            Some(&ServerSideEncryption::AwsKms),
            "{key}"
        );
        assert_eq!(head.ssekms_key_id(), Some(KMS_KEY), "{key}");
        if key == "small.txt" {
            // moto keeps the Bucket Key setting of CopyObject only, not of a multipart upload.
            assert_eq!(head.bucket_key_enabled(), Some(true), "{key}");
        }
        assert_eq!(
            head.storage_class(),
            class.as_ref(),
            "{key}: the storage class is kept"
        );
        assert_eq!(head.content_type(), Some("text/x-kept"), "{key}");
        assert_eq!(
            head.metadata()
                .and_then(|m| m.get("origin"))
                .map(String::as_str),
            Some("camera"),
            "{key}"
        );
        assert_eq!(
            head.website_redirect_location(),
            Some("/elsewhere.html"),
            "{key}"
        );
        assert_eq!(&env.get(&bucket, key).await, body, "{key}: the same bytes");
        assert_eq!(
            env.tags(&bucket, key).await,
            BTreeMap::from([("kind".to_string(), "raw".to_string())]),
            "{key}"
        );
    }
    let uploads = env
        .ctx
        .s3
        .list_multipart_uploads()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "{:?}", uploads.uploads());
}

#[tokio::test]
async fn update_object_encryption_takes_only_current_versions_and_checks_its_key_at_creation() {
    let env = env().await;
    let bucket = env.new_bucket_with("encv", true, false).await;
    let old = put_encrypted(
        &env,
        &bucket,
        "doc.txt",
        pattern(10),
        StorageClass::Standard,
        true,
    )
    .await;
    let current = put_encrypted(
        &env,
        &bucket,
        "doc.txt",
        pattern(20),
        StorageClass::Standard,
        true,
    )
    .await;
    // One task at a time: run together, the current version's copy may land first and name a
    // newer current version in the other task's message.
    let rows = env
        .run(
            update_encryption(false),
            false,
            &[task(&bucket, "doc.txt", Some(&old))],
        )
        .await;
    assert_eq!(
        rows[0],
        format!("{bucket},doc.txt,{old},failed,400,InvalidRequest,\"version {old} is not the object's current version (that is {current}): batchops updates encryption by copying the object onto itself, which would make this version current again\"")
    );
    let rows = env
        .run(
            update_encryption(false),
            false,
            &[task(&bucket, "doc.txt", Some(&current))],
        )
        .await;
    assert_eq!(rows[0], ok_row(&bucket, "doc.txt", &current));
    let head = env
        .ctx
        .s3
        .head_object()
        .bucket(&bucket)
        .key("doc.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );
    assert_eq!(env.get(&bucket, "doc.txt").await, pattern(20));
    assert_ne!(head.version_id(), Some(current.as_str()), "a new version");

    let refused = creation_error(json!({"S3UpdateObjectEncryption": {}}), false);
    assert!(
        refused.contains("needs ObjectEncryption.SSEKMS"),
        "{refused}"
    );
    let alias = json!({"S3UpdateObjectEncryption": {"ObjectEncryption": {"SSEKMS": {"KMSKeyArn": "alias/my-key"}}}});
    let refused = creation_error(alias, false);
    assert!(refused.contains("must be a KMS key ARN"), "{refused}");
    let typo = json!({"S3UpdateObjectEncryption": {"ObjectEncryption": {"SSES3": {}}}});
    let refused = creation_error(typo, false);
    assert!(refused.contains("SSES3"), "{refused}");
}
