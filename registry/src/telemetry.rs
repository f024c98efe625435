//! Logging setup from `log.level` / `log.formatter` (`RUST_LOG` overrides the level).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// Maps distribution's (logrus) level names to tracing's.
fn tracing_level(level: Option<&str>) -> &'static str {
    match level.map(str::to_ascii_lowercase).as_deref() {
        Some("panic" | "fatal" | "error") => "error",
        Some("warn" | "warning") => "warn",
        Some("debug") => "debug",
        Some("trace") => "trace",
        _ => "info",
    }
}

/// Installs the global subscriber; later calls are ignored (tests start several servers).
pub fn init(log: &LogConfig, deprecated_level: Option<&str>) {
    let level = tracing_level(log.level.as_deref().or(deprecated_level));
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},h2=warn,hyper=warn,rustls=warn")));
    let json = matches!(log.formatter.as_deref(), Some("json" | "logstash"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Escape codes only for a person at a terminal, not in pod logs or files.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_logrus_levels() {
        assert_eq!(tracing_level(Some("fatal")), "error");
        assert_eq!(tracing_level(Some("Warning")), "warn");
        assert_eq!(tracing_level(None), "info");
    }
}
