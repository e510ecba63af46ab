//! `ferroflux`: the command line of the ferroflux suite.

mod engines;

use ferroflux_cli::artifact;
mod up;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc's malloc: the engine front-ends (`helm template`, `kustomize
/// build`) allocate many small values and spent about a quarter of their instructions in
/// glibc's malloc/free (callgrind, crates/helm/README.md "Benchmark"); mimalloc runs them with
/// 10-15% fewer instructions.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "ferroflux",
    version,
    about = "The Flux GitOps toolkit, rebuilt in Rust"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the embedded demo: a local Kubernetes API, the Flux CRDs, the controllers and a sample
    /// Git repository, reconciled until Ctrl-C.
    Up(up::UpArgs),
    /// Print the version of the CLI and the Flux API versions it speaks.
    Version,
    /// Kustomize commands (`build`), with output identical to `kubectl kustomize`.
    Kustomize {
        #[command(subcommand)]
        command: engines::KustomizeCommand,
    },
    /// Helm commands (`template`), with output identical to `helm template`.
    Helm {
        #[command(subcommand)]
        command: engines::HelmCommand,
    },
    /// Push OCI artifacts (`push artifact`), as `flux push`.
    Push {
        #[command(subcommand)]
        command: artifact::PushCommand,
    },
    /// Pull OCI artifacts (`pull artifact`), as `flux pull`.
    Pull {
        #[command(subcommand)]
        command: artifact::PullCommand,
    },
    /// Tag OCI artifacts (`tag artifact`), as `flux tag`.
    Tag {
        #[command(subcommand)]
        command: artifact::TagCommand,
    },
    /// List OCI artifacts (`list artifacts`), as `flux list`.
    List {
        #[command(subcommand)]
        command: artifact::ListCommand,
    },
    /// Run one controller in this process (used by `up` to start its child processes).
    #[command(hide = true)]
    Controller {
        /// source-controller, kustomize-controller, helm-controller or notification-controller.
        name: String,
        /// The controller's own flags.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

fn run_controller(name: &str, args: Vec<OsString>) -> ExitCode {
    let argv = std::iter::once(OsString::from(name)).chain(args);
    match name {
        "source-controller" => source_controller::main_entry(argv),
        "kustomize-controller" => kustomize_controller::main_entry(argv),
        "helm-controller" => helm_controller::main_entry(argv),
        "notification-controller" => notification_controller::main_entry(argv),
        other => {
            eprintln!("✗ unknown controller {other:?}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Controller { name, args } => return run_controller(&name, args),
        Command::Version => {
            println!("ferroflux {}", env!("CARGO_PKG_VERSION"));
            println!(
                "compatible with Flux v2.9 APIs: source.toolkit.fluxcd.io/v1, kustomize.toolkit.fluxcd.io/v1, helm.toolkit.fluxcd.io/v2, notification.toolkit.fluxcd.io/v1beta3 and v1"
            );
            Ok(())
        }
        Command::Kustomize { command } => engines::kustomize(command),
        Command::Helm { command } => engines::helm(command),
        Command::Push { command } => artifact::push(command),
        Command::Pull { command } => artifact::pull(command),
        Command::Tag { command } => artifact::tag(command),
        Command::List { command } => artifact::list(command),
        Command::Up(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(up::run(args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("✗ {e:#}");
            ExitCode::FAILURE
        }
    }
}
