use super::*;

use md5::{Digest, Md5};

use crate::error::{Error, Result};
use std::io::Write;

async fn client() -> aws_sdk_s3::Client {
    let endpoint = std::env::var("BATCHOPS_TEST_S3_ENDPOINT")
        .expect("set BATCHOPS_TEST_S3_ENDPOINT to a moto server URL");
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .http_client(crate::context::https_client())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) -> String {
    let _ = s3.create_bucket().bucket(bucket).send().await;
    let out = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .unwrap();
    out.e_tag().unwrap().to_string()
}

fn job_manifest(format: &str, arn: &str, etag: Option<&str>) -> JobManifest {
    JobManifest {
        spec: ManifestSpec {
            format: format.into(),
            fields: (format == CSV_MANIFEST_FORMAT)
                .then(|| vec!["Bucket".to_string(), "Key".to_string()]),
        },
        location: ManifestLocation {
            object_arn: arn.into(),
            object_version_id: None,
            etag: etag.map(str::to_string),
        },
    }
}

async fn read_all(
    s3: &aws_sdk_s3::Client,
    manifest: &JobManifest,
) -> (Result<u64>, Vec<Vec<Task>>) {
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let collect = tokio::spawn(async move {
        let mut chunks = Vec::new();
        while let Some(chunk) = rx.recv().await {
            chunks.push(chunk);
        }
        chunks
    });
    let result = read_tasks(s3, manifest, tx).await;
    (result, collect.await.unwrap())
}

#[tokio::test]
#[ignore = "needs BATCHOPS_TEST_S3_ENDPOINT (a moto server)"]
async fn read_tasks_from_s3() {
    let s3 = client().await;
    let rows: String = (0..2500)
        .map(|i| format!("src,{}\n", encode_key(&format!("dir/key {i}+%,é"))))
        .collect();
    let etag = put(&s3, "manifests", "m.csv", rows.into_bytes()).await;

    // CSV manifest, pinned by its ETag, arrives in order in chunks of CHUNK_TASKS.
    let manifest = job_manifest(
        CSV_MANIFEST_FORMAT,
        "arn:aws:s3:::manifests/m.csv",
        Some(&etag),
    );
    let (result, chunks) = read_all(&s3, &manifest).await;
    assert_eq!(result.unwrap(), 2500);
    let sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![1000, 1000, 500]);
    assert_eq!(chunks[2][499].key, "dir/key 2499+%,é");

    // Wrong ETag.
    let manifest = job_manifest(
        CSV_MANIFEST_FORMAT,
        "arn:aws:s3:::manifests/m.csv",
        Some("\"0000\""),
    );
    match read_all(&s3, &manifest).await {
        (Err(Error::Manifest(reason)), chunks) => {
            assert!(chunks.is_empty());
            assert_eq!(
                reason,
                format!("manifest s3://manifests/m.csv: ETag mismatch: the job expects \"0000\" but the object's ETag is {etag}")
            );
        }
        other => panic!("{other:?}"),
    }

    // Missing object.
    let manifest = job_manifest(CSV_MANIFEST_FORMAT, "arn:aws:s3:::manifests/none.csv", None);
    match read_all(&s3, &manifest).await.0 {
        Err(Error::Manifest(reason)) => assert!(
            reason.starts_with(
                "manifest s3://manifests/none.csv: cannot read the object: NoSuchKey (HTTP 404)"
            ),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }

    // Receiver dropped: reading stops quietly.
    let manifest = job_manifest(CSV_MANIFEST_FORMAT, "arn:aws:s3:::manifests/m.csv", None);
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    drop(rx);
    assert!(read_tasks(&s3, &manifest, tx).await.unwrap() <= 1000);

    // Inventory: two gzipped data files, a delete marker, then an MD5 mismatch.
    let gzip = |data: &str| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data.as_bytes()).unwrap();
        encoder.finish().unwrap()
    };
    let file1 = gzip("\"src\",\"a%20b\",\"v1\",\"false\"\n\"src\",\"gone\",\"v2\",\"true\"\n");
    let file2 = gzip("\"src\",\"c%2Bd\",\"\",\"false\"\n");
    put(&s3, "inventory", "inv/data/1.csv.gz", file1.clone()).await;
    put(&s3, "inventory", "inv/data/2.csv.gz", file2.clone()).await;
    let inventory = |md5_2: String| {
        serde_json::json!({
            "sourceBucket": "src",
            "destinationBucket": "arn:aws:s3:::inventory",
            "version": "2016-11-30",
            "creationTimestamp": "1514944800000",
            "fileFormat": "CSV",
            "fileSchema": "Bucket, Key, VersionId, IsDeleteMarker",
            "files": [
                {"key": "inv/data/1.csv.gz", "size": file1.len(), "MD5checksum": hex::encode(Md5::digest(&file1))},
                {"key": "inv/data/2.csv.gz", "size": file2.len(), "MD5checksum": md5_2}
            ]
        })
        .to_string()
        .into_bytes()
    };
    put(
        &s3,
        "inventory",
        "inv/manifest.json",
        inventory(hex::encode(Md5::digest(&file2))),
    )
    .await;
    let manifest = job_manifest(
        INVENTORY_CSV_FORMAT,
        "arn:aws:s3:::inventory/inv/manifest.json",
        None,
    );
    let (result, chunks) = read_all(&s3, &manifest).await;
    assert_eq!(result.unwrap(), 2);
    let tasks: Vec<Task> = chunks.into_iter().flatten().collect();
    assert_eq!(
        tasks,
        vec![
            Task {
                bucket: "src".into(),
                key: "a b".into(),
                version_id: Some("v1".into()),
                size: None,
            },
            Task {
                bucket: "src".into(),
                key: "c+d".into(),
                version_id: None,
                size: None,
            },
        ]
    );

    put(
        &s3,
        "inventory",
        "inv/manifest.json",
        inventory("00".repeat(16)),
    )
    .await;
    match read_all(&s3, &manifest).await.0 {
        Err(Error::Manifest(reason)) => assert!(
            reason
                .starts_with("inventory data file s3://inventory/inv/data/2.csv.gz: MD5 mismatch"),
            "{reason}"
        ),
        other => panic!("{other:?}"),
    }
}
