//! The clients of the tasks' S3 requests: one per Region, buckets outside the client's Region
//! learned from S3's redirects. Shared by the orchestrator's clients and every job role's.

/// The clients one S3 client's tasks use, and what it learned about buckets outside its Region:
/// each bucket's Region (from S3's `x-amz-bucket-region` on a redirect) and one client per
/// Region, built from the first with the Region changed and the SDK's own retries off (same
/// credentials, endpoint, timeouts and interceptors). The executor retries a task's requests
/// itself, with backoff, so that every throttle reaches the bucket's adaptive limit
/// (`operation::concurrency`) instead of being retried unseen.
#[derive(Debug, Default)]
pub struct S3Regions {
    buckets: std::sync::Mutex<std::collections::HashMap<String, String>>,
    clients: std::sync::Mutex<std::collections::HashMap<String, aws_sdk_s3::Client>>,
}

impl S3Regions {
    /// The client for `bucket`: `base`'s, in the bucket's Region when it is known to be in
    /// another, without the SDK's retries.
    pub fn client(&self, base: &aws_sdk_s3::Client, bucket: &str) -> aws_sdk_s3::Client {
        let home = base.config().region().map(|r| r.as_ref().to_string());
        let region = lock(&self.buckets)
            .get(bucket)
            .cloned()
            .or(home)
            .unwrap_or_default();
        lock(&self.clients)
            .entry(region.clone())
            .or_insert_with(|| {
                let mut config = base
                    .config()
                    .to_builder()
                    .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled());
                if !region.is_empty() {
                    config = config.region(aws_sdk_s3::config::Region::new(region));
                }
                aws_sdk_s3::Client::from_conf(config.build())
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
