//! The result of applying or deleting a set of objects.

use std::collections::BTreeMap;
use std::fmt;

use crate::ObjMetadata;

/// What was done to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Created,
    Configured,
    Unchanged,
    Deleted,
    Skipped,
}

impl Action {
    /// The lowercase word upstream prints (`created`, `configured`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Created => "created",
            Action::Configured => "configured",
            Action::Unchanged => "unchanged",
            Action::Deleted => "deleted",
            Action::Skipped => "skipped",
        }
    }

    /// True for the actions that changed something in the cluster (created, configured,
    /// deleted), as kustomize-controller's `HasChanged`.
    pub fn has_changed(self) -> bool {
        matches!(self, Action::Created | Action::Configured | Action::Deleted)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The action done to one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeSetEntry {
    /// Identity, with the API version the object was applied (or deleted) at.
    pub object: ObjMetadata,
    /// `Kind/namespace/name` or `Kind/name`.
    pub subject: String,
    pub action: Action,
}

impl ChangeSetEntry {
    pub fn new(object: ObjMetadata, action: Action) -> Self {
        ChangeSetEntry {
            subject: object.subject(),
            object,
            action,
        }
    }
}

impl fmt::Display for ChangeSetEntry {
    /// `<subject> <action>`, e.g. `Deployment/default/web configured`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.subject, self.action)
    }
}

/// The actions done to a set of objects, in the order they were done.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeSet {
    pub entries: Vec<ChangeSetEntry>,
}

impl ChangeSet {
    pub fn new() -> Self {
        ChangeSet::default()
    }

    pub fn add(&mut self, entry: ChangeSetEntry) {
        self.entries.push(entry);
    }

    pub fn append(&mut self, entries: impl IntoIterator<Item = ChangeSetEntry>) {
        self.entries.extend(entries);
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// subject → action (upstream `ToMap`).
    pub fn to_map(&self) -> BTreeMap<String, Action> {
        self.entries
            .iter()
            .map(|e| (e.subject.clone(), e.action))
            .collect()
    }

    /// action → subjects (upstream `ToGroupedMap`).
    pub fn to_grouped_map(&self) -> BTreeMap<Action, Vec<String>> {
        let mut out: BTreeMap<Action, Vec<String>> = BTreeMap::new();
        for e in &self.entries {
            out.entry(e.action).or_default().push(e.subject.clone());
        }
        out
    }

    /// The objects of all entries (upstream `ToObjMetadataSet`).
    pub fn to_obj_metadata_set(&self) -> Vec<ObjMetadata> {
        self.entries.iter().map(|e| e.object.clone()).collect()
    }

    /// One `<subject> <action>` line per entry, joined by newlines (upstream `String()`).
    pub fn summary(&self) -> String {
        self.to_string()
    }

    /// The lines of the entries that changed something (created, configured, deleted), as the
    /// event kustomize-controller emits after an apply.
    pub fn changed_summary(&self) -> String {
        self.entries
            .iter()
            .filter(|e| e.action.has_changed())
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for ChangeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(kind: &str, ns: &str, name: &str) -> ObjMetadata {
        ObjMetadata {
            namespace: ns.into(),
            name: name.into(),
            kind: kind.into(),
            version: "v1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn summary_lines_as_upstream() {
        let mut cs = ChangeSet::new();
        cs.add(ChangeSetEntry::new(
            meta("Namespace", "", "apps"),
            Action::Created,
        ));
        cs.add(ChangeSetEntry::new(
            meta("ConfigMap", "apps", "c"),
            Action::Unchanged,
        ));
        cs.add(ChangeSetEntry::new(
            meta("Secret", "apps", "s"),
            Action::Configured,
        ));
        assert_eq!(
            cs.summary(),
            "Namespace/apps created\nConfigMap/apps/c unchanged\nSecret/apps/s configured"
        );
        assert_eq!(
            cs.changed_summary(),
            "Namespace/apps created\nSecret/apps/s configured"
        );
        assert_eq!(cs.to_map()["ConfigMap/apps/c"], Action::Unchanged);
        assert_eq!(
            cs.to_grouped_map()[&Action::Created],
            vec!["Namespace/apps"]
        );
        assert_eq!(cs.to_obj_metadata_set().len(), 3);
    }
}
