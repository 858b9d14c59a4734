"""An independent reference for Llama / Qwen2 / Qwen3 decoders, in plain numpy (float64).

It reads a Hugging Face folder (`config.json`, `model.safetensors`, `tokenizer.json`) and runs
the architecture as Hugging Face's `modeling_llama.py` / `modeling_qwen2.py` /
`modeling_qwen3.py` define it: RMSNorm, rotary embeddings in the rotate-half layout (with
Llama-3 frequency scaling), grouped-query causal attention (optional q/k/v biases for Qwen2,
per-head q/k RMSNorm for Qwen3), a SwiGLU MLP, and the output head (tied to the embedding when
`tie_word_embeddings`). Nothing is shared with llama.cpp or with the converter.

As a script (used by converter/tests/hf_gguf.rs):

    python llama_reference.py MODEL_DIR < request.json > response.json

request: {"tokens": [[id, ...], ...], "texts": ["...", ...]}
response: {"logits": [[[float] * vocab] * len(tokens[i])], "encodings": [[id, ...], ...]}
where `encodings` are the Hugging Face tokenizer's ids (special tokens added as its
post-processor says).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer


def _rms_norm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def _rotate_half(x: np.ndarray) -> np.ndarray:
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def _inv_freq(config: dict, head_dim: int) -> np.ndarray:
    base = float(config.get("rope_theta", 10000.0))
    inv_freq = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    scaling = config.get("rope_scaling") or {}
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "default":
        return inv_freq
    if kind == "linear":
        return inv_freq / float(scaling["factor"])
    if kind == "llama3":
        # transformers' _compute_llama3_parameters
        factor = float(scaling["factor"])
        low = float(scaling["low_freq_factor"])
        high = float(scaling["high_freq_factor"])
        old = float(scaling["original_max_position_embeddings"])
        low_wavelen = old / low
        high_wavelen = old / high
        wavelen = 2 * math.pi / inv_freq
        scaled = np.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
        return np.where(medium, smoothed, scaled)
    raise ValueError(f"rope_scaling {kind!r} not implemented in the reference")


class DecoderReference:
    def __init__(self, model_dir: Path) -> None:
        self.config = json.loads((model_dir / "config.json").read_text())
        self.arch = self.config["architectures"][0]
        if self.arch not in ("LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"):
            raise ValueError(f"unsupported architecture {self.arch}")
        raw = load_file(str(model_dir / "model.safetensors"))
        self.w = {k: v.astype(np.float64) for k, v in raw.items()}
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))

    def logits(self, tokens: list[int]) -> np.ndarray:
        c, w = self.config, self.w
        n = len(tokens)
        hidden = c["hidden_size"]
        heads = c["num_attention_heads"]
        kv_heads = c.get("num_key_value_heads", heads)
        head_dim = c.get("head_dim") or hidden // heads
        eps = c.get("rms_norm_eps", 1e-6)
        qkv_bias = self.arch == "Qwen2ForCausalLM" or c.get("attention_bias", False)

        freqs = np.outer(np.arange(n, dtype=np.float64), _inv_freq(c, head_dim))
        emb = np.concatenate([freqs, freqs], axis=-1)  # (n, head_dim)
        cos, sin = np.cos(emb)[:, None, :], np.sin(emb)[:, None, :]
        mask = np.triu(np.full((n, n), -np.inf), k=1)

        def linear(x: np.ndarray, name: str, bias: bool) -> np.ndarray:
            y = x @ w[f"{name}.weight"].T
            return y + w[f"{name}.bias"] if bias else y

        x = w["model.embed_tokens.weight"][np.array(tokens)]
        for i in range(c["num_hidden_layers"]):
            p = f"model.layers.{i}"
            h = _rms_norm(x, w[f"{p}.input_layernorm.weight"], eps)
            q = linear(h, f"{p}.self_attn.q_proj", qkv_bias).reshape(n, heads, head_dim)
            k = linear(h, f"{p}.self_attn.k_proj", qkv_bias).reshape(n, kv_heads, head_dim)
            v = linear(h, f"{p}.self_attn.v_proj", qkv_bias).reshape(n, kv_heads, head_dim)
            if self.arch == "Qwen3ForCausalLM":
                q = _rms_norm(q, w[f"{p}.self_attn.q_norm.weight"], eps)
                k = _rms_norm(k, w[f"{p}.self_attn.k_norm.weight"], eps)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            group = heads // kv_heads
            k = np.repeat(k, group, axis=1)
            v = np.repeat(v, group, axis=1)
            scores = np.einsum("qhd,khd->hqk", q, k) / math.sqrt(head_dim) + mask
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            ctx = np.einsum("hqk,khd->qhd", scores, v).reshape(n, heads * head_dim)
            o_bias = self.arch == "LlamaForCausalLM" and c.get("attention_bias", False)
            x = x + linear(ctx, f"{p}.self_attn.o_proj", o_bias)
            h = _rms_norm(x, w[f"{p}.post_attention_layernorm.weight"], eps)
            mlp_bias = c.get("mlp_bias", False)
            gate = _silu(linear(h, f"{p}.mlp.gate_proj", mlp_bias))
            up = linear(h, f"{p}.mlp.up_proj", mlp_bias)
            x = x + linear(gate * up, f"{p}.mlp.down_proj", mlp_bias)
        x = _rms_norm(x, w["model.norm.weight"], eps)
        head = w.get("lm_head.weight")
        if head is None or c.get("tie_word_embeddings", False):
            head = w["model.embed_tokens.weight"]
        return x @ head.T

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=True).ids


def main() -> None:
    model_dir = Path(sys.argv[1])
    request = json.load(sys.stdin)
    ref = DecoderReference(model_dir)
    response = {
        "logits": [ref.logits(t).tolist() for t in request.get("tokens", [])],
        "encodings": [ref.encode(t) for t in request.get("texts", [])],
    }
    json.dump(response, sys.stdout)


if __name__ == "__main__":
    main()
