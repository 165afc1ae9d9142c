//! Natural-language search over the brain: BM25 over names and summaries, cosine similarity over summary
//! embeddings, and their reciprocal-rank fusion.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::brain::BrainType;
use crate::config::SearchConfig;
use crate::embed::Embedder;
use crate::error::Error;
use crate::graph::{GraphStore, Hit};

/// Which indexes answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Full-text (BM25) only.
    Lexical,
    /// Embeddings only.
    Vector,
    /// Both, fused by reciprocal rank.
    Hybrid,
}

impl Mode {
    /// The mode's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Lexical => "lexical",
            Mode::Vector => "vector",
            Mode::Hybrid => "hybrid",
        }
    }
    /// Parses `lexical`, `vector` or `hybrid`.
    pub fn from_name(s: &str) -> Option<Mode> {
        match s {
            "lexical" => Some(Mode::Lexical),
            "vector" => Some(Mode::Vector),
            "hybrid" => Some(Mode::Hybrid),
            _ => None,
        }
    }
}

const STOPWORDS: [&str; 44] = [
    "a", "an", "the", "of", "to", "in", "on", "for", "from", "with", "by", "and", "or", "is",
    "are", "be", "do", "does", "we", "i", "you", "it", "this", "that", "what", "which", "who",
    "how", "where", "when", "why", "can", "support", "there", "any", "some", "into", "as", "at",
    "about", "me", "my", "our", "us",
];

/// Everyday words of questions and the words code uses for the same thing (both directions are looked up).
/// General programming vocabulary, not tied to any codebase.
const SYNONYMS: [(&str, &[&str]); 16] = [
    ("parse", &["deserialize", "decode", "load", "loads", "read"]),
    ("serialize", &["dump", "dumps", "encode"]),
    ("string", &["str", "text"]),
    ("delete", &["remove", "rm", "unlink"]),
    ("remove", &["delete", "strip"]),
    ("directory", &["dir", "folder", "tree"]),
    ("folder", &["directory", "dir"]),
    ("error", &["exception"]),
    ("exception", &["error"]),
    ("run", &["execute", "call", "spawn"]),
    ("program", &["process", "command"]),
    ("copy", &["clone", "duplicate"]),
    ("find", &["search", "match", "glob"]),
    ("compress", &["gzip", "zip", "deflate"]),
    ("escape", &["quote"]),
    ("start", &["begin", "open"]),
];

/// The question as full-text terms: punctuation and common question words dropped (they match everything), and
/// each remaining word followed by the words code commonly uses for it ([`SYNONYMS`]).
pub fn lexical_terms(question: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    for w in question
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .map(|w| w.trim_matches('.'))
        .filter(|w| !w.is_empty() && !STOPWORDS.contains(&w.to_lowercase().as_str()))
    {
        words.push(w.to_string());
        let lower = w.to_lowercase();
        if let Some((_, syn)) = SYNONYMS.iter().find(|(k, _)| *k == lower) {
            words.extend(syn.iter().map(|s| s.to_string()));
        }
    }
    words.dedup();
    if words.is_empty() {
        question.to_string()
    } else {
        words.join(" ")
    }
}

/// Reciprocal-rank fusion: each hit scores the sum of `1 / (k + rank)` over the lists it is in (rank from 1), plus
/// `prior` times the same term for its rank by weight (how much the code leans on it) among all candidates, so
/// that of two equally good matches the one the codebase actually uses comes first.
pub fn fuse(lists: &[Vec<Hit>], k: f64, prior: f64, limit: usize) -> Vec<Hit> {
    let mut fused: HashMap<String, (f64, Hit)> = HashMap::new();
    for list in lists {
        for (rank, h) in list.iter().enumerate() {
            let add = 1.0 / (k + rank as f64 + 1.0);
            fused
                .entry(h.id.clone())
                .or_insert_with(|| (0.0, h.clone()))
                .0 += add;
        }
    }
    if prior > 0.0 {
        let mut by_weight: Vec<(u64, String)> = fused
            .values()
            .map(|(_, h)| (h.weight, h.id.clone()))
            .collect();
        by_weight.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        for (rank, (_, id)) in by_weight.iter().enumerate() {
            if let Some(entry) = fused.get_mut(id) {
                entry.0 += prior / (k + rank as f64 + 1.0);
            }
        }
    }
    let mut out: Vec<Hit> = fused
        .into_values()
        .map(|(score, mut h)| {
            h.score = score;
            h
        })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    out.truncate(limit);
    out
}

/// Code-shaped words of a question (`JSONDecodeError`, `json.loads`, `raw_decode`): names a user typed on purpose.
pub fn code_names(question: &str) -> Vec<String> {
    question
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == ':'))
        .map(|w| w.trim_matches(|c| c == '.' || c == ':'))
        .filter(|w| {
            let inner_upper =
                w.chars().skip(1).any(|c| c.is_uppercase()) && w.chars().any(|c| c.is_lowercase());
            w.contains('_') || w.contains('.') || w.contains("::") || inner_upper
        })
        .map(String::from)
        .collect()
}

/// Moves hits whose name is a code name of the question (exactly, or as its last segment) to the front, in their
/// fused order: someone who types `JSONDecodeError` means that type.
fn exact_first(hits: &mut [Hit], names: &[String]) {
    let is_exact = |h: &Hit| {
        let last = h.qname.rsplit(['.', ':']).next().unwrap_or(&h.qname);
        names
            .iter()
            .any(|n| n == &h.qname || n == last || h.qname.ends_with(&format!(".{n}")))
    };
    hits.sort_by_key(|h| !is_exact(h));
}

/// Searches the brain. `embedder` is needed for the vector and hybrid modes; hybrid without one is lexical.
pub async fn search(
    store: &GraphStore,
    embedder: Option<&Embedder>,
    question: &str,
    ty: Option<BrainType>,
    mode: Mode,
    cfg: &SearchConfig,
) -> Result<Vec<Hit>, Error> {
    let n = cfg.candidates.max(cfg.limit);
    let lexical = if mode != Mode::Vector {
        store
            .search_lexical(&lexical_terms(question), ty, n)
            .await?
    } else {
        vec![]
    };
    let vector = match (mode, embedder) {
        (Mode::Lexical, _) | (Mode::Hybrid, None) => vec![],
        (_, Some(e)) => {
            let v = e.embed(&[question])?.remove(0);
            store.search_vector(&v, ty, n).await?
        }
        (Mode::Vector, None) => {
            return Err(crate::error::EmbedError::Run(
                "vector search needs the embedding model".into(),
            )
            .into());
        }
    };
    Ok(match mode {
        Mode::Lexical => lexical.into_iter().take(cfg.limit).collect(),
        Mode::Vector => vector.into_iter().take(cfg.limit).collect(),
        Mode::Hybrid => {
            let mut hits = fuse(&[lexical, vector], cfg.rrf_k, cfg.prior_weight, usize::MAX);
            exact_first(&mut hits, &code_names(question));
            hits.truncate(cfg.limit);
            hits
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(id: &str) -> Hit {
        Hit {
            id: id.into(),
            ty: "capability".into(),
            name: id.into(),
            qname: id.into(),
            path: String::new(),
            line: 0,
            summary: String::new(),
            score: 0.0,
            weight: 0,
        }
    }

    #[test]
    fn fusion_rewards_agreement() {
        let a = vec![h("x"), h("y"), h("z")];
        let b = vec![h("y"), h("w"), h("x")];
        let out = fuse(&[a, b], 60.0, 0.0, 10);
        let ids: Vec<&str> = out.iter().map(|h| h.id.as_str()).collect();
        assert_eq!(ids[..2], ["y", "x"]);
        assert_eq!(ids.len(), 4);
        assert!((out[0].score - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-12);
        // With a prior, of two hits found once each the more used one wins.
        let mut used = h("u");
        used.weight = 9;
        let out = fuse(&[vec![h("n")], vec![used]], 60.0, 1.0, 10);
        assert_eq!(out[0].id, "u");
    }

    #[test]
    fn typed_code_names_come_first() {
        assert_eq!(
            code_names("what raises JSONDecodeError?"),
            vec!["JSONDecodeError".to_string()]
        );
        assert_eq!(
            code_names("is json.loads slow"),
            vec!["json.loads".to_string()]
        );
        assert!(code_names("Parse JSON from a string").is_empty());
        let mut hits = vec![h("a.Other"), h("json.decoder.JSONDecodeError")];
        exact_first(&mut hits, &code_names("what raises JSONDecodeError"));
        assert_eq!(hits[0].qname, "json.decoder.JSONDecodeError");
    }

    #[test]
    fn question_words_are_dropped() {
        assert_eq!(
            lexical_terms("What raises JSONDecodeError?"),
            "raises JSONDecodeError"
        );
        assert_eq!(
            lexical_terms("do we support parsing JSON from a string"),
            "parsing JSON string str text"
        );
        assert_eq!(
            lexical_terms("parse JSON"),
            "parse deserialize decode load loads read JSON"
        );
        assert_eq!(lexical_terms("how"), "how");
    }
}
