//! What a function does when its container starts, before its first event: the connections it
//! will use are opened (a TLS handshake to an AWS endpoint costs hundreds of milliseconds, paid
//! once per container instead of by the first invocation), and a silent endpoint cannot hold the
//! start up.

use crate::common::{self, scripted};

use batchops::context::WARM_UP_TIMEOUT;
use batchops::Context;
use scripted::Reply;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// A context whose every client goes to `url`.
async fn context_on(url: &str) -> Context {
    let config = common::sdk_config_on(url).await;
    let settings = common::test_settings(
        "jobs".into(),
        format!("{url}/123456789012/plan"),
        format!("{url}/123456789012/tasks"),
        format!("{url}/123456789012/report"),
        "system".into(),
    );
    Context::from_config(&config, settings)
}

/// The AWS operation of a request: its `X-Amz-Target` (DynamoDB, SQS) or its method and path.
fn operation(request: &scripted::Request) -> String {
    match request.headers.get("x-amz-target") {
        Some(target) => target.clone(),
        None => format!("{} {}", request.method, request.path()),
    }
}

#[tokio::test]
async fn a_function_opens_its_connections_at_start_and_its_first_requests_reuse_them() {
    // Refuses everything, as AWS may refuse a warm-up request the function has no need to make:
    // the connection is open all the same.
    let (url, log) = scripted::start(|request, _| match request.method.as_str() {
        "HEAD" => Reply::empty(404, &[]),
        _ => Reply::new(
            400,
            &[("content-type", "application/x-amz-json-1.0")],
            r#"{"__type":"com.amazon.coral.validate#ValidationException","message":"scripted"}"#,
        ),
    })
    .await;
    let ctx = context_on(&url).await;
    ctx.warm_up().await;
    let warm = log.lock().unwrap().clone();
    let operations: BTreeSet<String> = warm.iter().map(operation).collect();
    assert_eq!(
        operations,
        BTreeSet::from([
            "AmazonSQS.GetQueueAttributes".to_string(),
            "DynamoDB_20120810.GetItem".to_string(),
            "HEAD /system/warm-up".to_string(),
        ]),
        "one request per service the function uses: {warm:?}"
    );
    let opened: BTreeSet<usize> = warm.iter().map(|r| r.connection).collect();

    // An invocation's first requests, one after another, come on those connections: none is
    // opened for them.
    let _ = ctx.store().get_job("job-1").await;
    let _ = ctx
        .sqs
        .send_message()
        .queue_url(&ctx.settings.task_queue_url)
        .message_body("{}")
        .send()
        .await;
    let _ = ctx
        .system_s3
        .head_object()
        .bucket("system")
        .key("staging/part")
        .send()
        .await;
    let later = log.lock().unwrap()[warm.len()..].to_vec();
    assert_eq!(later.len(), 3, "{later:?}");
    assert!(
        later.iter().all(|r| opened.contains(&r.connection)),
        "warm-up connections {opened:?}, later requests on {:?}",
        later.iter().map(|r| r.connection).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn an_endpoint_that_never_answers_holds_the_start_up_no_longer_than_the_warm_up_bound() {
    // Accepts every connection and never says a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let ctx = context_on(&url).await;
    let started = Instant::now();
    ctx.warm_up().await;
    let took = started.elapsed();
    assert!(
        took >= WARM_UP_TIMEOUT && took < WARM_UP_TIMEOUT + Duration::from_secs(3),
        "warm-up took {took:?}"
    );
}
