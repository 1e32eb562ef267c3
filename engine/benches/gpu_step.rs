//! One LTX-2 AV transformer forward (= one distilled denoising step) per input set, timed.
//!
//!   gpu_step <checkpoint.safetensors> <inputs.safetensors> <outputs.safetensors> [iters]
//!
//! `inputs` holds, per case `<name>.`: `video_latent` (1,T,C), `audio_latent` (1,Ta,Ca),
//! `video_positions` (1,3,T,2), `audio_positions` (1,1,Ta,2), `video_context`, `audio_context`
//! (1,S,caption_channels) and `sigma` (scalar); metadata `cases` lists the names. For each case the
//! model runs twice as warm-up, then `iters` (default 5) timed forwards, each evaluated to completion;
//! the last outputs go to `outputs` as `<name>.video` / `<name>.audio`. One JSON line per case on stdout:
//! median/min/max seconds, MLX peak memory, the medians of the preprocessing alone and with one block, and
//! the median and peak with the elementwise fusion off (`unfused_*`) and without the per-block pipelining
//! (`unpipelined_*`). `bench/gpu/step.py` drives it against
//! ltx-core on a GPU.
use std::{collections::HashMap, path::Path, time::Instant};

use ltx_engine::{
    memory::{materialize, reset_peak, MemoryReport},
    transformer::{self, LtxModel, Modality, Perturbations},
    Checkpoint, Compute,
};
use mlx_rs::{Array, Dtype};

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let [checkpoint, inputs, outputs, rest @ ..] = args.as_slice() else {
        return Err("usage: gpu_step <checkpoint> <inputs> <outputs> [iters]".into());
    };
    let iters: usize = rest.first().map(|s| s.parse()).transpose()?.unwrap_or(5);
    let compute = Compute::detect();
    compute.activate();

    let t = Instant::now();
    let model = LtxModel::from_checkpoint(Path::new(checkpoint), compute.dtype)?;
    let loaded = materialize(&model)?;
    eprintln!("loaded {checkpoint} on {} in {:.1}s: {loaded}", compute.backend, t.elapsed().as_secs_f64());

    let input = Checkpoint::open(inputs)?;
    let cases = input.metadata().get("cases").cloned().unwrap_or_default();
    let mut out: HashMap<String, Array> = HashMap::new();
    for case in cases.split(',').filter(|c| !c.is_empty()) {
        let get = |k: &str| input.tensor(&format!("{case}.{k}"));
        let host = |k: &str| -> Result<Vec<f32>, Error> {
            let a = get(k)?.as_dtype(Dtype::Float32)?.reshape(&[-1])?;
            a.eval()?;
            Ok(a.as_slice::<f32>().to_vec())
        };
        let sigma = host("sigma")?[0];
        let modality = |prefix: &str| -> Result<Modality, Error> {
            Ok(Modality::new(
                get(&format!("{prefix}_latent"))?.as_dtype(compute.dtype)?,
                sigma,
                None,
                host(&format!("{prefix}_positions"))?,
                get(&format!("{prefix}_context"))?.as_dtype(compute.dtype)?,
            ))
        };
        let (video, audio) = (modality("video")?, modality("audio")?);
        let step = || -> Result<(Array, Array), Error> {
            let (v, a) = model.forward(&video, &audio, &Perturbations::none())?;
            mlx_rs::transforms::eval([&v, &a])?;
            Ok((v, a))
        };
        // Where the time goes: the preprocessing alone (0 blocks) and with one block, each evaluated.
        let blocks = |n: usize| -> Result<(), Error> {
            let (v, a) = model.forward_blocks(&video, &audio, &Perturbations::none(), n)?;
            mlx_rs::transforms::eval([&v, &a])?;
            Ok(())
        };
        reset_peak();
        for _ in 0..2 {
            step()?;
        }
        let mut times = Vec::with_capacity(iters);
        let mut last = None;
        for _ in 0..iters.max(1) {
            let t = Instant::now();
            last = Some(step()?);
            times.push(t.elapsed().as_secs_f64());
        }
        let peak = MemoryReport::now().mlx_peak as f64 / (1u64 << 30) as f64;
        let median_of = |f: &dyn Fn() -> Result<(), Error>| -> Result<f64, Error> {
            f()?;
            let mut t: Vec<f64> = (0..iters.max(1))
                .map(|_| {
                    let s = Instant::now();
                    f().map(|_| s.elapsed().as_secs_f64())
                })
                .collect::<Result<_, _>>()?;
            t.sort_by(f64::total_cmp);
            Ok(t[t.len() / 2])
        };
        let (prepare, one_block) = (median_of(&|| blocks(0))?, median_of(&|| blocks(1))?);
        // The same step with the elementwise chains unfused (one kernel per operation), and without the
        // per-block pipelining, for comparison: median seconds and peak GiB of each.
        let variant = |fusion: bool, pipelining: bool| -> Result<(f64, f64), Error> {
            transformer::fused::set_fusion(fusion);
            transformer::model::set_block_pipelining(pipelining);
            reset_peak();
            let t = median_of(&|| step().map(|_| ()));
            transformer::fused::set_fusion(true);
            transformer::model::set_block_pipelining(true);
            Ok((t?, MemoryReport::now().mlx_peak as f64 / (1u64 << 30) as f64))
        };
        let (unfused, unfused_peak) = variant(false, true)?;
        let (unpipelined, unpipelined_peak) = variant(true, false)?;
        times.sort_by(f64::total_cmp);
        println!(
            "{{\"case\":\"{case}\",\"backend\":\"{}\",\"median_s\":{:.4},\"min_s\":{:.4},\"max_s\":{:.4},\"peak_gib\":{peak:.2},\"prepare_s\":{prepare:.4},\"prepare_and_one_block_s\":{one_block:.4},\"unfused_median_s\":{unfused:.4},\"unfused_peak_gib\":{unfused_peak:.2},\"unpipelined_median_s\":{unpipelined:.4},\"unpipelined_peak_gib\":{unpipelined_peak:.2}}}",
            compute.backend,
            times[times.len() / 2],
            times[0],
            times[times.len() - 1]
        );
        if let Some((v, a)) = last {
            out.insert(format!("{case}.video"), v.as_dtype(Dtype::Float32)?);
            out.insert(format!("{case}.audio"), a.as_dtype(Dtype::Float32)?);
        }
    }
    Array::save_safetensors(out, None, outputs)?;
    Ok(())
}
