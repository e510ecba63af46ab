//! Git: reference resolution with upstream's precedence, authentication from a Secret, fetch with
//! gix (shallow where the server allows it), and checkout of the fetched tree into a directory.
//!
//! Revisions are written as upstream writes them: `<short ref>@sha1:<hex>` for branches, tags
//! and semver matches (`refs/heads/` / `refs/tags/` stripped), `<full ref>@sha1:<hex>` for
//! `ref.name`, `sha1:<hex>` for a commit without branch, `<branch>@sha1:<hex>` for commit +
//! branch.

pub mod auth;
pub mod checkout;
pub mod fetch;
pub mod github;

pub use auth::AuthOptions;
pub use fetch::{CloneConfig, CloneOutcome, clone};

use ferroflux_api::gitrepository::GitRepositoryRef;

/// Branch used when the spec has no reference (upstream's default).
pub const DEFAULT_BRANCH: &str = "master";

/// What to check out, after upstream's precedence: commit > name > tag > semver > branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    Branch(String),
    Tag(String),
    SemVer(String),
    Name(String),
    Commit {
        commit: String,
        branch: Option<String>,
    },
}

impl Reference {
    /// The reference a spec asks for; branch `master` when nothing is set.
    pub fn from_spec(r: Option<&GitRepositoryRef>) -> Self {
        let non_empty =
            |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_string);
        let Some(r) = r else {
            return Self::Branch(DEFAULT_BRANCH.to_string());
        };
        if let Some(commit) = non_empty(&r.commit) {
            return Self::Commit {
                commit,
                branch: non_empty(&r.branch),
            };
        }
        if let Some(name) = non_empty(&r.name) {
            return Self::Name(name);
        }
        if let Some(tag) = non_empty(&r.tag) {
            return Self::Tag(tag);
        }
        if let Some(semver) = non_empty(&r.semver) {
            return Self::SemVer(semver);
        }
        Self::Branch(non_empty(&r.branch).unwrap_or_else(|| DEFAULT_BRANCH.to_string()))
    }

    /// True when revisions are written with the full reference name (`ref.name`).
    pub fn absolute(&self) -> bool {
        matches!(self, Self::Name(_))
    }
}

/// A signed tag that points at the checked out commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    /// Hex id of the tag object.
    pub hash: String,
    /// Tag name, e.g. `v1.0.0`.
    pub name: String,
    /// The armored signature, if the tag is signed.
    pub signature: Option<String>,
    /// The tag object without its signature (what was signed).
    pub payload: Vec<u8>,
}

/// A checked out commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    /// Hex object id.
    pub hash: String,
    /// Full reference name it was resolved from (`refs/heads/main`), empty for a bare commit.
    pub reference: String,
    /// Full commit message.
    pub message: String,
    /// The armored signature (`gpgsig` header), if any.
    pub signature: Option<String>,
    /// The commit object without its signature header (what was signed).
    pub payload: Vec<u8>,
    /// The annotated tag the commit was checked out through, if any.
    pub referencing_tag: Option<Tag>,
}

impl Commit {
    /// `sha1:<hex>`.
    pub fn digest(&self) -> String {
        format!("sha1:{}", self.hash)
    }

    /// Upstream's `Commit.String()`: `<ref without refs/<kind>/>@sha1:<hex>` or `sha1:<hex>`.
    pub fn short_revision(&self) -> String {
        short_revision(&self.reference, &self.hash)
    }

    /// Upstream's `Commit.AbsoluteReference()`: `<full ref>@sha1:<hex>` or `sha1:<hex>`.
    pub fn absolute_revision(&self) -> String {
        absolute_revision(&self.reference, &self.hash)
    }

    /// The revision recorded for this commit, given the reference kind of the spec.
    pub fn revision(&self, reference: &Reference) -> String {
        if reference.absolute() {
            self.absolute_revision()
        } else {
            self.short_revision()
        }
    }

    /// Upstream's `ShortMessage`: the subject line, cut to 50 characters plus `...` when longer
    /// (used in the NewArtifact event).
    pub fn short_message(&self) -> String {
        let subject = self.message.split('\n').next().unwrap_or("");
        if subject.chars().count() > 50 {
            format!("{}...", subject.chars().take(50).collect::<String>())
        } else {
            subject.to_string()
        }
    }
}

/// `<ref minus its first two components>@sha1:<hex>`, or `sha1:<hex>` without a reference.
pub fn short_revision(reference: &str, hash: &str) -> String {
    let mut parts = reference.splitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(_), Some(rest)) => format!("{rest}@sha1:{hash}"),
        _ => format!("sha1:{hash}"),
    }
}

/// `<full ref>@sha1:<hex>`, or `sha1:<hex>` without a reference.
pub fn absolute_revision(reference: &str, hash: &str) -> String {
    if reference.is_empty() {
        format!("sha1:{hash}")
    } else {
        format!("{reference}@sha1:{hash}")
    }
}

/// The hex commit id of a revision string (`main@sha1:<hex>`, `sha1:<hex>`, legacy `main/<hex>`).
pub fn hash_from_revision(revision: &str) -> &str {
    if let Some((_, h)) = revision.rsplit_once("sha1:") {
        return h;
    }
    revision
        .rsplit_once('/')
        .map(|(_, h)| h)
        .unwrap_or(revision)
}

/// A Git failure, with the message upstream shows.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("unable to clone '{url}': {reason}")]
    Clone { url: String, reason: String },
    #[error("couldn't find remote ref \"{0}\"")]
    RefNotFound(String),
    #[error("no match found for semver: {0}")]
    NoSemverMatch(String),
    #[error("semver parse error: {0}")]
    SemverParse(String),
    #[error("unable to resolve commit object for '{0}': object not found")]
    CommitNotFound(String),
    #[error("{0}")]
    Checkout(String),
    #[error("operation timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("git repository is empty")]
    Empty,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(
        branch: Option<&str>,
        tag: Option<&str>,
        semver: Option<&str>,
        name: Option<&str>,
        commit: Option<&str>,
    ) -> GitRepositoryRef {
        GitRepositoryRef {
            branch: branch.map(Into::into),
            tag: tag.map(Into::into),
            semver: semver.map(Into::into),
            name: name.map(Into::into),
            commit: commit.map(Into::into),
        }
    }

    #[test]
    fn precedence_is_commit_name_tag_semver_branch() {
        assert_eq!(
            Reference::from_spec(None),
            Reference::Branch("master".into())
        );
        let all = r(
            Some("main"),
            Some("v1"),
            Some(">=1"),
            Some("refs/pull/1/head"),
            Some("abc"),
        );
        assert_eq!(
            Reference::from_spec(Some(&all)),
            Reference::Commit {
                commit: "abc".into(),
                branch: Some("main".into())
            }
        );
        let no_commit = r(
            Some("main"),
            Some("v1"),
            Some(">=1"),
            Some("refs/pull/1/head"),
            None,
        );
        assert_eq!(
            Reference::from_spec(Some(&no_commit)),
            Reference::Name("refs/pull/1/head".into())
        );
        let tag_semver = r(Some("main"), Some("v1"), Some(">=1"), None, None);
        assert_eq!(
            Reference::from_spec(Some(&tag_semver)),
            Reference::Tag("v1".into())
        );
        let semver = r(Some("main"), None, Some(">=1"), None, Some(""));
        assert_eq!(
            Reference::from_spec(Some(&semver)),
            Reference::SemVer(">=1".into())
        );
        assert_eq!(
            Reference::from_spec(Some(&r(None, None, None, None, None))),
            Reference::Branch("master".into())
        );
    }

    #[test]
    fn revision_strings_match_upstream() {
        let h = "a".repeat(40);
        let mut c = Commit {
            hash: h.clone(),
            reference: "refs/heads/feature/x".into(),
            message: "first line\n\nbody".into(),
            signature: None,
            payload: Vec::new(),
            referencing_tag: None,
        };
        assert_eq!(c.short_revision(), format!("feature/x@sha1:{h}"));
        assert_eq!(c.short_message(), "first line");
        c.message = format!("{}\nbody", "x".repeat(60));
        assert_eq!(c.short_message(), format!("{}...", "x".repeat(50)));
        c.reference = "refs/pull/1/head".into();
        assert_eq!(
            c.revision(&Reference::Name("refs/pull/1/head".into())),
            format!("refs/pull/1/head@sha1:{h}")
        );
        c.reference = "refs/tags/v1.2.3".into();
        assert_eq!(
            c.revision(&Reference::Tag("v1.2.3".into())),
            format!("v1.2.3@sha1:{h}")
        );
        c.reference = String::new();
        assert_eq!(c.short_revision(), format!("sha1:{h}"));
        assert_eq!(hash_from_revision(&format!("main@sha1:{h}")), h);
        assert_eq!(hash_from_revision(&format!("main/{h}")), h);
    }
}
