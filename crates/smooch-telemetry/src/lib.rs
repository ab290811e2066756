//! Logging: human-readable text by default, JSON lines on request.
//!
//! Which level, one rule for both binaries:
//!
//! 1. the level given explicitly, by flag or its environment variable
//!    (`--log-level`/`LOG_LEVEL` for the operator, `--log-level`/
//!    `SMOOCH_EMULATOR_LOG` for the emulator), the flag winning over the
//!    variable;
//! 2. otherwise `RUST_LOG`;
//! 3. otherwise `info`.
//!
//! Each is a level (`debug`) or an `EnvFilter` directive list
//! (`info,kube=warn`). An explicit level that is not one is refused at
//! start-up; a `RUST_LOG` that is not one is reported and `info` is used.
//!
//! Text is coloured only when the output is a terminal (and `NO_COLOR` is
//! not set), so log files and pipes get plain text.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

/// Where log lines go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Stdout,
    Stderr,
}

impl Output {
    fn is_terminal(self) -> bool {
        match self {
            Output::Stdout => std::io::stdout().is_terminal(),
            Output::Stderr => std::io::stderr().is_terminal(),
        }
    }

    fn writer(self) -> BoxMakeWriter {
        match self {
            Output::Stdout => BoxMakeWriter::new(std::io::stdout),
            Output::Stderr => BoxMakeWriter::new(std::io::stderr),
        }
    }
}

/// A clap value parser for `--log-level`: the text, if it is a level or a
/// filter.
pub fn parse_level(text: &str) -> Result<String, String> {
    EnvFilter::try_new(text)
        .map(|_| text.to_owned())
        .map_err(|e| format!("not a log level or filter (e.g. info, debug, info,kube=warn): {e}"))
}

/// The filter to use and, when `RUST_LOG` was unusable, why.
fn choose_filter(explicit: Option<&str>, rust_log: Option<&str>) -> (EnvFilter, Option<String>) {
    if let Some(level) = explicit
        && let Ok(filter) = EnvFilter::try_new(level)
    {
        return (filter, None);
    }
    match rust_log.filter(|value| !value.trim().is_empty()) {
        Some(value) => match EnvFilter::try_new(value) {
            Ok(filter) => (filter, None),
            Err(e) => (
                EnvFilter::new("info"),
                Some(format!(
                    "RUST_LOG is not a log filter ({e}); logging at info"
                )),
            ),
        },
        None => (EnvFilter::new("info"), None),
    }
}

/// Text colour only on a terminal, and never with `NO_COLOR` set.
fn use_colour(output: Output) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && output.is_terminal()
}

/// The operator's logging, on stdout. `level` is the explicit level
/// (`--log-level`/`LOG_LEVEL`), if any.
pub fn init(level: Option<&str>, json: bool) {
    init_to(Output::Stdout, level, json);
}

/// kube-runtime's controller opens an info-level span per reconcile and logs
/// nothing else at info: the span's fields were formatted for every
/// reconcile although nothing is logged when all goes well (about 4 % of the
/// operator's CPU in steady state, BENCHMARKS.md). At `info` or quieter it is
/// left out (our own log lines name the kind, namespace and name); a filter
/// that names `kube_runtime`, or a more verbose level, keeps it.
fn without_reconcile_span(filter: EnvFilter, text: &str) -> EnvFilter {
    let quiet = filter
        .max_level_hint()
        .is_some_and(|max| max <= tracing_subscriber::filter::LevelFilter::INFO);
    if !quiet || text.contains("kube_runtime") {
        return filter;
    }
    filter.add_directive(
        "kube_runtime::controller=warn"
            .parse()
            .expect("a valid directive"),
    )
}

/// Logging to `output` with the precedence described above.
pub fn init_to(output: Output, level: Option<&str>, json: bool) {
    let rust_log = std::env::var("RUST_LOG").ok();
    let (filter, warning) = choose_filter(level, rust_log.as_deref());
    let text = filter.to_string();
    let filter = without_reconcile_span(filter, &text);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(!json && use_colour(output))
        .with_writer(output.writer());
    // A second init (tests) is harmless: keep the first subscriber.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chosen(explicit: Option<&str>, rust_log: Option<&str>) -> String {
        choose_filter(explicit, rust_log).0.to_string()
    }

    #[test]
    fn explicit_then_rust_log_then_info() {
        assert_eq!(chosen(Some("warn"), Some("debug")), "warn");
        assert_eq!(chosen(None, Some("debug")), "debug");
        assert_eq!(chosen(None, Some("")), "info");
        assert_eq!(chosen(None, None), "info");
        assert!(choose_filter(None, Some("x=verbose")).1.is_some());
    }

    #[test]
    fn the_reconcile_span_is_left_out_at_info_only() {
        let after = |text: &str| without_reconcile_span(EnvFilter::new(text), text).to_string();
        assert!(after("info").contains("kube_runtime::controller=warn"));
        assert!(after("warn").contains("kube_runtime::controller=warn"));
        assert!(!after("debug").contains("kube_runtime::controller=warn"));
        assert!(!after("info,kube_runtime=info").contains("kube_runtime::controller=warn"));
    }

    #[test]
    fn levels_and_filters_parse() {
        assert!(parse_level("info,kube_lease_manager=debug").is_ok());
        assert!(parse_level("smooch=verbose").is_err());
    }
}
