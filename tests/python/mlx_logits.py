"""Teacher-forced logits of an mlx-lm model folder, through the official `mlx` / `mlx-lm`
packages (MLX's CPU backend on Linux).

As a script (used by converter/tests/hf_gguf.rs for the Hugging Face -> MLX conversion):

    python mlx_logits.py MODEL_DIR < request.json > response.json

request: {"tokens": [[id, ...], ...], "texts": ["...", ...]}
response: {"logits": [[[float] * vocab] * len(tokens[i])], "encodings": [[id, ...], ...],
           "quantized": ["module path", ...]}
where `encodings` are the loaded tokenizer's ids for `texts` and `quantized` lists the modules
mlx-lm loaded as quantised layers (with their bits), so the caller can see the quantisation block
was honoured.

Parameters are cast to float32 after loading: the converter's float16 scales and norms convert
exactly, and MLX's CPU backend computes float16 in software.
"""

from __future__ import annotations

import json
import sys

import mlx.core as mx
import mlx.nn as nn
from mlx_lm import load


def main() -> None:
    model_dir = sys.argv[1]
    request = json.load(sys.stdin)
    model, tokenizer = load(model_dir)
    model.set_dtype(mx.float32)
    logits = []
    for ids in request.get("tokens", []):
        out = model(mx.array([ids]))[0].astype(mx.float32)
        logits.append(out.tolist())
    encodings = [tokenizer.encode(t) for t in request.get("texts", [])]
    quantized = sorted(
        f"{name}:{module.bits}"
        for name, module in model.named_modules()
        if isinstance(module, (nn.QuantizedLinear, nn.QuantizedEmbedding))
    )
    json.dump({"logits": logits, "encodings": encodings, "quantized": quantized}, sys.stdout)


if __name__ == "__main__":
    main()
