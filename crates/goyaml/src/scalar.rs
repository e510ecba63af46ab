//! libyaml's scalar analysis (which styles a text may take), shared by every writer mode.
//! ASCII text takes a fast path that skips runs of ordinary characters; a character loop
//! serves the rest, and a test checks the two agree.

/// libyaml's `yaml_emitter_analyze_scalar` verdicts for a text.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Analysis {
    pub multiline: bool,
    pub flow_plain: bool,
    pub block_plain: bool,
    pub single_ok: bool,
    pub block_ok: bool,
}

pub fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Characters go-yaml writes without escaping.
pub fn is_printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0A
        || (0x20..=0x7E).contains(&u)
        || (0xA0..=0xD7FF).contains(&u)
        || ((0xE000..=0xFFFD).contains(&u) && u != 0xFEFF)
}

/// Analyse a scalar's text. `tabs_in_blocks` is yaml.v3's rule (and kyaml's fork's): a tab
/// no longer counts as a special character, it only rules out plain and single-quoted
/// styles, so tabbed text can still go out as a literal block; go-yaml v2 escapes tabs
/// (double quotes) whatever the text.
pub fn analyze(s: &str, tabs_in_blocks: bool) -> Analysis {
    if s.is_empty() {
        return Analysis {
            multiline: false,
            flow_plain: false,
            block_plain: true,
            single_ok: true,
            block_ok: false,
        };
    }
    if s.is_ascii() {
        return analyze_ascii(s.as_bytes(), tabs_in_blocks);
    }
    analyze_chars(s, tabs_in_blocks)
}

/// ASCII bytes that play a part in [`analyze`] past the first character: blanks, breaks,
/// controls, and the indicators (`flow` false: all of them; true: those that can still
/// change the outcome once a flow indicator was seen).
const fn interesting_bytes(flow: bool) -> [bool; 128] {
    let mut t = [false; 128];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[0x7F] = true;
    let special: &[u8] = if flow { b" #:" } else { b" #:,?[]{}" };
    let mut i = 0;
    while i < special.len() {
        t[special[i] as usize] = true;
        i += 1;
    }
    t
}

const INTERESTING: [bool; 128] = interesting_bytes(false);
const INTERESTING_IN_FLOW: [bool; 128] = interesting_bytes(true);

/// [`analyze`] for ASCII text: runs of ordinary characters are skipped at once (for them
/// the character loop only clears the previous-space/break state).
fn analyze_ascii(b: &[u8], tabs_in_blocks: bool) -> Analysis {
    let n = b.len();
    let mut st = Scan::new(
        b.starts_with(b"---") || b.starts_with(b"..."),
        tabs_in_blocks,
    );
    let mut i = 0;
    while i < n {
        let c = b[i];
        let table = if st.flow_ind {
            &INTERESTING_IN_FLOW
        } else {
            &INTERESTING
        };
        if i > 0 && !table[c as usize] {
            let mut j = i + 1;
            while j < n && !table[b[j] as usize] {
                j += 1;
            }
            st.prev_space = false;
            st.prev_break = false;
            st.preceded_by_ws = false;
            i = j;
            continue;
        }
        if c == b' ' && i > 0 {
            // a run of spaces: only its first and last characters can change the state
            let mut j = i + 1;
            while j < n && b[j] == b' ' {
                j += 1;
            }
            st.step(' ', false, b.get(i + 1).map(|&x| x as char));
            if j - 1 > i {
                st.step(' ', false, b.get(j).map(|&x| x as char));
            }
            i = j;
            continue;
        }
        let next = b.get(i + 1).map(|&x| x as char);
        st.step(c as char, i == 0, next);
        i += 1;
    }
    st.finish()
}

fn analyze_chars(s: &str, tabs_in_blocks: bool) -> Analysis {
    let mut st = Scan::new(s.starts_with("---") || s.starts_with("..."), tabs_in_blocks);
    let mut it = s.chars().peekable();
    let mut first = true;
    while let Some(c) = it.next() {
        st.step(c, first, it.peek().copied());
        first = false;
    }
    st.finish()
}

/// The state of go-yaml's scalar analysis loop.
struct Scan {
    block_ind: bool,
    flow_ind: bool,
    line_breaks: bool,
    special: bool,
    tabs_in_blocks: bool,
    tabs: bool,
    leading_space: bool,
    leading_break: bool,
    trailing_space: bool,
    trailing_break: bool,
    break_space: bool,
    space_break: bool,
    prev_space: bool,
    prev_break: bool,
    preceded_by_ws: bool,
}

impl Scan {
    fn new(document_indicator: bool, tabs_in_blocks: bool) -> Scan {
        Scan {
            block_ind: document_indicator,
            flow_ind: document_indicator,
            line_breaks: false,
            special: false,
            tabs_in_blocks,
            tabs: false,
            leading_space: false,
            leading_break: false,
            trailing_space: false,
            trailing_break: false,
            break_space: false,
            space_break: false,
            prev_space: false,
            prev_break: false,
            preceded_by_ws: true,
        }
    }

    fn step(&mut self, c: char, first: bool, next: Option<char>) {
        let last = next.is_none();
        let followed_by_ws = next.is_none_or(|n| is_blank(n) || is_break(n));
        if first {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => {
                    self.flow_ind = true;
                    self.block_ind = true;
                }
                '?' | ':' => {
                    self.flow_ind = true;
                    if followed_by_ws {
                        self.block_ind = true;
                    }
                }
                '-' if followed_by_ws => {
                    self.flow_ind = true;
                    self.block_ind = true;
                }
                _ => {}
            }
        } else {
            match c {
                ',' | '?' | '[' | ']' | '{' | '}' => self.flow_ind = true,
                ':' => {
                    self.flow_ind = true;
                    if followed_by_ws {
                        self.block_ind = true;
                    }
                }
                '#' if self.preceded_by_ws => {
                    self.flow_ind = true;
                    self.block_ind = true;
                }
                _ => {}
            }
        }
        if c == '\t' && self.tabs_in_blocks {
            self.tabs = true;
        } else if !is_printable(c) {
            self.special = true;
        }
        if c == ' ' {
            if first {
                self.leading_space = true;
            }
            if last {
                self.trailing_space = true;
            }
            if self.prev_break {
                self.break_space = true;
            }
            self.prev_space = true;
            self.prev_break = false;
        } else if is_break(c) {
            self.line_breaks = true;
            if first {
                self.leading_break = true;
            }
            if last {
                self.trailing_break = true;
            }
            if self.prev_space {
                self.space_break = true;
            }
            self.prev_space = false;
            self.prev_break = true;
        } else {
            self.prev_space = false;
            self.prev_break = false;
        }
        self.preceded_by_ws = is_blank(c) || is_break(c) || c == '\0';
    }

    fn finish(self) -> Analysis {
        let Scan {
            block_ind,
            flow_ind,
            line_breaks,
            special,
            tabs,
            leading_space,
            leading_break,
            trailing_space,
            trailing_break,
            break_space,
            space_break,
            ..
        } = self;
        let mut a = analysis_of(
            block_ind,
            flow_ind,
            line_breaks,
            special,
            leading_space,
            leading_break,
            trailing_space,
            trailing_break,
            break_space,
            space_break,
        );
        if tabs {
            a.flow_plain = false;
            a.block_plain = false;
            a.single_ok = false;
        }
        a
    }
}

#[allow(clippy::too_many_arguments)]
fn analysis_of(
    block_ind: bool,
    flow_ind: bool,
    line_breaks: bool,
    special: bool,
    leading_space: bool,
    leading_break: bool,
    trailing_space: bool,
    trailing_break: bool,
    break_space: bool,
    space_break: bool,
) -> Analysis {
    let mut a = Analysis {
        multiline: line_breaks,
        flow_plain: true,
        block_plain: true,
        single_ok: true,
        block_ok: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.flow_plain = false;
        a.block_plain = false;
    }
    if trailing_space {
        a.block_ok = false;
    }
    if break_space {
        a.flow_plain = false;
        a.block_plain = false;
        a.single_ok = false;
    }
    if space_break || special {
        a.flow_plain = false;
        a.block_plain = false;
        a.single_ok = false;
        a.block_ok = false;
    }
    if line_breaks {
        a.flow_plain = false;
        a.block_plain = false;
    }
    if flow_ind {
        a.flow_plain = false;
    }
    if block_ind {
        a.block_plain = false;
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_analysis_matches_character_loop() {
        let samples = [
            "a",
            " a",
            "a ",
            "a  b",
            "a \n b",
            "a\n\n",
            "\n",
            " ",
            "  ",
            "-",
            "- a",
            "-a",
            "a: b",
            "a:b",
            "a #b",
            "a#b",
            "#a",
            "{\"a\": [1, 2]}",
            "x,y",
            "?x",
            "? x",
            "a\tb",
            "--- x",
            "...",
            "a\u{7f}",
            "line one\n  indented\nlast \n",
            "k: v\n# c\n",
            "a ,b",
            "x:\n y",
            "\r\n",
            "a\0b",
            "a   ",
            "   ",
            "a  \n",
            "x y  z",
            "\tx\n",
            "a\n\tb\n",
        ];
        for s in samples {
            for tabs in [false, true] {
                assert_eq!(
                    analyze_ascii(s.as_bytes(), tabs),
                    analyze_chars(s, tabs),
                    "{s:?}"
                );
            }
        }
    }

    #[test]
    fn tabs_only_v3_allows_blocks() {
        assert!(!analyze("a\n\tb\n", false).block_ok);
        let v3 = analyze("a\n\tb\n", true);
        assert!(v3.block_ok && !v3.single_ok && !v3.block_plain);
    }
}
