//! The parts of a model the engine loads, keeps warm and unloads one by one: what `ltxctl ps` lists, what the
//! config's `[component_keep_alive]` table names, what a job reports it used.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// Gemma with the text connectors.
    TextEncoder,
    Transformer,
    /// The spatial ×2 latent upscaler.
    Upscaler,
    VideoDecoder,
    /// The video VAE encoder (first-frame conditioning).
    VideoEncoder,
    AudioDecoder,
    Vocoder,
    /// The distilled LoRA of the two-stage pipeline's stage 2.
    DistilledLora,
    /// The tiny decoder of live previews (TAELTX), where installed. Appended last: the bincode indices of the
    /// parts above stay.
    PreviewDecoder,
}

impl Part {
    pub const ALL: [Part; 9] = [
        Self::TextEncoder,
        Self::Transformer,
        Self::Upscaler,
        Self::VideoDecoder,
        Self::VideoEncoder,
        Self::AudioDecoder,
        Self::Vocoder,
        Self::DistilledLora,
        Self::PreviewDecoder,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::TextEncoder => "text_encoder",
            Self::Transformer => "transformer",
            Self::Upscaler => "upscaler",
            Self::VideoDecoder => "video_decoder",
            Self::VideoEncoder => "video_encoder",
            Self::AudioDecoder => "audio_decoder",
            Self::Vocoder => "vocoder",
            Self::DistilledLora => "distilled_lora",
            Self::PreviewDecoder => "preview_decoder",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_pad() {
        for p in Part::ALL {
            assert_eq!(Part::parse(p.name()), Some(p));
        }
        assert_eq!(format!("{:<8}|", Part::Vocoder), "vocoder |");
        assert_eq!(Part::parse("gemma"), None);
    }
}
