//! `ResnetBlock3D` and `UNetMidBlock3D` (`resnet.py`) with PixelNorm and optional timestep conditioning.
use mlx_rs::{macros::ModuleParameters, module::Param, nn, Array};

use super::{
    convolution::{CausalConv3d, Padding},
    ops::{modulate, pixel_norm, TimestepEmbedder},
    Result,
};

/// PixelNorm eps of the video VAE (ltx-core `PixelNorm()` default).
const PIXEL_NORM_EPS: f32 = 1e-8;

/// norm1 -> (AdaLN) -> SiLU -> conv1 -> norm2 -> (AdaLN) -> SiLU -> conv2, plus the input.
#[derive(Debug, Clone, ModuleParameters)]
pub struct ResnetBlock3D {
    #[param]
    pub conv1: CausalConv3d,
    #[param]
    pub conv2: CausalConv3d,
    /// (4, C): shift1, scale1, shift2, scale2 (timestep-conditioned blocks only).
    #[param]
    pub scale_shift_table: Param<Option<Array>>,
}

impl ResnetBlock3D {
    pub fn new(channels: i32, padding: Padding, timestep_conditioning: bool) -> Result<Self> {
        Ok(Self {
            conv1: CausalConv3d::new(channels, channels, padding)?,
            conv2: CausalConv3d::new(channels, channels, padding)?,
            scale_shift_table: Param::new(match timestep_conditioning {
                true => Some(Array::zeros::<f32>(&[4, channels])?),
                false => None,
            }),
        })
    }

    /// `timestep`: the group's embedded timestep (B, 4·C), required when conditioned.
    pub fn forward(&self, input: &Array, causal: bool, timestep: Option<&Array>) -> Result<Array> {
        let ada = match (&*self.scale_shift_table, timestep) {
            (Some(table), Some(t)) => Some(table.add(t.reshape(&[-1, 4, table.shape()[1]])?)?),
            _ => None,
        };
        let modulate = |h: Array, shift_row: i32| match &ada {
            Some(ada) => modulate(&h, ada, shift_row, shift_row + 1),
            None => Ok(h),
        };
        let h = modulate(pixel_norm(input, PIXEL_NORM_EPS)?, 0)?;
        let h = self.conv1.forward(&nn::silu(&h)?, causal)?;
        let h = modulate(pixel_norm(&h, PIXEL_NORM_EPS)?, 2)?;
        let h = self.conv2.forward(&nn::silu(&h)?, causal)?;
        Ok(input.add(&h)?)
    }
}

/// `res_x`: `num_layers` resnet blocks sharing one timestep embedder (`time_embedder`, 4·C wide).
#[derive(Debug, Clone, ModuleParameters)]
pub struct UNetMidBlock3D {
    #[param]
    pub res_blocks: Vec<ResnetBlock3D>,
    #[param]
    pub time_embedder: Option<TimestepEmbedder>,
}

impl UNetMidBlock3D {
    pub fn new(channels: i32, layers: usize, padding: Padding, timestep_conditioning: bool) -> Result<Self> {
        Ok(Self {
            res_blocks: (0..layers)
                .map(|_| ResnetBlock3D::new(channels, padding, timestep_conditioning))
                .collect::<Result<_>>()?,
            time_embedder: timestep_conditioning.then(|| TimestepEmbedder::new(4 * channels)).transpose()?,
        })
    }

    /// `timestep`: the scaled timestep (B,), required when conditioned.
    pub fn forward(&self, x: &Array, causal: bool, timestep: Option<&Array>) -> Result<Array> {
        let embedded = match (&self.time_embedder, timestep) {
            (Some(embedder), Some(t)) => Some(embedder.forward(t, x.dtype())?),
            _ => None,
        };
        self.res_blocks.iter().try_fold(x.clone(), |h, block| block.forward(&h, causal, embedded.as_ref()))
    }
}
