"""ONNX Runtime execution providers follow the device profile's order, and the provider actually
used is what health, metrics and the route trace report.

The pinned onnxruntime wheel is the CPU build, so on these machines a profile that asks for
TensorRT, CUDA or CoreML first must fall back to the CPU and say why each was passed over,
rather than claim a GPU it does not use."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from conftest import GATEWAY_CONFIG, REPO_ROOT, start_gateway, stop_gateway

GPU_FIRST = {
    "embedding": ["onnx/tensorrt", "onnx/cuda", "onnx/cpu"],
    "tts": ["onnx/coreml", "onnx/cpu"],
    # As the Jetson and RTX profiles list it: ONNX Runtime first, tract as the last resort.
    "ocr": ["onnx/tensorrt", "onnx/cuda", "tract/cpu"],
}


def gpu_first_profile(tmp: Path) -> Path:
    """The built-in cpu-x86 profile with GPU providers put first for embeddings and speech."""
    text = (REPO_ROOT / "profiles/devices/cpu-x86.toml").read_text()
    text = text.replace('name = "cpu-x86"', 'name = "cpu-x86-gpu-first"')
    # Claim the accelerators, as an operator's profile for a GPU box would.
    text, n = re.subn(r"accelerators = \[[^\]]*\]", 'accelerators = ["cpu", "cuda", "tensorrt", "coreml"]\n'
                      'gpu_name = "test GPU"', text)
    text = text.replace("unified_memory = false", "unified_memory = true")
    assert n == 1
    for task, engines in GPU_FIRST.items():
        block = re.compile(rf'(task = "{task}"\n(?:#[^\n]*\n)*engines = )\[[^\]]*\]')
        text, n = block.subn(lambda m: m.group(1) + str(engines).replace("'", '"'), text)
        assert n == 1, f"no [[prefer]] block for {task} in cpu-x86.toml"
    path = tmp / "gpu-first.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def gpu_first_gateway(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("gpu-first")
    # `profile` is a top-level key: it must come before the first table.
    config = f'profile = "{gpu_first_profile(tmp)}"\n' + GATEWAY_CONFIG
    gw = start_gateway(tmp, config)
    try:
        yield gw
    finally:
        stop_gateway(gw)


def test_profile_order_falls_back_to_the_provider_that_runs(gpu_first_gateway) -> None:
    base = gpu_first_gateway.base_url.removesuffix("/v1")
    with httpx.Client(timeout=120) as http:
        r = http.post(
            f"{base}/v1/embeddings",
            json={"model": "all-minilm-l6-v2", "input": "where is the station"},
        )
        assert r.status_code == 200, r.text
        # The route header names the engine that ran, not the one the profile hoped for.
        assert "onnx/cpu" in r.headers["x-switchyard-route"], r.headers["x-switchyard-route"]

        r = http.post(
            f"{base}/v1/audio/speech",
            json={"model": "piper-joe-medium", "input": "Hello there.", "voice": "joe"},
        )
        assert r.status_code == 200, r.text

        health = http.get(f"{base}/health").json()
        models = {m["id"]: m for m in health["models"]}
        embedder = models["all-minilm-l6-v2"]
        assert embedder["engine"] == "onnx/cpu"
        report = embedder["execution_provider"]
        assert report["used"] == "cpu"
        assert [s["provider"] for s in report["skipped"]] == ["tensorrt", "cuda"]
        for skipped in report["skipped"]:
            assert "not in this ONNX Runtime build" in skipped["reason"], skipped
        voice = models["piper-joe-medium"]["execution_provider"]
        assert voice["used"] == "cpu"
        assert [s["provider"] for s in voice["skipped"]] == ["coreml"]

        metrics = http.get(f"{base}/metrics").text
        for line in [
            'switchyard_execution_provider{model="all-minilm-l6-v2",provider="cpu",state="used"} 1',
            'switchyard_execution_provider{model="all-minilm-l6-v2",provider="tensorrt",state="skipped"} 1',
            'switchyard_execution_provider{model="all-minilm-l6-v2",provider="cuda",state="skipped"} 1',
            'switchyard_execution_provider{model="piper-joe-medium",provider="coreml",state="skipped"} 1',
            'switchyard_model_loaded{engine="onnx/cpu",model="all-minilm-l6-v2"} 1',
        ]:
            assert line in metrics, f"missing {line!r}"


@pytest.mark.parametrize(
    "lines, font, size",
    [
        (["Invoice 2024-07 total: 129.50 EUR"], "DejaVuSans.ttf", 32),
        (["The quick brown fox jumps over 13 lazy dogs."], "DejaVuSerif.ttf", 28),
        (["Shipping address:", "42 Baker Street, London"], "DejaVuSans.ttf", 30),
    ],
)
def test_ocr_runs_on_onnx_runtime_when_the_profile_puts_it_first(
    gpu_first_gateway, lines: list[str], font: str, size: int
) -> None:
    from test_multimodal import data_uri, render

    base = gpu_first_gateway.base_url.removesuffix("/v1")
    with httpx.Client(timeout=120) as http:
        r = http.post(
            f"{base}/v1/images/ocr",
            json={"model": "pp-ocrv6-tiny", "image": data_uri(render(lines, font, size))},
        )
        assert r.status_code == 200, r.text
        # The same exact text as on tract, from ONNX Runtime's CPU provider.
        assert [line["text"] for line in r.json()["lines"]] == lines
        assert "engine=onnx/cpu" in r.headers["x-switchyard-route"], r.headers["x-switchyard-route"]
        ocr = next(m for m in http.get(f"{base}/health").json()["models"] if m["id"] == "pp-ocrv6-tiny")
        assert ocr["engine"] == "onnx/cpu", ocr
        assert ocr["execution_provider"]["used"] == "cpu"
        assert [s["provider"] for s in ocr["execution_provider"]["skipped"]] == ["tensorrt", "cuda"]
        metrics = http.get(f"{base}/metrics").text
        assert 'switchyard_execution_provider{model="pp-ocrv6-tiny",provider="cpu",state="used"} 1' in metrics


def test_health_lists_every_engine_family(gateway) -> None:
    """llama.cpp, ONNX Runtime, tract and whisper.cpp are compiled in (the engines facade's
    default features) and can all run on a set-up box."""
    base = gateway.base_url.removesuffix("/v1")
    engines = httpx.get(f"{base}/health", timeout=30).json()["engines"]
    assert {e["name"]: e["available"] for e in engines} == {
        "llama.cpp": True, "onnx": True, "tract": True, "whisper.cpp": True
    }, engines


def test_default_profile_reports_the_cpu_without_fallbacks(gateway) -> None:
    base = gateway.base_url.removesuffix("/v1")
    with httpx.Client(timeout=120) as http:
        r = http.post(
            f"{base}/v1/embeddings", json={"model": "all-minilm-l6-v2", "input": "hello"}
        )
        assert r.status_code == 200, r.text
        health = http.get(f"{base}/health").json()
        embedder = next(m for m in health["models"] if m["id"] == "all-minilm-l6-v2")
        assert embedder["execution_provider"] == {"used": "cpu", "skipped": []}


def test_warmup_says_which_provider_runs_and_why(tmp_path: Path) -> None:
    import subprocess

    from conftest import _binary

    config = tmp_path / "switchyard.toml"
    config.write_text(f'profile = "{gpu_first_profile(tmp_path)}"\n' + GATEWAY_CONFIG)
    r = subprocess.run(
        [str(_binary()), "warmup", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "SWITCHYARD_LOG": "warn"},
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "all-minilm-l6-v2: ready on onnx/cpu" in out, out
    assert "tensorrt is not available here" in out and "TensorrtExecutionProvider" in out, out
    assert "piper-joe-medium: ready on onnx/cpu" in out and "coreml is not available here" in out, out


def test_ocr_falls_back_to_tract_without_onnx_runtime(tmp_path: Path) -> None:
    """cpu-x86 lists onnx/cpu before tract/cpu for OCR. On a box without the ONNX Runtime
    library, OCR still reads the text, on tract, and health says why."""
    from test_multimodal import data_uri, render
    from test_served_artifacts import MODELS, OCR, link_model

    models = tmp_path / "models"
    models.mkdir()
    link_model(MODELS / OCR, models / OCR)
    gw = start_gateway(tmp_path, f'models_dir = "{models}"\n' + GATEWAY_CONFIG)
    try:
        base = gw.base_url.removesuffix("/v1")
        with httpx.Client(timeout=120) as http:
            lines = ["Invoice 2024-07 total: 129.50 EUR"]
            r = http.post(
                f"{base}/v1/images/ocr",
                json={"model": OCR, "image": data_uri(render(lines, "DejaVuSans.ttf", 32))},
            )
            assert r.status_code == 200, r.text
            assert [line["text"] for line in r.json()["lines"]] == lines
            assert "engine=tract/cpu" in r.headers["x-switchyard-route"], r.headers["x-switchyard-route"]
            ocr = next(m for m in http.get(f"{base}/health").json()["models"] if m["id"] == OCR)
            assert ocr["engine"] == "tract/cpu", ocr
            assert "ONNX Runtime" in ocr["engine_fallback"], ocr
            assert "switchyard models fetch" in ocr["engine_fallback"], ocr
            # The engine list says which family cannot run here, and why.
            engines = {e["name"]: e for e in http.get(f"{base}/health").json()["engines"]}
            assert not engines["onnx"]["available"], engines
            assert "switchyard models fetch" in engines["onnx"]["reason"], engines
            assert engines["tract"]["available"], engines
    finally:
        stop_gateway(gw)
