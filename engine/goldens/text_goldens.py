"""Golden generator for the prompt-encoding port (engine/src/text).

Runs the official references on tiny configurations (ltx2-architecture.md section 9, text side) and
writes small f32 fixtures to engine/tests/fixtures/text/:
  - a Gemma-3-style tokenizer.json (BPE with byte fallback, the "▁" normaliser, <pad>=0 <eos>=1 <bos>=2
    <unk>=3), trained here with the `tokenizers` library since the real one cannot be downloaded, and
    the ids/masks ltx-core's `LTXVGemmaTokenizer` (HF transformers) produces for a list of prompts;
  - a tiny random Gemma-3 text model in the HF sharded layout (two shards + index + config.json, keys
    `language_model.model.*`, plus a vision-tower tensor that must be skipped) and the hidden states of
    HF transformers' `Gemma3TextModel` (eager attention: finite masks) for a left-padded prompt;
  - a tiny LTX checkpoint holding the feature extractor and both connectors in the real key layout, and
    ltx-core's FeatureExtractorV1 / Embeddings1DConnector / EmbeddingsProcessor outputs;
  - the names and shapes of Gemma-3-12B's text model (meta-device build of ltx-core's config).
It imports the references and reimplements no maths. Dev machine only (see engine/goldens/README.md).
"""

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, normalizers, trainers
from transformers import Gemma3TextConfig
from transformers.models.gemma3.modeling_gemma3 import Gemma3TextModel

from ltx_core.model.transformer.rope import LTXRopeType
from ltx_core.text_encoders.gemma.config import GEMMA3_CONFIG_FOR_LTX
from ltx_core.text_encoders.gemma.embeddings_connector import Embeddings1DConnector
from ltx_core.text_encoders.gemma.embeddings_processor import EmbeddingsProcessor, convert_to_additive_mask
from ltx_core.text_encoders.gemma.encoders.encoder_configurator import EmbeddingsProcessorConfigurator
from ltx_core.text_encoders.gemma.feature_extractor import FeatureExtractorV1
from ltx_core.text_encoders.gemma.tokenizer import LTXVGemmaTokenizer
from ltx_pipelines.utils.constants import DEFAULT_NEGATIVE_PROMPT

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "text"
torch.set_grad_enabled(False)
SEQ = 16  # tokenizer max_length in the tiny pipeline (1024 in production)

# ------------------------------------------------------------------------------------------------
# Tokenizer
# ------------------------------------------------------------------------------------------------
SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>"] + [f"<0x{i:02X}>" for i in range(256)]
CORPUS = [
    "a cat walks on the beach at sunset, waves roll in",
    "a red car drives through a rainy city street at night with neon lights",
    "close-up of a woman smiling, soft light, shallow depth of field",
    "the camera pans slowly across a mountain lake; birds sing in the distance",
    "two people talk in a cafe, background chatter, warm tones",
    DEFAULT_NEGATIVE_PROMPT,
] * 4


def build_tokenizer(dir_: Path) -> None:
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=SPECIALS, show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    tok.save(str(dir_ / "tokenizer.json"))
    # GemmaTokenizerFast installs the `<bos> $A` post-processor itself (add_bos_token), as for the real one.
    (dir_ / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "GemmaTokenizerFast",
                "bos_token": "<bos>",
                "eos_token": "<eos>",
                "pad_token": "<pad>",
                "unk_token": "<unk>",
                "add_bos_token": True,
                "add_eos_token": False,
            },
            indent=1,
        )
    )


TOKENIZER_PROMPTS = [
    "a cat walks on the beach",
    "",
    "   \t\n ",
    "  leading and trailing spaces  ",
    "double  spaces\tand a tab",
    "unicode: café, naïve, 東京, 🙂🎬",
    "line one\nline two",
    "zzqx unseen wordsZ",
    "a red car drives through a rainy city street at night with neon lights " * 6,
    DEFAULT_NEGATIVE_PROMPT,
]


def tokenizer_goldens(dir_: Path) -> list[dict]:
    rows = []
    for max_length in (SEQ, 64):
        tok = LTXVGemmaTokenizer(str(dir_), max_length=max_length)
        for p in TOKENIZER_PROMPTS:
            pairs = tok.tokenize_with_weights(p)["gemma"]
            full = tok.tokenizer(p.strip(), truncation=False)["input_ids"]
            rows.append(
                {
                    "prompt": p,
                    "max_length": max_length,
                    "ids": [int(t) for t, _ in pairs],
                    "mask": [int(w) for _, w in pairs],
                    "truncated": len(full) > max_length,
                }
            )
    return rows


# ------------------------------------------------------------------------------------------------
# Tiny Gemma-3 text model (HF transformers)
# ------------------------------------------------------------------------------------------------
TINY_TEXT_CONFIG = {
    "model_type": "gemma3_text",
    "vocab_size": 512,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 6,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 16,
    "query_pre_attn_scalar": 16,
    "sliding_window": 4,  # < SEQ: the local-window path is exercised (production: 1024 = sequence)
    "rope_theta": 1000000.0,
    "rope_local_base_freq": 10000.0,
    "rope_scaling": {"factor": 8.0, "rope_type": "linear"},
    "rms_norm_eps": 1e-6,
    "hidden_activation": "gelu_pytorch_tanh",
    "max_position_embeddings": 256,
    "pad_token_id": 0,
    "bos_token_id": 2,
    "eos_token_id": 1,
}


def seeded_(module: torch.nn.Module, seed: int, std: float = 0.15) -> None:
    g = torch.Generator().manual_seed(seed)
    for _, p in sorted(module.named_parameters()):
        p.copy_(torch.randn(p.shape, generator=g) * std)


def build_gemma(dir_: Path):
    cfg = Gemma3TextConfig(**TINY_TEXT_CONFIG, attn_implementation="eager")
    model = Gemma3TextModel(cfg).eval()
    seeded_(model, 1)
    sd = {f"language_model.model.{k}": v.contiguous() for k, v in model.state_dict().items()}
    names = sorted(sd)
    shards = [names[: len(names) // 2], names[len(names) // 2 :]]
    weight_map = {}
    for i, keys in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-00002.safetensors"
        tensors = {k: sd[k] for k in keys}
        if i == 1:  # the vision tower lives in the same shards and must not be loaded
            tensors["vision_tower.vision_model.post_layernorm.weight"] = torch.ones(8)
        save_file(tensors, str(dir_ / fname), metadata={"format": "pt"})
        weight_map.update({k: fname for k in tensors})
    (dir_ / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map}, indent=1, sort_keys=True)
    )
    text_cfg = {k: v for k, v in TINY_TEXT_CONFIG.items()}
    text_cfg["sliding_window_pattern"] = 6
    (dir_ / "config.json").write_text(
        json.dumps(
            {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "text_config": text_cfg},
            indent=1,
        )
    )
    assert cfg.layer_types == ["sliding_attention"] * 5 + ["full_attention"], cfg.layer_types
    return model


# ------------------------------------------------------------------------------------------------
# Feature extractor and connectors (ltx-core), in the LTX single-file key layout
# ------------------------------------------------------------------------------------------------
CONNECTOR = dict(
    attention_head_dim=4,
    num_attention_heads=3,
    num_layers=2,
    positional_embedding_max_pos=[4096],
    num_learnable_registers=8,
    rope_type=LTXRopeType.SPLIT,
    double_precision_rope=True,
)
LTX_TEXT_CONFIG = {
    "transformer": {
        "connector_attention_head_dim": 4,
        "connector_num_attention_heads": 3,
        "connector_num_layers": 2,
        "connector_num_learnable_registers": 8,
        "connector_positional_embedding_max_pos": [4096],
        "rope_type": "split",
        "frequencies_precision": "float64",
    }
}


def build_processor() -> EmbeddingsProcessor:
    layers = TINY_TEXT_CONFIG["num_hidden_layers"] + 1
    extractor = FeatureExtractorV1(torch.nn.Linear(32 * layers, 12, bias=False), is_av=True)
    video, audio = Embeddings1DConnector(**CONNECTOR), Embeddings1DConnector(**CONNECTOR)
    for i, m in enumerate((extractor, video, audio)):
        seeded_(m, 10 + i, std=0.3)
    for c in (video, audio):
        c.learnable_registers.data = c.learnable_registers.data.float()
    return EmbeddingsProcessor(feature_extractor=extractor, video_connector=video, audio_connector=audio).eval()


def ltx_state_dict(proc: EmbeddingsProcessor) -> dict:
    out = {"text_embedding_projection.aggregate_embed.weight": proc.feature_extractor.aggregate_embed.weight}
    for name, c in (("video", proc.video_connector), ("audio", proc.audio_connector)):
        for k, v in c.state_dict().items():
            out[f"model.diffusion_model.{name}_embeddings_connector.{k}"] = v
    return {k: v.contiguous().float() for k, v in out.items()}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    gemma_dir = OUT / "gemma"
    gemma_dir.mkdir(exist_ok=True)
    build_tokenizer(gemma_dir)
    (OUT / "tokenizer_cases.json").write_text(json.dumps(tokenizer_goldens(gemma_dir), ensure_ascii=False, indent=0))

    gemma = build_gemma(gemma_dir)
    proc = build_processor()
    save_file(ltx_state_dict(proc), str(OUT / "tiny_ltx_text.safetensors"), metadata={"config": json.dumps(LTX_TEXT_CONFIG)})

    goldens = {}
    cases = (
        ("prompt", "  a cat walks on the beach ", SEQ),
        ("negative", DEFAULT_NEGATIVE_PROMPT, SEQ),
        # The production length: 1024 tokens, positions up to 1023, 682 padding tokens and registers.
        ("long", DEFAULT_NEGATIVE_PROMPT, 1024),
    )
    for tag, prompt, max_length in cases:
        tok = LTXVGemmaTokenizer(str(gemma_dir), max_length=max_length)
        pairs = tok.tokenize_with_weights(prompt)["gemma"]
        ids = torch.tensor([[int(t) for t, _ in pairs]])
        mask = torch.tensor([[int(w) for _, w in pairs]])
        hidden = gemma(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        out = proc.process_hidden_states(hidden, mask, padding_side="left")
        feats, _ = proc.feature_extractor(hidden, mask, "left")
        goldens[f"{tag}.input_ids"] = ids.to(torch.int32)
        goldens[f"{tag}.attention_mask"] = mask.to(torch.int32)
        goldens[f"{tag}.hidden_states"] = torch.stack(hidden, dim=0)  # (L+1, B, T, D)
        goldens[f"{tag}.features"] = feats
        goldens[f"{tag}.video"] = out.video_encoding
        goldens[f"{tag}.audio"] = out.audio_encoding
        additive = convert_to_additive_mask(mask, feats.dtype)
        goldens[f"{tag}.video_connector_only"] = proc.video_connector(feats, additive)[0]
    print("prompt mask:", goldens["prompt.attention_mask"].tolist())
    save_file({k: v.contiguous() for k, v in goldens.items()}, str(OUT / "goldens.safetensors"))

    # Gemma-3-12B text model manifest (ltx-core's hard-coded config, meta device).
    real = Gemma3TextConfig(**{k: v for k, v in GEMMA3_CONFIG_FOR_LTX.text_config.__dict__.items()
                               if k not in ("rope_scaling",)},
                            rope_scaling={"factor": 8.0, "rope_type": "linear"})
    with torch.device("meta"):
        big = Gemma3TextModel(real)
    lines = [f"language_model.model.{k} {list(v.shape)}" for k, v in sorted(big.state_dict().items())]
    (OUT / "gemma3_12b_text_manifest.txt").write_text("\n".join(lines) + "\n")

    # LTX-2 19B text side (extractor + connectors) from the published metadata, in checkpoint key names.
    meta = json.loads((OUT.parent / "transformer" / "ltx2_19b_config.json").read_text())
    with torch.device("meta"):
        big_proc = EmbeddingsProcessorConfigurator.from_config(meta)
    renames = {
        "feature_extractor.": "text_embedding_projection.",
        "video_connector.": "model.diffusion_model.video_embeddings_connector.",
        "audio_connector.": "model.diffusion_model.audio_embeddings_connector.",
    }
    lines = []
    for k, v in sorted(big_proc.state_dict().items()):
        src = next(p for p in renames if k.startswith(p))
        lines.append(f"{renames[src]}{k[len(src):]} {list(v.shape)}")
    (OUT / "ltx2_19b_text_manifest.txt").write_text("\n".join(sorted(lines)) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
