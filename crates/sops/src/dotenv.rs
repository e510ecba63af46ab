//! dotenv store: `KEY=value` lines, `#` comments, `\n` escapes for newlines.

use crate::tree::{Comment, Entry, Node};

pub(crate) fn read(src: &[u8]) -> Result<Vec<Entry>, String> {
    let mut branch = Vec::new();
    for line in src.split(|b| *b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let line = String::from_utf8_lossy(line);
        if let Some(c) = line.strip_prefix('#') {
            branch.push(Entry::Comment(Comment {
                text: c.to_string(),
                inline: false,
                paths: vec![Vec::new()],
            }));
            continue;
        }
        // never echo the line: it may hold a secret
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| "invalid dotenv input line: a line without '='".to_string())?;
        branch.push(Entry::Pair(
            k.to_string(),
            Node::Str(v.replace("\\n", "\n")),
        ));
    }
    Ok(branch)
}

pub(crate) fn write(entries: &[Entry]) -> Result<String, String> {
    let mut out = String::new();
    for e in entries {
        match e {
            Entry::Comment(c) => {
                out.push('#');
                out.push_str(&c.text);
                out.push('\n');
            }
            Entry::Pair(k, v) => {
                let value = match v {
                    Node::Map(_) | Node::Seq(_) => {
                        return Err(format!(
                            "cannot use complex value in dotenv file; offending key {k}"
                        ));
                    }
                    Node::Str(s) => s.replace('\n', "\\n"),
                    Node::Float(f) => {
                        let mut s = ferroflux_goyaml::num::format_float_shortest(*f).to_uppercase();
                        if !s.contains('.') && !s.contains('E') {
                            s = format!("{s}.0");
                        }
                        s
                    }
                    Node::Int(i) => i.to_string(),
                    Node::Bool(b) => b.to_string(),
                    Node::Null => "<nil>".to_string(),
                    Node::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                    Node::Time(t) => crate::timestamp::rfc3339(t),
                    Node::Comment(c) => c.text.clone(),
                };
                out.push_str(k);
                out.push('=');
                out.push_str(&value);
                out.push('\n');
            }
        }
    }
    Ok(out)
}
