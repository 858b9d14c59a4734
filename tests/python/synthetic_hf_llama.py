"""Writes a Hugging Face Llama folder with SmolLM2-135M's shapes and random f32 weights, for
measuring the Hugging Face -> MLX conversion (docs/BENCHMARKS.md) on a model-sized input.

    python synthetic_hf_llama.py OUT_DIR TOKENIZER_DIR

TOKENIZER_DIR supplies tokenizer.json / tokenizer_config.json / special_tokens_map.json with
49,152 tokens (e.g. `switchyard-convert mlx` output of the SmolLM2 GGUF).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

HIDDEN, LAYERS, HEADS, KV_HEADS, FF, VOCAB = 576, 30, 9, 3, 1536, 49152


def main() -> None:
    out, tokenizer_dir = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    head_dim = HIDDEN // HEADS

    def matrix(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * 0.02).astype(np.float32)

    tensors = {"model.embed_tokens.weight": matrix(VOCAB, HIDDEN)}
    for i in range(LAYERS):
        p = f"model.layers.{i}"
        tensors[f"{p}.input_layernorm.weight"] = np.ones(HIDDEN, np.float32)
        tensors[f"{p}.post_attention_layernorm.weight"] = np.ones(HIDDEN, np.float32)
        tensors[f"{p}.self_attn.q_proj.weight"] = matrix(HEADS * head_dim, HIDDEN)
        tensors[f"{p}.self_attn.k_proj.weight"] = matrix(KV_HEADS * head_dim, HIDDEN)
        tensors[f"{p}.self_attn.v_proj.weight"] = matrix(KV_HEADS * head_dim, HIDDEN)
        tensors[f"{p}.self_attn.o_proj.weight"] = matrix(HIDDEN, HEADS * head_dim)
        tensors[f"{p}.mlp.gate_proj.weight"] = matrix(FF, HIDDEN)
        tensors[f"{p}.mlp.up_proj.weight"] = matrix(FF, HIDDEN)
        tensors[f"{p}.mlp.down_proj.weight"] = matrix(HIDDEN, FF)
    tensors["model.norm.weight"] = np.ones(HIDDEN, np.float32)
    save_file(tensors, str(out / "model.safetensors"))
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": FF,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "hidden_act": "silu",
        "max_position_embeddings": 8192,
        "rms_norm_eps": 1e-5,
        "rope_theta": 100000.0,
        "vocab_size": VOCAB,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
    }
    (out / "config.json").write_text(json.dumps(config, indent=1))
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(tokenizer_dir / name, out / name)


if __name__ == "__main__":
    main()
