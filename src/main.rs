//! The `rotessa-recon` binary: everything lives in the library; see `cli`.

fn main() -> std::process::ExitCode {
    rotessa_recon::cli::main()
}
