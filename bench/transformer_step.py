"""Python MLX peer of engine/examples/transformer_step.rs: the same AV transformer forward with
`mlx-video-with-audio`'s LTXModel on the weights and inputs the Rust side wrote, timed the same way
(median of LTX_BENCH_ITERS after one warm-up), plus the f32 agreement with the Rust velocities."""
import json
import os
import sys
import time

import mlx.core as mx
from mlx_video.models.ltx.config import LTXModelConfig, LTXRopeType
from mlx_video.models.ltx.ltx import LTXModel
import mlx_video.models.ltx.transformer as peer_transformer
from mlx_video.models.ltx.transformer import Modality

# mlx-video compiles its weightless rms_norm with `shapeless=True` around `mx.ones((x.shape[-1],))`, which
# on MLX 0.32.2 freezes the first width it sees (video) and breaks the audio stream; use the plain op.
peer_transformer.rms_norm = lambda x, eps=1e-6: mx.fast.rms_norm(x, None, eps)
ITERS = int(os.environ.get("LTX_BENCH_ITERS", "3"))
DIR = sys.argv[1] if len(sys.argv) > 1 else "target/bench-transformer"
mx.set_default_device(mx.cpu)

weights, meta = mx.load(f"{DIR}/weights.safetensors", return_metadata=True)
io = mx.load(f"{DIR}/io.safetensors")
c = json.loads(meta["config"])["transformer"]
config = LTXModelConfig(
    num_layers=c["num_layers"],
    num_attention_heads=c["num_attention_heads"],
    attention_head_dim=c["attention_head_dim"],
    in_channels=c["in_channels"],
    out_channels=c["out_channels"],
    cross_attention_dim=c["cross_attention_dim"],
    caption_channels=c["caption_channels"],
    audio_num_attention_heads=c["audio_num_attention_heads"],
    audio_attention_head_dim=c["audio_attention_head_dim"],
    audio_in_channels=128,
    audio_out_channels=c["audio_out_channels"],
    audio_cross_attention_dim=c["audio_cross_attention_dim"],
    audio_caption_channels=c["caption_channels"],
    positional_embedding_theta=c["positional_embedding_theta"],
    positional_embedding_max_pos=c["positional_embedding_max_pos"],
    audio_positional_embedding_max_pos=c["audio_positional_embedding_max_pos"],
    rope_type=LTXRopeType(c["rope_type"]),
    double_precision_rope=c["frequencies_precision"] == "float64",
    timestep_scale_multiplier=c["timestep_scale_multiplier"],
    av_ca_timestep_scale_multiplier=c["av_ca_timestep_scale_multiplier"],
    norm_eps=c["norm_eps"],
)
RENAME = [(".to_out.0.", ".to_out."), ("ff.net.0.proj.", "ff.proj_in."), ("ff.net.2.", "ff.proj_out."),
          (".linear_1.", ".linear1."), (".linear_2.", ".linear2.")]


def peer_key(k: str) -> str:
    k = k.removeprefix("model.diffusion_model.")
    for a, b in RENAME:
        k = k.replace(a, b)
    return k


def build(dtype):
    model = LTXModel(config)
    model.load_weights([(peer_key(k), v) for k, v in weights.items()], strict=False)
    model.set_dtype(dtype)
    mx.eval(model.parameters())
    return model


def inputs(dtype):
    sigma = mx.array([0.7])
    mod = lambda p: Modality(  # noqa: E731
        latent=io[f"{p}_latent"].astype(dtype),
        timesteps=mx.array([[0.7]]),
        positions=io[f"{p}_positions"],
        context=io[f"{p}_context"].astype(dtype),
        sigma=sigma,
    )
    return mod("video"), mod("audio")


def bench(name, model, dtype):
    v, a = inputs(dtype)
    out = model(v, a)
    mx.eval(out)
    ms = []
    for _ in range(ITERS):
        t = time.perf_counter()
        mx.eval(model(v, a))
        ms.append((time.perf_counter() - t) * 1e3)
    ms.sort()
    print(f"{name} {ms[len(ms) // 2]:.1f}", flush=True)
    return out


flat = dict(__import__("mlx.utils", fromlist=["tree_flatten"]).tree_flatten(LTXModel(config).parameters()))
unused = sorted(set(map(peer_key, weights)) - set(flat))
assert not unused, f"weights the peer has no slot for: {unused[:5]}"
v, a = bench("transformer_step_f32", build(mx.float32), mx.float32)
rel = lambda x, y: (mx.abs(x - y).max() / mx.abs(y).max()).item()  # noqa: E731
print(f"# f32 agreement with Rust: video {rel(v, io['video_velocity_f32']):.2e}, "
      f"audio {rel(a, io['audio_velocity_f32']):.2e}", file=sys.stderr)
if not os.environ.get("LTX_BENCH_F32_ONLY"):
    bench("transformer_step_bf16", build(mx.bfloat16), mx.bfloat16)
