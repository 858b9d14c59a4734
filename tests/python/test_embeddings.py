"""`POST /v1/embeddings` through the official `openai` client, with the real all-MiniLM-L6-v2:
the wire format against OpenAI's spec, unit vectors, paraphrase vs unrelated similarity, and
agreement with an independent f32 numpy reference (minilm_reference.py)."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest

from minilm_reference import MiniLmReference
from openapi_schema import assert_valid

SENTENCES = [
    "The cat sits on the mat.",
    "A kitten is resting on a rug.",
    "Quarterly tax returns are due at the end of the month.",
    "How do I reset my router to factory settings?",
    "The Eiffel Tower is in Paris.",
    "Photosynthesis turns sunlight into chemical energy.",
    "She plays the violin every evening after dinner.",
    "Rust's borrow checker prevents data races at compile time.",
    "The stock market fell sharply on Tuesday.",
    "Bake the bread at 220 degrees for thirty minutes.",
    "Le chat dort sur le canapé.",
    "A very long sentence " + "that keeps going and going " * 40 + "until it ends.",
]

# int8 weights (the served model) against the f32 source: cosine similarity at least this.
MIN_COSINE_VS_REFERENCE = 0.98


def _models_dir() -> Path:
    override = os.environ.get("SWITCHYARD_MODELS_DIR")
    if override:
        return Path(override)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "switchyard" / "models"


@pytest.fixture(scope="module")
def reference() -> MiniLmReference:
    model_dir = _models_dir() / "all-minilm-l6-v2"
    if not (model_dir / "model.safetensors").exists():
        pytest.fail(f"{model_dir}/model.safetensors missing: run `switchyard models fetch`")
    return MiniLmReference(model_dir)


def test_embeddings_match_reference(client: openai.OpenAI, reference: MiniLmReference) -> None:
    # The client asks for base64 unless told otherwise; float is the schema's array form.
    raw = client.embeddings.with_raw_response.create(
        model="auto", input=SENTENCES, encoding_format="float"
    )
    body = raw.http_response.json()
    assert_valid("CreateEmbeddingResponse", body)
    assert "model=all-minilm-l6-v2" in raw.headers["x-switchyard-route"]
    result = raw.parse()
    assert result.model == "all-minilm-l6-v2"
    assert [d.index for d in result.data] == list(range(len(SENTENCES)))
    assert result.usage.prompt_tokens > len(SENTENCES)
    vectors = np.array([d.embedding for d in result.data], dtype=np.float32)
    assert vectors.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)

    cosines = [float(v @ reference.embed(s)) for v, s in zip(vectors, SENTENCES)]
    assert min(cosines) >= MIN_COSINE_VS_REFERENCE, cosines

    # A paraphrase scores higher than an unrelated sentence.
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3


def test_single_string_and_base64(client: openai.OpenAI) -> None:
    floats = client.embeddings.create(
        model="all-minilm-l6-v2", input="hello world", encoding_format="float"
    )
    assert len(floats.data) == 1
    raw = client.embeddings.with_raw_response.create(
        model="all-minilm-l6-v2", input="hello world", encoding_format="base64"
    )
    encoded = raw.http_response.json()["data"][0]["embedding"]
    decoded = np.frombuffer(base64.b64decode(encoded), dtype="<f4")
    np.testing.assert_allclose(decoded, floats.data[0].embedding, atol=1e-6)


@pytest.mark.parametrize(
    "body,param",
    [
        ({"model": "auto", "input": ""}, "input"),
        ({"model": "auto", "input": []}, "input"),
        ({"model": "auto", "input": [[1, 2, 3]]}, "input"),
        ({"model": "auto", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "auto", "input": "x", "dimensions": 64}, "dimensions"),
        ({"model": "smollm2-135m-instruct", "input": "x"}, "model"),
    ],
)
def test_bad_embedding_requests_are_clear_400s(gateway, body: dict, param: str) -> None:
    response = httpx.post(f"{gateway.base_url}/embeddings", json=body, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert error["message"]


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_no_model_is_resident_at_start_and_embeddings_share_tier_bs_session(tmp_path: Path) -> None:
    """The gateway starts with no model loaded, the router's tier B included: it loads
    all-MiniLM-L6-v2 on first use (or with `preload`). The first /v1/embeddings loads it on ONNX
    Runtime as tier B's session, so tier B then holds no second copy (~160 MB each)."""
    from conftest import start_gateway, stop_gateway

    gw = start_gateway(tmp_path)
    try:
        at_start = _rss_mib(gw.process.pid)
        health = httpx.get(f"{gw.base_url.removesuffix('/v1')}/health", timeout=10).json()
        assert health["router"]["tier_b"] == {"engine": "onnxruntime", "loaded": False}, health
        assert not any(m["loaded"] for m in health["models"]), health["models"]
        r = httpx.post(
            f"{gw.base_url}/embeddings",
            json={"model": "all-minilm-l6-v2", "input": ["where is the station"] * 4},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        health = httpx.get(f"{gw.base_url.removesuffix('/v1')}/health", timeout=10).json()
        assert health["router"]["tier_b"]["loaded"] is True, health["router"]
        after = _rss_mib(gw.process.pid)
        print(f"resident memory at start {at_start:.0f} MiB, {after:.0f} MiB after the first embeddings")
        # No model at start: the binary, its libraries and the HTTP side.
        assert at_start < 60, f"{at_start:.0f} MiB at start: a model loaded eagerly?"
        # One ONNX Runtime session (~160 MB), not two.
        assert after - at_start < 260, f"+{after - at_start:.0f} MiB: a second MiniLM session?"
    finally:
        stop_gateway(gw)


def test_preload_loads_tier_b_at_start(tmp_path: Path) -> None:
    from conftest import GATEWAY_CONFIG, start_gateway, stop_gateway

    gw = start_gateway(tmp_path, 'preload = ["all-minilm-l6-v2"]\n' + GATEWAY_CONFIG)
    try:
        health = httpx.get(f"{gw.base_url.removesuffix('/v1')}/health", timeout=10).json()
        assert health["router"]["tier_b"] == {"engine": "onnxruntime", "loaded": True}, health
    finally:
        stop_gateway(gw)
