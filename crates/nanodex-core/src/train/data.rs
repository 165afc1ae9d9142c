//! Training data: chat JSONL (the dataset stage's `{id, prompt, response, refs}` or the common
//! `{"messages": [...]}`) → token ids with a loss mask over assistant tokens only, a seeded held-out split, and
//! length-bucketed micro-batches in a deterministic order (a function of seed and position, so a resumed run sees
//! exactly the batches an uninterrupted one would).

use crate::llm::{ChatTokenizer, LlmError, Message, io_err};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use std::path::Path;

/// One conversation from the dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    /// Dataset id (or `line-N`).
    pub id: String,
    /// Turns; at least one assistant turn, the last turn is the assistant's.
    pub messages: Vec<Message>,
}

/// Reads a JSONL dataset. Any malformed line is an error naming its line number (no partial runs).
pub fn read_dataset(path: &Path) -> Result<Vec<Conversation>, LlmError> {
    parse_dataset(path, std::fs::read(path).map_err(io_err(path))?)
}

/// Parses the bytes of a JSONL dataset read from `path` (named in errors).
pub fn parse_dataset(path: &Path, bytes: Vec<u8>) -> Result<Vec<Conversation>, LlmError> {
    let text = String::from_utf8(bytes).map_err(|e| LlmError::Dataset {
        path: path.to_path_buf(),
        line: 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count(),
        message: "invalid UTF-8".into(),
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let err = |message: String| LlmError::Dataset {
            path: path.to_path_buf(),
            line: n,
            message,
        };
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| err(format!("not JSON: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| err("expected a JSON object".into()))?;
        let id = obj
            .get("id")
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .unwrap_or_else(|| format!("line-{n}"));
        let messages = if let Some(msgs) = obj.get("messages") {
            let msgs = msgs
                .as_array()
                .ok_or_else(|| err("`messages` must be an array".into()))?;
            let mut out = Vec::with_capacity(msgs.len());
            for (j, m) in msgs.iter().enumerate() {
                let role = m.get("role").and_then(|r| r.as_str());
                let content = m.get("content").and_then(|c| c.as_str());
                match (role, content) {
                    (Some(r @ ("system" | "user" | "assistant")), Some(c)) => {
                        out.push(Message::new(r, c))
                    }
                    (Some(r), Some(_)) => {
                        return Err(err(format!(
                            "messages[{j}].role `{r}`: expected system, user or assistant"
                        )));
                    }
                    _ => {
                        return Err(err(format!(
                            "messages[{j}]: needs string `role` and `content`"
                        )));
                    }
                }
            }
            out
        } else {
            let field = |k: &str| {
                obj.get(k)
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| err(format!("missing string `{k}` (or give `messages`)")))
            };
            vec![
                Message::new("user", field("prompt")?),
                Message::new("assistant", field("response")?),
            ]
        };
        if messages.last().map(|m| m.role.as_str()) != Some("assistant") {
            return Err(err("the last message must be the assistant's answer".into()));
        }
        if messages
            .iter()
            .any(|m| m.role == "assistant" && m.content.trim().is_empty())
        {
            return Err(err("an assistant message is empty".into()));
        }
        out.push(Conversation { id, messages });
    }
    if out.is_empty() {
        return Err(LlmError::Dataset {
            path: path.to_path_buf(),
            line: 0,
            message: "the dataset has no examples".into(),
        });
    }
    Ok(out)
}

/// A tokenized example: ids and, per id, whether predicting it is trained.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// Token ids of the whole rendered conversation.
    pub ids: Vec<u32>,
    /// `trained[i]`: token `i` is part of an assistant answer (its end-of-turn token included).
    pub trained: Vec<bool>,
}

impl Example {
    /// Tokens whose prediction counts in the loss.
    pub fn trained_tokens(&self) -> usize {
        self.trained.iter().skip(1).filter(|t| **t).count()
    }
}

/// Renders with the model's template and marks assistant spans. Returns `None` when truncation to `max_len`
/// leaves no trained token.
pub fn tokenize(
    conv: &Conversation,
    tok: &ChatTokenizer,
    max_len: usize,
) -> Result<Option<Example>, LlmError> {
    let full = tok.render(&conv.messages, false)?;
    let mut spans = Vec::new();
    for (k, m) in conv.messages.iter().enumerate() {
        if m.role != "assistant" {
            continue;
        }
        let start = tok.render(&conv.messages[..k], true)?.len();
        let through = tok.render(&conv.messages[..=k], false)?;
        let end = through.len();
        if !full.starts_with(&through) || start > end {
            return Err(LlmError::Invalid(format!(
                "{}: the chat template does not render conversations prefix by prefix; cannot mask prompts",
                conv.id
            )));
        }
        spans.push((start, end));
    }
    let (mut ids, offsets) = tok.encode_with_offsets(&full)?;
    let mut trained: Vec<bool> = offsets
        .iter()
        .map(|(s, _)| spans.iter().any(|(a, b)| s >= a && s < b))
        .collect();
    // The end-of-turn token may be preceded by trimmed whitespace in some templates: keep it trained.
    for i in 1..ids.len() {
        if tok.stop_ids.contains(&ids[i]) && trained[i - 1] {
            trained[i] = true;
        }
    }
    ids.truncate(max_len);
    trained.truncate(max_len);
    let ex = Example { ids, trained };
    Ok((ex.trained_tokens() > 0).then_some(ex))
}

/// Splits indices `0..n` into (train, eval) with a seeded shuffle; at least one eval example when `share > 0`
/// and `n >= 2`.
pub fn split(n: usize, share: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut StdRng::seed_from_u64(seed ^ 0x5eed_e7a1));
    let n_eval = if share > 0.0 && n >= 2 {
        ((n as f64 * share).round() as usize).clamp(1, n - 1)
    } else {
        0
    };
    let eval = idx.split_off(n - n_eval);
    (idx, eval)
}

/// Micro-batches of one epoch: a seeded shuffle, then within windows of 32 micro-batches examples are sorted by
/// length (length bucketing: little padding, still random across windows).
pub fn epoch_batches(
    lengths: &[usize],
    train: &[usize],
    micro: usize,
    seed: u64,
    epoch: usize,
) -> Vec<Vec<usize>> {
    let mut order = train.to_vec();
    order.shuffle(&mut StdRng::seed_from_u64(
        seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64),
    ));
    let window = micro * 32;
    let mut batches = Vec::new();
    for chunk in order.chunks(window) {
        let mut chunk = chunk.to_vec();
        chunk.sort_by_key(|&i| (lengths[i], i));
        for b in chunk.chunks(micro) {
            batches.push(b.to_vec());
        }
    }
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(epoch as u64).wrapping_mul(31));
    batches.shuffle(&mut rng);
    batches
}
