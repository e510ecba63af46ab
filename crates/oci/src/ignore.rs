//! `.sourceignore` and `spec.ignore`: which files stay out of an artifact.
//!
//! The rules are gitignore-style patterns evaluated the way upstream evaluates them (go-git's
//! gitignore matcher as used by fluxcd/pkg/sourceignore):
//!
//! - every pattern has a *domain*, the directory (relative to the repository root) of the file it
//!   came from; it only applies to paths below that directory;
//! - patterns are checked last to first and the first one that matches decides (`!` re-includes);
//! - a pattern without `/` (after removing a trailing `/`) matches any path component, a pattern
//!   with `/` is matched component by component from the domain, `**` spanning directories;
//!   a trailing `/` restricts the final component to directories; components use Go's
//!   `filepath.Match` syntax (`*`, `?`, `[...]`, `[^...]`, `\`);
//! - `.sourceignore` files are read recursively (`.git` skipped), parents before children, then
//!   `spec.ignore` is appended; `#` lines and blank lines are skipped;
//! - the VCS patterns always apply; the default exclusions apply only when there is no user
//!   pattern at all.

use std::fs;
use std::io;
use std::path::Path;

/// The file name of per-directory ignore files.
pub const IGNORE_FILE: &str = ".sourceignore";
/// Always excluded.
pub const EXCLUDE_VCS: &str = ".git/,.gitignore,.gitmodules,.gitattributes";
/// Excluded by default: file extensions.
pub const EXCLUDE_EXT: &str = "*.jpg,*.jpeg,*.gif,*.png,*.wmv,*.flv,*.tar.gz,*.zip";
/// Excluded by default: CI configuration.
pub const EXCLUDE_CI: &str = ".github/,.circleci/,.travis.yml,.gitlab-ci.yml,appveyor.yml,.drone.yml,cloudbuild.yaml,codeship-services.yml,codeship-steps.yml";
/// Excluded by default: tool files.
pub const EXCLUDE_EXTRA: &str = "**/.goreleaser.yml,**/.sops.yaml,**/.flux.yaml";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MatchResult {
    NoMatch,
    Exclude,
    Include,
}

/// One parsed ignore pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    domain: Vec<String>,
    pattern: Vec<String>,
    inclusion: bool,
    dir_only: bool,
    is_glob: bool,
}

impl Pattern {
    /// Parses one pattern line scoped to `domain` (path components from the root).
    pub fn parse(line: &str, domain: &[String]) -> Self {
        let mut p = line;
        let mut inclusion = false;
        if let Some(rest) = p.strip_prefix('!') {
            inclusion = true;
            p = rest;
        }
        let trimmed;
        if !p.ends_with("\\ ") {
            trimmed = p.trim_end_matches(' ');
            p = trimmed;
        }
        let mut dir_only = false;
        if let Some(rest) = p.strip_suffix('/') {
            dir_only = true;
            p = rest;
        }
        let is_glob = p.contains('/');
        Self {
            domain: domain.to_vec(),
            pattern: p.split('/').map(str::to_string).collect(),
            inclusion,
            dir_only,
            is_glob,
        }
    }

    fn matches(&self, path: &[&str], is_dir: bool) -> MatchResult {
        if path.len() <= self.domain.len() {
            return MatchResult::NoMatch;
        }
        if self.domain.iter().zip(path).any(|(d, p)| d != p) {
            return MatchResult::NoMatch;
        }
        let path = &path[self.domain.len()..];
        let hit = if self.is_glob {
            self.glob_match(path, is_dir)
        } else {
            self.simple_name_match(path, is_dir)
        };
        match (hit, self.inclusion) {
            (false, _) => MatchResult::NoMatch,
            (true, true) => MatchResult::Include,
            (true, false) => MatchResult::Exclude,
        }
    }

    fn simple_name_match(&self, path: &[&str], is_dir: bool) -> bool {
        let first = self.pattern.first().map(String::as_str).unwrap_or("");
        for (i, name) in path.iter().enumerate() {
            match go_match(first, name) {
                Err(BadPattern) => return false,
                Ok(false) => continue,
                Ok(true) => {}
            }
            if self.dir_only && !is_dir && i == path.len() - 1 {
                return false;
            }
            return true;
        }
        false
    }

    fn glob_match(&self, mut path: &[&str], is_dir: bool) -> bool {
        let mut matched = false;
        let mut can_traverse = false;
        for (i, pattern) in self.pattern.iter().enumerate() {
            if pattern.is_empty() {
                can_traverse = false;
                continue;
            }
            if pattern == "**" {
                if i == self.pattern.len() - 1 {
                    break;
                }
                can_traverse = true;
                continue;
            }
            if pattern.contains("**") {
                return false;
            }
            if path.is_empty() {
                return false;
            }
            if can_traverse {
                can_traverse = false;
                while let Some((first, rest)) = path.split_first() {
                    path = rest;
                    match go_match(pattern, first) {
                        Err(BadPattern) => return false,
                        Ok(true) => {
                            matched = true;
                            break;
                        }
                        Ok(false) if path.is_empty() => matched = false,
                        Ok(false) => {}
                    }
                }
            } else {
                match go_match(pattern, path[0]) {
                    Ok(true) => {}
                    _ => return false,
                }
                matched = true;
                path = &path[1..];
            }
        }
        if matched && self.dir_only && !is_dir && path.is_empty() {
            matched = false;
        }
        matched
    }
}

/// Reads patterns from text: one per line, `#` comments and blank lines skipped.
pub fn read_patterns(text: &str, domain: &[String]) -> Vec<Pattern> {
    text.lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| Pattern::parse(l, domain))
        .collect()
}

fn comma_patterns(list: &str, domain: &[String]) -> Vec<Pattern> {
    list.split(',').map(|p| Pattern::parse(p, domain)).collect()
}

/// The always-applied VCS patterns.
pub fn vcs_patterns(domain: &[String]) -> Vec<Pattern> {
    comma_patterns(EXCLUDE_VCS, domain)
}

/// The default exclusions (extensions, CI files, tool files).
pub fn default_patterns(domain: &[String]) -> Vec<Pattern> {
    let mut ps = comma_patterns(EXCLUDE_EXT, domain);
    ps.extend(comma_patterns(EXCLUDE_CI, domain));
    ps.extend(comma_patterns(EXCLUDE_EXTRA, domain));
    ps
}

/// Loads `.sourceignore` files below `dir` (its own first, then subdirectories in name order,
/// `.git` skipped), each scoped to its directory.
pub fn load_ignore_patterns(dir: &Path) -> io::Result<Vec<Pattern>> {
    let mut out = Vec::new();
    load_rec(dir, &mut Vec::new(), &mut out)?;
    Ok(out)
}

fn load_rec(dir: &Path, domain: &mut Vec<String>, out: &mut Vec<Pattern>) -> io::Result<()> {
    match fs::read_to_string(dir.join(IGNORE_FILE)) {
        Ok(text) => out.extend(read_patterns(&text, domain)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            let bytes = fs::read(dir.join(IGNORE_FILE))?;
            out.extend(read_patterns(&String::from_utf8_lossy(&bytes), domain));
        }
        Err(e) => return Err(e),
    }
    let mut subdirs: Vec<String> = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != ".git" {
                subdirs.push(name);
            }
        }
    }
    subdirs.sort();
    for name in subdirs {
        domain.push(name.clone());
        load_rec(&dir.join(&name), domain, out)?;
        domain.pop();
    }
    Ok(())
}

/// An ordered set of patterns; the last matching pattern decides.
#[derive(Clone, Debug, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
}

impl Matcher {
    pub fn new(patterns: Vec<Pattern>) -> Self {
        Self { patterns }
    }

    /// True if the path (components from the root) is excluded.
    pub fn is_excluded(&self, path: &[&str], is_dir: bool) -> bool {
        for p in self.patterns.iter().rev() {
            match p.matches(path, is_dir) {
                MatchResult::NoMatch => continue,
                r => return r == MatchResult::Exclude,
            }
        }
        false
    }

    /// The matcher upstream archives with: VCS patterns, then the default exclusions when there
    /// are no user patterns, else the user patterns.
    pub fn for_artifact(user: Vec<Pattern>) -> Self {
        let mut ps = vcs_patterns(&[]);
        if user.is_empty() {
            ps.extend(default_patterns(&[]));
        } else {
            ps.extend(user);
        }
        Self::new(ps)
    }
}

/// A malformed pattern (Go's `filepath.ErrBadPattern`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadPattern;

/// Go's `path/filepath.Match` for one path component; `Err` for a malformed pattern.
pub fn go_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let ok = match_here(&p, &n)?;
    if !ok {
        // Go reports malformed patterns even when the match fails early.
        validate(&p)?;
    }
    Ok(ok)
}

fn validate(p: &[char]) -> Result<(), BadPattern> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err(BadPattern);
                }
                i += 2;
            }
            '[' => {
                let (_, next) = parse_class(p, i, None)?;
                i = next;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

fn match_here(p: &[char], n: &[char]) -> Result<bool, BadPattern> {
    let Some(&c) = p.first() else {
        return Ok(n.is_empty());
    };
    match c {
        '*' => {
            // Collapse consecutive stars.
            let mut rest = &p[1..];
            while rest.first() == Some(&'*') {
                rest = &rest[1..];
            }
            for i in 0..=n.len() {
                if match_here(rest, &n[i..])? {
                    return Ok(true);
                }
                if i < n.len() && n[i] == '/' {
                    break;
                }
            }
            Ok(false)
        }
        '?' => match n.first() {
            Some(&ch) if ch != '/' => match_here(&p[1..], &n[1..]),
            _ => Ok(false),
        },
        '[' => {
            let Some(&ch) = n.first() else {
                validate(p)?;
                return Ok(false);
            };
            let (hit, next) = parse_class(p, 0, Some(ch))?;
            if hit && ch != '/' {
                match_here(&p[next..], &n[1..])
            } else {
                validate(&p[next..])?;
                Ok(false)
            }
        }
        '\\' => {
            let Some(&lit) = p.get(1) else {
                return Err(BadPattern);
            };
            if n.first() == Some(&lit) {
                match_here(&p[2..], &n[1..])
            } else {
                Ok(false)
            }
        }
        _ => {
            if n.first() == Some(&c) {
                match_here(&p[1..], &n[1..])
            } else {
                Ok(false)
            }
        }
    }
}

/// Parses the class starting at `p[start] == '['`; returns whether `ch` is in it and the index
/// after the closing `]`.
fn parse_class(p: &[char], start: usize, ch: Option<char>) -> Result<(bool, usize), BadPattern> {
    let mut i = start + 1;
    let mut negated = false;
    if p.get(i) == Some(&'^') {
        negated = true;
        i += 1;
    }
    let mut matched = false;
    let mut count = 0;
    loop {
        let Some(&c) = p.get(i) else {
            return Err(BadPattern);
        };
        if c == ']' && count > 0 {
            i += 1;
            break;
        }
        let (lo, next) = class_char(p, i)?;
        i = next;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            let (h, next) = class_char(p, i + 1)?;
            hi = h;
            i = next;
        }
        if let Some(ch) = ch
            && lo <= ch
            && ch <= hi
        {
            matched = true;
        }
        count += 1;
    }
    Ok((matched != negated, i))
}

fn class_char(p: &[char], i: usize) -> Result<(char, usize), BadPattern> {
    match p.get(i) {
        None | Some('-') | Some(']') => Err(BadPattern),
        Some('\\') => match p.get(i + 1) {
            Some(&c) => Ok((c, i + 2)),
            None => Err(BadPattern),
        },
        Some(&c) => Ok((c, i + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excluded(m: &Matcher, path: &str, is_dir: bool) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        m.is_excluded(&parts, is_dir)
    }

    #[test]
    fn go_filepath_match() {
        assert_eq!(go_match("*.yaml", "a.yaml"), Ok(true));
        assert_eq!(go_match("*.yaml", "a.yml"), Ok(false));
        assert_eq!(go_match("a?c", "abc"), Ok(true));
        assert_eq!(go_match("[a-c]x", "bx"), Ok(true));
        assert_eq!(go_match("[^a-c]x", "bx"), Ok(false));
        assert_eq!(go_match("[^a-c]x", "dx"), Ok(true));
        assert_eq!(go_match("\\*", "*"), Ok(true));
        assert_eq!(go_match("[", "a"), Err(BadPattern));
        assert_eq!(go_match("a[", "b"), Err(BadPattern));
        assert_eq!(go_match("*x*y", "axbxy"), Ok(true));
    }

    #[test]
    fn defaults_apply_only_without_user_patterns() {
        let m = Matcher::for_artifact(Vec::new());
        assert!(excluded(&m, ".git", true));
        assert!(excluded(&m, ".git/config", false));
        assert!(excluded(&m, "img/logo.png", false));
        assert!(excluded(&m, ".github/workflows/ci.yaml", false));
        assert!(excluded(&m, "deep/dir/.sops.yaml", false));
        assert!(!excluded(&m, "deploy/app.yaml", false));

        let user = read_patterns("# comment\n\n*.txt\n", &[]);
        let m = Matcher::for_artifact(user);
        assert!(
            excluded(&m, ".gitignore", false),
            "VCS patterns always apply"
        );
        assert!(!excluded(&m, "img/logo.png", false), "defaults dropped");
        assert!(excluded(&m, "notes.txt", false));
    }

    #[test]
    fn anchored_dir_only_negation_and_domains() {
        let mut ps = read_patterns("/deploy/*\n!/deploy/keep.yaml\nbuild/\n", &[]);
        ps.extend(read_patterns("secret.yaml\n", &["apps".to_string()]));
        let m = Matcher::for_artifact(ps);
        assert!(excluded(&m, "deploy/a.yaml", false));
        assert!(!excluded(&m, "deploy/keep.yaml", false));
        assert!(!excluded(&m, "deploy", true));
        assert!(excluded(&m, "x/build", true));
        assert!(excluded(&m, "x/build/out.bin", false));
        assert!(
            !excluded(&m, "x/build", false),
            "dir-only pattern skips files"
        );
        assert!(excluded(&m, "apps/secret.yaml", false));
        assert!(excluded(&m, "apps/sub/secret.yaml", false));
        assert!(
            !excluded(&m, "secret.yaml", false),
            "scoped to its directory"
        );
    }

    #[test]
    fn double_star() {
        let m = Matcher::new(read_patterns("**/tmp/*.log\nfoo/**\n", &[]));
        assert!(excluded(&m, "a/b/tmp/x.log", false));
        assert!(excluded(&m, "tmp/x.log", false));
        assert!(!excluded(&m, "a/tmp/x.txt", false));
        assert!(excluded(&m, "foo/bar", false));
        assert!(excluded(&m, "foo/bar/baz", false));
    }

    #[test]
    fn loads_nested_sourceignore_files() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("a/b")).unwrap();
        fs::create_dir_all(t.path().join(".git")).unwrap();
        fs::write(t.path().join(".sourceignore"), "*.md\n").unwrap();
        fs::write(t.path().join("a/b/.sourceignore"), "x.yaml\n").unwrap();
        fs::write(t.path().join(".git/.sourceignore"), "*\n").unwrap();
        let ps = load_ignore_patterns(t.path()).unwrap();
        assert_eq!(ps.len(), 2);
        let m = Matcher::for_artifact(ps);
        assert!(excluded(&m, "README.md", false));
        assert!(excluded(&m, "a/b/x.yaml", false));
        assert!(!excluded(&m, "a/x.yaml", false));
        assert!(!excluded(&m, "a/y.yaml", false));
    }
}
