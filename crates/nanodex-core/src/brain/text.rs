//! Reading facts out of source text that the code graph does not hold: the statement at a raise site, its message
//! template and guarding condition, exception handlers, docstring examples and Markdown code blocks. Pure functions
//! over strings.

use std::sync::LazyLock;

use regex::Regex;

/// Longest verbatim code fragment quoted anywhere.
pub const MAX_CODE_CHARS: usize = 160;

static STRING_LIT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:\b[rRbBuUfF]{1,2})?(?:"((?:[^"\\\n]|\\.)*)"|'((?:[^'\\\n]|\\.)*)')"#)
        .expect("string regex")
});
static PY_EXCEPT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?m)^[ \t]*except\*?[ \t]*\(?[ \t]*([A-Za-z_][\w.]*(?:[ \t]*,[ \t]*[A-Za-z_][\w.]*)*)",
    )
    .expect("except regex")
});
static CATCH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"catch[ \t]*\([ \t]*(?:final[ \t]+)?(?:const[ \t]+)?([A-Za-z_][\w.:]*(?:[ \t]*\|[ \t]*[A-Za-z_][\w.:]*)*)")
        .expect("catch regex")
});
static CALL_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)[ \t]*\(").expect("call regex"));

static ROLE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r":[a-z]+(?::[a-z]+)?:`~?([^`]+)`").expect("role regex"));

/// Docstring prose without reStructuredText / Markdown markup: ``x`` and `x` → x, :func:`x` → x, *x* → x.
pub fn plain(doc: &str) -> String {
    let s = ROLE.replace_all(doc, "$1");
    let s = s.replace("``", "").replace('`', "");
    let s = s.replace("**", "");
    s.split_whitespace()
        .map(|w| {
            let t = w.trim_start_matches('*').trim_end_matches('*');
            if t.len() + 2 == w.len() && !t.is_empty() {
                t
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Collapses whitespace and cuts to `max` characters (on a char boundary, with an ellipsis).
pub fn clip(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, w) in s.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(w);
    }
    if out.chars().count() > max {
        let cut: String = out.chars().take(max.saturating_sub(1)).collect();
        return format!("{}…", cut.trim_end());
    }
    out
}

/// The first sentence of a doc paragraph (up to the first `. ` or the end), at most `max` characters.
pub fn first_sentence(doc: &str, max: usize) -> String {
    let doc = clip(doc, 4 * max);
    let end = doc
        .char_indices()
        .find(|&(i, c)| c == '.' && doc[i + 1..].starts_with(' '))
        .map(|(i, _)| i + 1)
        .unwrap_or(doc.len());
    clip(&doc[..end], max)
}

fn indent(line: &str) -> usize {
    line.chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum()
}

/// The statement starting at 1-based `line`, continued while brackets are open (at most six lines), clipped.
pub fn statement(lines: &[&str], line: u32) -> Option<String> {
    let start = (line as usize).checked_sub(1)?;
    let mut depth = 0i32;
    let mut text = String::new();
    for l in lines.iter().skip(start).take(6) {
        text.push_str(l.trim());
        text.push(' ');
        for c in l.chars() {
            match c {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                _ => {}
            }
        }
        if depth <= 0 {
            break;
        }
    }
    let text = clip(&text, MAX_CODE_CHARS);
    (!text.is_empty()).then_some(text)
}

/// The message template of a raise / throw statement: its first string literal.
pub fn message(stmt: &str) -> Option<String> {
    let caps = STRING_LIT.captures(stmt)?;
    let inner = caps.get(1).or_else(|| caps.get(2))?.as_str();
    let inner = clip(inner, 120);
    (inner.chars().any(|c| c.is_alphanumeric())).then_some(inner)
}

const GUARDS: [&str; 12] = [
    "if ",
    "if(",
    "elif ",
    "else if",
    "} else if",
    "while ",
    "while(",
    "case ",
    "except",
    "catch",
    "for ",
    "else",
];

/// The condition under which the statement at 1-based `line` runs: the nearest enclosing guard line above it
/// (`if`, `elif`, `else if`, `while`, `case`, `except`, `catch`, `for`, `else`), or the guard on the same line
/// (`if (x) throw ...`). `None` when the statement is not guarded (or the guard is the function header).
pub fn condition(lines: &[&str], line: u32, first_line: u32) -> Option<String> {
    let at = (line as usize).checked_sub(1)?;
    let here = lines.get(at)?.trim_start();
    for kw in ["raise", "throw"] {
        if let Some(pos) = here.find(kw)
            && pos > 0
            && GUARDS.iter().any(|g| here.starts_with(g))
        {
            return Some(clean_guard(&here[..pos]));
        }
    }
    let own = indent(lines[at]);
    let floor = (first_line as usize)
        .saturating_sub(1)
        .max(at.saturating_sub(60));
    for i in (floor..at).rev() {
        let l = lines[i];
        if l.trim().is_empty()
            || l.trim_start().starts_with('#')
            || l.trim_start().starts_with("//")
        {
            continue;
        }
        let ind = indent(l);
        let t = l.trim_start();
        // A closing brace line at the same depth belongs to an earlier block.
        if ind < own || (ind == own && t.starts_with("} else")) {
            if GUARDS.iter().any(|g| t.starts_with(g)) || t.starts_with("} else") {
                return Some(clean_guard(t));
            }
            return None;
        }
    }
    None
}

fn clean_guard(t: &str) -> String {
    let t = t.trim().trim_start_matches('}').trim();
    let t = t.trim_end_matches(['{', ':']).trim();
    clip(t, MAX_CODE_CHARS)
}

/// Exception names handled in `src` (`except A, B` / `catch (A | B e)`), with 1-based lines. Names are the last
/// segment (`json.JSONDecodeError` → `JSONDecodeError`, `std::runtime_error` → `runtime_error`).
pub fn handlers(src: &str, python: bool) -> Vec<(String, u32)> {
    let re: &Regex = if python { &PY_EXCEPT } else { &CATCH };
    let mut out = Vec::new();
    let mut line = 1u32;
    let mut last = 0usize;
    for caps in re.captures_iter(src) {
        let m = caps.get(0).expect("match");
        line += src[last..m.start()].bytes().filter(|&b| b == b'\n').count() as u32;
        last = m.start();
        let names = caps.get(1).map(|g| g.as_str()).unwrap_or("");
        for name in names.split([',', '|']) {
            let name = name.trim();
            let simple = name.rsplit(['.', ':']).next().unwrap_or(name).trim();
            if !simple.is_empty() {
                out.push((simple.to_string(), line));
            }
        }
    }
    out
}

/// A block of example code: its first line (1-based) and the dotted call names in it, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// First line of the block.
    pub line: u32,
    /// Call names in order of appearance (deduplicated).
    pub calls: Vec<String>,
    /// Heading or context line above the block (Markdown).
    pub title: String,
}

fn calls_in(code: &str, into: &mut Vec<String>) {
    for caps in CALL_NAME.captures_iter(code) {
        let name = caps[1].to_string();
        if matches!(
            name.as_str(),
            "print" | "len" | "str" | "int" | "list" | "dict" | "repr" | "isinstance"
        ) {
            continue;
        }
        if !into.contains(&name) {
            into.push(name);
        }
    }
}

/// Interactive examples in Python source (`>>>` / `...` lines, as doctest reads them); a block ends at a blank line
/// and is titled by the prose line above it (`Decoding JSON::` → `Decoding JSON`).
pub fn doctest_blocks(src: &str) -> Vec<Example> {
    let mut out: Vec<Example> = Vec::new();
    let mut current: Option<Example> = None;
    let mut prose = String::new();
    for (i, l) in src.lines().enumerate() {
        let t = l.trim_start();
        if let Some(code) = t.strip_prefix(">>>").or_else(|| {
            if current.is_some() {
                t.strip_prefix("...")
            } else {
                None
            }
        }) {
            let ex = current.get_or_insert_with(|| Example {
                line: i as u32 + 1,
                calls: vec![],
                title: std::mem::take(&mut prose),
            });
            calls_in(code, &mut ex.calls);
        } else {
            let quoted = t.starts_with("\"\"\"") || t.starts_with("\'\'\'");
            if (t.is_empty() || quoted)
                && let Some(ex) = current.take()
                && !ex.calls.is_empty()
            {
                out.push(ex);
            }
            let text = if quoted { &t[3..] } else { t };
            let code = [
                "def ",
                "class ",
                "@",
                "#",
                "return",
                "import ",
                "from ",
                "async def ",
            ]
            .iter()
            .any(|k| text.starts_with(k));
            if current.is_none() && !code {
                let line = text
                    .trim_end()
                    .trim_end_matches("\"\"\"")
                    .trim_end_matches(':')
                    .trim();
                if line.chars().any(|c| c.is_alphabetic()) {
                    prose = clip(line, 100);
                }
            }
        }
    }
    if let Some(ex) = current.filter(|e| !e.calls.is_empty()) {
        out.push(ex);
    }
    out
}

/// Fenced code blocks of a Markdown document, titled by the nearest heading above them.
pub fn markdown_blocks(text: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut heading = String::new();
    let mut block: Option<(Example, String)> = None;
    for (i, l) in text.lines().enumerate() {
        let t = l.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            match block.take() {
                Some((mut ex, code)) => {
                    calls_in(&code, &mut ex.calls);
                    if !ex.calls.is_empty() {
                        out.push(ex);
                    }
                }
                None => {
                    block = Some((
                        Example {
                            line: i as u32 + 1,
                            calls: vec![],
                            title: heading.clone(),
                        },
                        String::new(),
                    ))
                }
            }
            continue;
        }
        match &mut block {
            Some((_, code)) => {
                code.push_str(l);
                code.push('\n');
            }
            None if t.starts_with('#') => heading = clip(t.trim_start_matches('#'), 100),
            None => {}
        }
    }
    out
}

/// Words of an identifier: `test_decode_invalidJSON` → `decode invalid json` (a leading `test` dropped).
pub fn words(name: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    for part in name.split(['_', '.', ':', '-']) {
        let mut word = String::new();
        let chars: Vec<char> = part.chars().collect();
        for (i, &c) in chars.iter().enumerate() {
            let boundary = i > 0
                && c.is_uppercase()
                && (chars[i - 1].is_lowercase()
                    || chars.get(i + 1).is_some_and(|n| n.is_lowercase()));
            if boundary && !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            word.extend(c.to_lowercase());
        }
        if !word.is_empty() {
            out.push(word);
        }
    }
    if out.first().is_some_and(|w| w == "test" || w == "tests") {
        out.remove(0);
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raise_statement_message_and_condition() {
        let src = "def f(s):\n    if not s:\n        raise ValueError(\n            f\"empty input {s!r}\")\n    return s\n";
        let lines: Vec<&str> = src.lines().collect();
        let stmt = statement(&lines, 3).unwrap();
        assert_eq!(stmt, "raise ValueError( f\"empty input {s!r}\")");
        assert_eq!(message(&stmt).unwrap(), "empty input {s!r}");
        assert_eq!(condition(&lines, 3, 1).unwrap(), "if not s");
        let java = "void f(int x) {\n    if (x < 0) throw new IllegalArgumentException(\"negative\");\n}\n";
        let lines: Vec<&str> = java.lines().collect();
        assert_eq!(condition(&lines, 2, 1).unwrap(), "if (x < 0)");
        let bare = "def g():\n    raise KeyError('k')\n";
        let lines: Vec<&str> = bare.lines().collect();
        assert_eq!(condition(&lines, 2, 1), None);
    }

    #[test]
    fn handlers_in_python_and_java() {
        let py = "try:\n    x()\nexcept (json.JSONDecodeError, KeyError) as e:\n    pass\nexcept ValueError:\n    pass\n";
        assert_eq!(
            handlers(py, true),
            vec![
                ("JSONDecodeError".into(), 3),
                ("KeyError".into(), 3),
                ("ValueError".into(), 5)
            ]
        );
        let java = "try { a(); }\ncatch (final IOException | java.text.ParseException e) { }\n";
        assert_eq!(
            handlers(java, false),
            vec![("IOException".into(), 2), ("ParseException".into(), 2)]
        );
    }

    #[test]
    fn examples_from_doctests_and_markdown() {
        let src = "\"\"\"Doc.\n\n    >>> import json\n    >>> json.dumps(['foo'])\n    '[\"foo\"]'\n    >>> json.loads(s)\n\n\"\"\"\n";
        let blocks = doctest_blocks(src);
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].line, 3);
        assert_eq!(
            blocks[0].calls,
            vec!["json.dumps".to_string(), "json.loads".to_string()]
        );
        let md = "# Usage\n\n## Parse\n\n```python\nfrom geo import parse\nshape = parse(text)\nprint(shape.area())\n```\n";
        let blocks = markdown_blocks(md);
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].title, "Parse");
        assert_eq!(
            blocks[0].calls,
            vec!["parse".to_string(), "shape.area".to_string()]
        );
    }

    #[test]
    fn identifier_words_and_sentences() {
        assert_eq!(words("test_decode_invalidJSON"), "decode invalid json");
        assert_eq!(words("JSONDecodeError"), "json decode error");
        assert_eq!(
            first_sentence("Deserialize ``s`` to a Python object. More text.", 200),
            "Deserialize ``s`` to a Python object."
        );
        assert_eq!(clip("a  b\n c", 10), "a b c");
        assert_eq!(
            plain("Deserialize ``s`` (a ``str``) with :func:`json.loads` and *fast* parsing, `x`."),
            "Deserialize s (a str) with json.loads and fast parsing, x."
        );
        assert_eq!(clip("abcdefghijk", 5), "abcd…");
    }
}
