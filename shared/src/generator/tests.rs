use super::*;
use serde_json::json;

fn object(key: &str, size: i64, modified: &str, class: Option<&str>) -> ObjectSummary {
    ObjectSummary {
        key: key.into(),
        size,
        last_modified: Some(
            DateTime::parse_from_rfc3339(modified)
                .unwrap()
                .with_timezone(&Utc),
        ),
        storage_class: class.map(str::to_string),
    }
}

fn filter(value: serde_json::Value) -> JobManifestGeneratorFilter {
    let filter: JobManifestGeneratorFilter = serde_json::from_value(value).unwrap();
    filter.validate().unwrap();
    filter
}

fn generator(filter: serde_json::Value) -> serde_json::Value {
    json!({"S3JobManifestGenerator": {
        "SourceBucket": "arn:aws:s3:::src-bucket",
        "EnableManifestOutput": false,
        "Filter": filter
    }})
}

fn refusal(value: serde_json::Value) -> String {
    match validate(&value) {
        Err(Error::InvalidRequest(reason)) => reason,
        other => panic!("{value}: {other:?}"),
    }
}

const T: &str = "2024-06-01T12:00:00Z";

#[test]
fn no_filter_selects_everything() {
    let f = JobManifestGeneratorFilter::default();
    assert!(matches(&f, &object("a", 0, T, None)));
    assert!(matches(&f, &object("b/c", 10, T, Some("GLACIER"))));
}

#[test]
fn created_after_is_strict() {
    let f = filter(json!({"CreatedAfter": T}));
    assert!(!matches(&f, &object("k", 1, "2024-06-01T11:59:59Z", None)));
    assert!(!matches(&f, &object("k", 1, T, None)));
    assert!(matches(&f, &object("k", 1, "2024-06-01T12:00:01Z", None)));
}

#[test]
fn created_before_is_strict() {
    let f = filter(json!({"CreatedBefore": T}));
    assert!(matches(&f, &object("k", 1, "2024-06-01T11:59:59Z", None)));
    assert!(!matches(&f, &object("k", 1, T, None)));
    assert!(!matches(&f, &object("k", 1, "2024-06-02T00:00:00Z", None)));
}

#[test]
fn creation_filters_leave_out_objects_without_a_time() {
    let f = filter(json!({"CreatedBefore": T}));
    let mut o = object("k", 1, T, None);
    o.last_modified = None;
    assert!(!matches(&f, &o));
}

#[test]
fn timestamps_take_epoch_seconds_too() {
    let f = filter(json!({"CreatedAfter": 1717243200}));
    assert_eq!(
        f.created_after,
        Some(DateTime::parse_from_rfc3339(T).unwrap().with_timezone(&Utc))
    );
    let reason = refusal(generator(json!({"CreatedAfter": "yesterday"})));
    assert!(
        reason.contains("\"yesterday\" is not a timestamp"),
        "{reason}"
    );
}

#[test]
fn size_bounds_are_strict() {
    let f = filter(json!({"ObjectSizeGreaterThanBytes": 10, "ObjectSizeLessThanBytes": 20}));
    assert!(!matches(&f, &object("k", 10, T, None)));
    assert!(matches(&f, &object("k", 11, T, None)));
    assert!(matches(&f, &object("k", 19, T, None)));
    assert!(!matches(&f, &object("k", 20, T, None)));
}

#[test]
fn storage_class_absent_means_standard() {
    let f = filter(json!({"MatchAnyStorageClass": ["STANDARD", "GLACIER"]}));
    assert!(matches(&f, &object("k", 1, T, None)));
    assert!(matches(&f, &object("k", 1, T, Some("GLACIER"))));
    assert!(!matches(&f, &object("k", 1, T, Some("STANDARD_IA"))));
    let f = filter(json!({"MatchAnyStorageClass": ["GLACIER_IR"]}));
    assert!(!matches(&f, &object("k", 1, T, None)));
}

#[test]
fn key_constraints_match_any_within_and_all_across() {
    let f = filter(json!({"KeyNameConstraint": {"MatchAnyPrefix": ["logs/", "data/"]}}));
    assert!(matches(&f, &object("logs/a", 1, T, None)));
    assert!(matches(&f, &object("data/b", 1, T, None)));
    assert!(!matches(&f, &object("other/logs/a", 1, T, None)));

    let f = filter(json!({"KeyNameConstraint": {"MatchAnySuffix": [".csv"]}}));
    assert!(matches(&f, &object("a/b.csv", 1, T, None)));
    assert!(!matches(&f, &object("a/b.csv.gz", 1, T, None)));

    let f = filter(json!({"KeyNameConstraint": {"MatchAnySubstring": ["2024"]}}));
    assert!(matches(&f, &object("x/2024/y", 1, T, None)));
    assert!(!matches(&f, &object("x/2023/y", 1, T, None)));

    let f = filter(json!({"KeyNameConstraint": {
        "MatchAnyPrefix": ["logs/"], "MatchAnySuffix": [".gz"], "MatchAnySubstring": ["/2024/"]
    }}));
    assert!(matches(&f, &object("logs/2024/a.gz", 1, T, None)));
    assert!(!matches(&f, &object("logs/2024/a.csv", 1, T, None)));
    assert!(!matches(&f, &object("logs/2023/a.gz", 1, T, None)));
    assert!(!matches(&f, &object("data/2024/a.gz", 1, T, None)));
}

#[test]
fn all_filters_must_hold() {
    let f = filter(json!({
        "CreatedAfter": "2024-01-01T00:00:00Z",
        "ObjectSizeLessThanBytes": 100,
        "MatchAnyStorageClass": ["STANDARD"],
        "KeyNameConstraint": {"MatchAnyPrefix": ["a"]}
    }));
    assert!(matches(&f, &object("ab", 5, T, None)));
    assert!(!matches(&f, &object("ab", 500, T, None)));
    assert!(!matches(&f, &object("ab", 5, "2023-12-31T00:00:00Z", None)));
    assert!(!matches(&f, &object("ab", 5, T, Some("GLACIER"))));
    assert!(!matches(&f, &object("b", 5, T, None)));
}

#[test]
fn listing_prefix_only_for_a_single_prefix() {
    let one = filter(json!({"KeyNameConstraint": {"MatchAnyPrefix": ["logs/"]}}));
    assert_eq!(one.listing_prefix().as_deref(), Some("logs/"));
    let two = filter(json!({"KeyNameConstraint": {"MatchAnyPrefix": ["a", "b"]}}));
    assert_eq!(two.listing_prefix(), None);
    assert_eq!(JobManifestGeneratorFilter::default().listing_prefix(), None);
}

#[test]
fn detail_filters_are_checked_at_creation() {
    for (value, expected) in [
        (
            json!({"ObjectReplicationStatuses": ["PENDING"]}),
            "Filter.ObjectReplicationStatuses: \"PENDING\" is not one of COMPLETED, FAILED, REPLICA, NONE",
        ),
        (
            json!({"ObjectReplicationStatuses": []}),
            "Filter.ObjectReplicationStatuses must name at least one status",
        ),
        (
            json!({"MatchAnyObjectEncryption": []}),
            "Filter.MatchAnyObjectEncryption must hold at least one encryption type",
        ),
        (
            json!({"MatchAnyObjectEncryption": [{"SSES3": {}, "NOTSSE": {}}]}),
            "each entry names exactly one of SSES3, SSEKMS, DSSEKMS, SSEC, NOTSSE",
        ),
    ] {
        let reason = refusal(generator(value.clone()));
        assert!(reason.contains(expected), "{value}: {reason}");
    }
    let unknown = refusal(generator(
        json!({"MatchAnyObjectEncryption": [{"SSE-S3": {}}]}),
    ));
    assert!(unknown.contains("SSE-S3"), "{unknown}");
    let accepted = filter(json!({
        "EligibleForReplication": true,
        "ObjectReplicationStatuses": ["NONE", "FAILED"],
        "MatchAnyObjectEncryption": [{"SSEKMS": {"KmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/k"}}, {"NOTSSE": {}}]
    }));
    assert!(accepted.needs_lookup());
    assert!(!filter(json!({"EligibleForReplication": false})).needs_lookup());
}

#[test]
fn bad_filters_are_refused() {
    let cases = [
        (
            json!({"MatchAnyStorageClass": ["COLD"]}),
            "\"COLD\" is not one of STANDARD",
        ),
        (
            json!({"MatchAnyStorageClass": []}),
            "at least one storage class",
        ),
        (
            json!({"ObjectSizeLessThanBytes": -1}),
            "ObjectSizeLessThanBytes must be 0 or greater",
        ),
        (
            json!({"KeyNameConstraint": {"MatchAnyPrefix": []}}),
            "MatchAnyPrefix must hold at least one string",
        ),
        (
            json!({"KeyNameConstraint": {"MatchAnySuffix": [""]}}),
            "1 to 1024 characters",
        ),
        (
            json!({"KeyNameConstraint": {"MatchAnyInfix": ["x"]}}),
            "unknown field `MatchAnyInfix`",
        ),
        (json!({"SizeAbove": 1}), "unknown field `SizeAbove`"),
    ];
    for (filter, expected) in cases {
        let reason = refusal(generator(filter.clone()));
        assert!(reason.contains(expected), "{filter}: {reason}");
    }
}

#[test]
fn generator_shape_is_checked() {
    let base = json!({
        "SourceBucket": "arn:aws:s3:::src-bucket",
        "EnableManifestOutput": true,
        "ManifestOutputLocation": {
            "Bucket": "arn:aws:s3:::out-bucket",
            "ManifestPrefix": "generated",
            "ManifestFormat": GENERATED_MANIFEST_FORMAT,
            "ManifestEncryption": {"SSEKMS": {"KeyId": "arn:aws:kms:us-east-1:111122223333:key/k"}}
        },
        "ExpectedBucketOwner": "111122223333"
    });
    validate(&json!({ "S3JobManifestGenerator": base })).unwrap();

    let with = |path: &[&str], value: serde_json::Value| {
        let mut g = base.clone();
        let mut at = &mut g;
        for p in &path[..path.len() - 1] {
            at = &mut at[*p];
        }
        at[path[path.len() - 1]] = value;
        json!({ "S3JobManifestGenerator": g })
    };
    let cases = [
        (
            with(&["SourceBucket"], json!("arn:aws:s3:::")),
            "SourceBucket \"arn:aws:s3:::\" is not a bucket ARN",
        ),
        (
            with(&["ExpectedBucketOwner"], json!("12")),
            "ExpectedBucketOwner \"12\" is not a 12-digit",
        ),
        (
            with(
                &["ManifestOutputLocation", "ManifestFormat"],
                json!("S3BatchOperations_CSV_20180820"),
            ),
            "ManifestFormat must be S3InventoryReport_CSV_20211130",
        ),
        (
            with(
                &["ManifestOutputLocation", "Bucket"],
                json!("arn:aws:s3:::Bad_Bucket"),
            ),
            "ManifestOutputLocation.Bucket",
        ),
        (
            with(&["ManifestOutputLocation", "ManifestEncryption"], json!({})),
            "exactly one of SSES3 and SSEKMS",
        ),
        (
            with(&["ManifestOutputLocation"], serde_json::Value::Null),
            "ManifestOutputLocation is required when EnableManifestOutput is true",
        ),
    ];
    for (value, expected) in cases {
        let reason = refusal(value.clone());
        assert!(reason.contains(expected), "{value}: {reason}");
    }
    let reason =
        refusal(json!({"S3JobManifestGenerator": {"SourceBucket": "arn:aws:s3:::src-bucket"}}));
    assert!(
        reason.contains("missing field `EnableManifestOutput`"),
        "{reason}"
    );
    let reason = refusal(json!({"OtherGenerator": {}}));
    assert!(
        reason.starts_with("ManifestGenerator: unknown field `OtherGenerator`"),
        "{reason}"
    );
}

#[test]
fn manifest_key_layout() {
    let mut location = S3ManifestOutputLocation {
        expected_manifest_bucket_owner: None,
        bucket: "arn:aws:s3:::out".into(),
        manifest_prefix: Some("gen/".into()),
        manifest_encryption: None,
        manifest_format: GENERATED_MANIFEST_FORMAT.into(),
    };
    assert_eq!(location.manifest_key("j1"), "gen/job-j1/manifest.json");
    assert_eq!(location.data_key("j1"), "gen/job-j1/data/j1.csv.gz");
    location.manifest_prefix = None;
    assert_eq!(location.manifest_key("j1"), "job-j1/manifest.json");
    assert_eq!(location.data_key("j1"), "job-j1/data/j1.csv.gz");
}

#[test]
fn serialises_back_with_aws_names() {
    let value = json!({"S3JobManifestGenerator": {
        "SourceBucket": "arn:aws:s3:::src-bucket",
        "EnableManifestOutput": true,
        "ManifestOutputLocation": {
            "Bucket": "arn:aws:s3:::out-bucket",
            "ManifestFormat": GENERATED_MANIFEST_FORMAT,
            "ManifestEncryption": {"SSES3": {}}
        },
        "Filter": {
            "KeyNameConstraint": {"MatchAnyPrefix": ["a"]},
            "ObjectSizeGreaterThanBytes": 1,
            "MatchAnyStorageClass": ["STANDARD"]
        }
    }});
    let parsed = ManifestGenerator::parse(&value).unwrap();
    assert_eq!(serde_json::to_value(&parsed).unwrap(), value);
}
