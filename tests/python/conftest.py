"""Starts the real `switchyard` binary once per test session and hands out an `openai` client.

`SWITCHYARD_BIN` names the binary (default: `target/release/switchyard` under the repository
root); models come from the usual models directory (`SWITCHYARD_MODELS_DIR` overrides it).
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import openai
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# Small and cheap: 2 decode threads (the test machines have 2 cores), 4 slots, and a 256-token
# context per request so that an over-long prompt is rejected after tokenizing ~2000 words.
GATEWAY_CONFIG = """\
[engine]
threads = 2
slots = 4
context_per_slot = 256
"""

STARTUP_TIMEOUT_S = 60
SHUTDOWN_TIMEOUT_S = 10
LISTENING = re.compile(r"^switchyard listening on http://127\.0\.0\.1:(\d+)$")


@dataclass
class Gateway:
    process: subprocess.Popen
    port: int
    base_url: str
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def _binary() -> Path:
    raw = os.environ.get("SWITCHYARD_BIN") or "target/release/switchyard"
    path = Path(raw)
    return path if path.is_absolute() else REPO_ROOT / path


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_gateway(workdir: Path, config_text: str = GATEWAY_CONFIG, extra_args: tuple = ()) -> Gateway:
    """Starts the real binary on a free port with `config_text` as its config file; the caller
    stops it with `stop_gateway`. Fails the test (with the gateway's stderr) if it does not
    start."""
    binary = _binary()
    if not os.access(binary, os.X_OK):
        pytest.fail(f"switchyard binary not found at {binary}: build it or set SWITCHYARD_BIN")
    config = workdir / "switchyard.toml"
    config.write_text(config_text)
    stderr_path = workdir / "stderr.log"

    env = dict(os.environ, SWITCHYARD_LOG="warn")
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [str(binary), "serve", "--listen", "127.0.0.1:0", "--config", str(config), *extra_args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            cwd=REPO_ROOT,
        )
    assert process.stdout is not None
    try:
        # The binary prints exactly one stdout line once it listens; read it with a deadline
        # (readline alone would hang on a gateway that never starts).
        line = b""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"no listening line within {STARTUP_TIMEOUT_S} s")
            ready, _, _ = select.select([process.stdout], [], [], remaining)
            if not ready:
                continue
            byte = os.read(process.stdout.fileno(), 1)
            if not byte:
                raise RuntimeError(f"stdout closed (exit status {process.wait()})")
            line += byte
        text = line.decode().strip()
        match = LISTENING.match(text)
        if not match:
            raise RuntimeError(f"unexpected first stdout line {text!r}")
        port = int(match.group(1))
    except Exception as e:
        _stop(process)
        pytest.fail(
            f"switchyard did not start: {e}\nstderr:\n{stderr_path.read_text(errors='replace')}"
        )

    # Keep draining stdout so that a chatty gateway can never block on a full pipe.
    threading.Thread(target=process.stdout.read, daemon=True).start()
    return Gateway(process, port, f"http://127.0.0.1:{port}/v1", stderr_path)


def stop_gateway(gw: Gateway) -> None:
    """Stops `gw`; fails the test if it had exited on its own (a crash) before."""
    crashed = gw.process.poll()
    _stop(gw.process)
    if crashed is not None:
        pytest.fail(f"switchyard exited during the tests (status {crashed})\nstderr:\n{gw.stderr()}")


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = start_gateway(tmp_path_factory.mktemp("switchyard"))
    try:
        yield gw
    finally:
        stop_gateway(gw)


@pytest.fixture(scope="session")
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=gateway.base_url, api_key="unused", max_retries=0, timeout=120.0
    ) as c:
        yield c
