//! Video VAE (`ltx_core/model/video_vae`): the causal encoder (pixels -> normalised latent means), the
//! timestep-conditioned decoder (latent -> RGB in [-1, 1]) and tiled decoding with the reference's
//! blend masks. Everything runs channels-last: videos are (B, F, H, W, C); latents cross the public
//! API in ltx-core's (B, C, F, H, W) layout.
pub mod convolution;
pub mod decoder;
pub mod encoder;
pub mod ops;
pub mod resnet;
pub mod sampling;
pub mod tiling;

pub use decoder::{DecodeOptions, VideoDecoder};
pub use encoder::VideoEncoder;
pub use tiling::TilingConfig;

use crate::{checkpoint::LoadError, config::ConfigError};

/// Errors of the decoders (video VAE, upscaler, audio VAE, vocoder).
#[derive(Debug, thiserror::Error)]
pub enum VaeError {
    #[error(transparent)]
    Mlx(#[from] mlx_rs::error::Exception),
    #[error(transparent)]
    Load(Box<LoadError>),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Shared(#[from] crate::transformer::TransformerError),
    #[error("unsupported configuration: {0}")]
    Unsupported(String),
    #[error("invalid input: {0}")]
    Input(String),
}

pub type Result<T> = std::result::Result<T, VaeError>;

/// The dimensions of an `N`-D array, or an input error naming `what` (a checkpoint's weights decide the
/// ranks of what flows between layers: a mismatch is an error, never a panic).
pub fn dims<const N: usize>(x: &mlx_rs::Array, what: &str) -> Result<[i32; N]> {
    <[i32; N]>::try_from(x.shape()).map_err(|_| VaeError::Input(format!("{what} must be {N}-D, got {:?}", x.shape())))
}

impl From<LoadError> for VaeError {
    fn from(e: LoadError) -> Self {
        Self::Load(Box::new(e))
    }
}

/// Implements `ModuleParameters` for an enum whose variants each hold one module, so that a list of
/// heterogeneous blocks (`up_blocks.0` a res group, `up_blocks.1` an upsampler) names its children as
/// the checkpoint does.
macro_rules! module_enum {
    ($name:ident { $($variant:ident),+ $(,)? }) => {
        impl mlx_rs::module::ModuleParameters for $name {
            fn num_parameters(&self) -> usize {
                match self { $(Self::$variant(m) => m.num_parameters()),+ }
            }
            fn parameters(&self) -> mlx_rs::module::ModuleParamRef<'_> {
                match self { $(Self::$variant(m) => m.parameters()),+ }
            }
            fn parameters_mut(&mut self) -> mlx_rs::module::ModuleParamMut<'_> {
                match self { $(Self::$variant(m) => m.parameters_mut()),+ }
            }
            fn trainable_parameters(&self) -> mlx_rs::module::ModuleParamRef<'_> {
                match self { $(Self::$variant(m) => m.trainable_parameters()),+ }
            }
            fn freeze_parameters(&mut self, recursive: bool) {
                match self { $(Self::$variant(m) => m.freeze_parameters(recursive)),+ }
            }
            fn unfreeze_parameters(&mut self, recursive: bool) {
                match self { $(Self::$variant(m) => m.unfreeze_parameters(recursive)),+ }
            }
            fn all_frozen(&self) -> Option<bool> {
                match self { $(Self::$variant(m) => m.all_frozen()),+ }
            }
            fn any_frozen(&self) -> Option<bool> {
                match self { $(Self::$variant(m) => m.any_frozen()),+ }
            }
        }
    };
}
pub(crate) use module_enum;
