"""An independent f32 reference for all-MiniLM-L6-v2 sentence embeddings, in plain numpy.

It reads the Hugging Face source weights (`model.safetensors`, f32) and `tokenizer.json`, runs
the BERT encoder written out here, and pools like sentence-transformers does for this model:
mean over the attention mask, then L2 normalisation. Nothing is shared with the gateway's
engine (which runs an int8 ONNX export on ONNX Runtime).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
_erf = np.vectorize(math.erf, otypes=[np.float32])


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


class MiniLmReference:
    def __init__(self, model_dir: Path) -> None:
        raw = load_file(str(model_dir / "model.safetensors"))
        self.w = {k.removeprefix("bert."): v.astype(np.float32) for k, v in raw.items()}
        self.config = json.loads((model_dir / "config.json").read_text())
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def embed(self, text: str) -> np.ndarray:
        ids = np.array(self.tokenizer.encode(text).ids)
        n = len(ids)
        eps = self.config.get("layer_norm_eps", 1e-12)
        heads = self.config["num_attention_heads"]
        w = self.w
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        hidden = x.shape[-1]
        d = hidden // heads
        for layer in range(self.config["num_hidden_layers"]):
            p = f"encoder.layer.{layer}"
            q = self._linear(x, f"{p}.attention.self.query").reshape(n, heads, d).transpose(1, 0, 2)
            k = self._linear(x, f"{p}.attention.self.key").reshape(n, heads, d).transpose(1, 0, 2)
            v = self._linear(x, f"{p}.attention.self.value").reshape(n, heads, d).transpose(1, 0, 2)
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            ctx = (scores @ v).transpose(1, 0, 2).reshape(n, hidden)
            attn = self._linear(ctx, f"{p}.attention.output.dense")
            x = _layer_norm(
                attn + x,
                w[f"{p}.attention.output.LayerNorm.weight"],
                w[f"{p}.attention.output.LayerNorm.bias"],
                eps,
            )
            inter = self._linear(x, f"{p}.intermediate.dense")
            inter = 0.5 * inter * (1.0 + _erf(inter / math.sqrt(2.0)))
            out = self._linear(inter, f"{p}.output.dense")
            x = _layer_norm(
                out + x, w[f"{p}.output.LayerNorm.weight"], w[f"{p}.output.LayerNorm.bias"], eps
            )
        pooled = x.mean(0)
        return pooled / np.linalg.norm(pooled)


def main() -> None:
    """`python minilm_reference.py MODEL_DIR < sentences.json`: prints
    {"embeddings": [[float] * 384, ...], "ids": [[token id, ...], ...]} (used by
    converter/tests/hf_gguf.rs)."""
    import sys

    ref = MiniLmReference(Path(sys.argv[1]))
    sentences = json.load(sys.stdin)
    json.dump(
        {
            "embeddings": [ref.embed(s).tolist() for s in sentences],
            "ids": [ref.tokenizer.encode(s).ids for s in sentences],
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
