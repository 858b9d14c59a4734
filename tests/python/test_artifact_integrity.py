"""An artifact whose bytes no longer match the sha256 its manifest recorded is refused with a
clear error when the model would load, never loaded; the rest of the gateway keeps serving."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from conftest import start_gateway, stop_gateway


def models_dir() -> Path:
    env = os.environ.get("SWITCHYARD_MODELS_DIR")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "switchyard" / "models"


@pytest.fixture(scope="module")
def tampered_gateway(tmp_path_factory: pytest.TempPathFactory):
    source = models_dir()
    if not (source / "all-minilm-l6-v2" / "manifest.json").is_file():
        pytest.fail(f"all-minilm-l6-v2 is not fetched under {source}")
    tmp = tmp_path_factory.mktemp("tampered")
    models = tmp / "models"
    models.mkdir()
    for entry in source.iterdir():
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        if entry.name == "all-minilm-l6-v2":
            shutil.copytree(entry, models / entry.name)
        else:
            (models / entry.name).symlink_to(entry)
    onnx = models / "all-minilm-l6-v2" / "model.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    onnx.write_bytes(bytes(data))
    gw = start_gateway(tmp, extra_args=("--models-dir", str(models)))
    try:
        yield gw
    finally:
        stop_gateway(gw)


def test_tampered_model_is_refused_with_the_reason(tampered_gateway) -> None:
    base = tampered_gateway.base_url
    r = httpx.post(f"{base}/embeddings", json={"model": "all-minilm-l6-v2", "input": "hi"}, timeout=60)
    assert r.status_code >= 500, r.text
    message = r.json()["error"]["message"]
    assert "model.onnx" in message and "sha256" in message, message
    # The untouched models still serve.
    r = httpx.post(
        f"{base}/chat/completions",
        json={"model": "smollm2-135m-instruct", "max_tokens": 4, "messages": [{"role": "user", "content": "Hi"}]},
        timeout=60,
    )
    assert r.status_code == 200, r.text
