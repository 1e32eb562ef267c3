"""Golden generator for the LTX-2 AV transformer port (engine/src/transformer, engine/src/sampling).

Runs the official PyTorch reference (PyPI ltx-core==1.0.0 / ltx-pipelines==1.0.0) on the tiny
configuration of ltx2-architecture.md section 9 and writes small f32 fixtures to
engine/tests/fixtures/transformer/. It imports ltx-core and reimplements no maths: every expected
value below is produced by an ltx-core / ltx-pipelines function.

Dev machine only (never in CI); see engine/goldens/README.md for how to regenerate.
"""

import json
import math
import os
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from ltx_core.components.diffusion_steps import EulerDiffusionStep
from ltx_core.components.guiders import MultiModalGuider, MultiModalGuiderParams
from ltx_core.components.patchifiers import AudioPatchifier, VideoLatentPatchifier
from ltx_core.components.schedulers import LTX2Scheduler
from ltx_core.guidance.perturbations import (
    BatchedPerturbationConfig,
    Perturbation,
    PerturbationConfig,
    PerturbationType,
)
from ltx_core.loader.fuse_loras import _prepare_deltas
from ltx_core.loader.primitives import LoraStateDictWithStrength, StateDict
from ltx_core.model.transformer.attention import AttentionFunction
from ltx_core.model.transformer.model import LTXModel, LTXModelType, X0Model
from ltx_core.model.transformer.model_configurator import LTXModelConfigurator
from ltx_core.model.transformer.modality import Modality
from ltx_core.model.transformer.rope import (
    LTXRopeType,
    generate_freq_grid_np,
    precompute_freqs_cis,
)
from ltx_core.model.transformer.text_projection import PixArtAlphaTextProjection
from ltx_core.quantization.fp8_scaled_mm import (
    EXCLUDED_LAYER_SUBSTRINGS,
    _should_skip_layer,
    quantize_weight_to_fp8_per_tensor,
)
from ltx_core.tools import AudioLatentTools, VideoLatentTools
from ltx_core.types import AudioLatentShape, LatentState, VideoLatentShape
from ltx_pipelines.utils.constants import (
    DISTILLED_SIGMA_VALUES,
    LTX_2_PARAMS,
    STAGE_2_DISTILLED_SIGMA_VALUES,
)
from ltx_pipelines.utils.helpers import (
    modality_from_latent_state,
    multi_modal_guider_denoising_func,
    simple_denoising_func,
)
from ltx_pipelines.utils.samplers import euler_denoising_loop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from v12_graft import graft  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "transformer"
PREFIX = "model.diffusion_model."
torch.set_grad_enabled(False)

# ----------------------------------------------------------------------------------------------
# Configuration: the verbatim key set of the published 19B `config.transformer` metadata, with the
# tiny dims of section 9 (plus `audio_in_channels`, which ltx-core reads but 19B leaves at 128).
# ----------------------------------------------------------------------------------------------
REAL_19B = {
    "_class_name": "AVTransformer3DModel",
    "_diffusers_version": "0.25.1",
    "activation_fn": "gelu-approximate",
    "attention_bias": True,
    "attention_head_dim": 128,
    "attention_type": "default",
    "audio_attention_head_dim": 64,
    "audio_cross_attention_dim": 2048,
    "audio_num_attention_heads": 32,
    "audio_out_channels": 128,
    "audio_positional_embedding_max_pos": [20],
    "av_ca_timestep_scale_multiplier": 1000.0,
    "av_cross_ada_norm": True,
    "caption_channels": 3840,
    "causal_temporal_positioning": True,
    "connector_attention_head_dim": 128,
    "connector_norm_output": True,
    "connector_num_attention_heads": 30,
    "connector_num_layers": 2,
    "connector_num_learnable_registers": 128,
    "connector_positional_embedding_max_pos": [4096],
    "cross_attention_dim": 4096,
    "cross_attention_norm": True,
    "double_self_attention": False,
    "dropout": 0.0,
    "frequencies_precision": "float64",
    "in_channels": 128,
    "norm_elementwise_affine": False,
    "norm_eps": 1e-06,
    "norm_num_groups": 32,
    "num_attention_heads": 32,
    "num_embeds_ada_norm": 1000,
    "num_layers": 48,
    "num_vector_embeds": None,
    "only_cross_attention": False,
    "out_channels": 128,
    "positional_embedding_max_pos": [20, 2048, 2048],
    "positional_embedding_theta": 10000.0,
    "positional_embedding_type": "rope",
    "qk_norm": "rms_norm",
    "rope_type": "split",
    "share_ff": False,
    "standardization_norm": "rms_norm",
    "timestep_scale_multiplier": 1000,
    "upcast_attention": False,
    "use_audio_video_cross_attention": True,
    "use_embeddings_connector": True,
    "use_linear_projection": False,
    "use_middle_indices_grid": True,
}
TINY = {
    **REAL_19B,
    "num_layers": 2,
    "num_attention_heads": 2,
    "attention_head_dim": 8,
    "audio_num_attention_heads": 2,
    "audio_attention_head_dim": 4,
    "in_channels": 8,
    "out_channels": 8,
    "audio_in_channels": 8,
    "audio_out_channels": 8,
    "cross_attention_dim": 16,
    "audio_cross_attention_dim": 8,
    "caption_channels": 12,
    "connector_num_attention_heads": 3,
    "connector_attention_head_dim": 4,
    "connector_num_learnable_registers": 8,
}
FPS = 24.0
VIDEO_SHAPE = VideoLatentShape(batch=1, channels=8, frames=3, height=2, width=2)
AUDIO_SHAPE = AudioLatentShape(batch=1, channels=2, frames=5, mel_bins=4)
CTX_LEN = 16


def build_tiny() -> LTXModel:
    """Build the tiny AV model directly (the configurator hard-codes nothing we need here)."""
    c = TINY
    return LTXModel(
        model_type=LTXModelType.AudioVideo,
        num_attention_heads=c["num_attention_heads"],
        attention_head_dim=c["attention_head_dim"],
        in_channels=c["in_channels"],
        out_channels=c["out_channels"],
        num_layers=c["num_layers"],
        cross_attention_dim=c["cross_attention_dim"],
        norm_eps=c["norm_eps"],
        attention_type=AttentionFunction.PYTORCH,
        positional_embedding_theta=c["positional_embedding_theta"],
        positional_embedding_max_pos=c["positional_embedding_max_pos"],
        timestep_scale_multiplier=c["timestep_scale_multiplier"],
        use_middle_indices_grid=c["use_middle_indices_grid"],
        audio_num_attention_heads=c["audio_num_attention_heads"],
        audio_attention_head_dim=c["audio_attention_head_dim"],
        audio_in_channels=c["audio_in_channels"],
        audio_out_channels=c["audio_out_channels"],
        audio_cross_attention_dim=c["audio_cross_attention_dim"],
        audio_positional_embedding_max_pos=c["audio_positional_embedding_max_pos"],
        av_ca_timestep_scale_multiplier=c["av_ca_timestep_scale_multiplier"],
        rope_type=LTXRopeType(c["rope_type"]),
        double_precision_rope=c["frequencies_precision"] == "float64",
        caption_projection=PixArtAlphaTextProjection(c["caption_channels"], 16),
        audio_caption_projection=PixArtAlphaTextProjection(c["caption_channels"], 8),
    ).eval()


def seeded_init(model: torch.nn.Module, seed: int) -> None:
    """Initialise ALL parameters (many are torch.empty) from one seeded generator."""
    g = torch.Generator().manual_seed(seed)
    for name, p in sorted(model.named_parameters()):
        if p.ndim == 2 and "table" not in name:
            p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))
        elif name.endswith("norm.weight"):
            p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
        else:
            p.copy_(0.3 * torch.randn(p.shape, generator=g))


def rand(g: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(shape, generator=g, dtype=torch.float32)


def perturbation(*items: tuple[PerturbationType, list[int] | None]) -> BatchedPerturbationConfig:
    return BatchedPerturbationConfig([PerturbationConfig([Perturbation(t, b) for t, b in items])])


def lora_fused(model, build, targets, g: torch.Generator, strength: float):
    """A rank-2 LoRA over `targets` (`diffusion_model.<module>.lora_{A,B}.weight`) and a copy of `model` (made
    by `build`) with it fused the way ltx-core fuses it (`_prepare_deltas`)."""
    lora = {}
    for t in targets:
        w = model.get_submodule(t).weight
        lora[f"diffusion_model.{t}.lora_A.weight"] = torch.randn(2, w.shape[1], generator=g) * 0.3
        lora[f"diffusion_model.{t}.lora_B.weight"] = torch.randn(w.shape[0], 2, generator=g) * 0.3
    lora_sd = StateDict({k.removeprefix("diffusion_model."): v for k, v in lora.items()}, "cpu", 0, set())
    fused = build()
    fused.load_state_dict(model.state_dict())
    for t in targets:
        delta = _prepare_deltas([LoraStateDictWithStrength(lora_sd, strength)], f"{t}.weight", torch.float32, "cpu")
        fused.get_submodule(t).weight.add_(delta)
    return lora, fused


def fp8_quantised(model, build):
    """ltx-core's per-tensor FP8 of every Linear outside its exclusion list: the file's tensors (weight (out, in)
    as float8_e4m3fn, `weight_scale`, `input_scale`) and a copy of `model` (made by `build`) with the
    dequantised weights."""
    fp8_sd = {}
    deq = build()
    deq.load_state_dict(model.state_dict())
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or _should_skip_layer(name, EXCLUDED_LAYER_SUBSTRINGS):
            continue
        q_t, scale = quantize_weight_to_fp8_per_tensor(module.weight)  # q_t is (in, out) for cuBLAS
        q = q_t.t().contiguous()  # the file stores (out, in)
        fp8_sd[PREFIX + name + ".weight"] = q
        fp8_sd[PREFIX + name + ".weight_scale"] = scale.reshape(()).to(torch.float32)
        fp8_sd[PREFIX + name + ".input_scale"] = torch.tensor(1.0)
        deq.get_submodule(name).weight.copy_(q.to(torch.float32) * scale)
    return fp8_sd, deq


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = build_tiny()
    seeded_init(model, 1234)
    x0_model = X0Model(model)
    sd = {PREFIX + k: v.contiguous() for k, v in model.state_dict().items()}
    meta = {"config": json.dumps({"transformer": TINY})}
    save_file(sd, OUT / "tiny_av.safetensors", metadata=meta)

    g = torch.Generator().manual_seed(42)
    gold: dict[str, torch.Tensor] = {}

    # ---------------- latent states (positions through the official latent tools) ----------------
    vtools = VideoLatentTools(VideoLatentPatchifier(patch_size=1), VIDEO_SHAPE, FPS)
    atools = AudioLatentTools(AudioPatchifier(patch_size=1), AUDIO_SHAPE)
    video_latent = rand(g, *VIDEO_SHAPE)
    audio_latent = rand(g, *AUDIO_SHAPE)
    vstate = vtools.create_initial_state("cpu", torch.float32, video_latent)
    astate = atools.create_initial_state("cpu", torch.float32, audio_latent)
    v_ctx = rand(g, 1, CTX_LEN, TINY["caption_channels"])
    a_ctx = rand(g, 1, CTX_LEN, TINY["caption_channels"])
    v_ctx_neg = rand(g, 1, CTX_LEN, TINY["caption_channels"])
    a_ctx_neg = rand(g, 1, CTX_LEN, TINY["caption_channels"])
    gold.update(
        video_latent=vstate.latent,
        audio_latent=astate.latent,
        video_positions=vstate.positions,
        audio_positions=astate.positions,
        video_context=v_ctx,
        audio_context=a_ctx,
        video_context_neg=v_ctx_neg,
        audio_context_neg=a_ctx_neg,
    )

    # ---------------- RoPE tables (split = 19B, and interleaved) ----------------
    def rope(name: str, positions: torch.Tensor, dim: int, heads: int, max_pos: list[int], kind: LTXRopeType):
        cos, sin = precompute_freqs_cis(
            positions,
            dim=dim,
            out_dtype=torch.float32,
            theta=TINY["positional_embedding_theta"],
            max_pos=max_pos,
            use_middle_indices_grid=True,
            num_attention_heads=heads,
            rope_type=kind,
            freq_grid_generator=generate_freq_grid_np,
        )
        gold[f"rope_{name}_cos"], gold[f"rope_{name}_sin"] = cos, sin

    rope("video_split", vstate.positions, 16, 2, [20, 2048, 2048], LTXRopeType.SPLIT)
    rope("audio_split", astate.positions, 8, 2, [20], LTXRopeType.SPLIT)
    rope("video_cross_split", vstate.positions[:, 0:1], 8, 2, [20], LTXRopeType.SPLIT)
    rope("audio_cross_split", astate.positions, 8, 2, [20], LTXRopeType.SPLIT)
    rope("video_interleaved", vstate.positions, 16, 2, [20, 2048, 2048], LTXRopeType.INTERLEAVED)
    rope("audio_interleaved", astate.positions, 8, 2, [20], LTXRopeType.INTERLEAVED)

    # ---------------- timestep embedding + AdaLN single ----------------
    ts = torch.tensor([0.0, 0.05, 0.421875, 0.909375, 1.0])
    gold["adaln_sigmas"] = ts
    gold["adaln_video_mod"], gold["adaln_video_emb"] = model.adaln_single(ts * 1000, hidden_dtype=torch.float32)
    gold["adaln_audio_mod"], gold["adaln_audio_emb"] = model.audio_adaln_single(ts * 1000, hidden_dtype=torch.float32)
    gold["caption_video"] = model.caption_projection(v_ctx)
    gold["caption_audio"] = model.audio_caption_projection(a_ctx)

    # ---------------- forward passes ----------------
    sigma = torch.tensor(0.6)
    i2v_mask = torch.ones_like(vstate.denoise_mask)
    i2v_mask[:, :4] = 0.0  # frame 0 = the first 2x2 tokens
    gold["i2v_video_mask"] = i2v_mask

    def modalities(vmask: torch.Tensor, vctx: torch.Tensor = v_ctx, actx: torch.Tensor = a_ctx):
        from dataclasses import replace

        v = modality_from_latent_state(replace(vstate, denoise_mask=vmask), vctx, sigma)
        a = modality_from_latent_state(astate, actx, sigma)
        return v, a

    block_out: dict[str, torch.Tensor] = {}

    def hook(_m, _inp, out):
        block_out["video"], block_out["audio"] = out[0].x, out[1].x

    handle = model.transformer_blocks[0].register_forward_hook(hook)
    v, a = modalities(vstate.denoise_mask)
    gold["sigma"] = sigma.reshape(1)
    gold["fwd_video"], gold["fwd_audio"] = model(v, a, BatchedPerturbationConfig.empty(1))
    handle.remove()
    gold["block0_video"], gold["block0_audio"] = block_out["video"], block_out["audio"]
    gold["x0_video"], gold["x0_audio"] = x0_model(v, a, BatchedPerturbationConfig.empty(1))

    # ltx-core 1.0.0's i2v (the A<->V scale/shift from the other modality's sigma), kept as a record; from here
    # on the A<->V AdaLN inputs are 1.2.0's (v12_graft.py), which the engine follows.
    v, a = modalities(i2v_mask)
    gold["i2v_v10_video"], gold["i2v_v10_audio"] = model(v, a, BatchedPerturbationConfig.empty(1))
    print("A<->V AdaLN from", graft())
    gold["i2v_video"], gold["i2v_audio"] = model(v, a, BatchedPerturbationConfig.empty(1))

    v, a = modalities(vstate.denoise_mask)
    stg = perturbation((PerturbationType.SKIP_VIDEO_SELF_ATTN, [1]), (PerturbationType.SKIP_AUDIO_SELF_ATTN, [1]))
    gold["stg_video"], gold["stg_audio"] = model(v, a, stg)
    avskip = perturbation((PerturbationType.SKIP_A2V_CROSS_ATTN, None), (PerturbationType.SKIP_V2A_CROSS_ATTN, None))
    gold["avskip_video"], gold["avskip_audio"] = model(v, a, avskip)

    # ---------------- one fully guided step (LTX-2 defaults, STG block moved to 1) ----------------
    from dataclasses import replace

    vp = replace(LTX_2_PARAMS.video_guider_params, stg_blocks=[1])
    ap = replace(LTX_2_PARAMS.audio_guider_params, stg_blocks=[1])
    guided = multi_modal_guider_denoising_func(
        MultiModalGuider(vp, v_ctx_neg), MultiModalGuider(ap, a_ctx_neg), v_ctx, a_ctx, x0_model
    )
    sigmas = torch.tensor([sigma.item(), 0.3])
    gold["guided_video"], gold["guided_audio"] = guided(vstate, astate, sigmas, 0)
    gold["guider_video_params"] = torch.tensor([vp.cfg_scale, vp.stg_scale, vp.modality_scale, vp.rescale_scale])
    gold["guider_audio_params"] = torch.tensor([ap.cfg_scale, ap.stg_scale, ap.modality_scale, ap.rescale_scale])

    # ---------------- Euler over the distilled sigmas, injected noise, i2v mask ----------------
    noise_v, noise_a = rand(g, 1, 12, 8), rand(g, 1, 5, 8)
    clean_v = vstate.latent
    vmask = i2v_mask
    ev = LatentState(
        latent=noise_v * vmask + clean_v * (1 - vmask),
        denoise_mask=vmask,
        positions=vstate.positions,
        clean_latent=clean_v,
    )
    ea = LatentState(
        latent=noise_a, denoise_mask=astate.denoise_mask, positions=astate.positions, clean_latent=astate.latent
    )
    gold["euler_noise_video"], gold["euler_noise_audio"] = noise_v, noise_a
    distilled = torch.tensor(DISTILLED_SIGMA_VALUES, dtype=torch.float32)
    fv, fa = euler_denoising_loop(
        distilled, ev, ea, EulerDiffusionStep(), simple_denoising_func(v_ctx, a_ctx, x0_model)
    )
    gold["euler_video"], gold["euler_audio"] = fv.latent, fa.latent

    # ---------------- schedules ----------------
    gold["sigmas_distilled"] = distilled
    gold["sigmas_stage2"] = torch.tensor(STAGE_2_DISTILLED_SIGMA_VALUES, dtype=torch.float32)
    for n in (8, 30, 40):
        gold[f"sigmas_ltx2_{n}"] = LTX2Scheduler().execute(steps=n)

    # ---------------- LoRA fusion ----------------
    lg = torch.Generator().manual_seed(7)
    lora_targets = [
        "transformer_blocks.0.attn1.to_q",
        "transformer_blocks.0.ff.net.0.proj",
        "transformer_blocks.1.audio_to_video_attn.to_k",
        "transformer_blocks.1.video_to_audio_attn.to_out.0",
        "proj_out",
    ]
    strength = 0.75
    lora, fused = lora_fused(model, build_tiny, lora_targets, lg, strength)
    save_file(lora, OUT / "tiny_lora.safetensors")
    gold["lora_strength"] = torch.tensor([strength])
    gold["lora_video"], gold["lora_audio"] = fused(*modalities(vstate.denoise_mask), BatchedPerturbationConfig.empty(1))

    # ---------------- FP8 checkpoint (ltx-core's per-tensor quantiser and exclusion list) ----------------
    fp8_sd, deq = fp8_quantised(model, build_tiny)
    full = {**sd, **fp8_sd}
    save_file(full, OUT / "tiny_av_fp8.safetensors", metadata=meta)
    gold["fp8_video"], gold["fp8_audio"] = deq(*modalities(vstate.denoise_mask), BatchedPerturbationConfig.empty(1))

    save_file({k: v.contiguous().to(torch.float32) for k, v in gold.items()}, OUT / "goldens.safetensors")

    # ---------------- manifest of the real 19B transformer (meta device, no weights) ----------------
    with torch.device("meta"):
        real = LTXModelConfigurator.from_config({"transformer": REAL_19B})
    lines = [f"{PREFIX}{k} {'x'.join(map(str, v.shape))}" for k, v in sorted(real.state_dict().items())]
    (OUT / "ltx2_19b_transformer_manifest.txt").write_text("\n".join(lines) + "\n")
    (OUT / "ltx2_19b_config.json").write_text(json.dumps({"transformer": REAL_19B}, indent=1) + "\n")
    print(f"wrote {len(gold)} goldens, {len(sd)} tiny tensors, {len(lines)} 19B manifest entries to {OUT}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sys.exit(main())
