"""http(s) image URLs in chat requests: off by default (tested in test_multimodal.py); when a
policy turns `[fetch] image_urls` on, only URLs under its allowlist are fetched, redirects must
stay inside it, and oversized, slow, failing or empty answers are clear 400s. A local HTTP
server plays the image host."""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import GATEWAY_CONFIG, REPO_ROOT, start_gateway, stop_gateway
from test_multimodal import render

SIGN = "Open daily 8 to 6"
MAX_UPLOAD = 200_000


class ImageHost(http.server.BaseHTTPRequestHandler):
    png = b""
    hits: list[str] = []

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        ImageHost.hits.append(self.path)
        routes = {
            "/img/sign.png": (200, {}, ImageHost.png),
            "/img/moved": (302, {"Location": "/img/sign.png"}, b""),
            "/img/escape": (302, {"Location": "/private/secret.png"}, b""),
            "/img/missing.png": (404, {}, b"not here"),
            "/img/empty.png": (200, {}, b""),
            "/img/huge.png": (200, {}, b"\x89PNG" + b"\0" * (MAX_UPLOAD + 10)),
            "/private/secret.png": (200, {}, ImageHost.png),
        }
        if self.path == "/img/slow.png":
            time.sleep(2.5)
            routes[self.path] = (200, {}, ImageHost.png)
        status, headers, body = routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def image_host():
    ImageHost.png = render([SIGN], "DejaVuSans.ttf", 32)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ImageHost)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def fetching_profile(tmp: Path, host: str) -> Path:
    """cpu-x86 with the default policy plus a [fetch] section allowing `host`/img/ only."""
    policy = (REPO_ROOT / "profiles/policies/default.toml").read_text()
    policy = policy.replace('name = "default"', 'name = "default-fetch"')
    policy += f'\n[fetch]\nimage_urls = true\nallowlist = ["{host}/img/"]\ntimeout_ms = 1500\n'
    (tmp / "fetch-policy.toml").write_text(policy)
    device = (REPO_ROOT / "profiles/devices/cpu-x86.toml").read_text()
    device = device.replace('policy = "default"', 'policy = "fetch-policy.toml"')
    assert 'policy = "fetch-policy.toml"' in device
    path = tmp / "cpu-x86-fetch.toml"
    path.write_text(device)
    return path


@pytest.fixture(scope="module")
def fetching_gateway(tmp_path_factory: pytest.TempPathFactory, image_host: str):
    tmp = tmp_path_factory.mktemp("fetch")
    config = f'profile = "{fetching_profile(tmp, image_host)}"\n' + GATEWAY_CONFIG
    config += f"\n[media]\nmax_upload_bytes = {MAX_UPLOAD}\n"
    gw = start_gateway(tmp, config)
    try:
        yield gw
    finally:
        stop_gateway(gw)


def chat(gw, url: str) -> httpx.Response:
    body = {
        "model": "auto",
        "max_tokens": 8,
        "temperature": 0,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What does the sign say?"},
                    {"type": "image_url", "image_url": {"url": url}},
                ],
            }
        ],
    }
    return httpx.post(f"{gw.base_url}/chat/completions", json=body, timeout=60)


@pytest.mark.parametrize("path", ["/img/sign.png", "/img/moved"])
def test_allowlisted_url_is_fetched_and_read(fetching_gateway, image_host: str, path: str) -> None:
    r = chat(fetching_gateway, image_host + path)
    assert r.status_code == 200, r.text
    steps = r.json()["switchyard"]["steps"]
    assert [s["task"] for s in steps] == ["fetch", "ocr", "llm"]
    assert steps[0]["model"] == image_host + path and steps[0]["engine"] == "http"
    assert steps[1]["output"] == SIGN
    assert SIGN in steps[2]["input"]
    assert r.headers["x-switchyard-pipeline"].startswith("fetch=")


@pytest.mark.parametrize(
    "path,reason",
    [
        ("/private/secret.png", "not in this gateway's image URL allowlist"),
        ("/img/escape", "redirect refused"),
        ("/img/missing.png", "HTTP 404"),
        ("/img/empty.png", "empty body"),
        ("/img/huge.png", "upload limit"),
        ("/img/slow.png", "longer than 1500 ms"),
    ],
)
def test_refused_urls_are_clear_400s(fetching_gateway, image_host: str, path: str, reason: str) -> None:
    ImageHost.hits.clear()
    r = chat(fetching_gateway, image_host + path)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "messages[0].content[1].image_url.url"
    assert reason in error["message"], error["message"]
    # Nothing outside the allowlist is ever requested, not even through a redirect.
    assert "/private/secret.png" not in ImageHost.hits


def test_other_hosts_and_schemes_are_refused(fetching_gateway) -> None:
    for url in ["http://127.0.0.2:9/img/sign.png", "ftp://127.0.0.1/img/sign.png"]:
        r = chat(fetching_gateway, url)
        assert r.status_code == 400, r.text


def test_fetches_are_counted(fetching_gateway) -> None:
    metrics = httpx.get(fetching_gateway.base_url.removesuffix("/v1") + "/metrics").text
    ok = [l for l in metrics.splitlines() if l.startswith('switchyard_image_fetches_total{outcome="ok"}')]
    assert ok and float(ok[0].split()[-1]) >= 1, metrics


def test_a_policy_that_fetches_without_an_allowlist_is_refused_at_start(tmp_path: Path) -> None:
    import subprocess

    from conftest import _binary

    policy = (REPO_ROOT / "profiles/policies/default.toml").read_text() + "\n[fetch]\nimage_urls = true\n"
    (tmp_path / "p.toml").write_text(policy)
    device = (REPO_ROOT / "profiles/devices/cpu-x86.toml").read_text().replace(
        'policy = "default"', 'policy = "p.toml"'
    )
    (tmp_path / "d.toml").write_text(device)
    r = subprocess.run(
        [str(_binary()), "profile", "check", str(tmp_path / "d.toml")],
        capture_output=True,
        text=True,
    )
    assert r.returncode != 0
    assert "p.toml:" in r.stderr and "fetch.allowlist" in r.stderr, r.stderr
