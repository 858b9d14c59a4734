"""The gateway loads the artifact the device profile asks for: the converter's variant when one
was built (INT8 OCR detector on tract, Q4_K_M SmolLM2 on llama.cpp), the source file otherwise,
and says which file serves each model and why in /health and /metrics.

The variants are built here by `switchyard-convert build` into a private models folder (the
sample files are linked, not copied), so the test does not depend on what other tests built."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from conftest import GATEWAY_CONFIG, REPO_ROOT, start_gateway, stop_gateway
from test_multimodal import data_uri, render

MODELS = Path(
    os.environ.get("SWITCHYARD_MODELS_DIR") or Path.home() / ".cache/switchyard/models"
)
CONVERT = REPO_ROOT / "target/release/switchyard-convert"
OCR = "pp-ocrv6-tiny"
LLM = "smollm2-135m-instruct"
TEXT = "Invoice 2024-07 total: 129.50 EUR"


def variant_profile(tmp: Path) -> Path:
    """cpu-x86 with INT8 on tract first for OCR and only Q4_K_M for the LLM (a lossy re-quantisation of the
    Q4_1 sample, which `build` makes only when the profile leaves no other choice)."""
    text = (REPO_ROOT / "profiles/devices/cpu-x86.toml").read_text()
    text = text.replace('name = "cpu-x86"', 'name = "cpu-x86-variants"')
    text, n = re.subn(
        r'(task = "llm"\n(?:#[^\n]*\n)*engines = \[[^\]]*\]\n)precisions = \[[^\]]*\]',
        r'\1precisions = ["q4_k_m"]',
        text,
    )
    assert n == 1
    # tract first for OCR (cpu-x86 itself puts ONNX Runtime first): this test is also the
    # gateway's check of OCR on tract.
    text, n = re.subn(
        r'(task = "ocr"\n(?:#[^\n]*\n)*engines = )\[[^\]]*\]\nprecisions = \[[^\]]*\]',
        r'\1["tract/cpu", "onnx/cpu"]\nprecisions = ["int8", "fp32"]',
        text,
    )
    assert n == 1
    path = tmp / "variants.toml"
    path.write_text(text)
    return path


def link_model(src: Path, dst: Path) -> None:
    """A model folder whose files are links to the sample's and whose manifest is a copy (the
    converter rewrites it)."""
    dst.mkdir()
    for item in src.iterdir():
        if item.name == "manifest.json":
            shutil.copy(item, dst / item.name)
        elif not item.name.startswith("."):
            (dst / item.name).symlink_to(item.resolve())


@pytest.fixture(scope="module")
def variant_gateway(tmp_path_factory: pytest.TempPathFactory):
    if not CONVERT.is_file():
        pytest.fail(f"{CONVERT} not built (cargo build --release -p switchyard-converter)")
    tmp = tmp_path_factory.mktemp("variants")
    models = tmp / "models"
    models.mkdir()
    for name in (OCR, LLM, "onnxruntime"):
        if not (MODELS / name / "manifest.json").is_file():
            pytest.fail(f"sample model {name} missing in {MODELS}: run `switchyard models fetch`")
    # Fresh manifests without variants built elsewhere: only sources, then our own build.
    for name in (OCR, LLM):
        link_model(MODELS / name, models / name)
        manifest = json.loads((models / name / "manifest.json").read_text())
        manifest["artifacts"] = [a for a in manifest["artifacts"] if "." not in a["role"]]
        (models / name / "manifest.json").write_text(json.dumps(manifest, indent=2))
        for item in (models / name).iterdir():
            if item.is_symlink() and item.name not in {a["path"] for a in manifest["artifacts"]}:
                item.unlink()
    (models / "onnxruntime").symlink_to(MODELS / "onnxruntime")
    profile = variant_profile(tmp)
    for name in (OCR, LLM):
        done = subprocess.run(
            [str(CONVERT), "build", "--profile", str(profile), "--model", name,
             "--models-dir", str(models)],
            capture_output=True, text=True, timeout=600,
        )
        assert done.returncode == 0, done.stderr
    # The variants alone must serve: the sources they were made from leave this box.
    (models / OCR / "PP-OCRv6_det_tiny.onnx").unlink()
    (models / LLM / "SmolLM2-135M-Instruct.Q4_1.gguf").unlink()
    config = f'profile = "{profile}"\nmodels_dir = "{models}"\n' + GATEWAY_CONFIG
    gw = start_gateway(tmp, config)
    try:
        yield gw, models, profile
    finally:
        stop_gateway(gw)


def served(health: dict, model: str) -> dict[str, dict]:
    entry = next(m for m in health["models"] if m["id"] == model)
    return {a["role"]: a for a in entry["artifacts"]}


def test_the_profiles_variants_are_loaded_and_reported(variant_gateway) -> None:
    gw, models, _ = variant_gateway
    base = gw.base_url.removesuffix("/v1")
    with httpx.Client(timeout=180) as http:
        health = http.get(f"{base}/health").json()
        ocr = served(health, OCR)
        assert ocr["detector"]["chosen"] == "detector.onnx.int8-qdq-per-channel", ocr
        assert ocr["detector"]["precision"] == "int8"
        assert "first precision is int8" in ocr["detector"]["reason"]
        assert ocr["recognizer"]["chosen"].startswith("recognizer"), ocr
        llm = served(health, LLM)["model"]
        assert llm["chosen"] == "gguf.q4_k_m" and llm["precision"] == "q4_k_m", llm

        # The INT8 detector on tract still reads clean text exactly.
        png = render([TEXT], "DejaVuSans.ttf", 32)
        r = http.post(f"{base}/v1/images/ocr", json={"model": OCR, "image": data_uri(png)})
        assert r.status_code == 200, r.text
        assert [line["text"] for line in r.json()["lines"]] == [TEXT]
        assert "engine=tract/cpu" in r.headers["x-switchyard-route"], r.headers["x-switchyard-route"]
        # The route trace names the files that served the request.
        assert "detector:int8(PP-OCRv6_det_tiny.int8-qdq-per-channel.onnx)" in r.headers[
            "x-switchyard-route"], r.headers["x-switchyard-route"]

        # The Q4_K_M file answers (its Q4_1 source is gone). Re-quantising the 135M model's
        # Q4_1 weights costs it its facts, so only an answer is asked for, not a right one.
        r = http.post(f"{base}/v1/chat/completions", json={
            "model": LLM, "temperature": 0, "max_tokens": 16,
            "messages": [{"role": "user", "content": "What is the capital of France?"}]})
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"].strip()
        loaded = next(m for m in http.get(f"{base}/health").json()["models"] if m["id"] == LLM)
        assert loaded["loaded"], loaded

        metrics = http.get(f"{base}/metrics").text
        assert re.search(
            rf'switchyard_model_artifact\{{[^}}]*model="{OCR}"[^}}]*precision="int8"[^}}]*\}} 1',
            metrics,
        ) or re.search(
            rf'switchyard_model_artifact\{{[^}}]*precision="int8"[^}}]*model="{OCR}"', metrics
        ), metrics
        assert "q4_k_m" in "\n".join(
            l for l in metrics.splitlines() if l.startswith("switchyard_model_artifact")
        )


def test_without_variants_the_source_serves_and_the_reason_says_what_to_run(tmp_path) -> None:
    profile = variant_profile(tmp_path)
    config = f'profile = "{profile}"\n' + GATEWAY_CONFIG
    models = tmp_path / "models"
    models.mkdir()
    link_model(MODELS / OCR, models / OCR)
    manifest = json.loads((models / OCR / "manifest.json").read_text())
    manifest["artifacts"] = [a for a in manifest["artifacts"] if "." not in a["role"]]
    (models / OCR / "manifest.json").write_text(json.dumps(manifest, indent=2))
    config = f'profile = "{profile}"\nmodels_dir = "{models}"\n' + GATEWAY_CONFIG
    gw = start_gateway(tmp_path, config)
    try:
        base = gw.base_url.removesuffix("/v1")
        health = httpx.get(f"{base}/health", timeout=30).json()
        det = served(health, OCR)["detector"]
        assert det["chosen"] == "detector" and det["precision"] == "fp32", det
        assert "switchyard-convert plan --profile cpu-x86-variants" in det["reason"], det
    finally:
        stop_gateway(gw)


def test_warmup_lists_the_file_serving_each_model(variant_gateway, tmp_path) -> None:
    _, models, profile = variant_gateway
    config = tmp_path / "switchyard.toml"
    config.write_text(f'profile = "{profile}"\nmodels_dir = "{models}"\n' + GATEWAY_CONFIG)
    r = subprocess.run(
        [str(REPO_ROOT / "target/release/switchyard"), "warmup", "--config", str(config)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "SWITCHYARD_LOG": "warn"},
    )
    assert r.returncode == 0, r.stderr
    assert f"{OCR} detector: PP-OCRv6_det_tiny.int8-qdq-per-channel.onnx (int8)" in r.stdout, r.stdout
    assert f"{LLM} model: SmolLM2-135M-Instruct.Q4_1.q4_k_m.gguf (q4_k_m)" in r.stdout, r.stdout
