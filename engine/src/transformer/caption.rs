//! Caption projection (`PixArtAlphaTextProjection`, 19B: inside the transformer):
//! Linear(caption_channels -> D), GELU-tanh, Linear(D -> D).

use mlx_rs::{macros::ModuleParameters, Array};

use super::{feed_forward::gelu_tanh, linear::Linear, Result};

#[derive(Debug, Clone, ModuleParameters)]
pub struct CaptionProjection {
    #[param]
    pub linear_1: Linear,
    #[param]
    pub linear_2: Linear,
}

impl CaptionProjection {
    pub fn new(in_features: usize, hidden: usize) -> Result<Self> {
        Ok(Self { linear_1: Linear::new(in_features, hidden, true)?, linear_2: Linear::new(hidden, hidden, true)? })
    }

    pub fn forward(&self, caption: &Array) -> Result<Array> {
        self.linear_2.forward(&gelu_tanh(&self.linear_1.forward(caption)?)?)
    }
}
