//! The filters that a bucket listing cannot answer: `MatchAnyObjectEncryption`,
//! `ObjectReplicationStatuses` and `EligibleForReplication`. An object that passes the listing's
//! filters is looked at with a HeadObject (its encryption and replication status) and, when a
//! replication rule of the source bucket filters on tags, a GetObjectTagging; the bucket's
//! replication configuration is read once per listing.

use aws_sdk_s3::types::ServerSideEncryption;

use crate::error::{Error, Result};
pub use crate::job::manifest_generator::{
    DsseKmsFilter, NoParameters, ObjectEncryptionFilter, SseKmsFilter, REPLICATION_STATUSES,
};

/// HeadObject (and GetObjectTagging) requests in flight per listing page.
pub const LOOKUPS_AT_ONCE: usize = 16;

impl ObjectEncryptionFilter {
    fn matches(&self, encryption: &Encryption) -> bool {
        match encryption {
            Encryption::None => self.not_sse.is_some(),
            Encryption::SseS3 => self.sse_s3.is_some(),
            Encryption::SseC => self.sse_c.is_some(),
            Encryption::SseKms {
                key,
                bucket_key_enabled,
            } => self.sse_kms.as_ref().is_some_and(|f| {
                same_key(f.kms_key_arn.as_deref(), key.as_deref())
                    && f.bucket_key_enabled
                        .is_none_or(|wanted| wanted == *bucket_key_enabled)
            }),
            Encryption::DsseKms { key } => self
                .dsse_kms
                .as_ref()
                .is_some_and(|f| same_key(f.kms_key_arn.as_deref(), key.as_deref())),
        }
    }
}

/// A filter's key matches when it names none, or the object's key by ARN or by id.
fn same_key(wanted: Option<&str>, actual: Option<&str>) -> bool {
    match (wanted, actual) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(wanted), Some(actual)) => {
            wanted == actual || wanted.rsplit('/').next() == actual.rsplit('/').next()
        }
    }
}

/// An object's encryption, as its HeadObject says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryption {
    /// Not encrypted server-side: HeadObject names no encryption.
    None,
    /// SSE-S3: `x-amz-server-side-encryption: AES256`.
    SseS3,
    /// SSE-KMS: `x-amz-server-side-encryption: aws:kms`.
    SseKms {
        /// The KMS key id or ARN from `x-amz-server-side-encryption-aws-kms-key-id`, if given.
        key: Option<String>,
        /// Whether the object uses an S3 Bucket Key; false when HeadObject does not say.
        bucket_key_enabled: bool,
    },
    /// DSSE-KMS: `x-amz-server-side-encryption: aws:kms:dsse`.
    DsseKms {
        /// The KMS key id or ARN from `x-amz-server-side-encryption-aws-kms-key-id`, if given.
        key: Option<String>,
    },
    /// SSE-C, a customer-provided key: HeadObject names its algorithm, or answers 400 when
    /// asked without the key.
    SseC,
}

/// What the lookups found about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectDetails {
    /// The object's server-side encryption, from its HeadObject.
    pub encryption: Encryption,
    /// `x-amz-replication-status` (COMPLETE, PENDING, FAILED, REPLICA); none when absent.
    pub replication_status: Option<String>,
    /// Present when a replication rule filters on tags.
    pub tags: Option<Vec<(String, String)>>,
}

/// The enabled rules of a bucket's replication configuration, reduced to what decides whether
/// an object is eligible: a key prefix and tags, all of which must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicationRules {
    /// The enabled rules; an object is eligible when any one of them takes it.
    pub rules: Vec<ReplicationRule>,
}

/// One enabled replication rule: it takes an object whose key starts with `prefix` and
/// that carries every tag in `tags`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicationRule {
    /// Key prefix of the rule's filter; empty takes every key.
    pub prefix: String,
    /// Tags (key, value) the object must all carry; empty means the rule does not look at tags.
    pub tags: Vec<(String, String)>,
}

impl ReplicationRules {
    /// Whether any rule filters on tags, so each object's tags must be read with
    /// GetObjectTagging.
    pub fn need_tags(&self) -> bool {
        self.rules.iter().any(|r| !r.tags.is_empty())
    }

    /// Whether an enabled rule takes the object: its prefix, and every tag it names.
    pub fn eligible(&self, key: &str, tags: &[(String, String)]) -> bool {
        self.rules.iter().any(|rule| {
            key.starts_with(&rule.prefix) && rule.tags.iter().all(|tag| tags.contains(tag))
        })
    }

    /// The enabled rules of a GetBucketReplication answer.
    pub fn from_configuration(config: &aws_sdk_s3::types::ReplicationConfiguration) -> Self {
        use aws_sdk_s3::types::ReplicationRuleStatus;
        let pair = |t: &aws_sdk_s3::types::Tag| (t.key().to_string(), t.value().to_string());
        let rules = config
            .rules()
            .iter()
            .filter(|r| r.status() == &ReplicationRuleStatus::Enabled)
            .map(|r| {
                #[allow(deprecated)]
                let legacy = r.prefix().unwrap_or_default().to_string();
                let Some(filter) = r.filter() else {
                    return ReplicationRule {
                        prefix: legacy,
                        tags: Vec::new(),
                    };
                };
                if let Some(and) = filter.and() {
                    return ReplicationRule {
                        prefix: and.prefix().unwrap_or_default().to_string(),
                        tags: and.tags().iter().map(pair).collect(),
                    };
                }
                // An empty filter takes every object.
                ReplicationRule {
                    prefix: filter.prefix().unwrap_or_default().to_string(),
                    tags: filter.tag().map(pair).into_iter().collect(),
                }
            })
            .collect();
        ReplicationRules { rules }
    }
}

/// Whether an object's details pass the detail filters given. `replication` is the source
/// bucket's rules when `EligibleForReplication` is true.
pub fn matches_details(
    encryption: Option<&[ObjectEncryptionFilter]>,
    statuses: Option<&[String]>,
    replication: Option<&ReplicationRules>,
    key: &str,
    details: &ObjectDetails,
) -> bool {
    if let Some(filters) = encryption {
        if !filters.iter().any(|f| f.matches(&details.encryption)) {
            return false;
        }
    }
    if let Some(statuses) = statuses {
        let status = match details.replication_status.as_deref() {
            None => "NONE",
            Some("COMPLETE" | "COMPLETED") => "COMPLETED",
            Some(other) => other,
        };
        if !statuses.iter().any(|s| s == status) {
            return false;
        }
    }
    if let Some(rules) = replication {
        let tags = details.tags.as_deref().unwrap_or_default();
        if !rules.eligible(key, tags) {
            return false;
        }
    }
    true
}

/// The object's details, with a HeadObject and (when `with_tags`) a GetObjectTagging. `None`:
/// the object is gone since the listing (it is then not a task). An object under a
/// customer-provided key answers a HeadObject without that key with 400: that is SSE-C.
pub async fn look_up(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    expected_owner: Option<&str>,
    with_tags: bool,
) -> Result<Option<ObjectDetails>> {
    let head = s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .set_expected_bucket_owner(expected_owner.map(String::from))
        .send()
        .await;
    let (encryption, replication_status) = match head {
        Ok(head) => (
            encryption_of(&head),
            head.replication_status().map(|s| s.as_str().to_string()),
        ),
        Err(e) => match e.raw_response().map(|r| r.status().as_u16()) {
            Some(404) => return Ok(None),
            Some(400) => (Encryption::SseC, None),
            _ => {
                return Err(crate::manifest::s3_refusal(
                    &format!("manifest generator: cannot look at s3://{bucket}/{key}"),
                    "HeadObject",
                    &e,
                ))
            }
        },
    };
    let tags = if with_tags {
        let out = s3
            .get_object_tagging()
            .bucket(bucket)
            .key(key)
            .set_expected_bucket_owner(expected_owner.map(String::from))
            .send()
            .await;
        match out {
            Ok(out) => Some(
                out.tag_set()
                    .iter()
                    .map(|t| (t.key().to_string(), t.value().to_string()))
                    .collect(),
            ),
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(404) => {
                return Ok(None)
            }
            Err(e) => {
                return Err(crate::manifest::s3_refusal(
                    &format!("manifest generator: cannot read the tags of s3://{bucket}/{key}"),
                    "GetObjectTagging",
                    &e,
                ))
            }
        }
    } else {
        None
    };
    Ok(Some(ObjectDetails {
        encryption,
        replication_status,
        tags,
    }))
}

fn encryption_of(head: &aws_sdk_s3::operation::head_object::HeadObjectOutput) -> Encryption {
    if head.sse_customer_algorithm().is_some() {
        return Encryption::SseC;
    }
    match head.server_side_encryption() {
        Some(ServerSideEncryption::Aes256) => Encryption::SseS3,
        Some(ServerSideEncryption::AwsKms) => Encryption::SseKms {
            key: head.ssekms_key_id().map(String::from),
            bucket_key_enabled: head.bucket_key_enabled().unwrap_or(false),
        },
        Some(ServerSideEncryption::AwsKmsDsse) => Encryption::DsseKms {
            key: head.ssekms_key_id().map(String::from),
        },
        _ => Encryption::None,
    }
}

/// The source bucket's replication rules, for `EligibleForReplication`. A bucket without a
/// replication configuration has no eligible object: the job is refused with that reason.
pub async fn replication_rules(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    expected_owner: Option<&str>,
) -> Result<ReplicationRules> {
    let out = s3
        .get_bucket_replication()
        .bucket(bucket)
        .set_expected_bucket_owner(expected_owner.map(String::from))
        .send()
        .await;
    match out {
        Ok(out) => Ok(out
            .replication_configuration()
            .map(ReplicationRules::from_configuration)
            .unwrap_or_default()),
        Err(e) if e.as_service_error().and_then(|s| aws_sdk_s3::error::ProvideErrorMetadata::code(s)) == Some("ReplicationConfigurationNotFoundError") => {
            Err(Error::Manifest(format!(
                "manifest generator: Filter.EligibleForReplication needs a replication configuration on s3://{bucket}, which has none"
            )))
        }
        Err(e) => Err(crate::manifest::s3_refusal(
            &format!("manifest generator: cannot read the replication configuration of s3://{bucket}"),
            "GetBucketReplication",
            &e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kms(key: &str, bucket_key: bool) -> Encryption {
        Encryption::SseKms {
            key: Some(key.into()),
            bucket_key_enabled: bucket_key,
        }
    }

    fn details(encryption: Encryption, status: Option<&str>) -> ObjectDetails {
        ObjectDetails {
            encryption,
            replication_status: status.map(String::from),
            tags: Some(vec![("team".into(), "blue".into())]),
        }
    }

    #[test]
    fn encryption_filters_match_the_type_and_the_kms_key_and_bucket_key_when_given() {
        let filters: Vec<ObjectEncryptionFilter> = serde_json::from_str(
            r#"[{"SSEKMS": {"KmsKeyArn": "arn:aws:kms:us-east-1:111122223333:key/k1", "BucketKeyEnabled": true}},
                {"NOTSSE": {}}]"#,
        )
        .unwrap();
        let pass =
            |e: Encryption| matches_details(Some(&filters), None, None, "k", &details(e, None));
        assert!(pass(kms("arn:aws:kms:us-east-1:111122223333:key/k1", true)));
        assert!(pass(kms("k1", true)), "a key id matches its ARN");
        assert!(!pass(kms(
            "arn:aws:kms:us-east-1:111122223333:key/k2",
            true
        )));
        assert!(!pass(kms(
            "arn:aws:kms:us-east-1:111122223333:key/k1",
            false
        )));
        assert!(pass(Encryption::None));
        assert!(!pass(Encryption::SseS3));
        assert!(!pass(Encryption::SseC));
        let any_kms: Vec<ObjectEncryptionFilter> =
            serde_json::from_str(r#"[{"SSEKMS": {}}, {"DSSEKMS": {}}]"#).unwrap();
        let pass =
            |e: Encryption| matches_details(Some(&any_kms), None, None, "k", &details(e, None));
        assert!(pass(kms("any", false)) && pass(Encryption::DsseKms { key: None }));
        assert!(serde_json::from_str::<ObjectEncryptionFilter>(r#"{"SSE-KMS": {}}"#).is_err());
    }

    #[test]
    fn replication_statuses_map_s3s_header_and_none_for_no_header() {
        let statuses = vec!["COMPLETED".to_string(), "NONE".to_string()];
        let pass = |s: Option<&str>| {
            matches_details(
                None,
                Some(&statuses),
                None,
                "k",
                &details(Encryption::SseS3, s),
            )
        };
        assert!(pass(Some("COMPLETE")) && pass(None));
        assert!(!pass(Some("FAILED")) && !pass(Some("PENDING")) && !pass(Some("REPLICA")));
    }

    #[test]
    fn an_object_is_eligible_when_an_enabled_rule_takes_its_prefix_and_every_tag() {
        let rules = ReplicationRules {
            rules: vec![
                ReplicationRule {
                    prefix: "logs/".into(),
                    tags: Vec::new(),
                },
                ReplicationRule {
                    prefix: "data/".into(),
                    tags: vec![("team".into(), "blue".into())],
                },
            ],
        };
        assert!(rules.need_tags());
        let eligible = |key: &str, tags: &[(&str, &str)]| {
            let tags: Vec<(String, String)> = tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            rules.eligible(key, &tags)
        };
        assert!(eligible("logs/a", &[]));
        assert!(eligible("data/a", &[("team", "blue"), ("x", "y")]));
        assert!(!eligible("data/a", &[("team", "red")]));
        assert!(!eligible("other/a", &[("team", "blue")]));
    }
}
