//! Logging set-up shared by the functions and the CLI.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// JSON logs for CloudWatch; level from `RUST_LOG` (default `info`).
pub fn init_json() {
    let _ = json_subscriber(filter_from_env(LevelFilter::INFO), std::io::stdout).try_init();
}

/// The functions' JSON log format, written to `writer` (tests capture what the functions log).
pub fn json_subscriber<W>(filter: Targets, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_max_level(LevelFilter::TRACE)
        .with_current_span(false)
        .without_time()
        .with_writer(writer)
        .finish()
        .with(filter)
}

/// Human-readable logs on stderr for the CLI.
pub fn init_cli() {
    let _ = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::TRACE)
        .with_writer(std::io::stderr)
        .finish()
        .with(filter_from_env(LevelFilter::WARN))
        .try_init();
}

/// The levels `RUST_LOG` asks for: `level`, `target=level` or both, comma-separated (`info`,
/// `batchops=debug,warn`); `default` when it is unset or does not parse. `Targets` rather than
/// `EnvFilter`: no span or field filters, and no regex engine in every binary (about 0.3 MiB).
pub fn filter_from_env(default: LevelFilter) -> Targets {
    filter_from(std::env::var("RUST_LOG").ok().as_deref(), default)
}

fn filter_from(directives: Option<&str>, default: LevelFilter) -> Targets {
    directives
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(default))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn rust_log_sets_levels_per_target_and_falls_back_to_the_default() {
        let unset = filter_from(None, LevelFilter::INFO);
        assert!(unset.would_enable("aws_smithy_runtime", &Level::INFO));
        assert!(!unset.would_enable("batchops", &Level::DEBUG));

        let per_target = filter_from(Some("batchops=debug,warn"), LevelFilter::INFO);
        assert!(per_target.would_enable("batchops::executor", &Level::DEBUG));
        assert!(!per_target.would_enable("aws_smithy_runtime", &Level::INFO));
        assert!(per_target.would_enable("aws_smithy_runtime", &Level::WARN));

        let garbage = filter_from(Some("batchops=loud"), LevelFilter::WARN);
        assert!(!garbage.would_enable("batchops", &Level::INFO));
        assert!(garbage.would_enable("batchops", &Level::WARN));
    }
}
