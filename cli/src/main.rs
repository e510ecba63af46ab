//! `ferroflux`: the command line of the ferroflux suite.

mod cmd;
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
    /// Print the client and controller versions.
    Version(cmd::version::VersionArgs),
    /// Check the API server, the controllers and the CRDs.
    Check(cmd::check::CheckArgs),
    /// Get the status of Flux objects.
    Get(cmd::get::GetArgs),
    /// Reconcile sources and resources (and wait for the outcome).
    Reconcile(cmd::reconcile::ReconcileArgs),
    /// Suspend the reconciliation of objects.
    Suspend(cmd::suspend::SuspendArgs),
    /// Resume suspended objects (and wait for their reconciliation).
    Resume(cmd::suspend::ResumeArgs),
    /// Create or update sources, Kustomizations and HelmReleases (`--export` prints them).
    Create(cmd::create::CreateArgs),
    /// Delete Flux objects.
    Delete(cmd::delete::DeleteArgs),
    /// Export Flux objects as YAML.
    Export(cmd::export::ExportArgs),
    /// Display the Kubernetes events of Flux objects.
    Events(cmd::events::EventsArgs),
    /// Print the objects a Kustomization manages, as a tree.
    Tree(cmd::tree::TreeArgs),
    /// Print the number of running, failing and suspended objects per kind.
    Stats(cmd::stats::StatsArgs),
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
    // Usage errors exit 1, as flux's (cobra) do; --help and --version exit 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let result = match cli.command {
        Command::Controller { name, args } => return run_controller(&name, args),
        Command::Version(args) => cmd::version::command(args),
        Command::Check(args) => cmd::check::command(args),
        Command::Get(args) => cmd::get::command(args),
        Command::Reconcile(args) => cmd::reconcile::command(args),
        Command::Suspend(args) => cmd::suspend::suspend(args),
        Command::Resume(args) => cmd::suspend::resume(args),
        Command::Create(args) => cmd::create::command(args),
        Command::Delete(args) => cmd::delete::command(args),
        Command::Export(args) => cmd::export::command(args),
        Command::Events(args) => cmd::events::command(args),
        Command::Tree(args) => cmd::tree::command(args),
        Command::Stats(args) => cmd::stats::command(args),
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
