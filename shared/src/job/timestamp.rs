//! Timestamps of S3 Control requests, the one reader of them: an ISO 8601 / RFC 3339 string
//! (what the API returns and most files hold) or epoch seconds (what the AWS CLI also accepts);
//! written back as RFC 3339 in UTC. Used as `#[serde(with = "super::timestamp")]`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(value: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(date) => s.serialize_str(&date.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
        None => s.serialize_none(),
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    use serde::de::Error as _;
    use serde_json::Value;
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => DateTime::parse_from_rfc3339(&s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| {
                D::Error::custom(format!(
                    "{s:?} is not a timestamp like 2024-01-31T00:00:00Z: {e}"
                ))
            }),
        Some(Value::Number(n)) => {
            let seconds = n
                .as_f64()
                .ok_or_else(|| D::Error::custom(format!("{n} is not a timestamp")))?;
            let millis = (seconds * 1000.0).round() as i64;
            DateTime::from_timestamp_millis(millis)
                .map(Some)
                .ok_or_else(|| D::Error::custom(format!("{n} is out of range as a timestamp")))
        }
        Some(other) => Err(D::Error::custom(format!(
            "{other} is not a timestamp: give a string like 2024-01-31T00:00:00Z or epoch seconds"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Deserialize, Serialize)]
    struct At {
        #[serde(default, with = "super")]
        at: Option<DateTime<Utc>>,
    }

    fn read(json: &str) -> Result<Option<DateTime<Utc>>, String> {
        serde_json::from_str::<At>(json)
            .map(|a| a.at)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn strings_and_epoch_seconds_are_read_and_anything_else_is_refused_with_its_value() {
        let expected = DateTime::parse_from_rfc3339("2024-01-31T00:00:00Z").unwrap();
        assert_eq!(
            read(r#"{"at": "2024-01-31T00:00:00Z"}"#).unwrap(),
            Some(expected.into())
        );
        assert_eq!(
            read(r#"{"at": 1706659200}"#).unwrap(),
            Some(expected.into())
        );
        assert_eq!(
            read(r#"{"at": 1706659200.0004}"#).unwrap(),
            Some(expected.into()),
            "rounded to milliseconds"
        );
        assert_eq!(read(r#"{"at": null}"#).unwrap(), None);
        assert_eq!(read("{}").unwrap(), None);
        assert!(read(r#"{"at": "yesterday"}"#)
            .unwrap_err()
            .contains("\"yesterday\" is not a timestamp like 2024-01-31T00:00:00Z"));
        assert!(read(r#"{"at": true}"#)
            .unwrap_err()
            .contains("true is not a timestamp: give a string"));
        let written = serde_json::to_string(&At {
            at: Some(expected.into()),
        })
        .unwrap();
        assert_eq!(written, r#"{"at":"2024-01-31T00:00:00Z"}"#);
    }
}
