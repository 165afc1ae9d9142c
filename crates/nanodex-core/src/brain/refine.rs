//! Optional summary refinement through an OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp's server,
//! nanodex's own server later). The deterministic summary stays unless the rewrite passes every check:
//! every identifier it mentions exists in the graph, it holds no secret, and it fits the token budget.

use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;
use serde_json::json;

use super::BrainNode;
use super::derive::estimate_tokens;
use crate::config::{LlmConfig, SummaryConfig};
use crate::error::BrainError;
use crate::progress::{Cancel, ProgressEvent, Sink};
use crate::secrets::Scanner;

static BACKTICKED: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"`([^`]+)`").expect("regex"));
static IDENT: LazyLock<Regex> = LazyLock::new(|| {
    // Dotted names, snake_case and inner-capital CamelCase words: what reads as code, not prose.
    Regex::new(r"\b[A-Za-z_][A-Za-z0-9_]*(?:(?:\.|::)[A-Za-z_][A-Za-z0-9_]*)+\b|\b[A-Za-z0-9]*_[A-Za-z0-9_]+\b|\b[A-Z]?[a-z0-9]+(?:[A-Z][a-z0-9]+)+\b|\b[A-Z]{2,}[a-z]+[A-Za-z0-9]*\b")
        .expect("regex")
});

/// Identifiers mentioned in `text`: backticked spans and code-shaped words.
pub fn identifiers(text: &str) -> Vec<String> {
    let mut out: Vec<String> = BACKTICKED
        .captures_iter(text)
        .map(|c| c[1].trim().to_string())
        .collect();
    let prose = BACKTICKED.replace_all(text, " ");
    out.extend(IDENT.find_iter(&prose).map(|m| m.as_str().to_string()));
    out.sort();
    out.dedup();
    out
}

/// Whether every identifier of `text` is a known name, qualified name or dotted suffix of one.
pub fn grounded(text: &str, known: &HashSet<String>) -> Result<(), String> {
    for id in identifiers(text) {
        let bare = id.trim_end_matches("()").trim_start_matches('@');
        let call_free = bare.split('(').next().unwrap_or(bare).trim();
        if !known.contains(call_free) {
            return Err(id);
        }
    }
    Ok(())
}

/// Every name and qualified name in the graph, and every run of their segments (`loads`, `json.loads`,
/// `decoder.JSONDecoder`).
pub fn known_names<'a>(names: impl Iterator<Item = &'a str>) -> HashSet<String> {
    let mut out = HashSet::new();
    for name in names {
        let parts: Vec<&str> = name.split(['.', ':']).filter(|p| !p.is_empty()).collect();
        // Every contiguous run of segments: `json.decoder.JSONDecoder.decode` also names `decoder.JSONDecoder`.
        for i in 0..parts.len() {
            for j in i + 1..=parts.len() {
                out.insert(parts[i..j].join("."));
                out.insert(parts[i..j].join("::"));
            }
        }
        out.insert(name.to_string());
    }
    out
}

/// What refinement did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RefineStats {
    /// Summaries replaced by the rewrite.
    pub accepted: u64,
    /// Rewrites rejected (unknown identifier, secret, over budget, empty).
    pub rejected: u64,
    /// Requests that failed.
    pub failed: u64,
}

fn prompt(node: &BrainNode, max_tokens: usize) -> serde_json::Value {
    let facts: Vec<String> = node
        .meta
        .get("sentences")
        .and_then(|s| s.as_array())
        .map(|s| {
            s.iter()
                .filter_map(|x| x["text"].as_str())
                .map(|t| format!("- {t}"))
                .collect()
        })
        .unwrap_or_default();
    json!([
        {"role": "system", "content": format!(
            "You rewrite summaries of source code for developers. Use only the facts given; add nothing. \
             Mention identifiers exactly as written in the facts, in backticks. At most {} words. Reply with the summary only.",
            max_tokens * 2 / 3)},
        {"role": "user", "content": format!("Facts about the {} `{}`:\n{}", node.ty.as_str(), node.name, facts.join("\n"))},
    ])
}

/// Rewrites summaries through `cfg.endpoint`; a rejected or failed rewrite leaves the node as it was.
pub async fn refine(
    nodes: &mut [BrainNode],
    known: &HashSet<String>,
    cfg: &LlmConfig,
    summary: &SummaryConfig,
    scanner: &Scanner,
    sink: &dyn Sink,
    cancel: &Cancel,
) -> Result<RefineStats, BrainError> {
    let endpoint = cfg.endpoint.trim_end_matches('/').to_string();
    let url = if endpoint.ends_with("/chat/completions") {
        endpoint.clone()
    } else if endpoint.ends_with("/v1") {
        format!("{endpoint}/chat/completions")
    } else {
        format!("{endpoint}/v1/chat/completions")
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| BrainError::Llm {
            endpoint: endpoint.clone(),
            message: e.to_string(),
        })?;
    let mut stats = RefineStats::default();
    let total = nodes.len() as u64;
    for (done, node) in nodes.iter_mut().enumerate() {
        if cancel.is_cancelled() {
            return Err(BrainError::Cancelled);
        }
        let body = json!({
            "model": cfg.model, "messages": prompt(node, summary.max_tokens),
            "temperature": 0.0, "max_tokens": summary.max_tokens * 2,
        });
        let reply = client
            .post(&url)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap_or_default())
            .send()
            .await;
        let text = match reply {
            Ok(r) if r.status().is_success() => r
                .bytes()
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b.as_ref()).ok()),
            Ok(r) => {
                if done == 0 {
                    return Err(BrainError::Llm {
                        endpoint,
                        message: format!("HTTP {}", r.status()),
                    });
                }
                None
            }
            Err(e) => {
                if done == 0 {
                    return Err(BrainError::Llm {
                        endpoint,
                        message: e.to_string(),
                    });
                }
                None
            }
        };
        let Some(content) = text
            .as_ref()
            .and_then(|v| v["choices"][0]["message"]["content"].as_str())
        else {
            stats.failed += 1;
            continue;
        };
        let content = super::text::clip(content, 4000);
        let ok = !content.is_empty()
            && estimate_tokens(&content) <= summary.max_tokens
            && scanner.scan(&content, "").is_empty()
            && grounded(&content, known).is_ok();
        if ok {
            let old = std::mem::replace(&mut node.summary, content);
            node.meta.insert("deterministic_summary".into(), old.into());
            node.meta.insert("refined".into(), true.into());
            stats.accepted += 1;
        } else {
            stats.rejected += 1;
        }
        sink.event(ProgressEvent {
            stage: "refine",
            done: done as u64 + 1,
            total: Some(total),
            message: String::new(),
        });
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_grounding() {
        let known = known_names(["json.loads", "json.decoder.JSONDecoder.decode"].into_iter());
        assert!(
            known.contains("loads")
                && known.contains("decoder.JSONDecoder")
                && known.contains("JSONDecoder")
        );
        assert!(
            grounded(
                "`json.loads` parses a string with `JSONDecoder.decode`.",
                &known
            )
            .is_ok()
        );
        assert_eq!(
            grounded("It calls `json.parse_fast` first.", &known),
            Err("json.parse_fast".into())
        );
        assert_eq!(
            grounded("Uses the FastDecoder class.", &known),
            Err("FastDecoder".into())
        );
        assert_eq!(
            grounded("Falls back to simple_parse.", &known),
            Err("simple_parse".into())
        );
        assert!(grounded("Parses JSON text into Python objects.", &known).is_ok());
    }
}
