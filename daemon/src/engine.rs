//! The engine the shipped `ltxd` runs: the LTX-2 pipeline over the configured models directory, on MLX's best
//! device (GPU in bf16 where MLX has one, else the CPU in f32). A job whose weights are not in the models directory
//! fails with a typed `model not installed` error naming the missing file.
use ltx_engine::{job::Generator, pipeline::Pipeline, Compute};

use crate::config::Config;

pub fn shipped(cfg: &Config) -> Box<dyn Generator> {
    Box::new(
        Pipeline::from_dir(cfg.models_dir.clone(), Compute::detect())
            .with_memory(cfg.memory.settings())
            .with_low_memory(cfg.memory.low_memory),
    )
}
