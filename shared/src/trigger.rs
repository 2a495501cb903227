//! How an inventory report's arrival reaches the planner, without touching anything else the
//! inventory bucket is configured to do.
//!
//! A bucket has one notification configuration: `PutBucketNotificationConfiguration` replaces it
//! whole, so writing batchops' queue configuration alone would drop every notification the bucket
//! already sends. [`connect_inventory`] reads the configuration, changes only batchops' own entry
//! (by its id) or switches on the bucket's EventBridge delivery (which leaves the others alone,
//! and which the template's rule then forwards), shows what changes, and writes it only when
//! asked to.

use crate::error::{Error, Result};
use crate::Context;
use aws_sdk_s3::types::{
    Event, EventBridgeConfiguration, FilterRule, FilterRuleName, NotificationConfiguration,
    NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
};
use serde::Serialize;

/// The id of batchops' queue configuration in the inventory bucket's notifications.
pub const CONFIGURATION_ID: &str = "batchops-inventory-arrival";

/// How the bucket tells the planner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// An S3 event notification to the plan queue (`manifest.json` suffix).
    Queue,
    /// The bucket's EventBridge switch; the template's rule sends `Object Created` events of
    /// `manifest.json` keys to the plan queue.
    EventBridge,
}

impl std::str::FromStr for Via {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self> {
        match value {
            "queue" => Ok(Via::Queue),
            "eventbridge" => Ok(Via::EventBridge),
            other => Err(Error::Config(format!(
                "{other:?} is not a way to connect an inventory bucket: use \"queue\" or \"eventbridge\""
            ))),
        }
    }
}

/// What [`connect_inventory`] found, changes and did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Connection {
    /// `Bucket`: the inventory bucket whose notifications were looked at.
    pub bucket: String,
    /// Every notification of the bucket before, one line each.
    pub before: Vec<String>,
    /// The same after the change.
    pub after: Vec<String>,
    /// `+ line` for what is added, `- line` for what is removed.
    pub diff: Vec<String>,
    /// Whether the configuration was written (`false` for a preview, or when nothing changes).
    pub applied: bool,
}

/// Connects `bucket`'s inventory deliveries to the plan queue `queue_arn`, keeping every other
/// notification; writes only with `apply`.
pub async fn connect_inventory(
    ctx: &Context,
    bucket: &str,
    queue_arn: &str,
    via: Via,
    apply: bool,
) -> Result<Connection> {
    let before = current_configuration(ctx, bucket).await?;
    let after = merged(&before, queue_arn, via)?;
    let (before_lines, after_lines) = (describe(&before), describe(&after));
    let diff = diff(&before_lines, &after_lines);
    let applied = apply && !diff.is_empty();
    if applied {
        ctx.s3
            .put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(after)
            .send()
            .await
            .map_err(|e| Error::aws("S3", "PutBucketNotificationConfiguration", e))?;
    }
    Ok(Connection {
        bucket: bucket.to_string(),
        before: before_lines,
        after: after_lines,
        diff,
        applied,
    })
}

/// The bucket's notification configuration as it is.
async fn current_configuration(ctx: &Context, bucket: &str) -> Result<NotificationConfiguration> {
    let current = match ctx
        .s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(current) => current,
        // moto answers a bucket without notifications with an empty
        // <GetBucketNotificationResponse/>, which the SDK does not read; S3 sends an empty
        // <NotificationConfiguration/>.
        Err(e) if is_empty_legacy_answer(&e) => {
            return Ok(NotificationConfiguration::builder().build())
        }
        Err(e) => return Err(Error::aws("S3", "GetBucketNotificationConfiguration", e)),
    };
    Ok(NotificationConfiguration::builder()
        .set_topic_configurations(current.topic_configurations)
        .set_queue_configurations(current.queue_configurations)
        .set_lambda_function_configurations(current.lambda_function_configurations)
        .set_event_bridge_configuration(current.event_bridge_configuration)
        .build())
}

fn is_empty_legacy_answer<E>(err: &aws_sdk_s3::error::SdkError<E>) -> bool {
    err.raw_response().is_some_and(|r| {
        let body = r
            .body()
            .bytes()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        r.status().is_success()
            && body.contains("<GetBucketNotificationResponse")
            && !body.contains("Configuration>")
    })
}

/// `config` with batchops' entry set for `via`: its queue configuration (replacing one of the
/// same id), or the EventBridge switch with batchops' queue entry removed (so that an arrival
/// does not reach the planner twice); everything else as it was.
pub fn merged(
    config: &NotificationConfiguration,
    queue_arn: &str,
    via: Via,
) -> Result<NotificationConfiguration> {
    let mut queues: Vec<QueueConfiguration> = config
        .queue_configurations()
        .iter()
        .filter(|q| q.id() != Some(CONFIGURATION_ID))
        .cloned()
        .collect();
    let mut event_bridge = config.event_bridge_configuration().cloned();
    match via {
        Via::Queue => queues.push(queue_configuration(queue_arn)?),
        Via::EventBridge => {
            event_bridge.get_or_insert_with(|| EventBridgeConfiguration::builder().build());
        }
    }
    Ok(NotificationConfiguration::builder()
        .set_topic_configurations(Some(config.topic_configurations().to_vec()))
        .set_queue_configurations(Some(queues))
        .set_lambda_function_configurations(Some(config.lambda_function_configurations().to_vec()))
        .set_event_bridge_configuration(event_bridge)
        .build())
}

fn queue_configuration(queue_arn: &str) -> Result<QueueConfiguration> {
    let filter = NotificationConfigurationFilter::builder()
        .key(
            S3KeyFilter::builder()
                .filter_rules(
                    FilterRule::builder()
                        .name(FilterRuleName::Suffix)
                        .value("manifest.json")
                        .build(),
                )
                .build(),
        )
        .build();
    QueueConfiguration::builder()
        .id(CONFIGURATION_ID)
        .queue_arn(queue_arn)
        .events(Event::S3ObjectCreated)
        .filter(filter)
        .build()
        .map_err(|e| Error::encode("the notification configuration", e))
}

/// One line per notification: kind, id, destination, events and key filters.
pub fn describe(config: &NotificationConfiguration) -> Vec<String> {
    fn rules(filter: Option<&NotificationConfigurationFilter>) -> String {
        filter
            .and_then(|f| f.key())
            .map(|k| {
                k.filter_rules()
                    .iter()
                    .map(|r| {
                        format!(
                            " {}={}",
                            r.name().map(|n| n.as_str()).unwrap_or_default(),
                            r.value().unwrap_or_default()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    fn events(events: &[Event]) -> String {
        events
            .iter()
            .map(|e| e.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
    let mut lines = Vec::new();
    for q in config.queue_configurations() {
        lines.push(format!(
            "queue {} -> {} [{}]{}",
            q.id().unwrap_or("(no id)"),
            q.queue_arn(),
            events(q.events()),
            rules(q.filter())
        ));
    }
    for t in config.topic_configurations() {
        lines.push(format!(
            "topic {} -> {} [{}]{}",
            t.id().unwrap_or("(no id)"),
            t.topic_arn(),
            events(t.events()),
            rules(t.filter())
        ));
    }
    for l in config.lambda_function_configurations() {
        lines.push(format!(
            "lambda {} -> {} [{}]{}",
            l.id().unwrap_or("(no id)"),
            l.lambda_function_arn(),
            events(l.events()),
            rules(l.filter())
        ));
    }
    if config.event_bridge_configuration().is_some() {
        lines.push("eventbridge on".into());
    }
    lines
}

/// The lines only in `before` (`- `) and only in `after` (`+ `).
pub fn diff(before: &[String], after: &[String]) -> Vec<String> {
    let removed = before
        .iter()
        .filter(|l| !after.contains(l))
        .map(|l| format!("- {l}"));
    let added = after
        .iter()
        .filter(|l| !before.contains(l))
        .map(|l| format!("+ {l}"));
    removed.chain(added).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::types::TopicConfiguration;

    fn theirs() -> NotificationConfiguration {
        NotificationConfiguration::builder()
            .queue_configurations(
                QueueConfiguration::builder()
                    .id("audit")
                    .queue_arn("arn:aws:sqs:us-east-1:1:audit")
                    .events(Event::S3ObjectRemoved)
                    .build()
                    .unwrap(),
            )
            .topic_configurations(
                TopicConfiguration::builder()
                    .id("alerts")
                    .topic_arn("arn:aws:sns:us-east-1:1:alerts")
                    .events(Event::S3ObjectCreated)
                    .build()
                    .unwrap(),
            )
            .build()
    }

    #[test]
    fn batchops_entry_is_added_and_every_other_notification_kept() {
        let before = theirs();
        let after = merged(&before, "arn:aws:sqs:us-east-1:1:plan", Via::Queue).unwrap();
        let d = diff(&describe(&before), &describe(&after));
        assert_eq!(
            d,
            vec!["+ queue batchops-inventory-arrival -> arn:aws:sqs:us-east-1:1:plan [s3:ObjectCreated:*] suffix=manifest.json"]
        );
        // Connecting again changes nothing; a new queue replaces batchops' entry only.
        let again = merged(&after, "arn:aws:sqs:us-east-1:1:plan", Via::Queue).unwrap();
        assert!(diff(&describe(&after), &describe(&again)).is_empty());
        let moved = merged(&after, "arn:aws:sqs:us-east-1:1:plan2", Via::Queue).unwrap();
        assert_eq!(diff(&describe(&after), &describe(&moved)).len(), 2);
        assert_eq!(describe(&moved).len(), 3);
    }

    #[test]
    fn eventbridge_is_switched_on_beside_the_others() {
        let before = theirs();
        let after = merged(&before, "arn:aws:sqs:us-east-1:1:plan", Via::EventBridge).unwrap();
        assert_eq!(
            diff(&describe(&before), &describe(&after)),
            vec!["+ eventbridge on"]
        );
    }

    #[test]
    fn ways_parse() {
        assert_eq!("queue".parse::<Via>().unwrap(), Via::Queue);
        assert_eq!("eventbridge".parse::<Via>().unwrap(), Via::EventBridge);
        assert!("sns".parse::<Via>().is_err());
    }
}
