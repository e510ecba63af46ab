//! Runs one controller, chosen by the first argument, as its own process: the end-to-end tests
//! start the services through this launcher so that they run as separate processes with the
//! very code of the `source-controller` and `kustomize-controller` binaries.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() < 2 {
        eprintln!(
            "usage: ferroflux-e2e-controller <source-controller|kustomize-controller|notification-controller|helm-controller> [flags]"
        );
        return ExitCode::from(2);
    }
    let name = args.remove(1);
    match name.to_str() {
        Some("source-controller") => {
            args[0] = name;
            source_controller::main_entry(args)
        }
        Some("kustomize-controller") => {
            args[0] = name;
            kustomize_controller::main_entry(args)
        }
        Some("notification-controller") => {
            args[0] = name;
            notification_controller::main_entry(args)
        }
        Some("helm-controller") => {
            args[0] = name;
            helm_controller::main_entry(args)
        }
        _ => {
            eprintln!("unknown controller {name:?}");
            ExitCode::from(2)
        }
    }
}
