//! The document model sops works on: ordered mappings whose items are key/value pairs or
//! comments, sequences, and typed scalars. Every store reads into it and writes from it.

/// A comment line (the text after `#`). `inline` marks a comment that sat on the line of a
/// value in the source.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Comment {
    pub text: String,
    pub inline: bool,
    /// Key paths under which an encrypted comment may have been encrypted, most likely first
    /// (the store cannot always tell which mapping a YAML comment belonged to when sops wrote
    /// it; AES-GCM authenticates the right one).
    pub paths: Vec<Vec<String>>,
}

/// One node of the tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Map(Vec<Entry>),
    Seq(Vec<Node>),
    Comment(Comment),
    Null,
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Bytes(Vec<u8>),
    /// A timestamp, as RFC 3339 text with nanoseconds (Go's `time.Time` MarshalText).
    Time(String),
}

/// One item of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Entry {
    Pair(String, Node),
    Comment(Comment),
}

impl Node {
    /// The value under `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find_map(|e| match e {
                Entry::Pair(k, v) if k == key => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }

    /// The scalar as text, the way mapstructure's weak typing reads it.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Node::Str(s) => Some(s.clone()),
            Node::Int(i) => Some(i.to_string()),
            Node::Float(f) => Some(ferroflux_goyaml::num::format_float(*f, 'f', None)),
            Node::Bool(b) => Some(b.to_string()),
            Node::Time(t) => Some(crate::timestamp::rfc3339(t)),
            _ => None,
        }
    }
}

/// A parsed document stream: one branch per document (YAML may hold several).
pub(crate) type Branches = Vec<Vec<Entry>>;
