"""Golden generator for the preview decoder port (engine/src/preview/decoder.rs): TAEHV's TAELTX decoder.

Runs the reference `TAEHV` class of github.com/madebyollin/taehv (`taehv.py`, imported from PYTHONPATH; never
copied into this repository) at its real TAELTX configuration on a tiny latent. The real decoder has ~10M
weights (40 MB in f32), too many for a fixture, so the weights are not stored: every tensor is filled from
a counter-based generator (splitmix64, one seed per tensor) that the Rust test reimplements bit for bit, and
only the recipe is committed (names, PyTorch shapes, scale, offset, seed). The reference then loads those
weights through its own path: a `.pth` named `taeltx_2.pth` (and `taeltx2_3.pth`), so that the reference's
own file-name rule picks the configuration (patch size 4, 128 latent channels, time upscale on every stage)
and its `load_state_dict` / `patch_tgrow_layers` run.

Writes engine/tests/fixtures/preview/:
- `taeltx_weights.json` — the weight recipe and the configuration the reference chose;
- `taeltx_goldens.safetensors` — `latent` (B, C, F, H, W) = (1, 128, 2, 2, 3) and `video` (B, F, H, W, 3) =
  (1, 9, 64, 96, 3), the reference's `decode_video` (f32, parallel mode), channels-last.

Dev machine only (never in CI); see engine/goldens/README.md. Usage:
    PYTHONPATH=/work/scratch/taehv /work/venv-ref/bin/python engine/goldens/taeltx_goldens.py
"""

import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from taehv import TAEHV

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "preview"
torch.set_grad_enabled(False)
SEED = 20261204
MASK = (1 << 64) - 1


def splitmix64(seed: int, n: int) -> np.ndarray:
    """The n outputs of splitmix64 seeded with `seed` (state += golden gamma before each output)."""
    with np.errstate(over="ignore"):
        i = np.arange(1, n + 1, dtype=np.uint64)
        z = np.uint64(seed & MASK) + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def uniform(seed: int, shape, scale: float, offset: float) -> np.ndarray:
    """offset + scale·(2u − 1), u = top 24 bits / 2^24, all in f32 (exact up to the last two roundings)."""
    n = int(np.prod(shape))
    u = (splitmix64(seed, n) >> np.uint64(40)).astype(np.float32) * np.float32(2.0**-24)
    v = (np.float32(2.0) * u - np.float32(1.0)) * np.float32(scale) + np.float32(offset)
    return v.astype(np.float32).reshape(shape)


def recipe(state: dict) -> list:
    """Per decoder tensor: He-uniform weights × 0.8 (activations stay of order 1 through the nine residual
    memory blocks; at × 1 they grow until the output saturates), small biases; the last conv is scaled down
    and centred on 0.5 so that the output lies inside (0, 1), where the final clamp does not hide errors."""
    rows = []
    for i, (name, t) in enumerate(sorted(state.items())):
        if not name.startswith("decoder."):
            continue
        shape = list(t.shape)
        last = name.startswith("decoder.22.")
        if name.endswith("bias"):
            scale, offset = 0.05, 0.5 if last else 0.0
        else:
            fan_in = int(np.prod(shape[1:]))
            scale, offset = (6.0 / fan_in) ** 0.5 * (0.15 if last else 0.8), 0.0
        # Stored as the f32 they are used as, so that any correct decimal parser gets them back exactly.
        rows.append([name, shape, float(np.float32(scale)), float(np.float32(offset)), SEED + i])
    return rows


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    # Shapes of the TAELTX state dict, from a TAEHV built as the file-name rule builds it.
    shapes = TAEHV(
        checkpoint_path=None,
        patch_size=4,
        latent_channels=128,
        encoder_time_downscale=(True, True, True),
        decoder_time_upscale=(True, True, True),
    ).state_dict()
    rows = recipe(shapes)
    state = {k: v.clone() for k, v in shapes.items()}
    for name, shape, scale, offset, seed in rows:
        state[name] = torch.from_numpy(uniform(seed, shape, scale, offset))

    gen = torch.Generator().manual_seed(SEED)
    latent = torch.randn((1, 128, 2, 2, 3), generator=gen)  # (B, C, F, H, W), LTX's layout
    videos, configs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for file in ["taeltx_2.pth", "taeltx2_3.pth"]:
            path = Path(tmp) / file
            torch.save(state, path)
            tae = TAEHV(checkpoint_path=str(path)).eval()
            configs[file] = {
                "patch_size": tae.patch_size,
                "latent_channels": tae.latent_channels,
                "t_upscale": tae.t_upscale,
                "frames_to_trim": tae.frames_to_trim,
            }
            video = tae.decode_video(latent.transpose(1, 2), parallel=True, show_progress_bar=False)
            videos[file] = video.permute(0, 1, 3, 4, 2).contiguous()  # (B, F, H, W, 3)
    assert configs["taeltx_2.pth"] == configs["taeltx2_3.pth"]
    assert torch.equal(videos["taeltx_2.pth"], videos["taeltx2_3.pth"])
    video = videos["taeltx_2.pth"]
    inside = ((video > 0) & (video < 1)).float().mean().item()
    print(f"video {tuple(video.shape)}, range [{video.min():.3f}, {video.max():.3f}], {inside:.1%} inside (0, 1)")
    assert inside > 0.9, "the output is saturated: the parity test would not see errors"

    save_file({"latent": latent.contiguous(), "video": video}, str(OUT / "taeltx_goldens.safetensors"))
    lines = ",\n".join("  " + json.dumps(r) for r in rows)
    text = f'{{"config": {json.dumps(configs["taeltx_2.pth"])},\n "tensors": [\n{lines}\n]}}\n'
    json.loads(text)
    (OUT / "taeltx_weights.json").write_text(text)
    for f in sorted(OUT.iterdir()):
        print(f"{f}: {f.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
