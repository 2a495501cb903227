//! The CLI's side of the control plane: invoking a deployed control function, or acting on the
//! table and queues directly (local runs), with the settings and credentials that takes.

use super::*;
use crate::context::{self, Settings};
use crate::error::{Error, Result};

use crate::Context;
use serde_json::Value;

/// Sends a control request to a deployed stack's control function and returns its answer, in S3
/// Control's shape: the CLI's way to a stack, which needs `lambda:InvokeFunction` on that one
/// function and nothing on the stack's table or queues.
pub async fn invoke_control(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    request: &ControlRequest,
) -> Result<Value> {
    let payload = serde_json::to_vec(&request.to_event()?)
        .map_err(|e| Error::encode("the control request", e))?;
    let out = lambda
        .invoke()
        .function_name(function)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload))
        .send()
        .await
        .map_err(|e| Error::aws("Lambda", "Invoke", e))?;
    let body = out.payload().map(|b| b.as_ref()).unwrap_or_default();
    let answer: Value = serde_json::from_slice(body).map_err(|e| Error::Malformed {
        what: format!("the answer of the control function {function}"),
        reason: format!("it is not JSON ({e})"),
    })?;
    if out.function_error().is_some() {
        let field = |name: &str| answer.get(name).and_then(Value::as_str).map(str::to_string);
        return Err(Error::Refused {
            function: function.to_string(),
            error_type: field("errorType").unwrap_or_default(),
            message: field("errorMessage").unwrap_or_else(|| "no errorMessage".into()),
        });
    }
    Ok(answer)
}

// ---------------------------------------------------------------------------------------------
// The CLI's context.

/// The CLI's context: settings from the `BATCHOPS_*` variables as in the Lambdas; each one unset
/// falls back to the resource `batchops local up` creates (`context::LOCAL_*`), queue URLs
/// resolved with GetQueueUrl.
pub async fn cli_context() -> Result<Context> {
    let config = context::load_aws_config().await;
    check_credentials(&config).await?;
    let settings = cli_settings(&aws_sdk_sqs::Client::new(&config)).await?;
    Ok(Context::from_config(&config, settings))
}

/// Finds credentials before the first call, so that having none is said plainly (the SDK's own
/// error names the last place it looked, the EC2 instance metadata service).
pub async fn check_credentials(config: &aws_config::SdkConfig) -> Result<()> {
    use aws_credential_types::provider::error::CredentialsError;
    use aws_credential_types::provider::ProvideCredentials;
    let Some(provider) = config.credentials_provider() else {
        return Err(Error::Config(NO_CREDENTIALS.into()));
    };
    match provider.provide_credentials().await {
        Ok(_) => Ok(()),
        Err(CredentialsError::CredentialsNotLoaded(_)) => Err(Error::Config(NO_CREDENTIALS.into())),
        Err(other) => Err(Error::Config(format!(
            "cannot load AWS credentials: {}",
            aws_smithy_types::error::display::DisplayErrorContext(&other)
        ))),
    }
}

pub(super) const NO_CREDENTIALS: &str = "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (any values do for a local emulator such as moto), or AWS_PROFILE, or run where an IAM role provides them";

pub(super) async fn cli_settings(sqs: &aws_sdk_sqs::Client) -> Result<Settings> {
    if let Ok(settings) = Settings::from_env() {
        return Ok(settings);
    }
    let queue_url = |var: &'static str, name: &'static str| async move {
        match context::env_value(var) {
            Some(url) => Ok(url),
            None => local_queue_url(sqs, name, var).await,
        }
    };
    // One round trip for the three, not three in a row.
    let (plan_queue_url, task_queue_url, report_queue_url) = tokio::try_join!(
        queue_url(context::ENV_PLAN_QUEUE_URL, context::LOCAL_PLAN_QUEUE),
        queue_url(context::ENV_TASK_QUEUE_URL, context::LOCAL_TASK_QUEUE),
        queue_url(context::ENV_REPORT_QUEUE_URL, context::LOCAL_REPORT_QUEUE),
    )?;
    Ok(Settings {
        table: context::env_value(context::ENV_TABLE)
            .unwrap_or_else(|| context::LOCAL_TABLE.into()),
        plan_queue_url,
        task_queue_url,
        report_queue_url,
        system_bucket: context::env_value(context::ENV_SYSTEM_BUCKET)
            .unwrap_or_else(|| context::LOCAL_SYSTEM_BUCKET.into()),
        ..Settings::tuning_from_env()?
    })
}

pub(super) async fn local_queue_url(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    var: &str,
) -> Result<String> {
    match sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => out
            .queue_url()
            .map(str::to_string)
            .ok_or_else(|| Error::Config(format!("GetQueueUrl returned no URL for queue {name}"))),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_queue_does_not_exist()) =>
        {
            Err(Error::Config(format!(
                "queue {name} does not exist on this endpoint: run `batchops local up` first, or set {var}"
            )))
        }
        Err(e) => Err(Error::aws("SQS", "GetQueueUrl", e)),
    }
}
