//! Go's YAML libraries, byte for byte, for the three engines that imitate Go programs:
//! kustomize (kyaml, its fork of yaml.v3, and sigs.k8s.io/yaml for printing), Helm
//! (sigs.k8s.io/yaml over go-yaml v2; yaml.v3 for `toYamlPretty`) and sops (yaml.v3).
//!
//! - [`resolve`]: what a plain scalar means ([`resolve::Schema`] V2 or V3).
//! - [`emit`]: the block emitter, configured by an [`emit::Mode`] per caller.
//! - [`scalar`]: libyaml's analysis of a scalar's text (which styles it may take).
//! - [`num`]: Go's `strconv` number texts and parsing (also gotemplate's `%v` of floats).
//! - [`order`]: go-yaml v2's key order; [`json`]: encoding/json's string text.
//!
//! Each caller keeps its own tree and walks it into an [`emit::Emitter`]; see README.md
//! for who uses which mode and how the oracle suites check it.

pub mod emit;
pub mod json;
pub mod num;
pub mod order;
pub mod resolve;
pub mod scalar;

pub use emit::{Emitter, Mode};
pub use resolve::{Resolved, Schema};

/// The anchored nodes of one document, for aliases: the latest definition of an anchor
/// wins, as in go-yaml. Anchor ids are the parser's (0: no anchor).
pub struct Anchors<T> {
    defs: Vec<(usize, T)>,
}

impl<T: Clone> Default for Anchors<T> {
    fn default() -> Self {
        Anchors { defs: Vec::new() }
    }
}

impl<T: Clone> Anchors<T> {
    /// Forget every anchor (a new document starts).
    pub fn clear(&mut self) {
        self.defs.clear();
    }

    /// Remember `node` under `id` (nothing for id 0).
    pub fn define(&mut self, id: usize, node: &T) {
        if id != 0 {
            self.defs.push((id, node.clone()));
        }
    }

    /// A copy of the node an alias names.
    pub fn get(&self, id: usize) -> Option<T> {
        self.defs
            .iter()
            .rev()
            .find(|(a, _)| *a == id)
            .map(|(_, v)| v.clone())
    }
}
