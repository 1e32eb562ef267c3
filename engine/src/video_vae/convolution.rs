//! Convolutions (`convolution.py`): a plain N-d convolution holding PyTorch's `weight`/`bias` (moved to
//! MLX's channels-last layout by the loader) and `CausalConv3d`, which pads time with copies of the
//! first (and, non-causally, last) frame and space with zeros or reflection.
use mlx_rs::{macros::ModuleParameters, module::Param, ops, Array};

use super::{ops::slice_axis, Result, VaeError};

/// Stride-1 convolution: weight (O, k…, I), optional bias (O).
#[derive(Debug, Clone, ModuleParameters)]
pub struct Conv {
    #[param]
    pub weight: Param<Array>,
    #[param]
    pub bias: Param<Option<Array>>,
}

impl Conv {
    /// Placeholder of the right shape (lazy zeros) for the loader to fill.
    pub fn new(inputs: i32, outputs: i32, kernel: &[i32], bias: bool) -> Result<Self> {
        let shape: Vec<i32> = [outputs].into_iter().chain(kernel.iter().copied()).chain([inputs]).collect();
        Ok(Self {
            weight: Param::new(Array::zeros::<f32>(&shape)?),
            bias: Param::new(if bias { Some(Array::zeros::<f32>(&[outputs])?) } else { None }),
        })
    }

    /// Convolution with symmetric zero `padding` and `dilation` per spatial axis.
    pub fn forward_with(&self, x: &Array, padding: &[i32], dilation: &[i32]) -> Result<Array> {
        let ones = vec![1; padding.len()];
        let y = ops::conv_general(x, &*self.weight, &ones[..], padding, dilation, None, None, None)?;
        Ok(match &*self.bias {
            Some(b) => y.add(b)?,
            None => y,
        })
    }

    /// Unpadded, undilated convolution.
    pub fn forward(&self, x: &Array) -> Result<Array> {
        let n = self.weight.ndim() - 2;
        self.forward_with(x, &vec![0; n], &vec![1; n])
    }
}

/// Spatial padding of the video VAE convolutions (`PaddingModeType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    Zeros,
    Reflect,
}

impl Padding {
    pub fn parse(mode: &str) -> Result<Self> {
        match mode {
            "zeros" => Ok(Self::Zeros),
            "reflect" => Ok(Self::Reflect),
            other => Err(VaeError::Unsupported(format!("spatial_padding_mode `{other}`"))),
        }
    }
}

/// Reflection padding by one element on both ends of `axis` (`torch` "reflect": x[1], x…, x[-2]).
pub fn reflect_pad1(x: &Array, axis: i32) -> Result<Array> {
    let n = x.shape()[axis as usize];
    let (first, last) = (slice_axis(x, axis, 1, 2)?, slice_axis(x, axis, n - 2, n - 1)?);
    Ok(ops::concatenate(&[&first, x, &last], axis)?)
}

/// `CausalConv3d` (kernel 3, stride 1) on (B, F, H, W, C); key `conv.{weight,bias}`.
#[derive(Debug, Clone, ModuleParameters)]
pub struct CausalConv3d {
    #[param]
    pub conv: Conv,
    pub padding: Padding,
}

impl CausalConv3d {
    pub fn new(inputs: i32, outputs: i32, padding: Padding) -> Result<Self> {
        Ok(Self { conv: Conv::new(inputs, outputs, &[3, 3, 3], true)?, padding })
    }

    pub fn forward(&self, x: &Array, causal: bool) -> Result<Array> {
        let frames = x.shape()[1];
        let first = slice_axis(x, 1, 0, 1)?;
        let x = if causal {
            ops::concatenate(&[&first, &first, x], 1)?
        } else {
            ops::concatenate(&[&first, x, &slice_axis(x, 1, frames - 1, frames)?], 1)?
        };
        match self.padding {
            Padding::Zeros => self.conv.forward_with(&x, &[0, 1, 1], &[1, 1, 1]),
            Padding::Reflect => self.conv.forward(&reflect_pad1(&reflect_pad1(&x, 2)?, 3)?),
        }
    }
}
