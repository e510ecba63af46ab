//! The table `flux` prints (olekukonko/tablewriter v0.0.5 as flux's `printers.TablePrinter`
//! configures it: no borders, tab padding, no extra white space): the header upper-cased and
//! each cell padded to its column's width; every header cell but the last is followed by a tab
//! and the last by a space; every row cell, the last included, by a tab. A cell with line
//! breaks spans several lines.

/// Renders a table; `header` empty prints no header line.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    render_into(&mut out, header, rows);
    out
}

/// [`render`] appending to `out`.
pub fn render_into(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let cols = header
        .len()
        .max(rows.iter().map(Vec::len).max().unwrap_or(0));
    let mut widths = vec![0usize; cols];
    for (i, h) in header.iter().enumerate() {
        for line in h.split('\n') {
            widths[i] = widths[i].max(display_width(line));
        }
    }
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            for line in cell.split('\n') {
                widths[i] = widths[i].max(display_width(line));
            }
        }
    }
    if !header.is_empty() {
        let titles: Vec<Vec<String>> = header
            .iter()
            .map(|h| h.split('\n').map(title).collect())
            .collect();
        let height = titles.iter().map(Vec::len).max().unwrap_or(1);
        for x in 0..height {
            for (y, w) in widths.iter().enumerate() {
                let h = titles
                    .get(y)
                    .and_then(|lines| lines.get(x))
                    .map(String::as_str)
                    .unwrap_or("");
                pad_right(out, h, *w);
                out.push(if y + 1 == cols { ' ' } else { '\t' });
            }
            out.push('\n');
        }
    }
    for row in rows {
        let lines: Vec<Vec<&str>> = row.iter().map(|c| c.split('\n').collect()).collect();
        let height = lines.iter().map(Vec::len).max().unwrap_or(1);
        for x in 0..height {
            for (y, cell) in lines.iter().enumerate() {
                pad_right(out, cell.get(x).copied().unwrap_or("  "), widths[y]);
                out.push('\t');
            }
            out.push('\n');
        }
    }
}

fn pad_right(out: &mut String, s: &str, width: usize) {
    out.push_str(s);
    for _ in display_width(s)..width {
        out.push(' ');
    }
}

/// tablewriter's `Title`: `_` and (outside numbers) `.` become spaces, trimmed, upper-cased.
fn title(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let num_or_space = |c: char| c.is_ascii_digit() || c == ' ';
    let mapped: String = chars
        .iter()
        .enumerate()
        .map(|(i, &c)| match c {
            '_' => ' ',
            '.' if (i != 0 && !num_or_space(chars[i - 1]))
                || (i + 1 != chars.len() && !num_or_space(chars[i + 1])) =>
            {
                ' '
            }
            other => other,
        })
        .collect();
    let trimmed = mapped.trim();
    if trimmed.is_empty() && !name.is_empty() {
        return " ".into();
    }
    trimmed.to_uppercase()
}

/// The width of a text on a terminal (go-runewidth's rules for the common cases: ANSI escapes
/// take none, East Asian wide characters and emoji two, combining marks none).
pub fn display_width(s: &str) -> usize {
    if s.is_ascii() && !s.contains('\x1b') {
        return s.len();
    }
    let mut w = 0;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI ... final byte in @..~
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            }
            continue;
        }
        let u = c as u32;
        w += match u {
            0x0300..=0x036F | 0x200B..=0x200F | 0xFE00..=0xFE0F => 0,
            0x1100..=0x115F
            | 0x2E80..=0x303E
            | 0x3041..=0x33FF
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xA000..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x1F300..=0x1F64F
            | 0x1F900..=0x1F9FF
            | 0x20000..=0x3FFFD => 2,
            _ => 1,
        };
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn matches_flux_golden_layout() {
        // The layout of flux's get golden files: header cells padded and tab-separated, the last
        // one followed by a space; row cells all followed by a tab.
        let t = render(
            &["Name", "Revision", "Suspended", "Ready", "Message"],
            &[row(&[
                "gr-failed",
                "",
                "False",
                "False",
                "failed to checkout and determine revision",
            ])],
        );
        assert_eq!(
            t,
            "NAME     \tREVISION\tSUSPENDED\tREADY\tMESSAGE                                   \n\
             gr-failed\t        \tFalse    \tFalse\tfailed to checkout and determine revision\t\n"
        );
    }

    #[test]
    fn multi_line_cells_and_no_header() {
        let t = render(&[], &[row(&["a", "one\ntwo"])]);
        assert_eq!(t, "a\tone\t\n  \ttwo\t\n");
        assert_eq!(title("Last seen"), "LAST SEEN");
        assert_eq!(title("a_b"), "A B");
    }
}
