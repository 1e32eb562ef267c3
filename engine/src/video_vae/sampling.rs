//! Resampling blocks (`sampling.py`): `SpaceToDepthDownsample` (encoder) and `DepthToSpaceUpsample`
//! (decoder), channels-last. A temporal stride of 2 duplicates frame 0 before downsampling and drops
//! the first frame after upsampling, so F frames map to (F-1)/2+1 and back to 2F-1.
use mlx_rs::{macros::ModuleParameters, ops, Array};

use super::{
    convolution::{CausalConv3d, Padding},
    ops::slice_axis,
    Result, VaeError,
};

/// "b (c p1 p2 p3) d h w -> b c (d p1) (h p2) (w p3)" on (B, D, H, W, C·p1·p2·p3).
pub fn depth_to_space(x: &Array, [p1, p2, p3]: [i32; 3]) -> Result<Array> {
    let [b, d, h, w, cp] = super::dims(x, "the video")?;
    let c = cp / (p1 * p2 * p3);
    let x = x.reshape(&[b, d, h, w, c, p1, p2, p3])?.transpose_axes(&[0, 1, 5, 2, 6, 3, 7, 4])?;
    Ok(x.reshape(&[b, d * p1, h * p2, w * p3, c])?)
}

/// "b c (d p1) (h p2) (w p3) -> b (c p1 p2 p3) d h w" on (B, D·p1, H·p2, W·p3, C).
pub fn space_to_depth(x: &Array, [p1, p2, p3]: [i32; 3]) -> Result<Array> {
    let [b, dp, hp, wp, c] = super::dims(x, "the video")?;
    let (d, h, w) = (dp / p1, hp / p2, wp / p3);
    let x = x.reshape(&[b, d, p1, h, p2, w, p3, c])?.transpose_axes(&[0, 1, 3, 5, 7, 2, 4, 6])?;
    Ok(x.reshape(&[b, d, h, w, c * p1 * p2 * p3])?)
}

/// Encoder `compress_*_res`: conv to out/∏stride channels then space-to-depth, plus the space-to-depth
/// input averaged over channel groups.
#[derive(Debug, Clone, ModuleParameters)]
pub struct SpaceToDepthDownsample {
    #[param]
    pub conv: CausalConv3d,
    pub stride: [i32; 3],
    pub group_size: i32,
}

impl SpaceToDepthDownsample {
    pub fn new(inputs: i32, outputs: i32, stride: [i32; 3], padding: Padding) -> Result<Self> {
        let prod: i32 = stride.iter().product();
        if outputs < prod || outputs % prod != 0 || (inputs * prod) % outputs != 0 {
            return Err(VaeError::Unsupported(format!(
                "downsample of {inputs} to {outputs} channels, stride {stride:?}"
            )));
        }
        Ok(Self {
            conv: CausalConv3d::new(inputs, outputs / prod, padding)?,
            stride,
            group_size: inputs * prod / outputs,
        })
    }

    pub fn forward(&self, x: &Array, causal: bool) -> Result<Array> {
        let x = match self.stride[0] {
            2 => ops::concatenate(&[&slice_axis(x, 1, 0, 1)?, x], 1)?,
            _ => x.clone(),
        };
        let skip = space_to_depth(&x, self.stride)?;
        let shape = skip.shape().to_vec();
        let mut grouped = shape.clone();
        grouped[4] /= self.group_size;
        grouped.push(self.group_size);
        let skip = skip.reshape(&grouped)?.mean_axis(-1, false)?;
        let h = space_to_depth(&self.conv.forward(&x, causal)?, self.stride)?;
        Ok(h.add(&skip)?)
    }
}

/// Decoder `compress_*`: conv to ∏stride·C/reduction channels then depth-to-space; with `residual`,
/// plus the depth-to-space input repeated along channels.
#[derive(Debug, Clone, ModuleParameters)]
pub struct DepthToSpaceUpsample {
    #[param]
    pub conv: CausalConv3d,
    pub stride: [i32; 3],
    pub residual: bool,
    pub reduction: i32,
}

impl DepthToSpaceUpsample {
    pub fn new(inputs: i32, stride: [i32; 3], residual: bool, reduction: i32, padding: Padding) -> Result<Self> {
        let prod: i32 = stride.iter().product();
        if reduction < 1 || inputs % reduction != 0 || (residual && prod % reduction != 0) {
            return Err(VaeError::Unsupported(format!(
                "upsample of {inputs} channels by {reduction}, stride {stride:?}"
            )));
        }
        Ok(Self { conv: CausalConv3d::new(inputs, prod * inputs / reduction, padding)?, stride, residual, reduction })
    }

    pub fn forward(&self, x: &Array, causal: bool) -> Result<Array> {
        let drop_first = |v: Array| -> Result<Array> {
            let frames = v.shape()[1];
            match self.stride[0] {
                2 => slice_axis(&v, 1, 1, frames),
                _ => Ok(v),
            }
        };
        let h = drop_first(depth_to_space(&self.conv.forward(x, causal)?, self.stride)?)?;
        if !self.residual {
            return Ok(h);
        }
        let repeats = self.stride.iter().product::<i32>() / self.reduction;
        let skip = ops::tile(depth_to_space(x, self.stride)?, &[1, 1, 1, 1, repeats])?;
        Ok(h.add(drop_first(skip)?)?)
    }
}
