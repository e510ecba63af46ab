//! INI store: sections of `key = value` lines, read and written the way sops's go-ini based
//! store does (comments attach to the following section or key; pretty-aligned output).

use crate::tree::{Comment, Entry, Node};

const DEFAULT: &str = "DEFAULT";

struct Section {
    name: String,
    comment: String,
    keys: Vec<(String, String, String)>, // name, value, comment
}

fn comment_node(text: String) -> Entry {
    Entry::Comment(Comment {
        text,
        inline: false,
        paths: Vec::new(),
    })
}

/// sops's stripCommentChar: drop a leading run of `;`/`#` and spaces.
fn strip_comment(c: &str) -> String {
    if c.starts_with(';') {
        c.trim_start_matches([';', ' ']).to_string()
    } else if c.starts_with('#') {
        c.trim_start_matches(['#', ' ']).to_string()
    } else {
        c.to_string()
    }
}

fn surrounded(s: &str, q: char) -> bool {
    s.len() >= 2 && s.starts_with(q) && s.ends_with(q) && s.matches(q).count() == 2
}

/// Parse INI text into one branch: a mapping per section (the unnamed leading one is
/// `DEFAULT`), with the comments sops keeps.
pub(crate) fn read(src: &[u8]) -> Result<Vec<Entry>, String> {
    let text = String::from_utf8_lossy(src);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut sections = vec![Section {
        name: DEFAULT.into(),
        comment: String::new(),
        keys: Vec::new(),
    }];
    let mut pending = String::new();
    for raw in text.split('\n') {
        let line = raw.trim_start();
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with('#') || line.starts_with(';') {
            if !pending.is_empty() {
                pending.push('\n');
            }
            pending.push_str(line.trim_end());
            continue;
        }
        if line.starts_with('[') {
            let close = line
                .rfind(']')
                .ok_or_else(|| "unclosed section".to_string())?;
            let name = line[1..close].to_string();
            let rest = line[close + 1..].trim();
            if rest.starts_with('#') || rest.starts_with(';') {
                pending.push_str(rest);
            }
            sections.push(Section {
                name,
                comment: std::mem::take(&mut pending).trim().to_string(),
                keys: Vec::new(),
            });
            continue;
        }
        let (key, value_part) = read_key(line)?;
        let value = read_value(value_part, &mut pending);
        let comment = std::mem::take(&mut pending).trim().to_string();
        let Some(sec) = sections.last_mut() else {
            return Err("no section".into());
        };
        match sec.keys.iter_mut().find(|(k, _, _)| *k == key) {
            Some(existing) => {
                existing.1 = value;
                existing.2 = comment;
            }
            None => sec.keys.push((key, value, comment)),
        }
    }
    let mut branch = Vec::new();
    for sec in sections {
        let mut items = Vec::new();
        if !sec.comment.is_empty() {
            items.push(comment_node(strip_comment(&sec.comment)));
        }
        for (k, v, c) in sec.keys {
            items.push(Entry::Pair(k, Node::Str(v)));
            if !c.is_empty() {
                items.push(comment_node(strip_comment(&c)));
            }
        }
        branch.push(Entry::Pair(sec.name, Node::Map(items)));
    }
    Ok(branch)
}

fn read_key(line: &str) -> Result<(String, &str), String> {
    for q in ["\"\"\"", "\"", "`"] {
        if line.starts_with(q) && (q != "\"\"\"" || line.len() > 6) {
            let start = q.len();
            let pos = line[start..]
                .find(q)
                .ok_or_else(|| "missing closing key quote".to_string())?
                + start;
            let after = &line[pos + start..];
            let i = after
                .find(['=', ':'])
                .ok_or_else(|| "key-value delimiter not found".to_string())?;
            return Ok((line[start..pos].trim().to_string(), &after[i + 1..]));
        }
    }
    match line.find(['=', ':']) {
        None => Err("key-value delimiter not found".into()),
        Some(0) => Err("empty key name".into()),
        Some(i) => Ok((line[..i].trim().to_string(), &line[i + 1..])),
    }
}

fn read_value(part: &str, pending: &mut String) -> String {
    let line = part.trim_start();
    if line.is_empty() {
        return String::new();
    }
    for q in ["\"\"\"", "`"] {
        if line.starts_with(q) && (q == "`" || line.len() > 3) {
            let start = q.len();
            if let Some(pos) = line[start..].rfind(q) {
                return line[start..start + pos].to_string();
            }
        }
    }
    let mut line = line.trim().to_string();
    if let Some(i) = line.find(['#', ';']) {
        pending.push_str(&line[i..]);
        line = line[..i].trim().to_string();
    }
    if surrounded(&line, '\'') || surrounded(&line, '"') {
        line = line[1..line.len() - 1].to_string();
    }
    line
}

fn write_comment(out: &mut String, comment: &str, trim: bool) {
    for line in comment.split('\n') {
        if line.starts_with('#') || line.starts_with(';') {
            out.push_str(&line[..1]);
            out.push(' ');
            out.push_str(line[1..].trim());
        } else {
            out.push_str("; ");
            out.push_str(if trim { line.trim() } else { line });
        }
        out.push('\n');
    }
}

fn value_text(v: &Node) -> String {
    match v {
        Node::Str(s) => s.clone(),
        Node::Int(i) => i.to_string(),
        Node::Float(f) => {
            let mut s = ferroflux_goyaml::num::format_float_shortest(*f).to_uppercase();
            if !s.contains('.') && !s.contains('E') {
                s = ferroflux_goyaml::num::format_float(*f, 'f', None);
                if !s.contains('.') {
                    s.push_str(".0");
                }
            }
            s
        }
        Node::Bool(b) => b.to_string(),
        Node::Null => "<nil>".into(),
        Node::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Node::Time(t) => crate::timestamp::rfc3339(t),
        Node::Comment(c) => c.text.clone(),
        Node::Map(_) | Node::Seq(_) => String::new(),
    }
}

/// Emit a branch as sops's INI store (go-ini, pretty format).
pub(crate) fn write(entries: &[Entry]) -> Result<String, String> {
    struct Out {
        name: String,
        comment: String,
        keys: Vec<(String, String, String)>,
    }
    // sops drops go-ini's own DEFAULT section, then recreates sections from the tree in order
    let mut sections: Vec<Out> = Vec::new();
    for e in entries {
        let Entry::Pair(name, value) = e else {
            continue;
        };
        let Node::Map(items) = value else {
            return Err(
                "Error encoding section: Section values should always be TreeBranches".into(),
            );
        };
        let mut sec = Out {
            name: name.clone(),
            comment: String::new(),
            keys: Vec::new(),
        };
        let mut rest = items.as_slice();
        if let Some((Entry::Comment(c), tail)) = items.split_first() {
            sec.comment = c.text.clone();
            rest = tail;
        }
        let mut last: Option<usize> = None;
        for item in rest {
            match item {
                Entry::Comment(c) => {
                    if let Some(i) = last {
                        sec.keys[i].2 = c.text.clone();
                    }
                }
                Entry::Pair(k, v) => {
                    let text = value_text(v);
                    match sec.keys.iter().position(|(kk, _, _)| kk == k) {
                        Some(i) => {
                            sec.keys[i].1 = text;
                            last = Some(i);
                        }
                        None => {
                            sec.keys.push((k.clone(), text, String::new()));
                            last = Some(sec.keys.len() - 1);
                        }
                    }
                }
            }
        }
        sections.push(sec);
    }
    let mut out = String::new();
    let last_idx = sections.len().saturating_sub(1);
    for (i, sec) in sections.iter().enumerate() {
        if !sec.comment.is_empty() {
            write_comment(&mut out, &sec.comment, false);
        }
        if i > 0 || !sec.name.eq_ignore_ascii_case(DEFAULT) {
            out.push('[');
            out.push_str(&sec.name);
            out.push_str("]\n");
        } else if sec.keys.is_empty() {
            continue;
        }
        let width = |k: &str| {
            if k.contains('"') || k.contains("=:") {
                k.len() + 2
            } else if k.contains('`') {
                k.len() + 6
            } else {
                k.len()
            }
        };
        let align = sec.keys.iter().map(|(k, _, _)| width(k)).max().unwrap_or(0);
        for (k, v, c) in &sec.keys {
            if !c.is_empty() {
                write_comment(&mut out, c, true);
            }
            let kname = if k.contains('"') || k.contains("=:") {
                format!("`{k}`")
            } else if k.contains('`') {
                format!("\"\"\"{k}\"\"\"")
            } else {
                k.clone()
            };
            out.push_str(&kname);
            for _ in kname.len()..align {
                out.push(' ');
            }
            let val = if v.contains(['\n', '`']) {
                format!("\"\"\"{v}\"\"\"")
            } else if v.contains(['#', ';']) {
                format!("`{v}`")
            } else if v.trim().len() != v.len() {
                format!("\"{v}\"")
            } else {
                v.clone()
            };
            out.push_str(" = ");
            out.push_str(&val);
            out.push('\n');
        }
        if i != last_idx {
            out.push('\n');
        }
    }
    Ok(out)
}
