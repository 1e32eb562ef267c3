"""Golden generator for the decoders port (engine/src/video_vae, upsampler.rs, audio_vae).

Runs the official PyTorch reference (PyPI ltx-core==1.0.0) on tiny configurations (ltx2-architecture.md
section 9, narrowed where noted to keep the fixtures small) and writes f16 weights + f32/f16 goldens to
engine/tests/fixtures/{video_vae,upsampler,audio_vae}/. Every module is built by ltx-core's own
configurator from the same `config` metadata the Rust side parses; weights are seeded random values
rounded to f16 (so the f16 files hold exactly the weights the f32 reference ran with). No maths is
reimplemented here: every expected value is produced by an ltx-core function.

Dev machine only (never in CI); see engine/goldens/README.md.
"""

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from ltx_core.model.audio_vae.audio_vae import decode_audio
from ltx_core.model.audio_vae.model_configurator import AudioDecoderConfigurator, VocoderConfigurator
from ltx_core.model.upsampler.model import upsample_video
from ltx_core.model.upsampler.model_configurator import LatentUpsamplerConfigurator
from ltx_core.model.video_vae.model_configurator import VideoDecoderConfigurator, VideoEncoderConfigurator
from ltx_core.model.video_vae.tiling import SpatialTilingConfig, TemporalTilingConfig, TilingConfig

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
torch.set_grad_enabled(False)
GEN = torch.Generator().manual_seed(20261127)


def randomise(module: torch.nn.Module) -> None:
    """Seeded weights ~ N(0, 1/fan_in) (biases small), stats positive, all rounded to f16."""
    for name, p in list(module.named_parameters()) + list(module.named_buffers()):
        if name.endswith("blur_down.kernel"):
            continue  # a fixed binomial filter, not a weight
        if "std-of-means" in name:
            v = 0.5 + torch.rand(p.shape, generator=GEN)
        elif "mean-of-means" in name:
            v = 0.3 * torch.randn(p.shape, generator=GEN)
        elif name.endswith("timestep_scale_multiplier"):
            v = torch.tensor(1000.0)
        elif p.ndim >= 2:
            fan_in = p[0].numel() if "ups." not in name else p.shape[0] * p.shape[2] // 2
            v = torch.randn(p.shape, generator=GEN) / fan_in**0.5
        else:
            v = 0.1 * torch.randn(p.shape, generator=GEN)
        p.copy_(v.half().float())


def weights(module: torch.nn.Module, prefix: str) -> dict:
    return {prefix + k: v.detach().half().contiguous() for k, v in module.state_dict().items()}


def save(folder: str, name: str, tensors: dict, config: dict | None = None) -> None:
    out = FIXTURES / folder
    out.mkdir(parents=True, exist_ok=True)
    meta = {"config": json.dumps(config)} if config is not None else None
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out / name), metadata=meta)
    print(f"{out / name}: {(out / name).stat().st_size / 1e3:.0f} kB")


def video_vae() -> None:
    # §9 blocks; decoder base channels 4 (not 8) so the decoder weights stay ~0.3 MB in f16.
    vae = {
        "dims": 3,
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": 8,
        "patch_size": 4,
        "norm_layer": "pixel_norm",
        "latent_log_var": "uniform",
        "encoder_blocks": [
            ["res_x", {"num_layers": 1}],
            ["compress_space_res", {"multiplier": 2}],
            ["compress_time_res", {"multiplier": 2}],
            ["compress_all_res", {"multiplier": 2}],
            ["compress_all_res", {"multiplier": 2}],
        ],
        "decoder_blocks": [
            ["res_x", {"num_layers": 1}],
            ["compress_all", {"residual": True, "multiplier": 2}],
            ["res_x", {"num_layers": 1}],
            ["compress_all", {"residual": True, "multiplier": 2}],
            ["res_x", {"num_layers": 1}],
            ["compress_all", {"residual": True, "multiplier": 2}],
            ["res_x", {"num_layers": 1}],
        ],
        "causal_decoder": False,
        "timestep_conditioning": True,
        "decoder_base_channels": 4,
    }
    config = {"vae": vae}
    encoder = VideoEncoderConfigurator.from_config(config).eval()
    decoder = VideoDecoderConfigurator.from_config(config).eval()
    randomise(encoder)
    randomise(decoder)
    decoder.per_channel_statistics.load_state_dict(encoder.per_channel_statistics.state_dict())
    decoder.decode_noise_scale = 0.0

    tensors = {
        **{k: v for k, v in weights(encoder, "vae.encoder.").items() if "per_channel" not in k},
        **{k: v for k, v in weights(decoder, "vae.decoder.").items() if "per_channel" not in k},
        **{
            "vae.per_channel_statistics." + k: v.half()
            for k, v in encoder.per_channel_statistics.state_dict().items()
        },
    }
    save("video_vae", "tiny_vae.safetensors", tensors, config)

    video = (torch.rand((1, 3, 9, 64, 64), generator=GEN) * 2 - 1).half().float()
    latent = torch.randn((1, 8, 2, 2, 2), generator=GEN)
    tiled_latent = torch.randn((1, 8, 4, 3, 3), generator=GEN)
    tiling = TilingConfig(
        spatial_config=SpatialTilingConfig(tile_size_in_pixels=64, tile_overlap_in_pixels=32),
        temporal_config=TemporalTilingConfig(tile_size_in_frames=24, tile_overlap_in_frames=8),
    )
    tiled = torch.cat(list(decoder.tiled_decode(tiled_latent, tiling)), dim=2)
    goldens = {
        "encode.video": video.half(),
        "encode.latent": encoder(video),
        "decode.latent": latent,
        "decode.video": decoder(latent).half(),
        "tiled.latent": tiled_latent,
        # every second pixel of the tiled decode (full output would be 1.4 MB)
        "tiled.video_stride2": tiled[:, :, :, ::2, ::2].half(),
    }
    save("video_vae", "goldens.safetensors", goldens)

    upsampler_config = {
        "in_channels": 8,
        "mid_channels": 32,
        "num_blocks_per_stage": 1,
        "dims": 3,
        "spatial_upsample": True,
        "temporal_upsample": False,
        "spatial_scale": 2.0,
        "rational_resampler": True,
    }
    upsampler = LatentUpsamplerConfigurator.from_config(upsampler_config).eval()
    randomise(upsampler)
    save("upsampler", "tiny_upsampler.safetensors", weights(upsampler, ""), upsampler_config)
    up_latent = torch.randn((1, 8, 2, 3, 4), generator=GEN)
    save(
        "upsampler",
        "goldens.safetensors",
        {"latent": up_latent, "upsampled": upsample_video(up_latent, encoder, upsampler)},
    )


def audio() -> None:
    config = {
        "audio_vae": {
            "model": {
                "params": {
                    "ddconfig": {
                        "ch": 16,
                        "out_ch": 2,
                        "ch_mult": [1, 2, 4],
                        "num_res_blocks": 1,
                        "attn_resolutions": [],
                        "resolution": 16,
                        "z_channels": 1,
                        "norm_type": "pixel",
                        "causality_axis": "height",
                        "mid_block_add_attention": False,
                        "mel_bins": 64,
                    },
                    "sampling_rate": 16000,
                }
            },
            "preprocessing": {"stft": {"hop_length": 160, "causal": True}},
        },
        "vocoder": {
            "resblock_kernel_sizes": [3],
            "resblock_dilation_sizes": [[1, 3, 5]],
            "upsample_rates": [2, 2],
            "upsample_kernel_sizes": [4, 4],
            "upsample_initial_channel": 32,
            "resblock": "1",
            "output_sampling_rate": 24000,
            "stereo": True,
        },
    }
    decoder = AudioDecoderConfigurator.from_config(config).eval()
    vocoder = VocoderConfigurator.from_config(config).eval()
    randomise(decoder)
    randomise(vocoder)
    tensors = {
        **{k: v for k, v in weights(decoder, "audio_vae.decoder.").items() if "per_channel" not in k},
        **{
            "audio_vae.per_channel_statistics." + k: v.half()
            for k, v in decoder.per_channel_statistics.state_dict().items()
        },
        **weights(vocoder, "vocoder."),
    }
    save("audio_vae", "tiny_audio.safetensors", tensors, config)

    latent = torch.randn((1, 1, 5, 16), generator=GEN)
    mel = decoder(latent)
    mel_in = torch.randn((1, 2, 7, 64), generator=GEN)
    goldens = {
        "decoder.latent": latent,
        "decoder.mel": mel,
        "vocoder.mel": mel_in,
        "vocoder.wave": vocoder(mel_in),
        "decode_audio.wave": decode_audio(latent, decoder, vocoder).waveform,
    }
    save("audio_vae", "goldens.safetensors", goldens)


if __name__ == "__main__":
    video_vae()
    audio()
