//! `ferroflux delete`: delete one Flux object after a confirmation (`-s/--silent` skips it), as
//! `flux delete`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{anyhow, bail};

use super::cluster::{ClusterArgs, describe, run, with_timeout};
use super::log;
use super::target::Target;

/// `ferroflux delete`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  # Delete a Kustomization without asking
  ferroflux delete ks podinfo --silent

  # Delete a GitRepository source
  ferroflux delete source git podinfo")]
pub struct DeleteArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Delete the resource without asking for confirmation.
    #[arg(short = 's', long, global = true)]
    pub silent: bool,
    #[command(subcommand)]
    pub what: Target,
}

/// Asks `question [y/N]` on stderr and reads the answer from stdin.
fn confirm(question: &str) -> bool {
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "? {question}? [y/N] ");
    let _ = err.flush();
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        return false;
    }
    if !std::io::stdin().is_terminal() {
        let _ = writeln!(err);
    }
    matches!(line.trim(), "y" | "Y" | "yes" | "Yes")
}

/// Runs `ferroflux delete`.
pub fn command(args: DeleteArgs) -> anyhow::Result<()> {
    let timeout = args.cluster.timeout;
    let silent = args.silent;
    run(with_timeout(timeout, async move {
        let (kind, names) = args.what.resolve();
        let Some(name) = names.first() else {
            bail!("{} name is required", kind.human);
        };
        let cluster = args.cluster.connect().await?;
        let ns = cluster.namespace.clone();
        cluster
            .get(kind, &ns, name)
            .await
            .map_err(|e| anyhow!(describe(&e)))?;
        if !silent
            && !confirm(&format!(
                "Are you sure you want to delete this {}",
                kind.human
            ))
        {
            bail!("aborting");
        }
        log::action(format!("deleting {} {name} in {ns} namespace", kind.human));
        cluster
            .delete(kind, &ns, name)
            .await
            .map_err(|e| anyhow!(describe(&e)))?;
        log::success(format!("{} deleted", kind.human));
        Ok(())
    }))
}
