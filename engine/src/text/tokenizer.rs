//! Gemma tokenisation as ltx-core's `LTXVGemmaTokenizer` (HF `GemmaTokenizerFast`): the prompt is
//! `.strip()`ped, `<bos>` is prepended (the post-processor `GemmaTokenizerFast` installs), the sequence
//! is truncated on the right to `max_length` and left-padded with `<pad>` to exactly `max_length`.

use std::path::Path;

use tokenizers::{
    processors::template::TemplateProcessing, PaddingDirection, PaddingParams, PaddingStrategy, Tokenizer,
    TruncationDirection, TruncationParams, TruncationStrategy,
};

use super::{Result, TextError};

/// One tokenised prompt, `max_length` long, padding first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub ids: Vec<i32>,
    /// 1 for prompt tokens (incl. `<bos>`), 0 for padding.
    pub mask: Vec<i32>,
    /// The prompt was longer than `max_length` and lost its tail.
    pub truncated: bool,
}

impl Tokens {
    pub fn valid(&self) -> usize {
        self.mask.iter().filter(|&&m| m != 0).count()
    }
}

#[derive(Clone)]
pub struct PromptTokenizer {
    inner: Tokenizer,
    pub max_length: usize,
}

impl PromptTokenizer {
    /// Loads a HF `tokenizer.json` (1024 tokens in production).
    pub fn from_file(path: &Path, max_length: usize) -> Result<Self> {
        if !path.is_file() {
            return Err(TextError::file(path, "tokenizer file not found"));
        }
        let mut inner = Tokenizer::from_file(path).map_err(|e| TextError::file(path, e))?;
        let id = |t: &str| {
            inner.token_to_id(t).ok_or_else(|| TextError::file(path, format!("tokenizer has no `{t}` token")))
        };
        let (bos, pad) = (id("<bos>")?, id("<pad>")?);
        let template = TemplateProcessing::builder()
            .try_single("<bos> $A")
            .and_then(|b| b.special_tokens(vec![("<bos>", bos)]).build().map_err(|e| e.to_string()))
            .map_err(|e| TextError::file(path, e))?;
        inner.with_post_processor(Some(template));
        inner
            .with_truncation(Some(TruncationParams {
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| TextError::file(path, e))?;
        inner.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::Fixed(max_length),
            direction: PaddingDirection::Left,
            pad_to_multiple_of: None,
            pad_id: pad,
            pad_type_id: 0,
            pad_token: "<pad>".into(),
        }));
        Ok(Self { inner, max_length })
    }

    pub fn encode(&self, prompt: &str) -> Result<Tokens> {
        let enc = self
            .inner
            .encode(py_strip(prompt), true)
            .map_err(|e| TextError::Input(format!("tokenizing the prompt: {e}")))?;
        Ok(Tokens {
            ids: enc.get_ids().iter().map(|&i| i as i32).collect(),
            mask: enc.get_attention_mask().iter().map(|&m| m as i32).collect(),
            truncated: !enc.get_overflowing().is_empty(),
        })
    }
}

/// Python's `str.strip()`: Unicode whitespace plus the ASCII separators U+001C..U+001F.
pub fn py_strip(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
}
