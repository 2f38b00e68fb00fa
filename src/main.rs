//! dbaudit's binary: parse the command line, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use dbaudit::app::{self, Io};
use dbaudit::cli::Cli;
use dbaudit::report::gate::EXIT_USAGE;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    dbaudit::logging::init(cli.verbose);
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr();
    let mut io = Io {
        stdout: &mut stdout,
        stderr: &mut stderr,
        stdout_tty: app::stdout_is_tty(),
    };
    match app::run(cli, &mut io) {
        Ok(code) => ExitCode::from(code as u8),
        // A reader that stopped reading (`dbaudit … --json - | head`) is a
        // normal end of output, not an error.
        Err(dbaudit::Error::Io { path, error })
            if error.kind() == std::io::ErrorKind::BrokenPipe && path.as_os_str() == "<stdout>" =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            let code = e.exit_code();
            let err = anyhow::Error::from(e);
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {err:#}");
            }
            ExitCode::from(code.clamp(0, 255) as u8)
        }
    }
}
