//! The control plane: CreateJob, DescribeJob, ListJobs, UpdateJobStatus, UpdateJobPriority and job
//! templates, with request and response JSON in S3 Control's shape. Used by the control Lambda
//! and the CLI.
