"""OCR latency (not part of the test suite): the cpu-x86 profile with OCR engines tract/cpu first
vs onnx/cpu first (ONNX Runtime's CPU provider, cpu-x86's default since stop 10), two
alternating runs each, 7 requests after a warm-up.

    ~/.cache/switchyard/venv-*/bin/python tests/python/bench_ocr_engines.py
"""
import re, statistics, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import httpx
from conftest import GATEWAY_CONFIG, REPO_ROOT, start_gateway, stop_gateway
from test_multimodal import data_uri, render

LINES = ["Invoice 2024-07 total: 129.50 EUR", "Shipping address:", "42 Baker Street, London",
         "Phone 020 7946 0018", "The quick brown fox jumps over 13 lazy dogs.",
         "Call us at 555-0199 today", "Hello, World 42", "Shipped order #4521 on May 3rd!"]
png = render(LINES, "DejaVuSans.ttf", 26)

def profile(tmp: Path, onnx: bool) -> str:
    order = '["onnx/cpu", "tract/cpu"]' if onnx else '["tract/cpu", "onnx/cpu"]'
    text = (REPO_ROOT / "profiles/devices/cpu-x86.toml").read_text().replace('name = "cpu-x86"', 'name = "cpu-x86-ocr-bench"')
    text, n = re.subn(r'(task = "ocr"\n(?:#[^\n]*\n)*engines = )\[[^\]]*\]', lambda m: m.group(1) + order, text)
    assert n == 1
    p = tmp / "p.toml"; p.write_text(text)
    return f'profile = "{p}"\n'

for onnx in (False, True, False, True):
    tmp = Path(f"/tmp/ocrbench-{int(onnx)}-{time.time_ns()}"); tmp.mkdir()
    gw = start_gateway(tmp, profile(tmp, onnx) + GATEWAY_CONFIG)
    try:
        url = gw.base_url + "/images/ocr"
        body = {"model": "pp-ocrv6-tiny", "image": data_uri(png)}
        r = httpx.post(url, json=body, timeout=120)
        got = [l["text"] for l in r.json()["lines"]]
        times = []
        for _ in range(7):
            t = time.perf_counter(); r = httpx.post(url, json=body, timeout=120); times.append((time.perf_counter() - t) * 1e3)
        print(f"{'onnx/cpu' if onnx else 'tract/cpu'}: median {statistics.median(times):.0f} ms "
              f"(min {min(times):.0f}), lines exact {got == LINES}, engine {r.headers['x-switchyard-route'].split('engine=')[1].split(';')[0]}")
    finally:
        stop_gateway(gw)
