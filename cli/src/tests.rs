use super::*;
use clap::CommandFactory;

#[test]
fn the_command_line_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn parses_aws_style_commands() {
    let cli = Cli::try_parse_from([
        "batchops",
        "--endpoint-url",
        "http://127.0.0.1:5000",
        "list-jobs",
        "--job-statuses",
        "Active",
        "Complete",
    ])
    .unwrap();
    assert_eq!(cli.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
    match cli.command {
        Command::ListJobs { job_statuses, .. } => {
            assert_eq!(job_statuses, vec![JobStatus::Active, JobStatus::Complete])
        }
        other => panic!("{other:?}"),
    }
    let cli = Cli::try_parse_from([
        "batchops",
        "update-job-status",
        "--job-id",
        "j",
        "--requested-job-status",
        "Cancelled",
        "--region",
        "eu-west-1",
    ])
    .unwrap();
    assert_eq!(cli.region.as_deref(), Some("eu-west-1"));
    assert!(matches!(
        cli.command,
        Command::UpdateJobStatus {
            requested_job_status: JobStatus::Cancelled,
            ..
        }
    ));
}

#[test]
fn refuses_unknown_statuses_and_conflicting_flags() {
    let err = Cli::try_parse_from(["batchops", "list-jobs", "--job-statuses", "Running"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown job status"), "{err}");
    assert!(Cli::try_parse_from([
        "batchops",
        "create-job",
        "--cli-input-json",
        "{}",
        "--confirmation-required",
        "--no-confirmation-required"
    ])
    .is_err());
    assert!(
        Cli::try_parse_from(["batchops", "local", "run", "--until-idle", "--job-id", "j"]).is_err()
    );
}

#[test]
fn confirmation_flags_override_the_input() {
    let parse = |flags: &[&str]| {
        let mut args = vec!["batchops", "create-job", "--cli-input-json", "{}"];
        args.extend_from_slice(flags);
        match Cli::try_parse_from(args).unwrap().command {
            Command::CreateJob { confirmation, .. } => confirmation.as_override(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(parse(&[]), None);
    assert_eq!(parse(&["--no-confirmation-required"]), Some(false));
    assert_eq!(parse(&["--confirmation-required"]), Some(true));
}

#[test]
fn reads_cli_input_json_from_a_file_or_inline() {
    let json = r#"{"Operation": {"S3DeleteObjectTagging": {}}, "Report": {"Enabled": false}}"#;
    let inline = read_request(json).unwrap();
    assert_eq!(inline.operation.name(), "S3DeleteObjectTagging");
    let path = std::env::temp_dir().join(format!("batchops-cli-{}.json", std::process::id()));
    std::fs::write(&path, json).unwrap();
    let from_file = read_request(&format!("file://{}", path.display())).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(from_file, inline);
    let err = read_request("file:///nonexistent/x.json")
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot read --cli-input-json file"), "{err}");
    assert!(read_request("job.json").is_err());
}
