use std::process::ExitCode;

fn main() -> ExitCode {
    baton_server::cli::main()
}
