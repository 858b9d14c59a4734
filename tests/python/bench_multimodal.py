"""Multimodal benchmark against a running gateway (not part of the test suite).

    ./target/release/switchyard serve --listen 127.0.0.1:8090 &
    ~/.cache/switchyard/venv-*/bin/python tests/python/bench_multimodal.py http://127.0.0.1:8090

Prints a Markdown table for docs/BENCHMARKS.md: speech-to-text real-time factor on a 60 s clip,
text-to-speech real-time factor, OCR latency per image, embeddings per second, and the bytes
copied inside each pipeline (from the response's `switchyard` trace). Every model is warmed up
first; figures are medians of ROUNDS runs.
"""

from __future__ import annotations

import base64
import io
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import httpx
from PIL import Image, ImageDraw, ImageFont

ROUNDS = 3
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please turn off the lights before you leave the room.",
    "My favorite season is autumn because the leaves change color.",
    "The train to the city leaves at seven in the morning.",
    "She bought three apples and a loaf of bread at the market.",
    "Can you tell me the way to the nearest library?",
    "The meeting has been moved to next Thursday afternoon.",
    "He plays the guitar in a small band on weekends.",
]


def clip_60s() -> bytes:
    """About 60 s of espeak-ng speech with one-second pauses, as a 16 kHz WAV."""
    frames = b""
    rate = 22050
    with tempfile.TemporaryDirectory() as tmp:
        i = 0
        while len(frames) < 60 * rate * 2:
            out = Path(tmp) / f"{i}.wav"
            text = SENTENCES[i % len(SENTENCES)]
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "130", "-w", str(out), text], check=True)
            with wave.open(str(out)) as w:
                frames += w.readframes(w.getnframes()) + b"\x00\x00" * rate
            i += 1
    frames = frames[: 60 * rate * 2]
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return buffer.getvalue()


def text_image() -> bytes:
    face = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 26)
    image = Image.new("RGB", (640, 480), "white")
    draw = ImageDraw.Draw(image)
    for i in range(8):
        draw.text((20, 20 + i * 56), f"Line {i + 2} of the quarterly report", font=face, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main(base: str) -> None:
    client = httpx.Client(base_url=base, timeout=600)
    rows = []

    audio = clip_60s()
    stt = lambda: client.post("/v1/audio/transcriptions", data={"model": "auto"}, files={"file": ("c.wav", audio)})
    stt()  # warm-up: starts the worker, loads the model
    runs = [timed(stt) for _ in range(ROUNDS)]
    body = runs[-1][1].json()
    seconds = statistics.median(t for t, _ in runs)
    steps = {s["task"]: s for s in body["switchyard"]["steps"]}
    rows.append(("speech-to-text, 60 s clip: wall time / real-time factor", f"{seconds:.2f} s / **{seconds / 60:.3f}**"))
    if "vad" in steps:
        rows.append(("  of which VAD (Silero, tract)", f"{steps['vad']['ms']:.0f} ms ({steps['vad']['output']})"))
    rows.append(("  of which whisper.cpp (worker, all segments)", f"{steps['stt']['ms']:.0f} ms"))
    copies = body["switchyard"]["copies"]
    rows.append(("  bytes copied (decode + resample / into the worker)", f"{copies['bytes']} / {copies['by_reason'].get('ipc', 0)}"))

    paragraph = " ".join(SENTENCES[:5])
    tts = lambda: client.post("/v1/audio/speech", json={"model": "auto", "voice": "alloy", "input": paragraph, "response_format": "wav"})
    tts()
    runs = [timed(tts) for _ in range(ROUNDS)]
    wall = statistics.median(t for t, _ in runs)
    with wave.open(io.BytesIO(runs[-1][1].content)) as w:
        # Streamed: the header's sizes are unknown (0xFFFFFFFF), so count what is read.
        audio_s = len(w.readframes(1 << 30)) / 2 / w.getframerate()
    rows.append(("text-to-speech: wall time / audio length / real-time factor", f"{wall:.2f} s / {audio_s:.1f} s / **{wall / audio_s:.3f}**"))

    image = base64.b64encode(text_image()).decode()
    ocr = lambda: client.post("/v1/images/ocr", json={"model": "auto", "image": image})
    ocr()
    runs = [timed(ocr) for _ in range(ROUNDS)]
    body = runs[-1][1].json()
    rows.append(("OCR, 640×480 PNG with 8 lines: latency (median)", f"**{statistics.median(t for t, _ in runs) * 1000:.0f} ms** ({len(body['lines'])} lines read)"))
    copies = body["switchyard"]["copies"]
    rows.append(("  bytes copied (decode / preprocess / crop)", f"{copies['by_reason'].get('decode', 0)} / {copies['by_reason'].get('preprocess', 0)} / {copies['by_reason'].get('crop', 0)}"))

    texts = [f"{SENTENCES[i % len(SENTENCES)]} ({i})" for i in range(256)]
    embed = lambda: client.post("/v1/embeddings", json={"model": "auto", "input": texts, "encoding_format": "float"})
    embed()
    runs = [timed(embed) for _ in range(ROUNDS)]
    rows.append(("embeddings: 256 sentences per request", f"**{256 / statistics.median(t for t, _ in runs):.0f} sentences/s**"))

    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8090")
