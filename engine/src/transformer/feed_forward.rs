//! Feed-forward (`feed_forward.py`): `net = Sequential(GELUApprox(proj), Identity, Linear)`, i.e.
//! keys `ff.net.0.proj.*` and `ff.net.2.*`; GELU with the tanh approximation, 4x expansion.

use std::rc::Rc;

use mlx_rs::{
    macros::ModuleParameters,
    module::{ModuleParamMut, ModuleParamRef, ModuleParameters, Parameter},
    nested::NestedHashMap,
    Array,
};

use super::{linear::Linear, Result};

/// `gelu(x, approximate="tanh")`, in f32 and rounded to the dtype of `x` (one fused kernel on a GPU).
pub fn gelu_tanh(x: &Array) -> Result<Array> {
    super::fused::gelu_tanh(x)
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct GeluProj {
    #[param]
    pub proj: Linear,
}

/// The `Sequential` holding `0` (GELU projection) and `2` (output Linear); `1` is an Identity.
#[derive(Debug, Clone)]
pub struct FeedForwardNet {
    pub gelu: GeluProj,
    pub out: Linear,
}

#[derive(Debug, Clone, ModuleParameters)]
pub struct FeedForward {
    #[param]
    pub net: FeedForwardNet,
}

impl FeedForward {
    pub fn new(dim: usize, dim_out: usize) -> Result<Self> {
        let inner = dim * 4;
        let net = FeedForwardNet {
            gelu: GeluProj { proj: Linear::new(dim, inner, true)? },
            out: Linear::new(inner, dim_out, true)?,
        };
        Ok(Self { net })
    }

    pub fn forward(&self, x: &Array) -> Result<Array> {
        self.net.out.forward(&gelu_tanh(&self.net.gelu.proj.forward(x)?)?)
    }
}

// Sequential indices are not Rust identifiers, so this one container names its children by hand.
impl ModuleParameters for FeedForwardNet {
    fn num_parameters(&self) -> usize {
        self.gelu.num_parameters() + self.out.num_parameters()
    }
    fn parameters(&self) -> ModuleParamRef<'_> {
        let mut p = NestedHashMap::new();
        p.insert(Rc::from("0"), self.gelu.as_nested_value());
        p.insert(Rc::from("2"), self.out.as_nested_value());
        p
    }
    fn parameters_mut(&mut self) -> ModuleParamMut<'_> {
        let mut p = NestedHashMap::new();
        p.insert(Rc::from("0"), self.gelu.as_nested_value_mut());
        p.insert(Rc::from("2"), self.out.as_nested_value_mut());
        p
    }
    fn trainable_parameters(&self) -> ModuleParamRef<'_> {
        let mut p = NestedHashMap::new();
        p.insert(Rc::from("0"), self.gelu.trainable_parameters().into());
        p.insert(Rc::from("2"), self.out.trainable_parameters().into());
        p
    }
    fn freeze_parameters(&mut self, recursive: bool) {
        self.gelu.freeze_parameters(recursive);
        self.out.freeze_parameters(recursive);
    }
    fn unfreeze_parameters(&mut self, recursive: bool) {
        self.gelu.unfreeze_parameters(recursive);
        self.out.unfreeze_parameters(recursive);
    }
    fn all_frozen(&self) -> Option<bool> {
        Some(self.gelu.all_frozen()? && self.out.all_frozen()?)
    }
    fn any_frozen(&self) -> Option<bool> {
        Some(self.gelu.any_frozen()? || self.out.any_frozen()?)
    }
}
