//! Buckets outside the client's Region: where each is, learned from S3's redirects, and a client
//! for each such Region. Shared by the orchestrator's clients and every job role's.

/// What one S3 client learned about buckets outside its Region: each bucket's Region (from S3's
/// `x-amz-bucket-region` on a redirect) and one client per such Region, built from the first
/// with only the Region changed (same credentials, endpoint, timeouts and interceptors).
#[derive(Debug, Default)]
pub struct S3Regions {
    buckets: std::sync::Mutex<std::collections::HashMap<String, String>>,
    clients: std::sync::Mutex<std::collections::HashMap<String, aws_sdk_s3::Client>>,
}

impl S3Regions {
    /// The client for `bucket`: `base`, unless the bucket is known to be in another Region.
    pub fn client(&self, base: &aws_sdk_s3::Client, bucket: &str) -> aws_sdk_s3::Client {
        let region = lock(&self.buckets).get(bucket).cloned();
        let Some(region) = region else {
            return base.clone();
        };
        if base.config().region().map(|r| r.as_ref()) == Some(region.as_str()) {
            return base.clone();
        }
        lock(&self.clients)
            .entry(region.clone())
            .or_insert_with(|| {
                aws_sdk_s3::Client::from_conf(
                    base.config()
                        .to_builder()
                        .region(aws_sdk_s3::config::Region::new(region))
                        .build(),
                )
            })
            .clone()
    }

    /// Records that S3 named `region` as `bucket`'s. `false` if it was known already (a second
    /// redirect to the same Region is not followed again).
    pub fn learn(&self, bucket: &str, region: &str) -> bool {
        lock(&self.buckets).insert(bucket.to_string(), region.to_string())
            != Some(region.to_string())
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
