"""Goldens from ltx-core 1.2.0 (repository tag v1.2.0, not on PyPI) where it differs from 1.0.0.

Since 1.1.4 the A<->V cross-attention scale/shift AdaLN takes each modality's own per-token timesteps (1.0.0:
the other modality's sigma); the gates still take the other modality's sigma. The two agree when every token
has the same timestep and both modalities the same sigma, and differ for i2v tokens (timestep 0) and for
per-modality sigmas. This script runs 1.2.0's transformer on the committed tiny LTX-2 and LTX-2.3 checkpoints
(weights and inputs from the 1.0.0 goldens) and writes engine/tests/fixtures/transformer/goldens_v12.safetensors:

- `{gen}_i2v_{video,audio}`: the video's first latent frame at timestep 0, sigma 0.6 for both;
- `{gen}_sigmas_{video,audio}`: video sigma 0.6, audio sigma 0.3, uniform timesteps;
- and it asserts that the uniform case equals the 1.0.0 golden (so those stay valid).

Run with ltx-core 1.2.0 first on the path (the v1.2.0 sources unpacked outside the repository):
    PYTHONPATH=<scratch>/packages/ltx-core/src /work/venv-ref/bin/python engine/goldens/v12_goldens.py
"""

import json
from pathlib import Path

import ltx_core
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ltx_core.model.transformer.modality import Modality
from ltx_core.model.transformer.model_configurator import LTXModelConfigurator

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "transformer"
PREFIX = "model.diffusion_model."
torch.set_grad_enabled(False)


def load(name: str) -> torch.nn.Module:
    path = OUT / name
    with safe_open(str(path), "pt") as f:
        metadata = {"config": json.loads(f.metadata()["config"])}
    model = LTXModelConfigurator.from_metadata(metadata).eval()
    sd = {k.removeprefix(PREFIX): v for k, v in load_file(path).items()}
    model.load_state_dict(sd, strict=True, assign=True)  # 1.2.0 builds some modules on the meta device
    return model


def modality(g: dict, kind: str, sigma: float, mask: torch.Tensor | None) -> Modality:
    latent = g[f"{kind}_latent"]
    if mask is None:
        mask = torch.ones(latent.shape[0], latent.shape[1], 1)
    s = torch.tensor([sigma])
    return Modality(
        latent=latent,
        sigma=s,
        timesteps=mask * s,
        positions=g[f"{kind}_positions"],
        context=g[f"{kind}_context"],
    )


def main() -> None:
    assert ltx_core.__file__ and "site-packages" not in ltx_core.__file__, "put ltx-core 1.2.0 first on PYTHONPATH"
    base = load_file(OUT / "goldens.safetensors")
    i2v_mask = base["i2v_video_mask"]
    out = {}
    for gen, weights, goldens in (("ltx2", "tiny_av.safetensors", base),
                                  ("ltx23", "tiny_av23.safetensors", load_file(OUT / "goldens23.safetensors"))):
        model = load(weights)
        v, a = model(modality(goldens, "video", 0.6, None), modality(goldens, "audio", 0.6, None), None)
        for got, key in ((v, "fwd_video"), (a, "fwd_audio")):
            err = (got - goldens[key]).abs().max() / goldens[key].abs().max()
            assert err < 1e-5, f"{gen} {key}: 1.2.0 and 1.0.0 must agree on uniform timesteps ({err:.2e})"
        v, a = model(modality(goldens, "video", 0.6, i2v_mask), modality(goldens, "audio", 0.6, None), None)
        out[f"{gen}_i2v_video"], out[f"{gen}_i2v_audio"] = v, a
        v, a = model(modality(goldens, "video", 0.6, None), modality(goldens, "audio", 0.3, None), None)
        out[f"{gen}_sigmas_video"], out[f"{gen}_sigmas_audio"] = v, a
        # How far 1.0.0 was from 1.2.0 on the i2v case (the old golden), for the record.
        if gen == "ltx2":
            d = (out["ltx2_i2v_video"] - base["i2v_video"]).abs().max() / base["i2v_video"].abs().max()
            print(f"ltx2 i2v: 1.0.0 vs 1.2.0 rel diff {d:.2e}")
    save_file({k: t.contiguous().float() for k, t in out.items()}, OUT / "goldens_v12.safetensors")
    print(f"wrote {len(out)} goldens (ltx-core {ltx_core.__file__})")


if __name__ == "__main__":
    main()
