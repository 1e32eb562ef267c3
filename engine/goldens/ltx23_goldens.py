"""Goldens for the LTX-2.3 (22B) transformer and text side (engine/src/transformer, engine/src/text).

Runs PyPI ltx-core==1.0.0 (the LTX-2.3 release sources) on a tiny configuration with every 2.3 switch at its
published value (gated attention, cross-attention AdaLN, the caption projection in the text encoder,
FeatureExtractorV2, gated connectors) and writes small f32 fixtures:

- engine/tests/fixtures/transformer/tiny_av23.safetensors (+ _fp8, tiny_lora23), goldens23.safetensors
- engine/tests/fixtures/text/tiny_ltx_text23.safetensors, goldens23.safetensors
- the real 22B parameter trees (meta device) and the config they were built from, with each value's source.

The cases where ltx-core 1.2.0 differs from 1.0.0 (i2v tokens, per-modality sigmas) are written by
v12_goldens.py. It imports ltx-core and reimplements no maths. Dev machine only; see README.md.
"""

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transformer_goldens import (  # noqa: E402
    AUDIO_SHAPE,
    CTX_LEN,
    FPS,
    PREFIX,
    REAL_19B,
    TINY,
    VIDEO_SHAPE,
    fp8_quantised,
    lora_fused,
    perturbation,
    rand,
    seeded_init,
)

from ltx_core.components.patchifiers import AudioPatchifier, VideoLatentPatchifier  # noqa: E402
from ltx_core.guidance.perturbations import BatchedPerturbationConfig, PerturbationType  # noqa: E402
from ltx_core.model.transformer.model import X0Model  # noqa: E402
from ltx_core.model.transformer.model_configurator import LTXModelConfigurator  # noqa: E402
from ltx_core.text_encoders.gemma.embeddings_connector import Embeddings1DConnector  # noqa: E402
from ltx_core.text_encoders.gemma.embeddings_processor import EmbeddingsProcessor  # noqa: E402
from ltx_core.text_encoders.gemma.encoders.encoder_configurator import EmbeddingsProcessorConfigurator  # noqa: E402
from ltx_core.text_encoders.gemma.feature_extractor import FeatureExtractorV2  # noqa: E402
from ltx_core.model.transformer.rope import LTXRopeType  # noqa: E402
from ltx_core.tools import AudioLatentTools, VideoLatentTools  # noqa: E402
from ltx_pipelines.utils.helpers import modality_from_latent_state  # noqa: E402

FIX = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
torch.set_grad_enabled(False)

# The LTX-2.3 switches at the values ltx-core 1.0.0 requires for 2.3 (`_V2_EXPECTED_CONFIG` in
# text_encoders/gemma/encoders/encoder_configurator.py; `apply_gated_attention`, `cross_attention_adaln`,
# `connector_apply_gated_attention` read by model_configurator.py / embeddings_connector.py).
SWITCHES_23 = {
    "apply_gated_attention": True,
    "cross_attention_adaln": True,
    "caption_proj_before_connector": True,
    "caption_projection_first_linear": False,
    "caption_proj_input_norm": False,
    "caption_projection_second_linear": False,
    "connector_apply_gated_attention": True,
}
TINY23 = {
    **TINY,
    **SWITCHES_23,
    "connector_num_attention_heads": 2,
    "connector_attention_head_dim": 8,
    "audio_connector_num_attention_heads": 2,
    "audio_connector_attention_head_dim": 4,
    "connector_num_layers": 2,
    "audio_connector_num_layers": 2,
}
MODEL_VERSION = "2.3.0"

# The best-known 22B config: each value not from official code or checkpoint metadata is unconfirmed.
REAL_23 = {
    **REAL_19B,
    **SWITCHES_23,
    "connector_num_attention_heads": 32,
    "connector_attention_head_dim": 128,
    "audio_connector_num_attention_heads": 32,
    "audio_connector_attention_head_dim": 64,
    "connector_num_layers": 8,
    "audio_connector_num_layers": 8,
}
SOURCES = {
    **{k: "LTX-2 19B checkpoint metadata (ltx2_19b_config.json); unconfirmed for 2.3" for k in REAL_19B},
    **{k: "ltx-core 1.0.0 code (the only value it accepts for 2.3)" for k in SWITCHES_23},
    **{
        k: "third-party converter (ltx-2.3-and-2.5.md); unconfirmed"
        for k in (
            "connector_num_attention_heads",
            "connector_attention_head_dim",
            "audio_connector_num_attention_heads",
            "audio_connector_attention_head_dim",
            "connector_num_layers",
            "audio_connector_num_layers",
        )
    },
}


def transformer_goldens() -> None:
    out = FIX / "transformer"
    model = LTXModelConfigurator.from_config({"transformer": TINY23}).eval()
    seeded_init(model, 2323)
    x0_model = X0Model(model)
    sd = {PREFIX + k: v.contiguous() for k, v in model.state_dict().items()}
    meta = {"config": json.dumps({"transformer": TINY23}), "model_version": MODEL_VERSION}
    save_file(sd, out / "tiny_av23.safetensors", metadata=meta)

    g = torch.Generator().manual_seed(4223)
    gold: dict[str, torch.Tensor] = {}
    vtools = VideoLatentTools(VideoLatentPatchifier(patch_size=1), VIDEO_SHAPE, FPS)
    atools = AudioLatentTools(AudioPatchifier(patch_size=1), AUDIO_SHAPE)
    vstate = vtools.create_initial_state("cpu", torch.float32, rand(g, *VIDEO_SHAPE))
    astate = atools.create_initial_state("cpu", torch.float32, rand(g, *AUDIO_SHAPE))
    vd = TINY23["num_attention_heads"] * TINY23["attention_head_dim"]
    ad = TINY23["audio_num_attention_heads"] * TINY23["audio_attention_head_dim"]
    v_ctx, a_ctx = rand(g, 1, CTX_LEN, vd), rand(g, 1, CTX_LEN, ad)
    sigma = torch.tensor(0.6)
    gold.update(
        video_latent=vstate.latent,
        audio_latent=astate.latent,
        video_positions=vstate.positions,
        audio_positions=astate.positions,
        video_context=v_ctx,
        audio_context=a_ctx,
        sigma=sigma.reshape(1),
    )

    def modalities():
        return (
            modality_from_latent_state(vstate, v_ctx, sigma),
            modality_from_latent_state(astate, a_ctx, sigma),
        )

    ts = torch.tensor([0.0, 0.05, 0.421875, 0.909375, 1.0])
    gold["adaln_sigmas"] = ts
    gold["adaln_video_mod"], _ = model.adaln_single(ts * 1000, hidden_dtype=torch.float32)
    gold["prompt_adaln_video"], _ = model.prompt_adaln_single(ts * 1000, hidden_dtype=torch.float32)
    gold["prompt_adaln_audio"], _ = model.audio_prompt_adaln_single(ts * 1000, hidden_dtype=torch.float32)

    block_out: dict[str, torch.Tensor] = {}

    def hook(_m, _inp, o):
        block_out["video"], block_out["audio"] = o[0].x, o[1].x

    handle = model.transformer_blocks[0].register_forward_hook(hook)
    gold["fwd_video"], gold["fwd_audio"] = model(*modalities(), BatchedPerturbationConfig.empty(1))
    handle.remove()
    gold["block0_video"], gold["block0_audio"] = block_out["video"], block_out["audio"]
    gold["x0_video"], gold["x0_audio"] = x0_model(*modalities(), BatchedPerturbationConfig.empty(1))
    stg = perturbation((PerturbationType.SKIP_VIDEO_SELF_ATTN, [1]), (PerturbationType.SKIP_AUDIO_SELF_ATTN, [1]))
    gold["stg_video"], gold["stg_audio"] = model(*modalities(), stg)
    avskip = perturbation((PerturbationType.SKIP_A2V_CROSS_ATTN, None), (PerturbationType.SKIP_V2A_CROSS_ATTN, None))
    gold["avskip_video"], gold["avskip_audio"] = model(*modalities(), avskip)

    # LoRA on 2.3-only modules too (a gate and a prompt AdaLN) plus the usual ones.
    lg = torch.Generator().manual_seed(77)
    targets = [
        "transformer_blocks.0.attn1.to_q",
        "transformer_blocks.0.attn2.to_gate_logits",
        "transformer_blocks.1.audio_to_video_attn.to_k",
        "transformer_blocks.1.ff.net.0.proj",
        "prompt_adaln_single.linear",
    ]
    strength = 0.75
    build = lambda: LTXModelConfigurator.from_config({"transformer": TINY23}).eval()  # noqa: E731
    lora, fused = lora_fused(model, build, targets, lg, strength)
    save_file(lora, out / "tiny_lora23.safetensors")
    gold["lora_strength"] = torch.tensor([strength])
    gold["lora_video"], gold["lora_audio"] = fused(*modalities(), BatchedPerturbationConfig.empty(1))

    fp8_sd, deq = fp8_quantised(model, build)
    save_file({**sd, **fp8_sd}, out / "tiny_av23_fp8.safetensors", metadata=meta)
    gold["fp8_video"], gold["fp8_audio"] = deq(*modalities(), BatchedPerturbationConfig.empty(1))
    save_file({k: v.contiguous().to(torch.float32) for k, v in gold.items()}, out / "goldens23.safetensors")

    with torch.device("meta"):
        real = LTXModelConfigurator.from_config({"transformer": REAL_23})
    lines = [f"{PREFIX}{k} {'x'.join(map(str, v.shape))}" for k, v in sorted(real.state_dict().items())]
    (out / "ltx23_22b_transformer_manifest.txt").write_text("\n".join(lines) + "\n")
    (out / "ltx23_22b_config.json").write_text(json.dumps({"transformer": REAL_23}, indent=1) + "\n")
    src = "\n".join(f"{k}: {SOURCES[k]}" for k in sorted(REAL_23))
    (out / "ltx23_22b_config_sources.txt").write_text(src + "\n")
    params = sum(v.numel() for v in real.state_dict().values())
    print(f"transformer: {len(gold)} goldens, {len(lines)} 22B entries, {params / 1e9:.2f} B parameters")


def text_goldens() -> None:
    out = FIX / "text"
    layers, hidden = 7, 32
    vd = TINY23["connector_num_attention_heads"] * TINY23["connector_attention_head_dim"]
    ad = TINY23["audio_connector_num_attention_heads"] * TINY23["audio_connector_attention_head_dim"]
    extractor = FeatureExtractorV2(
        video_aggregate_embed=torch.nn.Linear(hidden * layers, vd, bias=True),
        embedding_dim=hidden,
        audio_aggregate_embed=torch.nn.Linear(hidden * layers, ad, bias=True),
    )

    def connector(heads: int, head_dim: int) -> Embeddings1DConnector:
        return Embeddings1DConnector(
            attention_head_dim=head_dim,
            num_attention_heads=heads,
            num_layers=2,
            positional_embedding_max_pos=[4096],
            num_learnable_registers=8,
            rope_type=LTXRopeType.SPLIT,
            double_precision_rope=True,
            apply_gated_attention=True,
        )

    video = connector(TINY23["connector_num_attention_heads"], TINY23["connector_attention_head_dim"])
    audio = connector(TINY23["audio_connector_num_attention_heads"], TINY23["audio_connector_attention_head_dim"])
    gen = torch.Generator().manual_seed(2330)
    for m in (extractor, video, audio):
        for _, p in sorted(m.named_parameters()):
            p.data = (0.3 * torch.randn(p.shape, generator=gen)).to(torch.float32)
    proc = EmbeddingsProcessor(feature_extractor=extractor, video_connector=video, audio_connector=audio).eval()
    sd = {}
    for name in ("video_aggregate_embed", "audio_aggregate_embed"):
        for k, v in getattr(extractor, name).state_dict().items():
            sd[f"text_embedding_projection.{name}.{k}"] = v
    for name, c in (("video", video), ("audio", audio)):
        for k, v in c.state_dict().items():
            sd[f"model.diffusion_model.{name}_embeddings_connector.{k}"] = v
    config = {
        "transformer": {
            **{k: TINY23[k] for k in SWITCHES_23},
            **{k: TINY23[k] for k in TINY23 if k.startswith(("connector_", "audio_connector_"))},
            "connector_num_learnable_registers": 8,
            "connector_positional_embedding_max_pos": [4096],
            "num_attention_heads": TINY23["num_attention_heads"],
            "attention_head_dim": TINY23["attention_head_dim"],
            "audio_num_attention_heads": TINY23["audio_num_attention_heads"],
            "audio_attention_head_dim": TINY23["audio_attention_head_dim"],
            "rope_type": "split",
            "frequencies_precision": "float64",
        }
    }
    save_file({k: v.contiguous().float() for k, v in sd.items()}, out / "tiny_ltx_text23.safetensors",
              metadata={"config": json.dumps(config), "model_version": MODEL_VERSION})
    v1 = load_file(out / "goldens.safetensors")
    gold = {}
    for tag in ("prompt", "negative"):
        hs = v1[f"{tag}.hidden_states"]
        hidden_states = tuple(hs[i] for i in range(hs.shape[0]))
        mask = v1[f"{tag}.attention_mask"].to(torch.int64)
        feats_v, feats_a = extractor(hidden_states, mask, "left")
        res = proc.process_hidden_states(hidden_states, mask, padding_side="left")
        gold[f"{tag}.video_features"], gold[f"{tag}.audio_features"] = feats_v, feats_a
        gold[f"{tag}.video"], gold[f"{tag}.audio"] = res.video_encoding, res.audio_encoding
    save_file({k: v.contiguous().float() for k, v in gold.items()}, out / "goldens23.safetensors")

    with torch.device("meta"):
        big = EmbeddingsProcessorConfigurator.from_config({"transformer": REAL_23})
    renames = {
        "feature_extractor.": "text_embedding_projection.",
        "video_connector.": "model.diffusion_model.video_embeddings_connector.",
        "audio_connector.": "model.diffusion_model.audio_embeddings_connector.",
    }
    lines = []
    for k, v in sorted(big.state_dict().items()):
        p = next(p for p in renames if k.startswith(p))
        lines.append(f"{renames[p]}{k[len(p):]} {list(v.shape)}")
    (out / "ltx23_22b_text_manifest.txt").write_text("\n".join(sorted(lines)) + "\n")
    params = sum(v.numel() for v in big.state_dict().values())
    print(f"text: {len(gold)} goldens, {len(lines)} 22B entries, {params / 1e9:.2f} B parameters")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.manual_seed(0)
    transformer_goldens()
    text_goldens()
