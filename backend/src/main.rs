//! The `confab` binary; everything lives in the library so tests can build the same server.

fn main() -> std::process::ExitCode {
    confab::cli::main()
}
