//! A matcher for the subset of tree-sitter's query language that the query files use, run at each pattern's root.
//!
//! The query files stay in tree-sitter's syntax and tree-sitter's own engine still runs them wherever this one
//! cannot ([`Patterns::compile`] declines, and [`super::Lang::patterns`] answers `None`). Why a second engine:
//! tree-sitter's query cursor is a general state machine. It moves a tree cursor over every node under each start
//! node and tries each pattern's steps there, and its compiler analyses every pattern against the whole grammar
//! (C++: 55 ms per process). Matching these shallow patterns directly, by node kind and field, at the nodes a
//! pattern can start at, gives the same matches for a fraction of the work: a one-core JDK run spent 12% of its time
//! in the query cursor. `parse::tests` check that both engines give the same facts, file by file, on the fixtures
//! of every language and on the Python standard library.
//!
//! The subset: a pattern is one node `(kind ...)` with captures; inside a node, child steps `(kind ...)` and
//! `(_ ...)` (any named node), with a field (`name: (...)`) or without, alternations `[(...) (...)]`, negated
//! fields (`!object`), anchors (`.` before the first, between two, or after the last child step), captures
//! (`@name`), and the predicates `#eq?`, `#any-of?` and `#match?` (against a string) and `#kind-of?` on one
//! capture. Quantifiers, anonymous nodes (`"if"`), `_`, groupings, supertypes, predicates between captures or
//! negated ones are not in it.
//!
//! The semantics are tree-sitter's: a child step matches a visible child of the node (hidden nodes are looked
//! through); steps match children in order, not necessarily adjacent; an anchor skips anonymous nodes; every way the
//! steps can match gives a match.

use std::num::NonZeroU16;

use regex::Regex;
use smallvec::SmallVec;
use tree_sitter::{Language, Node, TreeCursor};

/// A capture's index in [`Patterns::capture_names`].
pub(crate) type Capture = u16;

/// Compiled patterns of one query file, for one grammar.
pub(crate) struct Patterns {
    capture_names: Vec<String>,
    patterns: Vec<Pattern>,
    /// By node kind id: the patterns (indexes into `patterns`, in file order) that start at that kind.
    by_kind: Vec<SmallVec<[u16; 4]>>,
    /// By node kind id: whether a pattern starts at that kind (for `parse::root_nodes`).
    pub roots: Vec<bool>,
}

struct Pattern {
    root: Step,
    /// Each predicate names one capture, which every match binds ([`Patterns::compile`] checks): it is tested as
    /// soon as the capture is bound, so a failing predicate prunes the rest of the match.
    tests: Vec<(Capture, Test)>,
}

/// One node of a pattern.
struct Step {
    /// The node kind ids it matches; `None`: any named node (`(_)`).
    kinds: Option<SmallVec<[u16; 2]>>,
    captures: SmallVec<[Capture; 1]>,
    children: Vec<ChildStep>,
    /// Fields the node must not have (`!object`).
    negated: SmallVec<[NonZeroU16; 1]>,
    /// A `.` after the last child step: it matches the last named child.
    anchor_last: bool,
}

struct ChildStep {
    field: Option<NonZeroU16>,
    /// A `.` before it: it matches the first named child (first step) or the named child right after the
    /// previous step's.
    anchored: bool,
    /// One step, or the alternatives of `[...]` (a capture on the alternation is on each of them).
    alternatives: Vec<Step>,
}

enum Test {
    Eq(String),
    AnyOf(Vec<String>),
    Match(Regex),
    KindOf(SmallVec<[u16; 2]>),
}

/// A visible child of a node, with its field.
#[derive(Clone, Copy)]
struct Child<'t> {
    node: Node<'t>,
    field: Option<NonZeroU16>,
    named: bool,
}

type Children<'t> = SmallVec<[Child<'t>; 8]>;

/// A capture and the node it is bound to.
pub(crate) type Bound<'t> = (Capture, Node<'t>);

/// The captures of a match so far.
type Captures<'t> = SmallVec<[Bound<'t>; 8]>;

impl Patterns {
    /// Compiles the query file `src` for `language`, or says why it is outside the subset (or not valid).
    pub fn compile(language: &Language, src: &str) -> Result<Patterns, String> {
        let mut parser = Reader {
            tokens: tokenize(src)?,
            pos: 0,
            language,
            capture_names: Vec::new(),
        };
        let mut patterns = Vec::new();
        while parser.pos < parser.tokens.len() {
            let mut tests = Vec::new();
            let root = parser.node(&mut tests)?;
            if root.kinds.is_none() {
                return Err("a pattern starts at a wildcard".into());
            }
            let bound = root.always_bound();
            let mut resolved = Vec::new();
            for (capture, test) in tests {
                let Some(capture) = parser.capture_names.iter().position(|n| *n == capture) else {
                    return Err(format!(
                        "a predicate names @{capture}, which the pattern lacks"
                    ));
                };
                let capture = capture as Capture;
                if !bound.contains(&capture) {
                    return Err(format!(
                        "a predicate on @{}, which a match may leave unbound",
                        parser.capture_names[usize::from(capture)]
                    ));
                }
                resolved.push((capture, test));
            }
            patterns.push(Pattern {
                root,
                tests: resolved,
            });
        }
        let n_kinds = language.node_kind_count();
        let mut by_kind = vec![SmallVec::new(); n_kinds];
        for (idx, pattern) in patterns.iter().enumerate() {
            for &kind in pattern.root.kinds.iter().flatten() {
                by_kind[usize::from(kind)].push(idx as u16);
            }
        }
        let roots = by_kind.iter().map(|p| !p.is_empty()).collect();
        Ok(Patterns {
            capture_names: parser.capture_names,
            patterns,
            by_kind,
            roots,
        })
    }

    /// The name of a capture, without the `@`.
    pub fn capture_name(&self, capture: Capture) -> &str {
        &self.capture_names[usize::from(capture)]
    }

    /// Calls `found(pattern_index, captures)` for each match of a pattern that starts at `node`, patterns in file
    /// order. `cursor` is any cursor of the node's tree (it is moved around).
    pub fn matches_at<'t>(
        &self,
        node: Node<'t>,
        src: &str,
        cursor: &mut TreeCursor<'t>,
        found: &mut dyn FnMut(usize, &[Bound<'t>]),
    ) {
        let Some(patterns) = self.by_kind.get(usize::from(node.kind_id())) else {
            return;
        };
        let mut children: Option<Children<'t>> = None;
        for &idx in patterns {
            let pattern = &self.patterns[usize::from(idx)];
            if pattern.root.needs_children() && children.is_none() {
                children = Some(children_of(node, cursor));
            }
            let mut matcher = Matcher {
                src,
                cursor: &mut *cursor,
                tests: &pattern.tests,
                captures: SmallVec::new(),
            };
            // Ways to match that bind the same nodes are one match, as in tree-sitter (which drops a partial
            // match whose captures another one holds): `(argument_list (string))` matches a call once, however many
            // strings it has.
            let mut seen: SmallVec<[Captures<'t>; 2]> = SmallVec::new();
            matcher.step(
                node,
                &pattern.root,
                children.as_deref(),
                &mut |m: &mut Matcher<'_, '_, 't>| {
                    if !seen.contains(&m.captures) {
                        seen.push(m.captures.clone());
                        found(usize::from(idx), &m.captures);
                    }
                },
            );
        }
    }
}

impl Step {
    fn needs_children(&self) -> bool {
        !self.children.is_empty() || !self.negated.is_empty()
    }

    fn accepts(&self, child: &Child<'_>) -> bool {
        match &self.kinds {
            None => child.named,
            Some(kinds) => kinds.contains(&child.node.kind_id()),
        }
    }

    /// The captures that every match of this step binds.
    fn always_bound(&self) -> Vec<Capture> {
        let mut bound: Vec<Capture> = self.captures.to_vec();
        for child in &self.children {
            let mut alternatives = child.alternatives.iter().map(Step::always_bound);
            let first = alternatives.next().unwrap_or_default();
            let common = alternatives.fold(first, |acc, other| {
                acc.into_iter().filter(|c| other.contains(c)).collect()
            });
            bound.extend(common);
        }
        bound
    }
}

/// The visible children of `node` (hidden nodes looked through), with their fields.
fn children_of<'t>(node: Node<'t>, cursor: &mut TreeCursor<'t>) -> Children<'t> {
    let mut children = Children::new();
    cursor.reset(node);
    if cursor.goto_first_child() {
        loop {
            let child = cursor.node();
            children.push(Child {
                node: child,
                field: cursor.field_id(),
                named: child.is_named(),
            });
            if !cursor.goto_next_sibling() {
                break;
            }
        }
    }
    children
}

struct Matcher<'a, 'c, 't> {
    src: &'a str,
    cursor: &'c mut TreeCursor<'t>,
    tests: &'a [(Capture, Test)],
    captures: Captures<'t>,
}

type Then<'f, 'a, 'c, 't> = &'f mut dyn FnMut(&mut Matcher<'a, 'c, 't>);

impl<'a, 'c, 't> Matcher<'a, 'c, 't> {
    /// Matches `step` at `node`, whose kind it accepts (`children`: the node's, when already known), and calls
    /// `then` for each way it matches, with the step's captures bound.
    fn step(
        &mut self,
        node: Node<'t>,
        step: &Step,
        children: Option<&[Child<'t>]>,
        then: Then<'_, 'a, 'c, 't>,
    ) {
        let mark = self.captures.len();
        for &capture in &step.captures {
            if !self.holds(capture, node) {
                self.captures.truncate(mark);
                return;
            }
            self.captures.push((capture, node));
        }
        if !step.needs_children() {
            then(self);
        } else {
            let owned;
            let children = match children {
                Some(children) => children,
                None => {
                    owned = children_of(node, self.cursor);
                    &owned[..]
                }
            };
            let negated_absent = step
                .negated
                .iter()
                .all(|field| children.iter().all(|c| c.field != Some(*field)));
            if negated_absent {
                self.children(children, step, 0, 0, then);
            }
        }
        self.captures.truncate(mark);
    }

    /// Matches `step`'s child steps from `index` on, against `children` from `from` on.
    fn children(
        &mut self,
        children: &[Child<'t>],
        step: &Step,
        index: usize,
        from: usize,
        then: Then<'_, 'a, 'c, 't>,
    ) {
        let Some(child_step) = step.children.get(index) else {
            then(self);
            return;
        };
        let last = index + 1 == step.children.len();
        for (at, child) in children.iter().enumerate().skip(from) {
            if child_step.anchored && !child.named {
                continue;
            }
            let field_holds = child_step.field.is_none_or(|f| child.field == Some(f));
            let end_holds =
                !(last && step.anchor_last) || children[at + 1..].iter().all(|later| !later.named);
            if field_holds && end_holds {
                for alternative in &child_step.alternatives {
                    if alternative.accepts(child) {
                        self.step(child.node, alternative, None, &mut |m| {
                            m.children(children, step, index + 1, at + 1, then)
                        });
                    }
                }
            }
            if child_step.anchored {
                break;
            }
        }
    }

    /// Whether `node` passes the pattern's predicates on `capture`.
    fn holds(&self, capture: Capture, node: Node<'t>) -> bool {
        self.tests
            .iter()
            .filter(|(c, _)| *c == capture)
            .all(|(_, test)| {
                let text = || self.src.get(node.byte_range()).unwrap_or("");
                match test {
                    Test::Eq(s) => text() == s,
                    Test::AnyOf(set) => set.iter().any(|s| s == text()),
                    Test::Match(re) => re.is_match(text()),
                    Test::KindOf(kinds) => kinds.contains(&node.kind_id()),
                }
            })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    OpenAlt,
    CloseAlt,
    Anchor,
    /// `!field`
    Negated(String),
    /// `field:`
    Field(String),
    /// `@name`
    Capture(String),
    /// `#name?` (right after an `(`)
    Predicate(String),
    Str(String),
    /// A node kind or `_`.
    Word(String),
}

fn tokenize(src: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = src.char_indices().peekable();
    let word_end = |from: usize| {
        src[from..]
            .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '?' | '!')))
            .map_or(src.len(), |n| from + n)
    };
    while let Some(&(at, c)) = chars.peek() {
        let skip_to = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>, end: usize| {
            while chars.peek().is_some_and(|(i, _)| *i < end) {
                chars.next();
            }
        };
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            ';' => {
                let end = src[at..].find('\n').map_or(src.len(), |n| at + n);
                skip_to(&mut chars, end);
            }
            '(' | ')' | '[' | ']' | '.' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    '[' => Token::OpenAlt,
                    ']' => Token::CloseAlt,
                    _ => Token::Anchor,
                });
            }
            '"' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        None => return Err("an unterminated string".into()),
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => text.push('\n'),
                            Some((_, 't')) => text.push('\t'),
                            Some((_, 'r')) => text.push('\r'),
                            Some((_, '0')) => text.push('\0'),
                            Some((_, other)) => text.push(other),
                            None => return Err("an unterminated string".into()),
                        },
                        Some((_, other)) => text.push(other),
                    }
                }
                tokens.push(Token::Str(text));
            }
            '@' | '#' | '!' => {
                let end = word_end(at + 1);
                let name = src[at + 1..end].to_string();
                if name.is_empty() {
                    return Err(format!("`{c}` without a name"));
                }
                skip_to(&mut chars, end);
                tokens.push(match c {
                    '@' => Token::Capture(name),
                    '#' => Token::Predicate(name),
                    _ => Token::Negated(name),
                });
            }
            c if c.is_alphanumeric() || c == '_' => {
                let end = src[at..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .map_or(src.len(), |n| at + n);
                let word = src[at..end].to_string();
                skip_to(&mut chars, end);
                if chars.peek().is_some_and(|(_, c)| *c == ':') {
                    chars.next();
                    tokens.push(Token::Field(word));
                } else {
                    tokens.push(Token::Word(word));
                }
            }
            other => return Err(format!("`{other}` is not in the supported query syntax")),
        }
    }
    Ok(tokens)
}

struct Reader<'l> {
    tokens: Vec<Token>,
    pos: usize,
    language: &'l Language,
    capture_names: Vec<String>,
}

impl Reader<'_> {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn capture(&mut self, name: String) -> Capture {
        match self.capture_names.iter().position(|n| *n == name) {
            Some(idx) => idx as Capture,
            None => {
                self.capture_names.push(name);
                (self.capture_names.len() - 1) as Capture
            }
        }
    }

    fn captures(&mut self) -> SmallVec<[Capture; 1]> {
        let mut captures = SmallVec::new();
        while let Some(Token::Capture(name)) = self.peek() {
            let name = name.clone();
            self.pos += 1;
            captures.push(self.capture(name));
        }
        captures
    }

    /// The named kind ids called `name` (aliases give one name several ids).
    fn kinds(&self, name: &str) -> Result<SmallVec<[u16; 2]>, String> {
        let id = self.language.id_for_node_kind(name, true);
        if id == 0
            || !self.language.node_kind_is_visible(id)
            || self.language.node_kind_is_supertype(id)
        {
            return Err(format!("`{name}` is not a visible named node kind"));
        }
        Ok((0..self.language.node_kind_count() as u16)
            .filter(|&other| {
                self.language.node_kind_is_named(other)
                    && self.language.node_kind_for_id(other) == Some(name)
            })
            .collect())
    }

    /// `(kind items...) @captures`, after which the reader stands past the captures; predicates go to `tests`
    /// (with the capture's name).
    fn node(&mut self, tests: &mut Vec<(String, Test)>) -> Result<Step, String> {
        if self.next() != Some(Token::Open) {
            return Err("a pattern that is not a node `(...)`".into());
        }
        let kinds = match self.next() {
            Some(Token::Word(word)) if word == "_" => None,
            Some(Token::Word(word)) => Some(self.kinds(&word)?),
            other => return Err(format!("a node without a kind: {other:?}")),
        };
        let mut step = Step {
            kinds,
            captures: SmallVec::new(),
            children: Vec::new(),
            negated: SmallVec::new(),
            anchor_last: false,
        };
        let mut anchored = false;
        loop {
            match self.peek().cloned() {
                Some(Token::Close) => {
                    self.pos += 1;
                    break;
                }
                Some(Token::Anchor) => {
                    self.pos += 1;
                    anchored = true;
                }
                Some(Token::Negated(field)) => {
                    self.pos += 1;
                    step.negated.push(self.field(&field)?);
                }
                Some(Token::Open)
                    if matches!(self.tokens.get(self.pos + 1), Some(Token::Predicate(_))) =>
                {
                    tests.push(self.predicate()?);
                }
                Some(Token::Field(field)) => {
                    self.pos += 1;
                    let field = Some(self.field(&field)?);
                    let alternatives = self.child(tests)?;
                    step.children.push(ChildStep {
                        field,
                        anchored: std::mem::take(&mut anchored),
                        alternatives,
                    });
                }
                Some(Token::Open | Token::OpenAlt) => {
                    let alternatives = self.child(tests)?;
                    step.children.push(ChildStep {
                        field: None,
                        anchored: std::mem::take(&mut anchored),
                        alternatives,
                    });
                }
                other => return Err(format!("unsupported in a node: {other:?}")),
            }
        }
        if anchored {
            if step.children.is_empty() {
                return Err("an anchor without a child step".into());
            }
            step.anchor_last = true;
        }
        step.captures = self.captures();
        Ok(step)
    }

    /// A child step: a node, or an alternation of nodes, with its captures.
    fn child(&mut self, tests: &mut Vec<(String, Test)>) -> Result<Vec<Step>, String> {
        if self.peek() == Some(&Token::OpenAlt) {
            self.pos += 1;
            let mut alternatives = Vec::new();
            loop {
                match self.peek() {
                    Some(Token::CloseAlt) => {
                        self.pos += 1;
                        break;
                    }
                    Some(Token::Open) => alternatives.push(self.node(tests)?),
                    other => return Err(format!("unsupported in an alternation: {other:?}")),
                }
            }
            if alternatives.is_empty() {
                return Err("an empty alternation".into());
            }
            let captures = self.captures();
            for alternative in &mut alternatives {
                alternative.captures.extend(captures.iter().copied());
            }
            Ok(alternatives)
        } else {
            Ok(vec![self.node(tests)?])
        }
    }

    fn field(&self, name: &str) -> Result<NonZeroU16, String> {
        self.language
            .field_id_for_name(name)
            .ok_or_else(|| format!("no field `{name}`"))
    }

    /// `(#name? @capture args...)`.
    fn predicate(&mut self) -> Result<(String, Test), String> {
        self.pos += 1; // `(`
        let Some(Token::Predicate(name)) = self.next() else {
            return Err("a predicate without a name".into());
        };
        let Some(Token::Capture(capture)) = self.next() else {
            return Err(format!("#{name} takes a capture first"));
        };
        let mut args = Vec::new();
        loop {
            match self.next() {
                Some(Token::Close) => break,
                Some(Token::Str(s)) => args.push(s),
                other => return Err(format!("#{name}: unsupported argument {other:?}")),
            }
        }
        let test = match (name.as_str(), args.len()) {
            ("eq?", 1) => Test::Eq(args.remove(0)),
            ("any-of?", n) if n > 0 => Test::AnyOf(args),
            ("match?", 1) => {
                Test::Match(Regex::new(&args[0]).map_err(|e| format!("#match?: {e}"))?)
            }
            ("kind-of?", n) if n > 0 => {
                let mut kinds = SmallVec::new();
                for kind in &args {
                    kinds.extend(self.kinds(kind)?);
                }
                Test::KindOf(kinds)
            }
            _ => {
                return Err(format!(
                    "unsupported predicate #{name} with {} arguments",
                    args.len()
                ));
            }
        };
        Ok((capture, test))
    }
}

#[cfg(test)]
#[path = "pattern_tests.rs"]
mod tests;
