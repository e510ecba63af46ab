//! The `kustomize-controller` binary; everything lives in the library so that the CLI's embedded
//! mode and the end-to-end tests run the very same code.

fn main() -> std::process::ExitCode {
    kustomize_controller::main_entry(std::env::args_os())
}
