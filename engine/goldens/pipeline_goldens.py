"""Golden generator for the distilled pipeline's sampling (engine/src/pipeline/distilled.rs).

Runs ltx-pipelines 1.0.0's two-stage distilled flow below the prompt (`create_noised_state`,
`euler_denoising_loop` + `simple_denoising_func` over DISTILLED_SIGMA_VALUES, `upsample_video`, the
stage-2 re-noise to STAGE_2_DISTILLED_SIGMA_VALUES[0] and its loop) on the bundled tiny model set
(`ltx-generate bundle-tiny DIR`) with seeded noise and contexts, and writes them with the results to
engine/tests/fixtures/pipeline/goldens.safetensors. The only code here besides wiring is a noiser that
hands out the recorded noise with `GaussianNoiser`'s formula.

    cargo run -p ltx-engine --bin ltx-generate -- bundle-tiny /tmp/tiny
    /work/venv-ref/bin/python engine/goldens/pipeline_goldens.py /tmp/tiny [ltx-2|ltx-2.3 [1.5]]

For LTX-2.3 (the bundle's 2.3 set: gated transformer, FeatureExtractorV2 contexts at the streams' widths) it
writes goldens23.safetensors; with `1.5`, the same flow through the ×1.5 upscaler (goldens23_x15).
"""
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import transformer_goldens as tg  # noqa: E402

from ltx_core.components.diffusion_steps import EulerDiffusionStep  # noqa: E402
from ltx_core.components.patchifiers import AudioPatchifier, VideoLatentPatchifier  # noqa: E402
from ltx_core.model.transformer.model import X0Model  # noqa: E402
from ltx_core.model.transformer.model_configurator import LTXModelConfigurator  # noqa: E402
from ltx_core.model.upsampler.model import upsample_video  # noqa: E402
from ltx_core.model.upsampler.model_configurator import LatentUpsamplerConfigurator  # noqa: E402
from ltx_core.model.video_vae.model_configurator import VideoEncoderConfigurator  # noqa: E402
from ltx_core.tools import AudioLatentTools, VideoLatentTools  # noqa: E402
from ltx_core.types import AudioLatentShape, VideoLatentShape  # noqa: E402
from ltx_pipelines.utils.constants import DISTILLED_SIGMA_VALUES, STAGE_2_DISTILLED_SIGMA_VALUES  # noqa: E402
from ltx_pipelines.utils.helpers import create_noised_state, simple_denoising_func  # noqa: E402
from ltx_pipelines.utils.samplers import euler_denoising_loop  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "pipeline"
torch.set_grad_enabled(False)
FPS, CTX = 24.0, 16
# The bundle's files per generation and the suffix of the goldens written for it.
GENERATIONS = {
    "ltx-2": dict(distilled="ltx-2-19b-distilled", dev="ltx-2-19b-dev", lora="ltx-2-19b-distilled-lora-384",
                  upscaler="ltx-2-spatial-upscaler-x2-1.0", suffix=""),
    "ltx-2.3": dict(distilled="ltx-2.3-22b-distilled-1.1", dev="ltx-2.3-22b-dev",
                    lora="ltx-2.3-22b-distilled-lora-384-1.1", upscaler="ltx-2.3-spatial-upscaler-x2-1.1", suffix="23"),
}


def context_dims(config: dict) -> tuple[int, int]:
    """The contexts' widths: the caption channels on LTX-2, the streams' inner dims when the text encoder
    projects (LTX-2.3's `caption_proj_before_connector`)."""
    t = config["transformer"]
    if t.get("caption_proj_before_connector"):
        return t["num_attention_heads"] * t["attention_head_dim"], t["audio_num_attention_heads"] * t["audio_attention_head_dim"]
    return t["caption_channels"], t["caption_channels"]


def build_model(config: dict, sd: dict) -> torch.nn.Module:
    """ltx-core's configurator on the checkpoint's own config, loaded with a strict key check."""
    model = LTXModelConfigurator.from_config(config).eval()
    model.load_state_dict(
        {k[len(tg.PREFIX):]: v for k, v in sd.items() if k.startswith(tg.PREFIX) and "embeddings_connector" not in k},
        assign=True,
    )
    return model


class GivenNoiser:
    def __init__(self, noises):
        self.noises = list(noises)

    def __call__(self, state, noise_scale=1.0):
        noise = self.noises.pop(0)
        scaled = state.denoise_mask * noise_scale
        return replace(state, latent=noise * scaled + state.latent * (1 - scaled))


def load_tiny(ckpt: Path):
    """The checkpoint's config and tensors, and its transformer (strict key check)."""
    with safe_open(ckpt, "pt") as f:
        config = json.loads(f.metadata()["config"])
    sd = load_file(ckpt)
    return config, sd, build_model(config, sd)


def load_upsampler(models: Path, name: str):
    up_file = models / f"{name}.safetensors"
    with safe_open(up_file, "pt") as f:
        up_config = json.loads(f.metadata()["config"])
    upsampler = LatentUpsamplerConfigurator.from_config(up_config).eval()
    upsampler.load_state_dict({k: v.float() for k, v in load_file(up_file).items()})
    return upsampler


def main(models: Path, generation: str = "ltx-2", upscale: str = "2") -> None:
    files = dict(GENERATIONS[generation])
    if upscale == "1.5":  # LTX-2.3's rational 3/2 upscaler: stage 1 at 2 x 2 latent cells, stage 2 at 3 x 3
        files.update(upscaler="ltx-2.3-spatial-upscaler-x1.5-1.0", suffix=files["suffix"] + "_x15")
    config, sd, model = load_tiny(models / f"{files['distilled']}.safetensors")
    x0 = X0Model(model)
    upsampler = load_upsampler(models, files["upscaler"])
    encoder = VideoEncoderConfigurator.from_config({"vae": config["vae"]}).eval()
    stats = {k.split("vae.per_channel_statistics.")[1]: v.float() for k, v in sd.items() if "per_channel_statistics" in k and k.startswith("vae.")}
    encoder.per_channel_statistics.load_state_dict(stats, strict=False)

    c = config["vae"]["latent_channels"]
    a_ch = config["audio_vae"]["model"]["params"]["ddconfig"]["z_channels"]
    s1 = VideoLatentShape(batch=1, channels=c, frames=2, height=2, width=2)
    side2 = 3 if upscale == "1.5" else 4
    s2 = VideoLatentShape(batch=1, channels=c, frames=2, height=side2, width=side2)
    sa = AudioLatentShape(batch=1, channels=a_ch, frames=9, mel_bins=16)
    g = torch.Generator().manual_seed(2026)
    randn = lambda *s: torch.randn(s, generator=g, dtype=torch.float32)  # noqa: E731
    inputs = {
        "video_context": randn(1, CTX, context_dims(config)[0]),
        "audio_context": randn(1, CTX, context_dims(config)[1]),
        "noise_video_1": randn(1, s1.token_count(), c),
        "noise_audio_1": randn(1, sa.frames, a_ch * 16),
        "noise_video_2": randn(1, s2.token_count(), c),
        "noise_audio_2": randn(1, sa.frames, a_ch * 16),
    }
    noiser = GivenNoiser([inputs[k] for k in ("noise_video_1", "noise_audio_1", "noise_video_2", "noise_audio_2")])
    denoise = simple_denoising_func(inputs["video_context"], inputs["audio_context"], x0)
    stepper = EulerDiffusionStep()
    dev, dt = torch.device("cpu"), torch.float32

    v1 = VideoLatentTools(VideoLatentPatchifier(1), s1, FPS)
    au = AudioLatentTools(AudioPatchifier(1), sa)
    vs = create_noised_state(v1, [], noiser, dt, dev)
    as_ = create_noised_state(au, [], noiser, dt, dev)
    vs, as_ = euler_denoising_loop(torch.tensor(DISTILLED_SIGMA_VALUES), vs, as_, stepper, denoise)
    stage1 = v1.unpatchify(v1.clear_conditioning(vs)).latent
    audio1 = au.unpatchify(au.clear_conditioning(as_)).latent
    upscaled = upsample_video(stage1[:1], encoder, upsampler)

    sigmas2 = torch.tensor(STAGE_2_DISTILLED_SIGMA_VALUES)
    v2 = VideoLatentTools(VideoLatentPatchifier(1), s2, FPS)
    vs = create_noised_state(v2, [], noiser, dt, dev, noise_scale=float(sigmas2[0]), initial_latent=upscaled)
    as_ = create_noised_state(au, [], noiser, dt, dev, noise_scale=float(sigmas2[0]), initial_latent=audio1)
    vs, as_ = euler_denoising_loop(sigmas2, vs, as_, stepper, denoise)
    outputs = {
        "stage_1_video": stage1,
        "upscaled": upscaled,
        "video": v2.unpatchify(v2.clear_conditioning(vs)).latent,
        "audio": au.unpatchify(au.clear_conditioning(as_)).latent,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous().float() for k, v in {**inputs, **outputs}.items()}, OUT / f"goldens{files['suffix']}.safetensors")
    for k, v in outputs.items():
        print(k, tuple(v.shape), float(v.abs().mean()))


if __name__ == "__main__":
    main(Path(sys.argv[1]), *sys.argv[2:4])
