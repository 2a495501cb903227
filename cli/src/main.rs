//! `batchops`: the control plane of batchops from the command line, shaped like
//! `aws s3control` (same command names, options and JSON), plus `local` to run the whole
//! application on a local emulator.

use anyhow::{bail, Context as _, Result};
use batchops::control;
use batchops::control::ControlRequest;
use batchops::job::{CreateJobRequest, JobStatus, S3Tag};
use batchops::local::{self, LocalNames, RunUntil};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

mod watch;

#[derive(Debug, Parser)]
#[command(
    name = "batchops",
    version,
    about = "S3 Batch Operations as a serverless application"
)]
struct Cli {
    /// Send every AWS request to this endpoint (sets AWS_ENDPOINT_URL), e.g. a local emulator.
    #[arg(long, global = true, value_name = "URL")]
    endpoint_url: Option<String>,
    /// AWS Region (sets AWS_REGION).
    #[arg(long, global = true)]
    region: Option<String>,
    /// Accepted for compatibility with `aws s3control`; CreateJob records it as AccountId when
    /// the input JSON has none.
    #[arg(long, global = true)]
    account_id: Option<String>,
    /// Send job commands to this deployed stack's control function (STACK-control): the CLI
    /// then needs only lambda:InvokeFunction on it, and no access to the stack's table or
    /// queues. Without it (or --control-function), commands act on the table and queues
    /// directly, as for `local` runs.
    #[arg(long, global = true, value_name = "STACK", env = "BATCHOPS_STACK")]
    stack: Option<String>,
    /// Like --stack, naming the control function itself (name or ARN).
    #[arg(
        long,
        global = true,
        value_name = "FUNCTION",
        env = "BATCHOPS_CONTROL_FUNCTION",
        conflicts_with = "stack"
    )]
    control_function: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a job from a CreateJob JSON (as for `aws s3control create-job`), as a clone of
    /// another job, or over the failed tasks of another job; prints {"JobId"}.
    #[command(group = clap::ArgGroup::new("source").required(true).multiple(false))]
    CreateJob {
        /// file://PATH or inline JSON.
        #[arg(long, value_name = "JSON", group = "source")]
        cli_input_json: Option<String>,
        /// A new job with this job's spec (operation, manifest or generator, report, role,
        /// priority, tags); tagged batchops:clone-of=JOB_ID.
        #[arg(long, value_name = "JOB_ID", group = "source")]
        clone_of: Option<String>,
        /// A new job with this ended job's operation over the tasks that failed in it (a CSV
        /// manifest written to the system bucket); tagged batchops:rerun-failed-of=JOB_ID.
        #[arg(long, value_name = "JOB_ID", group = "source")]
        rerun_failed_of: Option<String>,
        /// At most N tasks start per second, across every executor (the job's
        /// "BatchOps": {"MaxTasksPerSecond": N}; update-job-rate changes it later).
        #[arg(long, value_name = "N")]
        max_tasks_per_second: Option<u32>,
        /// Run the first N tasks for real, write their report (under <report prefix>/job-<id>/
        /// canary/), then wait in Suspended: update-job-status --requested-job-status Ready
        /// runs the rest, Cancelled ends the job (the job's "BatchOps": {"CanaryTasks": N}).
        #[arg(long, value_name = "N", conflicts_with = "dry_run", value_parser = clap::value_parser!(u64).range(1..=batchops::job::MAX_CANARY_TASKS))]
        canary: Option<u64>,
        /// Create nothing: read the manifest (or list the generator's bucket) and print the
        /// task count, bytes, the first tasks, the requests by type, the cost on this stack
        /// beside S3 Batch Operations and the duration. With --cli-input-json or --clone-of.
        #[arg(long, conflicts_with = "rerun_failed_of")]
        dry_run: bool,
        /// With --dry-run: how many of the first tasks to print.
        #[arg(long, value_name = "N", default_value_t = batchops::dry_run::DEFAULT_SHOW_TASKS, requires = "dry_run")]
        show_tasks: usize,
        /// With --dry-run: executor invocations at once (the stack's ExecutorMaxConcurrency).
        #[arg(long, value_name = "N", requires = "dry_run")]
        executor_invocations: Option<u64>,
        #[command(flatten)]
        confirmation: Confirmation,
    },
    /// Show a job: status, progress, failure reasons, dates.
    DescribeJob {
        #[arg(long)]
        job_id: String,
        /// Follow the job until it ends or waits for confirmation (Suspended): a progress bar
        /// on a terminal (done/total, succeeded, failed, tasks/s, ETA, status changes), a plain
        /// line per refresh otherwise; then print the final answer.
        #[arg(long)]
        watch: bool,
        /// With --watch: refresh every N seconds.
        #[arg(long, value_name = "N", default_value_t = 3, requires = "watch")]
        watch_seconds: u64,
    },
    /// List jobs, newest first, optionally only those in the given statuses.
    ListJobs {
        #[arg(long, num_args = 1.., value_name = "STATUS", value_parser = parse_status)]
        job_statuses: Vec<JobStatus>,
        /// At most this many jobs (1 to 1,000); the answer's NextToken gives the next page.
        #[arg(long, value_name = "N")]
        max_results: Option<usize>,
        /// The NextToken of the previous page.
        #[arg(long, value_name = "TOKEN")]
        next_token: Option<String>,
        /// Only jobs with this tag (repeat for jobs with all of them); beyond S3's ListJobs.
        #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = control::parse_tag)]
        tags: Vec<S3Tag>,
    },
    /// Confirm a suspended job (Ready) or cancel a job (Cancelled).
    UpdateJobStatus {
        #[arg(long)]
        job_id: String,
        #[arg(long, value_name = "Ready|Cancelled", value_parser = parse_status)]
        requested_job_status: JobStatus,
        #[arg(long)]
        status_update_reason: Option<String>,
    },
    /// Change a job's priority.
    UpdateJobPriority {
        #[arg(long)]
        job_id: String,
        /// 0 or greater; a negative value is refused with S3's message, not read as an option.
        #[arg(long, allow_negative_numbers = true)]
        priority: i32,
    },
    /// Change a running job's rate limit (batchops' own); 0 removes the limit.
    UpdateJobRate {
        #[arg(long)]
        job_id: String,
        #[arg(long, value_name = "N")]
        max_tasks_per_second: u32,
    },
    /// Show a job's tags.
    GetJobTagging {
        #[arg(long)]
        job_id: String,
    },
    /// Replace a job's tags: `--tags Key=k,Value=v Key=k2,Value=v2` or a JSON list
    /// (`'[{"Key": "k", "Value": "v"}]'`); `--tags '[]'` removes them all.
    PutJobTagging {
        #[arg(long)]
        job_id: String,
        #[arg(long, num_args = 1.., required = true, value_name = "TAGS")]
        tags: Vec<String>,
    },
    /// Remove all of a job's tags.
    DeleteJobTagging {
        #[arg(long)]
        job_id: String,
    },
    /// Store a job template: a CreateJob JSON without Manifest, started for every S3 Inventory
    /// manifest.json delivered under the prefix.
    PutJobTemplate {
        #[arg(long)]
        name: String,
        /// s3://BUCKET/PREFIX
        #[arg(long, value_name = "S3_URL")]
        manifest_prefix: String,
        /// file://PATH or inline JSON.
        #[arg(long, value_name = "JSON")]
        cli_input_json: String,
    },
    ListJobTemplates,
    DeleteJobTemplate {
        #[arg(long)]
        name: String,
    },
    /// Run the sweeper once: drain the dead-letter queues, resend lost finalize requests, wake
    /// stalled jobs, fail jobs Suspended for over 30 days; prints what it repaired.
    Sweep,
    /// Send an inventory bucket's manifest.json arrivals to the planner, keeping every other
    /// notification of the bucket. Shows the change; writes it only with --yes.
    ConnectInventory {
        #[arg(long)]
        bucket: String,
        /// "queue": an S3 notification to the plan queue; "eventbridge": switch on the bucket's
        /// EventBridge delivery (the template's InventoryTrigger=eventbridge rule forwards it).
        #[arg(long, default_value = "queue", value_parser = parse_via)]
        via: batchops::trigger::Via,
        /// Write the configuration (without it, only the diff is shown).
        #[arg(long)]
        yes: bool,
    },
    /// Run batchops on a local emulator (moto server).
    #[command(subcommand)]
    Local(Local),
}

#[derive(Debug, Args)]
#[group(multiple = false)]
struct Confirmation {
    /// The job waits in Suspended until `update-job-status --requested-job-status Ready`.
    #[arg(long)]
    confirmation_required: bool,
    /// The job runs without confirmation, whatever the input JSON says.
    #[arg(long)]
    no_confirmation_required: bool,
}

impl Confirmation {
    fn as_override(&self) -> Option<bool> {
        match (self.confirmation_required, self.no_confirmation_required) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Local {
    /// Create the table, queues and system bucket on the endpoint (idempotent).
    Up {
        /// Also send this bucket's inventory manifest.json arrivals to the planner.
        #[arg(long)]
        inventory_bucket: Option<String>,
    },
    /// Poll the queues and run the planner, executor and reporter in-process.
    Run {
        /// Return when every queue is empty (the default).
        #[arg(long, conflicts_with = "job_id")]
        until_idle: bool,
        /// Return when this job has finished, or waits in Suspended for confirmation.
        #[arg(long)]
        job_id: Option<String>,
        /// Fail when not done after this long.
        #[arg(long, default_value_t = 900)]
        timeout_seconds: u64,
        /// Run the sweeper this often (the deployed stack runs it on a schedule).
        #[arg(long, default_value_t = 10)]
        sweep_seconds: u64,
        /// Print the job's progress to stderr this often; 0: quiet.
        #[arg(long, default_value_t = 10)]
        progress_seconds: u64,
        /// Inject faults into every AWS call of this run, as a JSON fault plan
        /// ({"Seed": N, "Rules": [...]}, see README "Fault injection"); loopback endpoints only.
        #[arg(long, value_name = "FILE", conflicts_with = "chaos")]
        fault_plan: Option<std::path::PathBuf>,
        /// A chaos run with this seed: the standard fault plan of `make chaos`, plus handler
        /// invocations killed part-way and message visibility that lapses; loopback only.
        #[arg(long, value_name = "SEED")]
        chaos: Option<u64>,
        /// Whose permissions jobs act on data with: "job" (each job's RoleArn, assumed with
        /// STS; the default) or "orchestrator" (this process's own credentials). Default:
        /// BATCHOPS_ROLE_MODE, else "job".
        #[arg(long, value_name = "MODE", value_parser = parse_role_mode)]
        role_mode: Option<batchops::role::RoleMode>,
    },
}

fn parse_via(s: &str) -> Result<batchops::trigger::Via, String> {
    s.parse().map_err(|e: batchops::Error| e.to_string())
}

fn parse_role_mode(s: &str) -> Result<batchops::role::RoleMode, String> {
    s.parse().map_err(|e: batchops::Error| e.to_string())
}

fn parse_status(s: &str) -> Result<JobStatus, String> {
    JobStatus::parse(s).map_err(|_| {
        let names: Vec<&str> = batchops::job::ALL_STATUSES
            .iter()
            .map(|s| s.as_str())
            .collect();
        format!(
            "unknown job status {s:?}; expected one of {}",
            names.join(", ")
        )
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Before any thread starts: the SDK reads these when it loads its configuration.
    if let Some(url) = &cli.endpoint_url {
        std::env::set_var("AWS_ENDPOINT_URL", url);
    }
    if let Some(region) = &cli.region {
        std::env::set_var("AWS_REGION", region);
    }
    batchops::telemetry::init_cli();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("batchops: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(output) => {
            if let Some(output) = output {
                print_output(&output);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("batchops: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints to stdout; a closed pipe (`batchops ... | head`) is not an error.
fn print_output(output: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{output}").and_then(|()| stdout.flush());
}

/// Pretty JSON in the response's own field order (as the AWS CLI prints it); an empty object
/// prints nothing, like the AWS CLI.
fn pretty<T: Serialize>(response: &T) -> Result<Option<String>> {
    let text = serde_json::to_string_pretty(response)?;
    Ok((text != "{}").then_some(text))
}

/// Runs one command; returns what to print, if anything.
async fn run(cli: Cli) -> Result<Option<String>> {
    let function = cli
        .control_function
        .or_else(|| cli.stack.map(|stack| format!("{stack}-control")));
    match (cli.command, function) {
        (
            Command::DescribeJob {
                job_id,
                watch: true,
                watch_seconds,
            },
            function,
        ) => watch_job(&job_id, watch_seconds, function.as_deref(), cli.account_id).await,
        (Command::Local(local), _) => run_local(local).await,
        (command @ Command::CreateJob { dry_run: true, .. }, function) => {
            dry_run(command, function.as_deref(), cli.account_id).await
        }
        (command @ (Command::Sweep | Command::ConnectInventory { .. }), _) => {
            run_control(command, cli.account_id).await
        }
        (command, Some(function)) => run_via_function(command, &function, cli.account_id).await,
        (command, None) => run_control(command, cli.account_id).await,
    }
}

/// `describe-job --watch`: the job's progress until it ends or waits for confirmation, then its
/// last DescribeJob answer.
async fn watch_job(
    job_id: &str,
    every_seconds: u64,
    function: Option<&str>,
    account_id: Option<String>,
) -> Result<Option<String>> {
    let every = Duration::from_secs(every_seconds.max(1));
    let request = ControlRequest::DescribeJob(control::JobIdInput {
        job_id: job_id.to_string(),
        account_id,
    });
    let last = match function {
        Some(function) => {
            let config = batchops::context::load_aws_config().await;
            control::check_credentials(&config).await?;
            let lambda = batchops::Context::lambda_client_for(&config);
            watch::watch(job_id, every, || async {
                Ok(control::invoke_control(&lambda, function, &request).await?)
            })
            .await?
        }
        None => {
            let ctx = control::cli_context().await?;
            watch::watch(job_id, every, || watch::describe(&ctx, job_id)).await?
        }
    };
    pretty(&last)
}

/// `create-job --dry-run`: the dry run, through the stack's control function or here, printed
/// as text.
async fn dry_run(
    command: Command,
    function: Option<&str>,
    account_id: Option<String>,
) -> Result<Option<String>> {
    let request = control_request(command, account_id)?;
    let answer = match function {
        Some(function) => {
            let config = batchops::context::load_aws_config().await;
            control::check_credentials(&config).await?;
            let lambda = batchops::Context::lambda_client_for(&config);
            let answer = control::invoke_control(&lambda, function, &request).await?;
            serde_json::from_value(answer)
                .context("the control function's DryRunJob answer is not a dry run")?
        }
        None => {
            let ctx = control::cli_context().await?;
            match control::run(&ctx, request).await? {
                control::ControlResponse::DryRunJob(answer) => *answer,
                _ => bail!("internal error: a dry run answered something else"),
            }
        }
    };
    Ok(Some(batchops::dry_run::render(&answer)))
}

/// A job command as a request to the stack's control function.
async fn run_via_function(
    command: Command,
    function: &str,
    account_id: Option<String>,
) -> Result<Option<String>> {
    let request = control_request(command, account_id)?;
    let config = batchops::context::load_aws_config().await;
    control::check_credentials(&config).await?;
    let lambda = batchops::Context::lambda_client_for(&config);
    let answer = control::invoke_control(&lambda, function, &request).await?;
    pretty(&answer)
}

/// A command run on the stack's table and queues directly.
async fn run_control(command: Command, account_id: Option<String>) -> Result<Option<String>> {
    let ctx = control::cli_context().await?;
    match command {
        Command::Sweep => pretty(&batchops::sweeper::sweep(&ctx).await?),
        Command::ConnectInventory { bucket, via, yes } => {
            let queue = local::queue_arn(&ctx.sqs, &ctx.settings.plan_queue_url).await?;
            let connection =
                batchops::trigger::connect_inventory(&ctx, &bucket, &queue, via, yes).await?;
            if !yes && !connection.diff.is_empty() {
                eprintln!("nothing written: run again with --yes to apply this change");
            }
            pretty(&connection)
        }
        command => {
            let request = control_request(command, account_id)?;
            pretty(&control::run(&ctx, request).await?)
        }
    }
}

/// The control request of a job command, whichever way it is sent.
fn control_request(command: Command, account_id: Option<String>) -> Result<ControlRequest> {
    use control::{
        JobIdInput, ListJobTemplatesInput, ListJobsInput, PutJobTaggingInput, PutJobTemplateInput,
        SourceJobInput, TemplateNameInput, UpdateJobPriorityInput, UpdateJobStatusInput,
    };
    use ControlRequest as R;
    let job = |job_id: String| JobIdInput {
        job_id,
        account_id: account_id.clone(),
    };
    Ok(match command {
        Command::CreateJob {
            cli_input_json,
            clone_of,
            rerun_failed_of,
            max_tasks_per_second,
            canary,
            dry_run,
            show_tasks,
            executor_invocations,
            confirmation,
        } => {
            let options = JobOptions {
                max_tasks_per_second,
                canary_tasks: canary,
            };
            if dry_run {
                let mut input = batchops::dry_run::DryRunJobInput {
                    request: None,
                    clone_of: clone_of.clone(),
                    show_tasks: Some(show_tasks),
                    executor_invocations,
                };
                if let Some(json) = &cli_input_json {
                    input.request = Some(create_job_request(
                        json,
                        &confirmation,
                        options,
                        account_id.clone(),
                    )?);
                }
                return Ok(R::DryRunJob(input));
            }
            let source = |job_id: String| SourceJobInput {
                job_id,
                confirmation_required: confirmation.as_override(),
                max_tasks_per_second,
                canary_tasks: canary,
                account_id: account_id.clone(),
            };
            match (cli_input_json, clone_of, rerun_failed_of) {
                (Some(json), _, _) => R::CreateJob(create_job_request(
                    &json,
                    &confirmation,
                    options,
                    account_id.clone(),
                )?),
                (_, Some(id), _) => R::CloneJob(source(id)),
                (_, _, Some(id)) => R::RerunFailedTasks(source(id)),
                (None, None, None) => {
                    bail!("create-job needs --cli-input-json, --clone-of or --rerun-failed-of")
                }
            }
        }
        Command::DescribeJob { job_id, .. } => R::DescribeJob(job(job_id)),
        Command::ListJobs {
            job_statuses,
            max_results,
            next_token,
            tags,
        } => R::ListJobs(ListJobsInput {
            job_statuses,
            tags,
            max_results,
            next_token,
            account_id: account_id.clone(),
        }),
        Command::UpdateJobStatus {
            job_id,
            requested_job_status,
            status_update_reason,
        } => R::UpdateJobStatus(UpdateJobStatusInput {
            job_id,
            requested_job_status,
            status_update_reason,
            account_id: account_id.clone(),
        }),
        Command::UpdateJobPriority { job_id, priority } => {
            R::UpdateJobPriority(UpdateJobPriorityInput {
                job_id,
                priority,
                account_id: account_id.clone(),
            })
        }
        Command::UpdateJobRate {
            job_id,
            max_tasks_per_second,
        } => R::UpdateJobRate(control::UpdateJobRateInput {
            job_id,
            max_tasks_per_second: (max_tasks_per_second > 0).then_some(max_tasks_per_second),
            account_id: account_id.clone(),
        }),
        Command::GetJobTagging { job_id } => R::GetJobTagging(job(job_id)),
        Command::PutJobTagging { job_id, tags } => R::PutJobTagging(PutJobTaggingInput {
            job_id,
            tags: parse_tag_set(&tags)?,
            account_id: account_id.clone(),
        }),
        Command::DeleteJobTagging { job_id } => R::DeleteJobTagging(job(job_id)),
        Command::PutJobTemplate {
            name,
            manifest_prefix,
            cli_input_json,
        } => R::PutJobTemplate(PutJobTemplateInput {
            name,
            manifest_prefix,
            template: read_request(&cli_input_json)?,
        }),
        Command::ListJobTemplates => R::ListJobTemplates(ListJobTemplatesInput {}),
        Command::DeleteJobTemplate { name } => R::DeleteJobTemplate(TemplateNameInput { name }),
        Command::Sweep | Command::ConnectInventory { .. } | Command::Local(_) => {
            bail!("internal error: not a control request")
        }
    })
}

/// `put-job-tagging --tags`, as the AWS CLI takes it: `Key=k,Value=v` per tag (the value may
/// be empty), or one JSON list of `{"Key", "Value"}`.
fn parse_tag_set(args: &[String]) -> Result<Vec<S3Tag>> {
    if let [json] = args {
        if json.trim_start().starts_with('[') {
            return serde_json::from_str(json).with_context(|| {
                format!("--tags is not a JSON list of {{\"Key\", \"Value\"}}: {json}")
            });
        }
    }
    args.iter()
        .map(|arg| {
            let rest = arg
                .strip_prefix("Key=")
                .with_context(|| format!("--tags takes Key=KEY,Value=VALUE, got {arg:?}"))?;
            let (key, value) = rest
                .split_once(",Value=")
                .with_context(|| format!("--tags takes Key=KEY,Value=VALUE, got {arg:?}"))?;
            Ok(S3Tag {
                key: key.to_string(),
                value: value.to_string(),
            })
        })
        .collect()
}

/// The `"BatchOps"` settings that `create-job` takes as flags.
#[derive(Debug, Clone, Copy)]
struct JobOptions {
    max_tasks_per_second: Option<u32>,
    canary_tasks: Option<u64>,
}

/// The CreateJob request of `create-job` (and of its dry run): the input JSON, with
/// `--account-id` where it has no AccountId, and the confirmation flags,
/// `--max-tasks-per-second` and `--canary` applied, whichever way it is sent.
fn create_job_request(
    cli_input_json: &str,
    confirmation: &Confirmation,
    options: JobOptions,
    account_id: Option<String>,
) -> Result<CreateJobRequest> {
    let mut request = read_request(cli_input_json)?;
    if request.account_id.is_none() {
        request.account_id = account_id;
    }
    if let Some(required) = confirmation.as_override() {
        request.confirmation_required = Some(required);
    }
    if let Some(rate) = options.max_tasks_per_second {
        request
            .batch_ops
            .get_or_insert_with(Default::default)
            .max_tasks_per_second = Some(rate);
    }
    if let Some(tasks) = options.canary_tasks {
        request
            .batch_ops
            .get_or_insert_with(Default::default)
            .canary_tasks = Some(tasks);
    }
    Ok(request)
}

/// Reads `--cli-input-json`: `file://PATH` as the AWS CLI takes it, or the JSON itself.
fn read_request(arg: &str) -> Result<CreateJobRequest> {
    let json = match arg.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read --cli-input-json file {path}"))?,
        None if arg.trim_start().starts_with('{') => arg.to_string(),
        None => bail!("--cli-input-json takes file://PATH or a JSON object, got {arg:?}"),
    };
    Ok(CreateJobRequest::parse(&json)?)
}

async fn run_local(local: Local) -> Result<Option<String>> {
    match local {
        Local::Up { inventory_bucket } => local_up(inventory_bucket.as_deref()).await,
        Local::Run {
            until_idle: _,
            job_id,
            timeout_seconds,
            sweep_seconds,
            progress_seconds,
            fault_plan,
            chaos,
            role_mode,
        } => {
            let plan = match (&fault_plan, chaos) {
                (Some(path), _) => {
                    let json = std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read --fault-plan {}", path.display()))?;
                    Some(batchops::fault::FaultPlan::from_json(&json)?)
                }
                (None, Some(seed)) => Some(batchops::fault::FaultPlan::new(
                    seed,
                    batchops::fault::chaos_rules(seed),
                )),
                (None, None) => None,
            };
            let options = local::RunOptions {
                timeout: Duration::from_secs(timeout_seconds),
                sweep_every: Duration::from_secs(sweep_seconds.max(1)),
                progress_every: (progress_seconds > 0)
                    .then(|| Duration::from_secs(progress_seconds)),
                chaos: chaos
                    .map(|seed| local::Chaos::new(seed, 0.02, 0.02, Duration::from_secs(2))),
            };
            local_run(job_id, &options, plan, role_mode).await
        }
    }
}

async fn local_up(inventory_bucket: Option<&str>) -> Result<Option<String>> {
    let config = batchops::context::load_aws_config().await;
    control::check_credentials(&config).await?;
    let ctx = local::up(
        &config,
        &LocalNames::default(),
        inventory_bucket,
        batchops::context::Settings::default(),
    )
    .await?;
    let settings = ctx.settings;
    pretty(&LocalStack {
        table: settings.table,
        plan_queue_url: settings.plan_queue_url,
        task_queue_url: settings.task_queue_url,
        report_queue_url: settings.report_queue_url,
        system_bucket: settings.system_bucket,
        inventory_bucket: inventory_bucket.map(str::to_string),
    })
}

/// What `local up` made.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct LocalStack {
    table: String,
    plan_queue_url: String,
    task_queue_url: String,
    report_queue_url: String,
    system_bucket: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    inventory_bucket: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct HandlerSeconds {
    planner: f64,
    executor: f64,
    reporter: f64,
}

/// What `local run` did.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct LocalRun {
    plan_messages: u64,
    task_messages: u64,
    report_messages: u64,
    failed_deliveries: u64,
    sweeps: u64,
    repairs: u64,
    /// Seconds inside each function's handler (what Lambda would bill as duration).
    handler_seconds: HandlerSeconds,
    #[serde(skip_serializing_if = "Option::is_none")]
    faults_injected: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invocations_killed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    visibility_lapses: Option<u64>,
}

async fn local_run(
    job_id: Option<String>,
    options: &local::RunOptions,
    faults: Option<std::sync::Arc<batchops::fault::FaultPlan>>,
    role_mode: Option<batchops::role::RoleMode>,
) -> Result<Option<String>> {
    let mut ctx = control::cli_context().await?;
    if let Some(mode) = role_mode {
        ctx.settings.role_mode = mode;
    }
    if let Some(plan) = &faults {
        let config = batchops::context::load_aws_config().await;
        ctx = ctx.with_faults(&config, plan.clone())?;
    }
    let summary = match job_id {
        // On a terminal, the job's progress bar takes the place of the progress lines.
        Some(job_id) if options.progress_every.is_some() && std::io::stderr().is_terminal() => {
            let quiet = local::RunOptions {
                progress_every: None,
                ..options.clone()
            };
            let run = local::run_with(&ctx, RunUntil::JobTerminal(job_id.clone()), &quiet);
            let progress = watch::watch(&job_id, Duration::from_secs(2), || {
                watch::describe(&ctx, &job_id)
            });
            tokio::pin!(run, progress);
            tokio::select! {
                summary = &mut run => summary?,
                // The bar ends with the job; the run still has its last messages to see to.
                _ = &mut progress => run.await?,
            }
        }
        job_id => {
            let until = job_id.map_or(RunUntil::Idle, RunUntil::JobTerminal);
            local::run_with(&ctx, until, options).await?
        }
    };
    pretty(&LocalRun {
        plan_messages: summary.plan_messages,
        task_messages: summary.task_messages,
        report_messages: summary.report_messages,
        failed_deliveries: summary.failed_deliveries,
        sweeps: summary.sweeps,
        repairs: summary.repairs,
        handler_seconds: HandlerSeconds {
            planner: summary.handler_time.planner.as_secs_f64(),
            executor: summary.handler_time.executor.as_secs_f64(),
            reporter: summary.handler_time.reporter.as_secs_f64(),
        },
        faults_injected: faults.as_ref().map(|plan| plan.injected()),
        invocations_killed: options.chaos.as_ref().map(|c| c.kills()),
        visibility_lapses: options.chaos.as_ref().map(|c| c.lapses()),
    })
}

#[cfg(test)]
mod tests;
