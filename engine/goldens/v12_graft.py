"""ltx-core 1.2.0's A<->V cross-attention AdaLN inputs, grafted onto ltx-core 1.0.0 for the pipeline goldens.

The engine follows 1.2.0 for every generation (scale/shift from each modality's own per-token timesteps, the
gate from the other modality's sigma). The pipeline goldens run ltx-pipelines 1.0.0, whose helpers do not
exist in 1.2.0; this loads 1.2.0's own `MultiModalTransformerArgsPreprocessor.prepare` and
`_prepare_cross_attention_timestep` from the v1.2.0 sources (unpacked outside the repository, path in
$LTX_CORE_V12_SRC = <v1.2.0>/packages/ltx-core/src) and installs them on the 1.0.0 class. Nothing is
reimplemented: the two functions are 1.2.0's code, the rest of the model is 1.0.0's (identical numerics).
"""

import importlib.util
import os
from pathlib import Path

from ltx_core.model.transformer import transformer_args as v10


def graft() -> str:
    src = os.environ.get("LTX_CORE_V12_SRC")
    if not src:
        raise SystemExit("set LTX_CORE_V12_SRC to the ltx-core 1.2.0 sources (packages/ltx-core/src of tag v1.2.0)")
    path = Path(src) / "ltx_core" / "model" / "transformer" / "transformer_args.py"
    spec = importlib.util.spec_from_file_location("ltx_core_v12_transformer_args", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    new = module.MultiModalTransformerArgsPreprocessor
    v10.MultiModalTransformerArgsPreprocessor.prepare = new.prepare
    v10.MultiModalTransformerArgsPreprocessor._prepare_cross_attention_timestep = new._prepare_cross_attention_timestep
    return str(path)
