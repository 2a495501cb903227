//! The manifest generator and manifest object versions against a real moto server: every filter
//! selects exactly the expected keys, the generated manifest is written and reads back as a CSV
//! manifest, and `Manifest.Location.ObjectVersionId` reads that version with its ETag checked.

use crate::common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, ServerSideEncryption, StorageClass, VersioningConfiguration,
};
use batchops::error::Error;
use batchops::generator;
use batchops::job::{JobManifest, ManifestLocation, ManifestSpec, CSV_MANIFEST_FORMAT};
use batchops::manifest::{self, encode_key, Task};
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

async fn s3() -> aws_sdk_s3::Client {
    let config = common::sdk_config().await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .build(),
    )
}

async fn create_bucket(s3: &aws_sdk_s3::Client, name: &str) {
    s3.create_bucket()
        .bucket(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {name}: {e:?}"));
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, size: usize, class: StorageClass) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .storage_class(class)
        .body(ByteStream::from(vec![b'x'; size]))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
}

/// Runs the generator and returns its task count and the tasks it sent, in order.
async fn generate(
    s3: &aws_sdk_s3::Client,
    generator_json: &Value,
    job_id: &str,
) -> (batchops::Result<u64>, Vec<Task>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Task>>(4);
    let collect = tokio::spawn(async move {
        let mut tasks = Vec::new();
        while let Some(chunk) = rx.recv().await {
            assert!(!chunk.is_empty() && chunk.len() <= manifest::CHUNK_TASKS);
            tasks.extend(chunk);
        }
        tasks
    });
    let result = generator::read_tasks(s3, generator_json, job_id, tx).await;
    (result, collect.await.unwrap())
}

fn keys(tasks: &[Task]) -> BTreeSet<String> {
    tasks.iter().map(|t| t.key.clone()).collect()
}

fn set(keys: &[&str]) -> BTreeSet<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

fn generator_json(bucket: &str, filter: Value) -> Value {
    json!({"S3JobManifestGenerator": {
        "SourceBucket": format!("arn:aws:s3:::{bucket}"),
        "EnableManifestOutput": false,
        "Filter": filter
    }})
}

#[tokio::test]
async fn every_filter_selects_exactly_the_expected_keys() {
    let s3 = s3().await;
    let bucket = format!("gen-src-{}", common::unique_suffix());
    create_bucket(&s3, &bucket).await;
    // Older objects, then a time mark, then newer ones (LastModified has whole-second precision).
    let old: &[(&str, usize, StorageClass)] = &[
        ("logs/2023/a.gz", 10, StorageClass::Standard),
        ("logs/2023/b.csv", 200, StorageClass::Glacier),
        ("data/x y+z.csv", 50, StorageClass::StandardIa),
    ];
    let new: &[(&str, usize, StorageClass)] = &[
        ("logs/2024/c.gz", 0, StorageClass::Standard),
        ("logs/2024/d.csv", 1000, StorageClass::DeepArchive),
        ("data/été/e.gz", 99, StorageClass::IntelligentTiering),
        ("top.gz", 100, StorageClass::Standard),
    ];
    for (key, size, class) in old {
        put(&s3, &bucket, key, *size, class.clone()).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mark = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (key, size, class) in new {
        put(&s3, &bucket, key, *size, class.clone()).await;
    }
    let mark = mark.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);

    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({}),
            vec![
                "logs/2023/a.gz",
                "logs/2023/b.csv",
                "data/x y+z.csv",
                "logs/2024/c.gz",
                "logs/2024/d.csv",
                "data/été/e.gz",
                "top.gz",
            ],
        ),
        // One prefix (sent to S3 as the listing prefix).
        (
            json!({"KeyNameConstraint": {"MatchAnyPrefix": ["logs/"]}}),
            vec![
                "logs/2023/a.gz",
                "logs/2023/b.csv",
                "logs/2024/c.gz",
                "logs/2024/d.csv",
            ],
        ),
        // Two prefixes (filtered client-side).
        (
            json!({"KeyNameConstraint": {"MatchAnyPrefix": ["logs/2024/", "data/"]}}),
            vec![
                "logs/2024/c.gz",
                "logs/2024/d.csv",
                "data/x y+z.csv",
                "data/été/e.gz",
            ],
        ),
        (
            json!({"KeyNameConstraint": {"MatchAnySuffix": [".csv"]}}),
            vec!["logs/2023/b.csv", "data/x y+z.csv", "logs/2024/d.csv"],
        ),
        (
            json!({"KeyNameConstraint": {"MatchAnySubstring": ["/2024/", "été"]}}),
            vec!["logs/2024/c.gz", "logs/2024/d.csv", "data/été/e.gz"],
        ),
        (
            json!({"KeyNameConstraint": {"MatchAnyPrefix": ["logs/"], "MatchAnySuffix": [".gz"]}}),
            vec!["logs/2023/a.gz", "logs/2024/c.gz"],
        ),
        (
            json!({"CreatedAfter": mark}),
            vec![
                "logs/2024/c.gz",
                "logs/2024/d.csv",
                "data/été/e.gz",
                "top.gz",
            ],
        ),
        (
            json!({"CreatedBefore": mark}),
            vec!["logs/2023/a.gz", "logs/2023/b.csv", "data/x y+z.csv"],
        ),
        (
            json!({"ObjectSizeGreaterThanBytes": 99}),
            vec!["logs/2023/b.csv", "logs/2024/d.csv", "top.gz"],
        ),
        (
            json!({"ObjectSizeLessThanBytes": 50}),
            vec!["logs/2023/a.gz", "logs/2024/c.gz"],
        ),
        (
            json!({"MatchAnyStorageClass": ["GLACIER", "DEEP_ARCHIVE"]}),
            vec!["logs/2023/b.csv", "logs/2024/d.csv"],
        ),
        (
            json!({"MatchAnyStorageClass": ["STANDARD"]}),
            vec!["logs/2023/a.gz", "logs/2024/c.gz", "top.gz"],
        ),
        (
            json!({"MatchAnyStorageClass": ["STANDARD_IA", "INTELLIGENT_TIERING"]}),
            vec!["data/x y+z.csv", "data/été/e.gz"],
        ),
        (
            json!({
                "CreatedAfter": mark,
                "ObjectSizeGreaterThanBytes": 0,
                "ObjectSizeLessThanBytes": 1000,
                "MatchAnyStorageClass": ["STANDARD", "INTELLIGENT_TIERING"],
                "KeyNameConstraint": {"MatchAnySuffix": [".gz"]}
            }),
            vec!["data/été/e.gz", "top.gz"],
        ),
        (
            json!({"KeyNameConstraint": {"MatchAnyPrefix": ["nothing/"]}}),
            vec![],
        ),
    ];
    for (filter, expected) in cases {
        let (result, tasks) = generate(&s3, &generator_json(&bucket, filter.clone()), "j").await;
        assert_eq!(result.unwrap(), tasks.len() as u64, "{filter}");
        assert_eq!(keys(&tasks), set(&expected), "{filter}");
        assert!(tasks
            .iter()
            .all(|t| t.bucket == bucket && t.version_id.is_none()));
    }
}

#[tokio::test]
async fn generated_manifest_is_written_and_reads_back() {
    let s3 = s3().await;
    let id = common::unique_suffix();
    let source = format!("gen-src-{id}");
    let output = format!("gen-out-{id}");
    create_bucket(&s3, &source).await;
    create_bucket(&s3, &output).await;
    let all = [
        "a/one",
        "a/two words",
        "a/plus+percent%",
        "a/comma,quote\"",
        "b/skip",
    ];
    for key in all {
        put(&s3, &source, key, 1, StorageClass::Standard).await;
    }
    let request = json!({"S3JobManifestGenerator": {
        "SourceBucket": format!("arn:aws:s3:::{source}"),
        "EnableManifestOutput": true,
        "ManifestOutputLocation": {
            "Bucket": format!("arn:aws:s3:::{output}"),
            "ManifestPrefix": "generated/",
            "ManifestFormat": "S3InventoryReport_CSV_20211130",
            "ManifestEncryption": {"SSES3": {}}
        },
        "Filter": {"KeyNameConstraint": {"MatchAnyPrefix": ["a/"]}}
    }});
    generator::validate(&request).unwrap();
    let (result, tasks) = generate(&s3, &request, "job-1234").await;
    assert_eq!(result.unwrap(), 4);

    // As S3 writes a generated manifest: an S3 Inventory report, manifest.json and a gzipped
    // CSV data file, read back here as a job reads an inventory manifest (its MD5 checked).
    let key = "generated/job-job-1234/manifest.json";
    let written = read_generated(&s3, &output, key).await;
    let without_sizes: Vec<Task> = written
        .iter()
        .map(|t| Task {
            size: None,
            ..t.clone()
        })
        .collect();
    assert_eq!(
        without_sizes, tasks,
        "the manifest lists the tasks, in order"
    );
    assert_eq!(keys(&written), set(&all[..4]));
    let json: Value = serde_json::from_slice(
        &s3.get_object()
            .bucket(&output)
            .key(key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes(),
    )
    .unwrap();
    assert_eq!(json["sourceBucket"], source.as_str());
    assert_eq!(json["destinationBucket"], format!("arn:aws:s3:::{output}"));
    assert_eq!(json["fileFormat"], "CSV");
    assert_eq!(json["fileSchema"], "Bucket, Key");
    let data_key = json["files"][0]["key"].as_str().unwrap();
    assert_eq!(data_key, "generated/job-job-1234/data/job-1234.csv.gz");
    // Rows are `"bucket","url-encoded key"`, gzipped; both objects encrypted as asked.
    let raw = s3
        .get_object()
        .bucket(&output)
        .key(data_key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        raw.server_side_encryption().map(|s| s.as_str()),
        Some("AES256")
    );
    let gz = raw.body.collect().await.unwrap().to_vec();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut text).unwrap();
    assert!(
        text.lines()
            .any(|l| l == format!("\"{source}\",\"{}\"", encode_key("a/two words"))),
        "{text}"
    );

    // No match: an empty manifest is still written.
    let mut empty = request.clone();
    empty["S3JobManifestGenerator"]["Filter"] =
        json!({"KeyNameConstraint": {"MatchAnyPrefix": ["none/"]}});
    let (result, tasks) = generate(&s3, &empty, "job-empty").await;
    assert_eq!(result.unwrap(), 0);
    assert!(tasks.is_empty());
    assert!(
        read_generated(&s3, &output, "generated/job-job-empty/manifest.json")
            .await
            .is_empty()
    );
}

/// More than one listing page, and a generated manifest of long keys (3,000 objects of 1 KB
/// keys whose encoding is three times their length) read back whole.
#[tokio::test]
async fn a_large_listing_pages_and_its_generated_manifest_reads_back() {
    let s3 = s3().await;
    let id = common::unique_suffix();
    let source = format!("gen-src-{id}");
    let output = format!("gen-out-{id}");
    create_bucket(&s3, &source).await;
    create_bucket(&s3, &output).await;
    let count = 3000;
    let long = "é".repeat(500);
    let all: Vec<String> = (0..count).map(|i| format!("big/{i:05}/{long}")).collect();
    futures::stream::iter(all.iter())
        .map(|key| {
            let s3 = s3.clone();
            let source = source.clone();
            async move { put(&s3, &source, key, 0, StorageClass::Standard).await }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    let request = json!({"S3JobManifestGenerator": {
        "SourceBucket": format!("arn:aws:s3:::{source}"),
        "EnableManifestOutput": true,
        "ManifestOutputLocation": {
            "Bucket": format!("arn:aws:s3:::{output}"),
            "ManifestFormat": "S3InventoryReport_CSV_20211130"
        }
    }});
    let (result, tasks) = generate(&s3, &request, "big").await;
    assert_eq!(result.unwrap(), count as u64);
    let expected: BTreeSet<String> = all.iter().cloned().collect();
    assert_eq!(keys(&tasks), expected);
    assert_eq!(tasks.len(), count, "no key twice");

    let written = read_generated(&s3, &output, "job-big/manifest.json").await;
    assert_eq!(written.len(), count);
    assert_eq!(
        keys(&written),
        expected,
        "every object once, read back from the gzipped file"
    );
}

#[tokio::test]
async fn generator_errors_are_clear() {
    let s3 = s3().await;
    let missing = format!("gen-missing-{}", common::unique_suffix());
    let (result, tasks) = generate(&s3, &generator_json(&missing, json!({})), "j").await;
    match result {
        Err(Error::Manifest(reason)) => assert!(
            reason.starts_with(&format!(
                "manifest generator: cannot list the source bucket s3://{missing}: NoSuchBucket (HTTP 404)"
            )),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(tasks.is_empty());

    // Refused filters fail before anything is listed.
    let (result, _) = generate(
        &s3,
        &generator_json(&missing, json!({"ObjectReplicationStatuses": ["PENDING"]})),
        "j",
    )
    .await;
    match result {
        Err(Error::Manifest(reason)) => assert!(
            reason.contains("Filter.ObjectReplicationStatuses: \"PENDING\" is not one of"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
}

// --- Manifest.Location.ObjectVersionId -------------------------------------------------------

fn csv_manifest(bucket: &str, key: &str, version: Option<&str>, etag: Option<&str>) -> JobManifest {
    JobManifest {
        spec: ManifestSpec {
            format: CSV_MANIFEST_FORMAT.into(),
            fields: Some(vec!["Bucket".into(), "Key".into()]),
        },
        location: ManifestLocation {
            object_arn: format!("arn:aws:s3:::{bucket}/{key}"),
            object_version_id: version.map(str::to_string),
            etag: etag.map(str::to_string),
        },
    }
}

/// Reads a generated manifest (its manifest.json) as a job's inventory manifest reads it.
async fn read_generated(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<Task> {
    let manifest = JobManifest {
        spec: ManifestSpec {
            format: batchops::job::INVENTORY_CSV_FORMAT.into(),
            fields: None,
        },
        location: ManifestLocation {
            object_arn: format!("arn:aws:s3:::{bucket}/{key}"),
            object_version_id: None,
            etag: None,
        },
    };
    read_manifest(s3, &manifest)
        .await
        .unwrap_or_else(|e| panic!("read s3://{bucket}/{key}: {e}"))
}

async fn read_manifest(s3: &aws_sdk_s3::Client, m: &JobManifest) -> batchops::Result<Vec<Task>> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Task>>(4);
    let collect = tokio::spawn(async move {
        let mut tasks = Vec::new();
        while let Some(chunk) = rx.recv().await {
            tasks.extend(chunk);
        }
        tasks
    });
    let result = manifest::read_tasks(s3, m, tx).await;
    let tasks = collect.await.unwrap();
    result.map(|n| {
        assert_eq!(n, tasks.len() as u64);
        tasks
    })
}

#[tokio::test]
async fn manifest_object_version_is_read_and_its_etag_checked() {
    let s3 = s3().await;
    let bucket = format!("gen-versions-{}", common::unique_suffix());
    create_bucket(&s3, &bucket).await;
    s3.put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let write = |body: &'static str| {
        let s3 = s3.clone();
        let bucket = bucket.clone();
        async move {
            let out = s3
                .put_object()
                .bucket(&bucket)
                .key("manifest.csv")
                .body(ByteStream::from_static(body.as_bytes()))
                .send()
                .await
                .unwrap();
            (
                out.version_id().unwrap().to_string(),
                out.e_tag().unwrap().to_string(),
            )
        }
    };
    let (v1, etag1) = write("src,old-1\nsrc,old-2\n").await;
    let (v2, etag2) = write("src,new-1\n").await;
    assert_ne!(v1, v2);

    let old = read_manifest(
        &s3,
        &csv_manifest(&bucket, "manifest.csv", Some(&v1), Some(&etag1)),
    )
    .await
    .unwrap();
    assert_eq!(keys(&old), set(&["old-1", "old-2"]));
    let new = read_manifest(&s3, &csv_manifest(&bucket, "manifest.csv", Some(&v2), None))
        .await
        .unwrap();
    assert_eq!(keys(&new), set(&["new-1"]));
    let latest = read_manifest(
        &s3,
        &csv_manifest(&bucket, "manifest.csv", None, Some(&etag2)),
    )
    .await
    .unwrap();
    assert_eq!(keys(&latest), set(&["new-1"]));

    // The old version with the new version's ETag: refused with the ETag reason.
    match read_manifest(&s3, &csv_manifest(&bucket, "manifest.csv", Some(&v1), Some(&etag2))).await
    {
        Err(Error::Manifest(reason)) => assert_eq!(
            reason,
            format!(
                "manifest s3://{bucket}/manifest.csv: ETag mismatch: the job expects \"{}\" but the object's ETag is \"{}\"",
                etag2.trim_matches('"'),
                etag1.trim_matches('"')
            )
        ),
        other => panic!("{other:?}"),
    }

    // A version that does not exist.
    match read_manifest(
        &s3,
        &csv_manifest(&bucket, "manifest.csv", Some("no-such-version"), None),
    )
    .await
    {
        Err(Error::Manifest(reason)) => assert!(
            reason.starts_with(&format!(
                "manifest s3://{bucket}/manifest.csv: cannot read the object:"
            )),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
}

/// Puts an object with the given encryption (`None`: none) and tags.
async fn put_encrypted(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    sse: Option<(ServerSideEncryption, Option<&str>, bool)>,
    tagging: &str,
) {
    let mut put = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .tagging(tagging)
        .body(ByteStream::from_static(b"x"));
    if let Some((sse, key_id, bucket_key)) = sse {
        put = put
            .server_side_encryption(sse)
            .set_ssekms_key_id(key_id.map(String::from))
            .bucket_key_enabled(bucket_key);
    }
    put.send()
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e:?}"));
}

#[tokio::test]
async fn encryption_replication_status_and_eligibility_filters_look_at_each_object() {
    let s3 = s3().await;
    let bucket = format!("gen-details-{}", common::unique_suffix());
    create_bucket(&s3, &bucket).await;
    let k1 = "arn:aws:kms:us-east-1:123456789012:key/k1";
    let k2 = "arn:aws:kms:us-east-1:123456789012:key/k2";
    for (key, sse, tagging) in [
        ("logs/plain", None, "team=red"),
        (
            "logs/s3",
            Some((ServerSideEncryption::Aes256, None, false)),
            "team=red",
        ),
        (
            "data/k1",
            Some((ServerSideEncryption::AwsKms, Some(k1), true)),
            "team=blue",
        ),
        (
            "data/k2",
            Some((ServerSideEncryption::AwsKms, Some(k2), false)),
            "team=red",
        ),
        (
            "other/k1",
            Some((ServerSideEncryption::AwsKms, Some(k1), false)),
            "team=blue",
        ),
    ] {
        put_encrypted(&s3, &bucket, key, sse, tagging).await;
    }
    let selected = |filter: Value| {
        let s3 = &s3;
        let bucket = &bucket;
        async move {
            let (result, tasks) = generate(s3, &generator_json(bucket, filter.clone()), "j").await;
            assert_eq!(result.unwrap(), tasks.len() as u64, "{filter}");
            keys(&tasks)
        }
    };
    assert_eq!(
        selected(json!({"MatchAnyObjectEncryption": [{"NOTSSE": {}}, {"SSES3": {}}]})).await,
        set(&["logs/plain", "logs/s3"])
    );
    assert_eq!(
        selected(json!({"MatchAnyObjectEncryption": [{"SSEKMS": {"KmsKeyArn": k1}}]})).await,
        set(&["data/k1", "other/k1"])
    );
    assert_eq!(
        selected(json!({"MatchAnyObjectEncryption": [{"SSEKMS": {"KmsKeyArn": k1, "BucketKeyEnabled": true}}]})).await,
        set(&["data/k1"])
    );
    // With the listing's filters: only the objects under data/ are looked at.
    assert_eq!(
        selected(json!({"KeyNameConstraint": {"MatchAnyPrefix": ["data/"]},
                        "MatchAnyObjectEncryption": [{"SSEKMS": {}}]}))
        .await,
        set(&["data/k1", "data/k2"])
    );
    // moto replicates nothing: every object has no replication status.
    assert_eq!(
        selected(json!({"ObjectReplicationStatuses": ["NONE"]}))
            .await
            .len(),
        5
    );
    assert!(
        selected(json!({"ObjectReplicationStatuses": ["COMPLETED", "FAILED"]}))
            .await
            .is_empty()
    );

    // EligibleForReplication: a bucket without a replication configuration fails the listing
    // with the reason; with one, the objects its enabled rules take (a prefix rule; a prefix and
    // tag rule; a disabled rule takes nothing).
    let (result, _) = generate(
        &s3,
        &generator_json(&bucket, json!({"EligibleForReplication": true})),
        "j",
    )
    .await;
    match result {
        Err(Error::Manifest(reason)) => assert!(
            reason.contains("needs a replication configuration") && reason.contains(&bucket),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
    // moto keeps a replication rule's status but not its filter (it answers every rule with an
    // empty prefix), so the configuration comes as S3 writes it: a prefix rule, a prefix-and-tag
    // rule, and a disabled rule (which takes nothing).
    let configuration = r#"<?xml version="1.0" encoding="UTF-8"?>
<ReplicationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Role>arn:aws:iam::123456789012:role/replication</Role>
  <Rule><ID>logs</ID><Priority>1</Priority><Status>Enabled</Status>
    <Filter><Prefix>logs/</Prefix></Filter>
    <Destination><Bucket>arn:aws:s3:::replica</Bucket></Destination>
    <DeleteMarkerReplication><Status>Disabled</Status></DeleteMarkerReplication></Rule>
  <Rule><ID>blue-data</ID><Priority>2</Priority><Status>Enabled</Status>
    <Filter><And><Prefix>data/</Prefix><Tag><Key>team</Key><Value>blue</Value></Tag></And></Filter>
    <Destination><Bucket>arn:aws:s3:::replica</Bucket></Destination>
    <DeleteMarkerReplication><Status>Disabled</Status></DeleteMarkerReplication></Rule>
  <Rule><ID>other</ID><Priority>3</Priority><Status>Disabled</Status>
    <Filter><Prefix>other/</Prefix></Filter>
    <Destination><Bucket>arn:aws:s3:::replica</Bucket></Destination>
    <DeleteMarkerReplication><Status>Disabled</Status></DeleteMarkerReplication></Rule>
</ReplicationConfiguration>"#;
    let config = common::sdk_config().await;
    let plan = batchops::fault::FaultPlan::new(
        1,
        vec![batchops::fault::FaultRule::new(
            "S3",
            "GetBucketReplication",
            batchops::fault::Fault::Answer {
                status: 200,
                headers: vec![("content-type".into(), "application/xml".into())],
                body: configuration.into(),
            },
        )],
    );
    let s3 = batchops::Context::from_config(&config, Default::default())
        .with_faults(&config, plan)
        .unwrap()
        .s3;
    let selected = |filter: Value| {
        let s3 = &s3;
        let bucket = &bucket;
        async move {
            let (result, tasks) = generate(s3, &generator_json(bucket, filter.clone()), "j").await;
            assert_eq!(result.unwrap(), tasks.len() as u64, "{filter}");
            keys(&tasks)
        }
    };
    assert_eq!(
        selected(json!({"EligibleForReplication": true})).await,
        set(&["logs/plain", "logs/s3", "data/k1"])
    );
    assert_eq!(
        selected(
            json!({"EligibleForReplication": true, "ObjectReplicationStatuses": ["NONE", "FAILED"],
                        "MatchAnyObjectEncryption": [{"SSEKMS": {}}]})
        )
        .await,
        set(&["data/k1"])
    );
    assert_eq!(
        selected(json!({"EligibleForReplication": false}))
            .await
            .len(),
        5
    );
}
