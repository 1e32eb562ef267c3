//! Which model generation a checkpoint is, from its own metadata: `model_version` (ltx-pipelines'
//! `detect_params` reads the same key) and the config switches that generation's code needs. A file whose
//! version and switches disagree, or a version no row of `ltx_protocol::rules::GENERATIONS` knows, is refused
//! here with the reason, never run.

use ltx_protocol::Generation;

use crate::{checkpoint::Checkpoint, transformer::config::TransformerConfig};

#[derive(Debug, thiserror::Error)]
pub enum GenerationError {
    #[error("{file}: model_version {version:?} is a generation this ltx does not run (it runs {known})")]
    Unknown { file: String, version: String, known: String },
    #[error("{file}: {reason}")]
    Inconsistent { file: String, reason: String },
    #[error("{file}: {found} where the model set is {expected}; every file of a set must be one generation")]
    Mixed { file: String, found: &'static str, expected: &'static str },
    #[error(transparent)]
    Config(#[from] crate::transformer::TransformerError),
    #[error(transparent)]
    Load(#[from] crate::checkpoint::LoadError),
}

/// The LTX-2.3 switches of `config.transformer` that are on.
fn switches(c: &TransformerConfig) -> Vec<&'static str> {
    [
        (c.gated_attention(), "apply_gated_attention"),
        (c.cross_adaln(), "cross_attention_adaln"),
        (c.caption_projection_in_text_encoder(), "caption_proj_before_connector"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

/// The generation of an LTX checkpoint holding a transformer.
pub fn detect(ck: &Checkpoint) -> Result<Generation, GenerationError> {
    let file = ck.path().display().to_string();
    let version = ck.metadata().get("model_version").map(String::as_str);
    let by_version = Generation::from_model_version(version).map_err(|version| GenerationError::Unknown {
        file: file.clone(),
        version,
        known: Generation::ALL.map(|g| g.rules().name).join(", "),
    })?;
    let config = ck.config()?;
    let on = switches(&TransformerConfig::from_ltx(&config)?);
    let by_config = match on.len() {
        0 => Generation::Ltx2,
        3 => Generation::Ltx23,
        _ => {
            return Err(GenerationError::Inconsistent {
                file,
                reason: format!("only some LTX-2.3 switches are on ({}): a damaged or mixed config", on.join(", ")),
            })
        }
    };
    // The vocoder in the same file must be the transformer's generation's: BigVGAN + bandwidth extension on
    // LTX-2.3, HiFi-GAN on LTX-2 (a 2.3 transformer beside LTX-2's decoders is a mixed set).
    let bwe = config.raw("vocoder").is_some_and(|v| v.get("bwe").is_some());
    if config.raw("vocoder").is_some() && bwe != (by_config == Generation::Ltx23) {
        return Err(GenerationError::Inconsistent {
            file,
            reason: format!(
                "its transformer is {}'s but its vocoder is {}'s: a mixed set",
                by_config.rules().name,
                if bwe { Generation::Ltx23.rules().name } else { Generation::Ltx2.rules().name }
            ),
        });
    }
    match (version, by_version == by_config) {
        (_, true) => Ok(by_config),
        // A converted file without a version: its config says which.
        (None, false) => Ok(by_config),
        (Some(v), false) => Err(GenerationError::Inconsistent {
            file,
            reason: format!(
                "model_version {v:?} says {} but its config is {}'s",
                by_version.rules().name,
                by_config.rules().name
            ),
        }),
    }
}

/// Refuses a file of another generation than the set's.
pub fn require(ck: &Checkpoint, expected: Generation) -> Result<(), GenerationError> {
    let found = detect(ck)?;
    if found == expected {
        return Ok(());
    }
    Err(GenerationError::Mixed {
        file: ck.path().display().to_string(),
        found: found.rules().name,
        expected: expected.rules().name,
    })
}
