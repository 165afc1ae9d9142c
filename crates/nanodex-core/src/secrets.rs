//! Secret detection with gitleaks' rule set (`config/secrets.toml`), to keep keys, tokens and passwords found in
//! source out of summaries and datasets.
//!
//! Semantics follow gitleaks: a rule applies when one of its keywords occurs (case-insensitively) in the text; each
//! regex match yields a secret (the rule's `secretGroup`, else the first non-empty capture group, else the match);
//! a secret whose Shannon entropy is not above the rule's `entropy` is dropped (generic rules also need a digit);
//! rule and global allowlists (regexes against the secret, the match or the line; stopwords) drop false positives.
//! Path-only rules (which flag whole files such as `.p12`) do not apply to text.

use std::ops::Range;

use regex::Regex;
use serde::Deserialize;

use crate::error::BrainError;

/// The embedded rule file.
pub const DEFAULT_RULES: &str = include_str!("../../../config/secrets.toml");

#[derive(Deserialize)]
struct RawRules {
    allowlist: Option<RawAllow>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRule {
    id: String,
    regex: Option<String>,
    #[serde(default)]
    secret_group: usize,
    entropy: Option<f64>,
    #[serde(default)]
    keywords: Vec<String>,
    path: Option<String>,
    #[serde(default)]
    allowlists: Vec<RawAllow>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAllow {
    #[serde(default)]
    regexes: Vec<String>,
    regex_target: Option<String>,
    #[serde(default)]
    stopwords: Vec<String>,
    condition: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Secret,
    Match,
    Line,
}

struct Allow {
    regexes: Vec<Regex>,
    target: Target,
    stopwords: Vec<String>,
    and: bool,
}

struct Rule {
    id: String,
    regex: Regex,
    secret_group: usize,
    entropy: f64,
    keywords: Vec<String>,
    path: Option<Regex>,
    allow: Vec<Allow>,
}

/// A secret found in text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The gitleaks rule id (`aws-access-token`, `generic-api-key` ...).
    pub rule: String,
    /// Byte range of the secret in the scanned text.
    pub range: Range<usize>,
}

/// A compiled rule set.
pub struct Scanner {
    rules: Vec<Rule>,
    global: Allow,
}

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Go's RE2 reads a `{` that does not start a repetition (`{2}`, `{2,}`, `{2,5}`) as a literal; Rust's `regex`
/// rejects it. Escapes such braces (outside character classes) so gitleaks' patterns mean the same here.
pub fn go_regex_to_rust(re: &str) -> String {
    let chars: Vec<char> = re.chars().collect();
    let mut out = String::with_capacity(re.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    let mut prev_atom = false;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            out.push(c);
            if let Some(&n) = chars.get(i + 1) {
                out.push(n);
            }
            i += 2;
            prev_atom = true;
            continue;
        }
        if in_class {
            if c == ']' {
                in_class = false;
            }
            out.push(c);
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push(c);
                // A `]` right after `[` or `[^` is a literal member.
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i + 1) == Some(&']') {
                    out.push(']');
                    i += 1;
                }
                prev_atom = true;
            }
            '{' => {
                let rest: String = chars[i + 1..].iter().take_while(|&&x| x != '}').collect();
                let closed = chars.len() > i + 1 + rest.len();
                let valid = closed && {
                    let (a, b) = rest.split_once(',').unwrap_or((rest.as_str(), ""));
                    !a.is_empty()
                        && a.chars().all(|d| d.is_ascii_digit())
                        && b.chars().all(|d| d.is_ascii_digit())
                };
                if valid && prev_atom {
                    out.push('{');
                    out.push_str(&rest);
                    out.push('}');
                    i += rest.len() + 2;
                    continue;
                }
                out.push_str("\\{");
                prev_atom = true;
            }
            '}' => {
                out.push_str("\\}");
                prev_atom = true;
            }
            '(' | '|' => {
                out.push(c);
                prev_atom = false;
            }
            _ => {
                out.push(c);
                prev_atom = true;
            }
        }
        i += 1;
    }
    out
}

fn compile(re: &str) -> Result<Regex, BrainError> {
    regex::RegexBuilder::new(&go_regex_to_rust(re))
        .size_limit(64 << 20)
        .build()
        .map_err(|e| BrainError::Rules(format!("`{re}`: {e}")))
}

fn allow(raw: RawAllow) -> Result<Allow, BrainError> {
    Ok(Allow {
        regexes: raw
            .regexes
            .iter()
            .map(|r| compile(r))
            .collect::<Result<_, _>>()?,
        target: match raw.regex_target.as_deref() {
            Some("match") => Target::Match,
            Some("line") => Target::Line,
            _ => Target::Secret,
        },
        stopwords: raw.stopwords.iter().map(|s| s.to_lowercase()).collect(),
        and: raw
            .condition
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("and")),
    })
}

impl Allow {
    /// Whether a finding is allowed (a false positive).
    fn allows(&self, secret: &str, matched: &str, line: &str) -> bool {
        let target = match self.target {
            Target::Secret => secret,
            Target::Match => matched,
            Target::Line => line,
        };
        let by_regex =
            (!self.regexes.is_empty()).then(|| self.regexes.iter().any(|r| r.is_match(target)));
        let lower = secret.to_lowercase();
        let by_stopword = (!self.stopwords.is_empty())
            .then(|| self.stopwords.iter().any(|w| lower.contains(w.as_str())));
        let checks = [by_regex, by_stopword];
        let mut set = checks.iter().flatten().peekable();
        if set.peek().is_none() {
            return false;
        }
        if self.and {
            set.all(|&b| b)
        } else {
            set.any(|&b| b)
        }
    }
}

/// Shannon entropy in bits per character.
pub fn shannon_entropy(s: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    let mut n = 0usize;
    for c in s.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    counts
        .values()
        .map(|&c| {
            let p = c as f64 / n as f64;
            -p * p.log2()
        })
        .sum()
}

impl Scanner {
    /// Compiles a rule file in gitleaks' TOML format.
    pub fn from_toml(text: &str) -> Result<Scanner, BrainError> {
        let raw: RawRules = toml::from_str(text).map_err(|e| BrainError::Rules(e.to_string()))?;
        let global = match raw.allowlist {
            Some(a) => allow(a)?,
            None => Allow {
                regexes: vec![],
                target: Target::Secret,
                stopwords: vec![],
                and: false,
            },
        };
        let mut rules = Vec::new();
        for r in raw.rules {
            let Some(re) = r.regex else { continue };
            rules.push(Rule {
                regex: compile(&re)
                    .map_err(|e| BrainError::Rules(format!("rule {}: {e}", r.id)))?,
                id: r.id,
                secret_group: r.secret_group,
                entropy: r.entropy.unwrap_or(0.0),
                keywords: r.keywords.iter().map(|k| k.to_lowercase()).collect(),
                path: r.path.as_deref().map(compile).transpose()?,
                allow: r
                    .allowlists
                    .into_iter()
                    .map(allow)
                    .collect::<Result<_, _>>()?,
            });
        }
        Ok(Scanner { rules, global })
    }

    /// The embedded default rules (compiled once per process).
    pub fn default_rules() -> &'static Scanner {
        static SCANNER: std::sync::OnceLock<Scanner> = std::sync::OnceLock::new();
        SCANNER.get_or_init(|| {
            Scanner::from_toml(DEFAULT_RULES).expect("the embedded secret rules compile")
        })
    }

    /// Number of text rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Finds secrets in `text` (from file `path`, used by path-restricted rules; `""` when unknown).
    pub fn scan(&self, text: &str, path: &str) -> Vec<Finding> {
        let lower = text.to_lowercase();
        let mut out = Vec::new();
        for rule in &self.rules {
            if !rule.keywords.is_empty()
                && !rule.keywords.iter().any(|k| lower.contains(k.as_str()))
            {
                continue;
            }
            if let Some(p) = &rule.path
                && !p.is_match(path)
            {
                continue;
            }
            for caps in rule.regex.captures_iter(text) {
                let Some(whole) = caps.get(0) else { continue };
                let secret = if rule.secret_group > 0 {
                    caps.get(rule.secret_group)
                } else {
                    caps.iter()
                        .skip(1)
                        .flatten()
                        .find(|m| !m.as_str().is_empty())
                }
                .unwrap_or(whole);
                let s = secret.as_str();
                if rule.entropy > 0.0 {
                    if shannon_entropy(s) <= rule.entropy {
                        continue;
                    }
                    if rule.id.starts_with("generic") && !s.chars().any(|c| c.is_ascii_digit()) {
                        continue;
                    }
                }
                let line_start = text[..whole.start()].rfind('\n').map_or(0, |i| i + 1);
                let line_end = text[whole.end()..]
                    .find('\n')
                    .map_or(text.len(), |i| whole.end() + i);
                let line = &text[line_start..line_end];
                if self.global.allows(s, whole.as_str(), line)
                    || rule.allow.iter().any(|a| a.allows(s, whole.as_str(), line))
                {
                    continue;
                }
                out.push(Finding {
                    rule: rule.id.clone(),
                    range: secret.range(),
                });
            }
        }
        out.sort_by_key(|f| (f.range.start, f.range.end));
        out
    }

    /// `text` with every secret replaced by [`REDACTED`], and the findings.
    pub fn redact(&self, text: &str, path: &str) -> (String, Vec<Finding>) {
        let findings = self.scan(text, path);
        if findings.is_empty() {
            return (text.to_string(), findings);
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for f in &findings {
            if f.range.end <= at {
                continue;
            }
            let start = f.range.start.max(at);
            out.push_str(&text[at..start]);
            out.push_str(REDACTED);
            at = f.range.end;
        }
        out.push_str(&text[at..]);
        (out, findings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_rule_compiles() {
        let scanner = Scanner::from_toml(DEFAULT_RULES).unwrap();
        assert!(scanner.len() > 200, "{} rules", scanner.len());
    }

    #[test]
    fn finds_and_redacts_real_looking_secrets() {
        let s = Scanner::default_rules();
        // Shapes of real credentials (not live ones): an AWS access key id, a GitHub PAT, a Slack bot token.
        let text = "aws_access_key_id = AKIAZ7QW3R5T2LKPMXVB\nGITHUB_TOKEN = 'ghp_8fK2mQz7Lp3xR9tVb6Nw1Yc4Hs5Jd0Ae2Gu7'\n\
                    slack = \"xoxb-2093847561-4820193847561-Zk8vQ2mLp9xR7tWb3Nc5Ys1H\"";
        let (redacted, findings) = s.redact(text, "settings.py");
        let rules: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
        assert!(rules.contains(&"aws-access-token"), "{rules:?}");
        assert!(rules.contains(&"github-pat"), "{rules:?}");
        assert!(rules.iter().any(|r| r.starts_with("slack")), "{rules:?}");
        for secret in [
            "AKIAZ7QW3R5T2LKPMXVB",
            "ghp_8fK2mQz7Lp3xR9tVb6Nw1Yc4Hs5Jd0Ae2Gu7",
            "Zk8vQ2mLp9xR7tWb3Nc5Ys1H",
        ] {
            assert!(!redacted.contains(secret), "{redacted}");
        }
        assert!(redacted.contains(REDACTED));
    }

    #[test]
    fn generic_password_assignment_is_found() {
        let s = Scanner::default_rules();
        let findings = s.scan("DB_PASSWORD = \"q8Zr2Lx7Pw4Kt9Vm\"", "config.py");
        assert!(
            findings.iter().any(|f| f.rule == "generic-api-key"),
            "{findings:?}"
        );
    }

    #[test]
    fn ordinary_code_and_docs_are_left_alone() {
        let s = Scanner::default_rules();
        for text in [
            "def loads(s, *, cls=None, object_hook=None, parse_float=None):",
            "Return the password hash for the given user; raises KeyError when the key is missing.",
            "token = self._next_token()",
            "api_key = os.environ['API_KEY']",
            "secret_name = 'database-password'",
        ] {
            assert!(
                s.scan(text, "x.py").is_empty(),
                "{text}: {:?}",
                s.scan(text, "x.py")
            );
        }
    }

    #[test]
    fn go_braces_become_literals() {
        assert_eq!(
            go_regex_to_rust(r"^\$(?:\d+|{\d+})$"),
            r"^\$(?:\d+|\{\d+\})$"
        );
        assert_eq!(go_regex_to_rust(r"a{2,5}[{}]x{3}"), r"a{2,5}[{}]x{3}");
        assert_eq!(go_regex_to_rust(r"^\{\{[ \t]*}}$"), r"^\{\{[ \t]*\}\}$");
        assert!(
            Regex::new(&go_regex_to_rust(r"^\$\{(?:[A-Z_]+|[a-z_]+)}$"))
                .unwrap()
                .is_match("${HOME}")
        );
    }

    #[test]
    fn entropy_of_known_strings() {
        assert_eq!(shannon_entropy(""), 0.0);
        assert_eq!(shannon_entropy("aaaa"), 0.0);
        assert!((shannon_entropy("ab") - 1.0).abs() < 1e-9);
    }
}
