"""SmolLM2-135M-Instruct converted from its GGUF by `switchyard-convert mlx` loads in the official
mlx-lm (on the CPU, `mlx-cpu`), and with teacher forcing its top-1 next token agrees with
llama.cpp's on at least 95% of positions.

Tokens: each of 5 chat prompts (rendered with the converted tokenizer's chat template) followed by
a fixed assistant answer of at least 64 tokens, all tokenised by llama.cpp. Both models see the
same ids; we compare the top-1 next token at every answer position. llama.cpp's side comes from
the converter's hidden `mlx-reference` subcommand (`inspect::sequence_logits`).

The converted folder keeps the converter's default float type (f16 scales and norms). MLX's CPU
backend computes float16 in software (about 25x slower than float32 on x86), so the loaded
parameters are cast to float32 before the forward pass; f16 -> f32 is exact, so the weights are
the ones the converter wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import mlx.core as mx
import pytest
from mlx_lm import load

REPO_ROOT = Path(__file__).resolve().parents[2]
GGUF_NAME = "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
MIN_AGREEMENT = 0.95
MIN_POSITIONS_PER_PROMPT = 64

CASES = [
    (
        "Why is the sky blue?",
        "The sky looks blue because of the way sunlight interacts with the air. Sunlight contains "
        "all the colors of the rainbow. When it enters the atmosphere, it collides with tiny gas "
        "molecules, which scatter short wavelengths of light much more strongly than long ones. "
        "Blue light has a short wavelength, so it is scattered across the whole sky and reaches "
        "our eyes from every direction.",
    ),
    (
        "Give me three tips for staying healthy.",
        "Here are three simple tips for staying healthy:\n\n1. Eat a balanced diet with plenty of "
        "fruits, vegetables, whole grains and lean proteins.\n2. Exercise regularly. Aim for at "
        "least 30 minutes of moderate activity, such as brisk walking, on most days of the week.\n"
        "3. Get enough sleep. Most adults need seven to nine hours of sleep each night to stay "
        "focused and healthy.",
    ),
    (
        "What is the capital of France, and what is it famous for?",
        "The capital of France is Paris. It is famous for its art, fashion, food and history. "
        "Visitors come to see the Eiffel Tower, the Louvre museum, which holds the Mona Lisa, and "
        "the Notre-Dame cathedral. Paris is also known for its cafes, its wide boulevards and the "
        "river Seine, which flows through the center of the city.",
    ),
    (
        "Write a short story about a robot who learns to paint.",
        "Once upon a time, in a small workshop at the edge of a busy city, there lived a robot "
        "named Pixel. Pixel had been built to sort screws and bolts, but every evening it watched "
        "the sunset through the dusty window. One day, it found an old set of brushes in a drawer. "
        "Carefully, it dipped a brush in blue paint and drew its very first sky.",
    ),
    (
        "How do I make a cup of tea?",
        "Making a cup of tea is easy. First, boil some fresh water in a kettle. While the water is "
        "heating, put a tea bag or a spoonful of loose tea leaves into your cup or teapot. Pour the "
        "hot water over the tea and let it steep for three to five minutes, depending on how "
        "strong you like it. Remove the tea bag, then add milk, sugar or lemon if you wish.",
    ),
]


def _models_dir() -> Path:
    env = os.environ.get("SWITCHYARD_MODELS_DIR")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "switchyard" / "models"


def _converter() -> Path:
    raw = os.environ.get("SWITCHYARD_CONVERT_BIN")
    if raw:
        return Path(raw)
    gateway = os.environ.get("SWITCHYARD_BIN")
    if gateway:
        return Path(gateway).parent / "switchyard-convert"
    return REPO_ROOT / "target" / "release" / "switchyard-convert"


def _gguf_or_skip() -> Path:
    gguf = _models_dir() / GGUF_NAME
    if not gguf.is_file():
        message = f"{gguf} not found (run `switchyard models fetch`)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return gguf


def test_smollm2_mlx_conversion_matches_llama_cpp(tmp_path: Path) -> None:
    gguf = _gguf_or_skip()
    converter = _converter()
    if not os.access(converter, os.X_OK):
        pytest.fail(
            f"switchyard-convert not found at {converter}: "
            "`cargo build --release -p switchyard-converter` or set SWITCHYARD_CONVERT_BIN"
        )

    out = tmp_path / "smollm2-mlx"
    done = subprocess.run(
        [str(converter), "mlx", "--input", str(gguf), "--output", str(out), "--mixed", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # Q4_1 matrices and the Q8_0 embedding map onto MLX groups exactly; norms stay floats.
    assert report["requantized"] == 0, report
    assert report["exact"] == 211 and report["float"] == 61, report
    assert report["tokenizer_check"]["skipped"] is None, report["tokenizer_check"]

    model, tokenizer = load(str(out))
    model.set_dtype(mx.float32)

    cases = []
    for question, answer in CASES:
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False
        )
        cases.append({"prompt": prompt, "continuation": answer})
    cases_path = tmp_path / "cases.json"
    cases_path.write_text(json.dumps(cases))
    done = subprocess.run(
        [str(converter), "mlx-reference", "--model", str(gguf), "--cases", str(cases_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    references = json.loads(done.stdout)
    assert len(references) == len(CASES)

    agree = total = 0
    for case, ref in zip(cases, references):
        tokens, n_prompt, llama_top1 = ref["tokens"], ref["prompt_tokens"], ref["top1"]
        # The converted tokenizer (through transformers) gives llama.cpp's prompt ids.
        assert tokenizer.encode(case["prompt"]) == tokens[:n_prompt], case["prompt"]
        assert len(tokens) - n_prompt >= MIN_POSITIONS_PER_PROMPT, len(tokens) - n_prompt
        logits = model(mx.array([tokens]))[0]
        mlx_top1 = mx.argmax(logits, axis=-1).tolist()
        # Positions whose next token is an answer token.
        for i in range(n_prompt - 1, len(tokens) - 1):
            total += 1
            agree += int(mlx_top1[i] == llama_top1[i])

    agreement = agree / total
    print(f"MLX vs llama.cpp teacher-forced top-1 agreement: {agree}/{total} = {agreement:.2%}")
    assert agreement >= MIN_AGREEMENT, f"{agree}/{total} = {agreement:.2%}"
