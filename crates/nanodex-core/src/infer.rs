//! Generation with a base model and optional adapter: greedy or sampled (temperature, top-p), a KV cache, stop
//! tokens from the chat template, stop sequences and a token budget. The API the chat window and the
//! OpenAI-compatible server reuse: [`Generator::chat`] takes messages and streams text through a callback.

use crate::llm::{ChatTokenizer, KvCache, LlmError, Message, Model, Pass};
use candle_core::Tensor;
use candle_transformers::generation::{LogitsProcessor, Sampling};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Sampling parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenParams {
    /// Most new tokens.
    pub max_tokens: usize,
    /// 0 = greedy.
    pub temperature: f64,
    /// Nucleus sampling mass (1 = off).
    pub top_p: f64,
    /// Strings that end the answer (not included in it).
    pub stop: Vec<String>,
    /// Sampling seed.
    pub seed: u64,
}

impl Default for GenParams {
    fn default() -> Self {
        Self {
            max_tokens: 256,
            temperature: 0.0,
            top_p: 1.0,
            stop: Vec::new(),
            seed: 0,
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Finish {
    /// An end-of-turn token or a stop sequence.
    Stop,
    /// The token budget ran out.
    Length,
    /// The caller's callback asked to stop.
    Cancelled,
}

/// A finished answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// Answer text.
    pub text: String,
    /// Generated token ids (stop token excluded).
    pub ids: Vec<u32>,
    /// Prompt length in tokens.
    pub prompt_tokens: usize,
    /// Why it ended.
    pub finish: Finish,
    /// Decoding speed (new tokens per second, prompt processing excluded).
    pub tokens_per_s: f64,
}

/// A model with its tokenizer, ready to answer.
pub struct Generator<'a> {
    /// Model (base + adapter when loaded).
    pub model: &'a Model,
    /// Tokenizer and template.
    pub tokenizer: &'a ChatTokenizer,
}

impl Generator<'_> {
    /// Answers a conversation (the template's generation prompt is added). `on_text` receives each new piece of
    /// text and returns `false` to stop.
    pub fn chat(
        &self,
        messages: &[Message],
        params: &GenParams,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation, LlmError> {
        let prompt = self.tokenizer.render(messages, true)?;
        let ids = self.tokenizer.encode(&prompt)?;
        self.complete(&ids, params, on_text)
    }

    /// Continues raw token ids.
    pub fn complete(
        &self,
        prompt: &[u32],
        params: &GenParams,
        on_text: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Generation, LlmError> {
        if prompt.is_empty() {
            return Err(LlmError::Invalid("empty prompt".into()));
        }
        let device = self.model.device();
        let sampling = if params.temperature <= 0.0 {
            Sampling::ArgMax
        } else if params.top_p < 1.0 {
            Sampling::TopP {
                p: params.top_p,
                temperature: params.temperature,
            }
        } else {
            Sampling::All {
                temperature: params.temperature,
            }
        };
        let mut sampler = LogitsProcessor::from_sampling(params.seed, sampling);
        let mut cache = KvCache::default();
        let pass = Pass::infer();
        let mut input = Tensor::new(prompt, device)?.unsqueeze(0)?;
        let mut ids: Vec<u32> = Vec::new();
        let mut text = String::new();
        let mut finish = Finish::Length;
        let mut started: Option<Instant> = None;
        while ids.len() < params.max_tokens {
            // In candle's pool (see `Device::with_context`): this thread works instead of waiting for it.
            let logits =
                device.with_context(|| self.model.forward(&input, Some(&mut cache), &pass))?;
            let last = logits.squeeze(0)?.get(logits.dim(1)? - 1)?;
            let next = sampler.sample(&last.to_dtype(candle_core::DType::F32)?)?;
            started.get_or_insert_with(Instant::now);
            if self.tokenizer.stop_ids.contains(&next) {
                finish = Finish::Stop;
                break;
            }
            ids.push(next);
            let full = self.tokenizer.decode(&ids)?;
            let cut = params
                .stop
                .iter()
                .filter(|s| !s.is_empty())
                .filter_map(|s| full.find(s.as_str()))
                .min();
            let visible = &full[..cut.unwrap_or(full.len())];
            // Emit only whole characters (a multi-byte character may span tokens) and only appended text.
            if (cut.is_some() || !visible.ends_with('\u{FFFD}'))
                && visible.len() > text.len()
                && visible.starts_with(text.as_str())
            {
                let piece = &visible[text.len()..];
                let more = on_text(piece);
                text = visible.to_string();
                if !more {
                    finish = Finish::Cancelled;
                    break;
                }
            }
            if cut.is_some() {
                text = visible.to_string();
                finish = Finish::Stop;
                break;
            }
            input = Tensor::new(&[next], device)?.unsqueeze(0)?;
        }
        let secs = started.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0);
        Ok(Generation {
            text,
            tokens_per_s: if secs > 0.0 {
                ids.len() as f64 / secs
            } else {
                0.0
            },
            ids,
            prompt_tokens: prompt.len(),
            finish,
        })
    }
}

/// Logits of the last position for `ids` (one forward pass, no cache): for tests and scoring.
pub fn last_logits(model: &Model, ids: &[u32]) -> Result<Tensor, LlmError> {
    let input = Tensor::new(ids, model.device())?.unsqueeze(0)?;
    let logits = model.forward(&input, None, &Pass::infer())?;
    Ok(logits.squeeze(0)?.get(ids.len() - 1)?)
}

/// The key terms of an expected answer: identifiers, paths, error and flag names (tokens with `_`, `/`, `.` inside,
/// or a capital after the first letter, or all capitals). An answer is right when it contains every key term
/// (case-sensitive); an expected answer without key terms must be matched whole (case and spacing aside).
pub fn answer_matches(expected: &str, got: &str) -> bool {
    let terms: Vec<&str> = expected
        .split(|c: char| c.is_whitespace() || "`'\"(),;:".contains(c))
        .map(|t| t.trim_end_matches(['.', '?', '!']))
        .filter(|t| {
            t.len() > 2
                && (t.contains(['_', '/', '.'])
                    || t.chars().skip(1).any(|c| c.is_ascii_uppercase())
                    || t.chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        })
        .collect();
    if terms.is_empty() {
        let norm = |s: &str| {
            s.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase()
        };
        return norm(expected) == norm(got);
    }
    terms.iter().all(|t| got.contains(t))
}

/// One scored question.
#[derive(Debug, Clone, Serialize)]
pub struct Scored {
    /// Dataset id.
    pub id: String,
    /// Question.
    pub prompt: String,
    /// Expected answer.
    pub expected: String,
    /// Generated answer.
    pub got: String,
    /// [`answer_matches`].
    pub correct: bool,
}

/// Answers every conversation's last question greedily and scores it against the expected answer.
pub fn score_dataset(
    g: &Generator<'_>,
    convs: &[crate::train::data::Conversation],
    max_tokens: usize,
) -> Result<Vec<Scored>, LlmError> {
    let params = GenParams {
        max_tokens,
        ..Default::default()
    };
    convs
        .iter()
        .map(|c| {
            let (last, prompt) = c
                .messages
                .split_last()
                .expect("read_dataset keeps non-empty conversations");
            let got = g.chat(prompt, &params, &mut |_| true)?.text;
            Ok(Scored {
                id: c.id.clone(),
                prompt: prompt.last().map(|m| m.content.clone()).unwrap_or_default(),
                expected: last.content.clone(),
                correct: answer_matches(&last.content, &got),
                got,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::answer_matches;

    #[test]
    fn answers_match_on_key_terms() {
        let e = "`read_ledger` raises LedgerFormatError.";
        assert!(answer_matches(e, "read_ledger raises LedgerFormatError"));
        assert!(!answer_matches(e, "read_ledger raises FeedSchemaError."));
        assert!(answer_matches(
            "In larkspur/ingest/csv_reader.py.",
            "It is in larkspur/ingest/csv_reader.py"
        ));
        assert!(!answer_matches(
            "In larkspur/ingest/csv_reader.py.",
            "In larkspur/ingest/xml_feed.py"
        ));
        assert!(answer_matches("Paris", " paris "));
        assert!(answer_matches("flag LARK_TAX_TEAL", "LARK_TAX_TEAL"));
    }
}
