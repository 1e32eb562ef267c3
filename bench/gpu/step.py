"""On the GPU machine: the full-size LTX-2 19B AV transformer step, engine vs the official ltx-core 1.0.0.

1. ltx-core builds the 19B model (48 layers, published metadata config) with random bf16 weights and
   writes it as a single-file checkpoint (`model.diffusion_model.` prefix, `config` metadata), so the
   engine loads a real full-size file.
2. For each size (768x512x121, 1536x1024x121 at 24 fps) ltx-core times one forward (2 warm-ups, median of
   N) and its inputs and outputs are saved.
3. ltx-core's model is freed; the engine binary loads the checkpoint and times the same forwards on the
   same inputs; its outputs are compared with ltx-core's.
4. bf16 matmul rate of the card (8192^3, torch) for the TFLOP/s column; analytic FLOPs of one step.

usage: step.py <engine_binary> <workdir> [iters]      prints one JSON object at the end.
"""
import gc
import json
import os
import subprocess
import sys
import time

import torch
from safetensors.torch import save_file

from ltx_core.components.patchifiers import AudioPatchifier, VideoLatentPatchifier
from ltx_core.guidance.perturbations import BatchedPerturbationConfig, PerturbationConfig
from ltx_core.model.transformer.modality import Modality
from ltx_core.model.transformer.model_configurator import LTXModelConfigurator
from ltx_core.tools import AudioLatentTools, VideoLatentTools
from ltx_core.types import AudioLatentShape, VideoLatentShape

ENGINE, WORK = sys.argv[1], sys.argv[2]
ITERS = int(sys.argv[3]) if len(sys.argv) > 3 else 5
SIZES = [(768, 512, 121), (1536, 1024, 121)]
FPS = 24.0
dev = "cuda"

# The published 19B `config.transformer` (engine/tests/fixtures/transformer/ltx2_19b_config.json).
with open(sys.argv[4] if len(sys.argv) > 4 else "engine/tests/fixtures/transformer/ltx2_19b_config.json") as f:
    META = json.load(f)
T = META["transformer"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


torch.manual_seed(0)
torch.set_default_dtype(torch.bfloat16)
with torch.device("meta"):
    model = LTXModelConfigurator.from_config(META)
model = model.to_empty(device=dev).to(torch.bfloat16).eval()
with torch.no_grad():
    for p in model.parameters():
        p.normal_(0.0, 0.02)
    for b in model.buffers():
        b.zero_()
torch.set_default_dtype(torch.float32)
nparams = sum(p.numel() for p in model.parameters())
log(f"ltx-core model: {nparams / 1e9:.2f} B params")

t0 = time.perf_counter()
ckpt = f"{WORK}/ltx-2-19b-random.safetensors"
state = {f"model.diffusion_model.{k}": v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
save_file(state, ckpt, metadata={"config": json.dumps(META)})
del state
gc.collect()
log(f"wrote {ckpt} in {time.perf_counter() - t0:.0f}s")


def inputs(width, height, frames):
    g = torch.Generator(device=dev).manual_seed(width)
    vshape = VideoLatentShape(1, 128, (frames - 1) // 8 + 1, height // 32, width // 32)
    vt = VideoLatentTools(patchifier=VideoLatentPatchifier(patch_size=1), target_shape=vshape, fps=FPS)
    vs = vt.create_initial_state(device=dev, dtype=torch.bfloat16,
                                 initial_latent=torch.randn(*vshape.to_torch_shape(), device=dev, generator=g).bfloat16())
    ashape = AudioLatentShape(1, 8, round(frames / FPS * 25), 16)
    at = AudioLatentTools(patchifier=AudioPatchifier(patch_size=1), target_shape=ashape)
    as_ = at.create_initial_state(device=dev, dtype=torch.bfloat16,
                                  initial_latent=torch.randn(*ashape.to_torch_shape(), device=dev, generator=g).bfloat16())
    sigma = torch.tensor([1.0], device=dev)
    vctx = torch.randn(1, 1024, 3840, device=dev, generator=g).bfloat16()
    actx = torch.randn(1, 1024, 3840, device=dev, generator=g).bfloat16()
    video = Modality(latent=vs.latent, sigma=sigma, timesteps=vs.denoise_mask * sigma, positions=vs.positions, context=vctx)
    audio = Modality(latent=as_.latent, sigma=sigma, timesteps=as_.denoise_mask * sigma, positions=as_.positions, context=actx)
    return video, audio


def step_flops(tv, ta, s=1024):
    """Matmul + attention FLOPs of one forward (2 per multiply-add), from the config."""
    dv, da = T["num_attention_heads"] * T["attention_head_dim"], T["audio_num_attention_heads"] * T["audio_attention_head_dim"]
    lin = lambda n, i, o: 2 * n * i * o
    att = lambda nq, nk, d: 4 * nq * nk * d
    per_block = (
        4 * lin(tv, dv, dv) + att(tv, tv, dv)                                  # video self-attn
        + 2 * lin(tv, dv, dv) + 2 * lin(s, dv, dv) + att(tv, s, dv)             # video text cross-attn
        + 4 * lin(ta, da, da) + att(ta, ta, da)                                  # audio self-attn
        + 2 * lin(ta, da, da) + 2 * lin(s, da, da) + att(ta, s, da)             # audio text cross-attn
        + lin(tv, dv, da) + lin(ta, da, da) * 2 + lin(tv, da, dv) + att(tv, ta, da)  # a2v (q video, kv audio)
        + lin(ta, da, da) + lin(tv, dv, da) * 2 + lin(ta, da, da) + att(ta, tv, da)  # v2a (q audio, kv video)
        + 2 * lin(tv, dv, 4 * dv) + 2 * lin(ta, da, 4 * da)                    # FFNs
    )
    return T["num_layers"] * per_block + lin(tv, 128, dv) + lin(ta, 128, da) + lin(tv, dv, 128) + lin(ta, da, 128)


pert = BatchedPerturbationConfig(perturbations=[PerturbationConfig.empty()])
ref, cases, tensors = {}, [], {}
for (w, h, f) in SIZES:
    name = f"s{w}x{h}x{f}"
    video, audio = inputs(w, h, f)
    torch.cuda.reset_peak_memory_stats()
    with torch.inference_mode():
        for _ in range(2):
            vx, ax = model(video, audio, pert)
        torch.cuda.synchronize()
        times = []
        for _ in range(ITERS):
            t = time.perf_counter()
            vx, ax = model(video, audio, pert)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
    times.sort()
    tv, ta = video.latent.shape[1], audio.latent.shape[1]
    ref[name] = dict(video_tokens=tv, audio_tokens=ta, median_s=times[len(times) // 2], min_s=times[0],
                     peak_gib=torch.cuda.max_memory_allocated() / 2**30, tflop=step_flops(tv, ta) / 1e12)
    log(f"ltx-core {name}: {ref[name]}")
    cases.append(name)
    for mod, m in (("video", video), ("audio", audio)):
        tensors[f"{name}.{mod}_latent"] = m.latent.float().cpu()
        tensors[f"{name}.{mod}_positions"] = m.positions.float().cpu()
        tensors[f"{name}.{mod}_context"] = m.context.float().cpu()
    tensors[f"{name}.sigma"] = torch.tensor([1.0])
    tensors[f"{name}.ref_video"], tensors[f"{name}.ref_audio"] = vx.float().cpu(), ax.float().cpu()

a = torch.randn(8192, 8192, device=dev, dtype=torch.bfloat16)
for _ in range(3):
    a @ a
torch.cuda.synchronize()
t = time.perf_counter()
for _ in range(10):
    a @ a
torch.cuda.synchronize()
matmul_tflops = 10 * 2 * 8192**3 / (time.perf_counter() - t) / 1e12
gpu = torch.cuda.get_device_name(0)
del model, a, video, audio, vx, ax
gc.collect()
torch.cuda.empty_cache()

save_file({k: v.contiguous() for k, v in tensors.items()}, f"{WORK}/inputs.safetensors", metadata={"cases": ",".join(cases)})
t0 = time.perf_counter()
cmd = [ENGINE, ckpt, f"{WORK}/inputs.safetensors", f"{WORK}/outputs.safetensors", str(ITERS)]
run = subprocess.run(cmd, capture_output=True, text=True)
log(run.stderr[-4000:])
fusion = True
if run.returncode != 0:
    # Keep the measurement if the fused (compiled) kernels fail on this machine: the same step unfused.
    log("engine failed; again with LTX_NO_FUSE=1")
    fusion_error = run.stderr[-2000:]
    run = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "LTX_NO_FUSE": "1"})
    log(run.stderr[-4000:])
    fusion = False
engine = {}
for line in run.stdout.splitlines():
    if line.startswith("{"):
        r = json.loads(line)
        engine[r["case"]] = r
log(f"engine run (load included): {time.perf_counter() - t0:.0f}s, rc {run.returncode}")

from safetensors.torch import load_file  # noqa: E402

report = dict(gpu=gpu, torch=torch.__version__, matmul_bf16_tflops=matmul_tflops, iters=ITERS, engine_fusion=fusion,
              cases={})
if not fusion:
    report["fusion_error"] = fusion_error
if run.returncode == 0:
    out = load_file(f"{WORK}/outputs.safetensors")
    for name in cases:
        r, e = ref[name], engine.get(name, {})
        cmp = {}
        for mod in ("video", "audio"):
            got, want = out[f"{name}.{mod}"], tensors[f"{name}.ref_{mod}"]
            diff = (got - want).abs()
            cmp[mod] = dict(max_abs=diff.max().item(), rel_l2=(diff.norm() / want.norm()).item(),
                            cosine=torch.nn.functional.cosine_similarity(got.flatten(), want.flatten(), dim=0).item())
        report["cases"][name] = dict(
            ltx_core=r, engine=e, ratio=e.get("median_s", float("nan")) / r["median_s"],
            engine_tflops=r["tflop"] / e["median_s"] if e.get("median_s") else None,
            ltx_core_tflops=r["tflop"] / r["median_s"], match=cmp)
else:
    report["engine_error"] = run.stderr[-2000:]
    report["ltx_core"] = ref
print(json.dumps(report, indent=1))
