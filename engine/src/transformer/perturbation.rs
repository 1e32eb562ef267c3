//! Attention perturbations of one forward pass (`guidance/perturbations.py`, batch of one).

/// Which blocks a perturbation applies to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BlockSet {
    #[default]
    None,
    All,
    Blocks(Vec<usize>),
}

impl BlockSet {
    pub fn contains(&self, block: usize) -> bool {
        match self {
            Self::None => false,
            Self::All => true,
            Self::Blocks(b) => b.contains(&block),
        }
    }
}

/// STG = video/audio self-attention value pass-through at `stg_blocks`; modality guidance = skip
/// the A2V and V2A residuals in all blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Perturbations {
    pub skip_video_self_attn: BlockSet,
    pub skip_audio_self_attn: BlockSet,
    pub skip_a2v_cross_attn: BlockSet,
    pub skip_v2a_cross_attn: BlockSet,
}

impl Perturbations {
    pub fn none() -> Self {
        Self::default()
    }

    /// The STG pass: `SKIP_VIDEO_SELF_ATTN` / `SKIP_AUDIO_SELF_ATTN` at the given blocks.
    pub fn stg(video_blocks: Option<&[usize]>, audio_blocks: Option<&[usize]>) -> Self {
        let set = |b: Option<&[usize]>| b.map_or(BlockSet::None, |b| BlockSet::Blocks(b.to_vec()));
        Self { skip_video_self_attn: set(video_blocks), skip_audio_self_attn: set(audio_blocks), ..Self::default() }
    }

    /// The isolated-modality pass: no A2V / V2A cross-attention anywhere.
    pub fn av_skip() -> Self {
        Self { skip_a2v_cross_attn: BlockSet::All, skip_v2a_cross_attn: BlockSet::All, ..Self::default() }
    }
}
