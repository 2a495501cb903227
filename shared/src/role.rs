//! The job's own role. In S3 Batch Operations every task runs with the permissions of the job's
//! `RoleArn`: whoever creates a job can do no more than that role allows. batchops does the same:
//! the executor (tasks), the planner (manifest reads, the generator's listing) and the reporter
//! (report writes) act on users' buckets and functions as the job's role, assumed with
//! `sts:AssumeRole`. batchops' own table, queues and system bucket stay with the orchestrator's
//! role, which needs nothing on users' data beyond `sts:AssumeRole`.
//!
//! The session is named after the job (`batchops-<job id>`, so CloudTrail shows which job acted),
//! carries the stack's `ExternalId` when one is set (`BATCHOPS_ROLE_EXTERNAL_ID`, for the trust
//! policy's `sts:ExternalId` condition), and its credentials are kept per role and job and
//! assumed again shortly before they expire. `BATCHOPS_ROLE_MODE=orchestrator` runs everything
//! with the orchestrator's own role instead, as batchops did before (off by default).

use crate::error::{error_chain, Error, Result};
use aws_credential_types::provider::{self, future, ProvideCredentials};
use aws_credential_types::Credentials;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Environment variable choosing whose role the work runs with: `job` (the default) or
/// `orchestrator` (see [`RoleMode`]).
pub const ENV_ROLE_MODE: &str = "BATCHOPS_ROLE_MODE";
/// Environment variable with the `ExternalId` passed to AssumeRole, for the trust policy's
/// `sts:ExternalId` condition; unset or empty sends none.
pub const ENV_ROLE_EXTERNAL_ID: &str = "BATCHOPS_ROLE_EXTERNAL_ID";
/// Environment variable with a job role session's length in seconds, from [`MIN_SESSION`] to
/// [`MAX_SESSION`]; unset means [`DEFAULT_SESSION`].
pub const ENV_ROLE_SESSION_SECONDS: &str = "BATCHOPS_ROLE_SESSION_SECONDS";
/// Environment variable with the name prefix a job's role must have (the template's
/// `JobRoleNamePrefix`); unset or empty allows any role.
pub const ENV_JOB_ROLE_PREFIX: &str = "BATCHOPS_JOB_ROLE_PREFIX";

/// The failure code of a job whose role cannot be assumed (S3's code for a denied request).
pub const ACCESS_DENIED_CODE: &str = "AccessDenied";

/// STS's bounds on a role session (`DurationSeconds`); a role's own maximum may be lower.
pub const MIN_SESSION: Duration = Duration::from_secs(900);
/// The longest role session STS grants: 12 hours.
pub const MAX_SESSION: Duration = Duration::from_secs(43_200);
/// The role session's length when [`ENV_ROLE_SESSION_SECONDS`] is unset: one hour.
pub const DEFAULT_SESSION: Duration = Duration::from_secs(3_600);

/// Roles kept assumed at once by one container; the oldest is dropped beyond this.
const CACHED_SESSIONS: usize = 64;

/// Whose permissions the work on users' data runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RoleMode {
    /// The job's `RoleArn`, assumed for the job (S3 Batch Operations' model).
    #[default]
    Job,
    /// The orchestrator's own role, for every job.
    Orchestrator,
}

impl std::str::FromStr for RoleMode {
    type Err = Error;

    fn from_str(value: &str) -> Result<Self> {
        match value {
            "job" => Ok(RoleMode::Job),
            "orchestrator" => Ok(RoleMode::Orchestrator),
            other => Err(Error::Config(format!(
                "role mode {other:?} is not valid: use \"job\" (tasks run with the job's RoleArn) or \"orchestrator\""
            ))),
        }
    }
}

/// The session name of a job's role: the job id, so that CloudTrail names the job. STS allows
/// 64 characters of `[\w+=,.@-]`.
pub fn session_name(job_id: &str) -> String {
    let clean: String = job_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut name = format!("batchops-{clean}");
    name.truncate(64);
    name
}

/// Refuses, before any call to STS, a role outside the names the stack may assume (the
/// template's `JobRoleNamePrefix`, which its IAM policy also enforces): the job's failure then
/// says why, rather than a bare AccessDenied.
pub fn check_allowed(role_arn: &str, prefix: Option<&str>) -> Result<()> {
    let Some(prefix) = prefix.filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let name = role_arn.split_once(":role/").map(|(_, name)| name);
    if name.is_some_and(|name| name.starts_with(prefix)) {
        return Ok(());
    }
    Err(Error::RoleNotAssumed {
        role_arn: role_arn.to_string(),
        reason: format!(
            "this stack may assume only roles whose name begins with {prefix:?} (template parameter JobRoleNamePrefix); give the job such a role"
        ),
    })
}

/// When credentials that expire at `expiry` are assumed again: five minutes ahead, or a quarter
/// of a short session ahead, so that no request is signed with credentials about to lapse.
pub fn refresh_at(expiry: SystemTime, session: Duration) -> SystemTime {
    let ahead = (session / 4).min(Duration::from_secs(300));
    expiry.checked_sub(ahead).unwrap_or(expiry)
}

/// What assuming a job's role needs: the STS client and the stack's conditions.
#[derive(Debug, Clone)]
pub struct RoleRequest {
    /// The job's `RoleArn`, the role to assume.
    pub role_arn: String,
    /// The job acting; the session is named after it (see [`session_name`]).
    pub job_id: String,
    /// The `ExternalId` sent with AssumeRole; `None` sends none.
    pub external_id: Option<String>,
    /// How long each assumed session lasts (STS's `DurationSeconds`).
    pub session: Duration,
}

/// Credentials of one job's role, assumed on first use and again shortly before they expire.
/// Callers at once wait for one AssumeRole.
#[derive(Debug)]
pub struct JobRoleCredentials {
    sts: aws_sdk_sts::Client,
    request: RoleRequest,
    current: tokio::sync::Mutex<Option<(Credentials, SystemTime)>>,
    assumed: Arc<AtomicU64>,
}

impl JobRoleCredentials {
    /// Credentials for `request`, not assumed until first asked for; each AssumeRole call adds one
    /// to `assumed`.
    pub fn new(sts: aws_sdk_sts::Client, request: RoleRequest, assumed: Arc<AtomicU64>) -> Self {
        JobRoleCredentials {
            sts,
            request,
            current: tokio::sync::Mutex::new(None),
            assumed,
        }
    }

    /// The role's credentials: the kept ones while fresh, otherwise newly assumed.
    pub async fn credentials(&self) -> Result<Credentials> {
        let mut current = self.current.lock().await;
        if let Some((credentials, refresh)) = current.as_ref() {
            if SystemTime::now() < *refresh {
                return Ok(credentials.clone());
            }
        }
        let credentials = self.assume().await?;
        let expiry = credentials
            .expiry()
            .unwrap_or_else(|| SystemTime::now() + self.request.session);
        *current = Some((
            credentials.clone(),
            refresh_at(expiry, self.request.session),
        ));
        Ok(credentials)
    }

    async fn assume(&self) -> Result<Credentials> {
        let RoleRequest {
            role_arn,
            job_id,
            external_id,
            session,
        } = &self.request;
        self.assumed.fetch_add(1, Ordering::Relaxed);
        let output = self
            .sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(session_name(job_id))
            .set_external_id(external_id.clone())
            .duration_seconds(session.as_secs().clamp(1, i32::MAX as u64) as i32)
            .send()
            .await
            .map_err(|e| role_error(role_arn, "AssumeRole", e))?;
        let Some(c) = output.credentials() else {
            return Err(Error::RoleNotAssumed {
                role_arn: role_arn.clone(),
                reason: "STS AssumeRole returned no credentials".into(),
            });
        };
        let expiry = SystemTime::try_from(*c.expiration()).ok();
        tracing::info!(job_id = %job_id, role_arn = %role_arn, "assumed the job's role");
        Ok(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            expiry,
            "batchops-job-role",
        ))
    }
}

impl ProvideCredentials for JobRoleCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            self.credentials()
                .await
                .map_err(provider::error::CredentialsError::provider_error)
        })
    }
}

/// A denial or a role that does not exist is the job's to fix (AccessDenied); throttling and
/// server errors pass, and the work is tried again.
pub fn role_error<E>(
    role_arn: &str,
    operation: &'static str,
    err: aws_sdk_sts::error::SdkError<E>,
) -> Error
where
    E: aws_sdk_sts::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    use aws_sdk_sts::error::ProvideErrorMetadata;
    let status = err.raw_response().map(|r| r.status().as_u16());
    let client_error = status.is_some_and(|s| (400..500).contains(&s) && s != 429)
        && !matches!(err.code(), Some("Throttling" | "ThrottlingException"));
    if client_error {
        // Some emulators wrap the error in <Errors>, which the SDK does not read: the body then
        // still says what happened.
        let body = err
            .raw_response()
            .and_then(|r| r.body().bytes())
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default();
        let code = err
            .code()
            .map(str::to_string)
            .or_else(|| xml_text(&body, "Code"));
        let message = err
            .message()
            .map(str::to_string)
            .or_else(|| xml_text(&body, "Message"));
        let mut reason = format!(
            "STS {operation} refused (HTTP {}",
            status.unwrap_or_default()
        );
        if let Some(code) = code {
            reason.push_str(&format!(" {code}"));
        }
        reason.push(')');
        match message {
            Some(message) => reason.push_str(&format!(": {message}")),
            None => reason.push_str(&format!(": {}", error_chain(&err))),
        }
        Error::RoleNotAssumed {
            role_arn: role_arn.to_string(),
            reason,
        }
    } else {
        Error::aws("STS", operation, err)
    }
}

/// The text of the first `<tag>` element of an XML error body.
fn xml_text(body: &str, tag: &str) -> Option<String> {
    let start = body.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + body[start..].find(&format!("</{tag}>"))?;
    Some(body[start..end].to_string()).filter(|t| !t.is_empty())
}

/// The clients that act as one job's role.
#[derive(Debug, Clone)]
pub struct JobClients {
    /// The S3 client signing with the role's credentials.
    pub s3: aws_sdk_s3::Client,
    /// The Lambda client signing with the role's credentials (for `LambdaInvoke` tasks).
    pub lambda: aws_sdk_lambda::Client,
    /// What both sign with: the role's credentials, kept and renewed.
    pub credentials: provider::SharedCredentialsProvider,
    /// `s3`'s twins for buckets in other Regions.
    pub s3_regions: Arc<crate::region::S3Regions>,
}

/// The job roles one container has assumed, newest last, with how many AssumeRole calls were made
/// (for tests and logs).
#[derive(Debug, Default)]
pub struct JobRoles {
    sessions: Mutex<VecDeque<((String, String), JobClients)>>,
    assumed: Arc<AtomicU64>,
}

impl JobRoles {
    /// AssumeRole calls made so far.
    pub fn assumed(&self) -> u64 {
        self.assumed.load(Ordering::Relaxed)
    }

    /// The shared count of AssumeRole calls, for the credentials of a new role to add to.
    pub fn counter(&self) -> Arc<AtomicU64> {
        self.assumed.clone()
    }

    /// The clients kept for `role_arn` acting for `job_id`, if that role was assumed for that job.
    pub fn get(&self, role_arn: &str, job_id: &str) -> Option<JobClients> {
        let sessions = self.sessions.lock().ok()?;
        sessions
            .iter()
            .find(|((r, j), _)| r == role_arn && j == job_id)
            .map(|(_, clients)| clients.clone())
    }

    /// Keeps `clients` for `role_arn` and `job_id`, replacing any kept before; beyond 64 roles the
    /// oldest is dropped.
    pub fn keep(&self, role_arn: &str, job_id: &str, clients: JobClients) {
        if let Ok(mut sessions) = self.sessions.lock() {
            sessions.retain(|((r, j), _)| !(r == role_arn && j == job_id));
            sessions.push_back(((role_arn.to_string(), job_id.to_string()), clients));
            while sessions.len() > CACHED_SESSIONS {
                sessions.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_is_named_after_the_job_within_stss_limits() {
        assert_eq!(
            session_name("0f8e2c1a-1b2c-4d5e-8f90-123456789abc"),
            "batchops-0f8e2c1a-1b2c-4d5e-8f90-123456789abc"
        );
        assert_eq!(session_name("a b/c"), "batchops-a-b-c");
        assert_eq!(session_name(&"x".repeat(100)).len(), 64);
    }

    #[test]
    fn credentials_are_renewed_ahead_of_their_expiry() {
        let expiry = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        assert_eq!(
            refresh_at(expiry, DEFAULT_SESSION),
            expiry - Duration::from_secs(300)
        );
        assert_eq!(
            refresh_at(expiry, Duration::from_secs(4)),
            expiry - Duration::from_secs(1)
        );
    }

    #[test]
    fn only_roles_under_the_stacks_prefix_are_assumed() {
        let arn = |name: &str| format!("arn:aws:iam::111122223333:role/{name}");
        let prefix = Some("batchops-job-");
        assert!(check_allowed(&arn("batchops-job-tagging"), prefix).is_ok());
        assert!(check_allowed(&arn("admin"), None).is_ok());
        let err = check_allowed(&arn("admin"), prefix)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("role/admin") && err.contains("JobRoleNamePrefix"),
            "{err}"
        );
        assert!(check_allowed(&arn("x/batchops-job-a"), prefix).is_err());
        assert!(check_allowed("arn:aws:iam::111122223333:user/batchops-job-a", prefix).is_err());
    }

    #[test]
    fn an_error_body_the_sdk_cannot_read_still_gives_its_code() {
        let body = "<ErrorResponse><Errors><Error><Code>AccessDenied</Code><Message>not authorized</Message></Error></Errors></ErrorResponse>";
        assert_eq!(xml_text(body, "Code").as_deref(), Some("AccessDenied"));
        assert_eq!(xml_text(body, "Message").as_deref(), Some("not authorized"));
        assert_eq!(xml_text(body, "Type"), None);
        assert_eq!(xml_text("<Code></Code>", "Code"), None);
    }

    #[test]
    fn role_modes_parse_and_refuse_others() {
        assert_eq!("job".parse::<RoleMode>().unwrap(), RoleMode::Job);
        assert_eq!(
            "orchestrator".parse::<RoleMode>().unwrap(),
            RoleMode::Orchestrator
        );
        let err = "admin".parse::<RoleMode>().unwrap_err().to_string();
        assert!(err.contains("\"admin\""), "{err}");
    }
}
