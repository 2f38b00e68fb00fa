//! Tracing to stderr, off unless asked for with -v or RUST_LOG.

pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "dbaudit=info",
        2 => "dbaudit=debug",
        _ => "dbaudit=trace,aws_smithy_runtime=debug,aws_config=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .with_target(false)
        .try_init();
}
