"""Golden generator for the guided pipelines and image-to-video (engine/src/pipeline/sample.rs).

On the bundled tiny model set (`ltx-generate bundle-tiny DIR`), loaded with strict key checks (the
transformer's state dict and every LoRA pair must match the model exactly), with recorded noise and
contexts, runs ltx-pipelines 1.0.0's own pieces below the prompt:

- `one_stage`: `TI2VidOneStagePipeline`'s sampling — `denoise_audio_video` over `LTX2Scheduler` sigmas
  with `multi_modal_guider_factory_denoising_func` (CFG, STG on block 1, rescale, modality guidance).
- `two_stage`: `TI2VidTwoStagesPipeline`'s — the same guided stage 1 at half size, `upsample_video`, stage 2
  over `STAGE_2_DISTILLED_SIGMA_VALUES` re-noised from the stage-1 results with the distilled LoRA fused
  (`_prepare_deltas`: W + (B·strength)·A).
- `i2v`: `DistilledPipeline`'s with a first-frame image: `resize_and_center_crop` + `normalize_latent`
  (`load_image_conditioning` with crf 0: the H.264 round trip is not bit-reproducible across codecs),
  the video VAE encoder, `VideoConditionByLatentIndex` (strength 0.8) at both stages.

Writes engine/tests/fixtures/pipeline/guided.safetensors.

    cargo run -p ltx-engine --bin ltx-generate -- bundle-tiny /tmp/tiny
    LTX_CORE_V12_SRC=<v1.2.0>/packages/ltx-core/src /work/venv-ref/bin/python engine/goldens/pipelines_goldens.py /tmp/tiny [ltx-2|ltx-2.3]

(ltx-2.3: the bundle's 2.3 set, written to guided23.safetensors.)

The A<->V cross-attention AdaLN is ltx-core 1.2.0's (v12_graft.py): it differs from 1.0.0 on the i2v tokens.
"""
import sys
from pathlib import Path
from types import SimpleNamespace

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
import transformer_goldens as tg  # noqa: E402
from pipeline_goldens import CTX, FPS, GENERATIONS, GivenNoiser, build_model, context_dims, load_tiny, load_upsampler  # noqa: E402

from ltx_core.components.diffusion_steps import EulerDiffusionStep  # noqa: E402
from ltx_core.components.guiders import MultiModalGuiderParams, create_multimodal_guider_factory  # noqa: E402
from ltx_core.components.patchifiers import AudioPatchifier, VideoLatentPatchifier  # noqa: E402
from ltx_core.components.schedulers import LTX2Scheduler  # noqa: E402
from ltx_core.conditioning.types.latent_cond import VideoConditionByLatentIndex  # noqa: E402
from ltx_core.loader.fuse_loras import _prepare_deltas  # noqa: E402
from ltx_core.model.transformer.model import X0Model  # noqa: E402
from ltx_core.model.upsampler.model import upsample_video  # noqa: E402
from ltx_core.model.video_vae.model_configurator import VideoEncoderConfigurator  # noqa: E402
from ltx_core.tools import AudioLatentTools, VideoLatentTools  # noqa: E402
from ltx_core.types import AudioLatentShape, VideoLatentShape  # noqa: E402
from ltx_pipelines.utils.constants import DISTILLED_SIGMA_VALUES, STAGE_2_DISTILLED_SIGMA_VALUES  # noqa: E402
from ltx_pipelines.utils.helpers import (  # noqa: E402
    create_noised_state,
    multi_modal_guider_factory_denoising_func,
    simple_denoising_func,
)
from ltx_pipelines.utils.media_io import normalize_latent, resize_and_center_crop  # noqa: E402
from ltx_pipelines.utils.samplers import euler_denoising_loop  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "pipeline"
torch.set_grad_enabled(False)
STEPS = 3
STRENGTH = 0.8
VIDEO = MultiModalGuiderParams(cfg_scale=3.0, stg_scale=1.0, rescale_scale=0.7, modality_scale=3.0, skip_step=0, stg_blocks=[1])
AUDIO = MultiModalGuiderParams(cfg_scale=7.0, stg_scale=1.0, rescale_scale=0.7, modality_scale=3.0, skip_step=0, stg_blocks=[1])


def with_lora(model, config, lora_file):
    """The stage-2 model: every LoRA pair fused into its weight, each pair required to hit one."""
    lora = load_file(lora_file)
    lsd = SimpleNamespace(sd={k[len("diffusion_model."):]: v for k, v in lora.items()})
    sd = model.state_dict()
    modules = {k[: -len(".lora_A.weight")] for k in lsd.sd if k.endswith(".lora_A.weight")}
    assert len(modules) * 2 == len(lsd.sd), "unpaired LoRA tensors"
    assert all(m + ".weight" in sd for m in modules), "LoRA module missing from the model"
    fused = {}
    for key, w in sd.items():
        delta = _prepare_deltas([(lsd, 1.0)], key, torch.float32, w.device) if key.endswith(".weight") else None
        fused[key] = w + delta if delta is not None else w
    return X0Model(build_model(config, {tg.PREFIX + k: v for k, v in fused.items()}))


def main(models: Path, generation: str) -> None:
    files = GENERATIONS[generation]
    config, sd, model = load_tiny(models / f"{files['dev']}.safetensors")
    x0 = X0Model(model)
    x0_lora = with_lora(model, config, models / f"{files['lora']}.safetensors")
    upsampler = load_upsampler(models, files["upscaler"])
    encoder = VideoEncoderConfigurator.from_config({"vae": config["vae"]}).eval()
    enc = {k[len("vae.encoder."):]: v.float() for k, v in sd.items() if k.startswith("vae.encoder.")}
    enc.update({"per_channel_statistics." + k[len("vae.per_channel_statistics."):]: v.float()
                for k, v in sd.items() if k.startswith("vae.per_channel_statistics.")})
    missing, unexpected = encoder.load_state_dict(enc, strict=False)
    assert not unexpected and all("per_channel" in k for k in missing), (missing, unexpected)

    c = config["vae"]["latent_channels"]
    a_ch = config["audio_vae"]["model"]["params"]["ddconfig"]["z_channels"]
    half = VideoLatentShape(batch=1, channels=c, frames=2, height=2, width=2)
    full = VideoLatentShape(batch=1, channels=c, frames=2, height=4, width=4)
    sa = AudioLatentShape(batch=1, channels=a_ch, frames=9, mel_bins=16)
    g = torch.Generator().manual_seed(2027)
    randn = lambda *s: torch.randn(s, generator=g, dtype=torch.float32)  # noqa: E731
    inputs = {
        "video_context": randn(1, CTX, context_dims(config)[0]),
        "audio_context": randn(1, CTX, context_dims(config)[1]),
        "video_negative": randn(1, CTX, context_dims(config)[0]),
        "audio_negative": randn(1, CTX, context_dims(config)[1]),
        "image": (torch.rand((50, 70, 3), generator=g) * 255).round(),
    }
    for run, (s1, s2) in {"one_stage": (full, None), "two_stage": (half, full), "i2v": (half, full)}.items():
        inputs[f"{run}.noise_video_1"] = randn(1, s1.token_count(), c)
        inputs[f"{run}.noise_audio_1"] = randn(1, sa.frames, a_ch * 16)
        if s2 is not None:
            inputs[f"{run}.noise_video_2"] = randn(1, s2.token_count(), c)
            inputs[f"{run}.noise_audio_2"] = randn(1, sa.frames, a_ch * 16)

    vc, ac, vn, an = (inputs[k] for k in ("video_context", "audio_context", "video_negative", "audio_negative"))
    stepper = EulerDiffusionStep()
    dev, dt = torch.device("cpu"), torch.float32
    au = AudioLatentTools(AudioPatchifier(1), sa)

    def guided(model):
        return multi_modal_guider_factory_denoising_func(
            create_multimodal_guider_factory(VIDEO, negative_context=vn),
            create_multimodal_guider_factory(AUDIO, negative_context=an),
            vc, ac, model,
        )

    def first_frame(shape):
        h, w = shape.height * 32, shape.width * 32
        image = normalize_latent(resize_and_center_crop(inputs["image"], h, w), dev, dt)
        return [VideoConditionByLatentIndex(latent=encoder(image), strength=STRENGTH, latent_idx=0)]

    def stage(run, n, shape, sigmas, denoise, conds, noise_scale=1.0, video0=None, audio0=None):
        noiser = GivenNoiser([inputs[f"{run}.noise_video_{n}"], inputs[f"{run}.noise_audio_{n}"]])
        vt = VideoLatentTools(VideoLatentPatchifier(1), shape, FPS)
        vs = create_noised_state(vt, conds, noiser, dt, dev, noise_scale=noise_scale, initial_latent=video0)
        as_ = create_noised_state(au, [], noiser, dt, dev, noise_scale=noise_scale, initial_latent=audio0)
        vs, as_ = euler_denoising_loop(sigmas, vs, as_, stepper, denoise)
        return vt.unpatchify(vt.clear_conditioning(vs)).latent, au.unpatchify(au.clear_conditioning(as_)).latent

    outputs = {}
    sigmas = LTX2Scheduler().execute(steps=STEPS).to(torch.float32)
    sigmas2 = torch.tensor(STAGE_2_DISTILLED_SIGMA_VALUES)
    outputs["one_stage.video"], outputs["one_stage.audio"] = stage("one_stage", 1, full, sigmas, guided(x0), [])

    v1, a1 = stage("two_stage", 1, half, sigmas, guided(x0), [])
    up = upsample_video(v1[:1], encoder, upsampler)
    outputs["two_stage.video"], outputs["two_stage.audio"] = stage(
        "two_stage", 2, full, sigmas2, simple_denoising_func(vc, ac, x0_lora), [], float(sigmas2[0]), up, a1)

    simple = simple_denoising_func(vc, ac, x0)
    v1, a1 = stage("i2v", 1, half, torch.tensor(DISTILLED_SIGMA_VALUES), simple, first_frame(half))
    up = upsample_video(v1[:1], encoder, upsampler)
    outputs["i2v.video"], outputs["i2v.audio"] = stage(
        "i2v", 2, full, sigmas2, simple, first_frame(full), float(sigmas2[0]), up, a1)

    OUT.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous().float() for k, v in {**inputs, **outputs}.items()}, OUT / f"guided{files['suffix']}.safetensors")
    for k, v in outputs.items():
        print(k, tuple(v.shape), float(v.abs().mean()))


if __name__ == "__main__":
    from v12_graft import graft

    print("A<->V AdaLN from", graft())
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "ltx-2")
