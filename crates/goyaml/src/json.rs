//! Go's `encoding/json` string text, which the YAML libraries' callers hash, embed and print.

/// Append `s` as encoding/json writes a string: `\"`, `\\`, `\n`, `\r`, `\t`, and since Go
/// 1.22 `\b` and `\f`; other control characters and U+2028/U+2029 as `\u00XX`; with
/// `escape_html` (json.Marshal's default) also `<`, `>` and `&`.
pub fn write_string(s: &str, escape_html: bool, out: &mut String) {
    out.push('"');
    let mut rest = s;
    while let Some(i) = rest.find(|c: char| {
        matches!(c, '"' | '\\' | '\u{2028}' | '\u{2029}')
            || (c as u32) < 0x20
            || (escape_html && matches!(c, '<' | '>' | '&'))
    }) {
        out.push_str(&rest[..i]);
        let c = rest[i..].chars().next().unwrap_or_default();
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c => out.push_str(&format!("\\u{:04x}", c as u32)),
        }
        rest = &rest[i + c.len_utf8()..];
    }
    out.push_str(rest);
    out.push('"');
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_like_go() {
        let mut out = String::new();
        super::write_string("a\"<&>\u{1}\u{8}\u{2028}é", true, &mut out);
        assert_eq!(out, r#""a\"\u003c\u0026\u003e\u0001\b\u2028é""#);
        out.clear();
        super::write_string("<b>", false, &mut out);
        assert_eq!(out, r#""<b>""#);
    }
}
