"""/v1/audio/speech in every response format, streamed sentence by sentence and whole, decoded
by a standard decoder (PyAV, i.e. ffmpeg) and, for the compressed formats, transcribed back by
/v1/audio/transcriptions; `stream_format: "sse"` events; spoken chat answers in each format.

A multi-sentence input is streamed (WAV with unknown sizes, MP3 frames, Ogg pages, FLAC frames
as each sentence is spoken); a one-sentence input is one whole file with exact headers.
"""

from __future__ import annotations

import base64
import io
import json
import time
import wave

import av
import httpx
import numpy as np
import openai
import pytest

from openapi_schema import assert_valid
from test_multimodal import MAX_ROUND_TRIP_WER, wer, words

ONE = "The quick brown fox jumps over the lazy dog."
TWO = "The quick brown fox jumps over the lazy dog. Please turn off the lights before you leave the room."
FORMATS = ["wav", "pcm", "mp3", "opus", "flac"]
# What ffmpeg names the decoder of each format (a prefix: mp3 decodes with `mp3float`).
CODECS = {"wav": "pcm_s16le", "mp3": "mp3", "opus": "opus", "flac": "flac"}
CONTENT_TYPES = {
    "wav": "audio/wav",
    "pcm": "audio/pcm",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg; codecs=opus",
    "flac": "audio/flac",
}
PCM_RATE = 24000


def plausible_seconds(text: str) -> tuple[float, float]:
    """Bounds for the spoken length of `text`: 0.15 to 0.7 s a word (Piper's joe speaks ~0.35)."""
    n = len(words(text))
    return 0.15 * n, 0.7 * n + 0.5


def decode(data: bytes, fmt: str) -> tuple[np.ndarray, int]:
    """Mono float samples and their rate: raw pcm by definition, the rest with PyAV (ffmpeg)."""
    if fmt == "pcm":
        assert len(data) % 2 == 0
        return np.frombuffer(data, "<i2").astype(np.float32) / 32768.0, PCM_RATE
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name.startswith(CODECS[fmt]), stream.codec_context.name
        assert stream.channels == 1
        frames = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
        rate = stream.codec_context.sample_rate
    samples = np.concatenate(frames)
    if samples.dtype.kind == "i":
        return samples.astype(np.float32) / 32768.0, rate
    return samples.astype(np.float32), rate


def check_audio(data: bytes, fmt: str, text: str) -> float:
    samples, rate = decode(data, fmt)
    seconds = len(samples) / rate
    low, high = plausible_seconds(text)
    assert low < seconds < high, (fmt, seconds)
    assert np.abs(samples).max() > 0.05, "audible, not silence"
    return seconds


def speak_streamed(gateway, text: str, fmt: str) -> tuple[list[bytes], httpx.Headers]:
    """The response body as the chunks that arrived."""
    body = {"model": "auto", "voice": "alloy", "input": text, "response_format": fmt}
    with httpx.stream("POST", f"{gateway.base_url}/audio/speech", json=body, timeout=120) as r:
        assert r.status_code == 200, r.read()
        chunks = [c for c in r.iter_raw() if c]
        return chunks, r.headers


@pytest.mark.parametrize("fmt", FORMATS)
def test_streamed_speech_decodes_in_every_format(gateway, fmt: str) -> None:
    chunks, headers = speak_streamed(gateway, TWO, fmt)
    assert headers["content-type"] == CONTENT_TYPES[fmt]
    # Sentence by sentence: the first sentence's audio arrives before the second is spoken.
    assert len(chunks) >= 2, [len(c) for c in chunks]
    data = b"".join(chunks)
    if fmt == "wav":
        assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt "
        assert data[4:8] == b"\xff\xff\xff\xff" and data[40:44] == b"\xff\xff\xff\xff"
        # Python's wave reads it to the end (getnframes() reports the placeholder).
        with wave.open(io.BytesIO(data)) as w:
            frames = len(w.readframes(1 << 30)) // 2
        assert frames == (len(data) - 44) // 2
    if fmt == "opus":
        assert data[:4] == b"OggS" and data[28:36] == b"OpusHead"
    check_audio(data, fmt, TWO)


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_sentence_is_a_whole_file(client: openai.OpenAI, fmt: str) -> None:
    data = client.audio.speech.create(
        model="auto", voice="alloy", input=ONE, response_format=fmt
    ).content
    seconds = check_audio(data, fmt, ONE)
    if fmt == "wav":
        with wave.open(io.BytesIO(data)) as w:
            assert w.getnframes() == (len(data) - 44) // 2  # exact sizes
            assert abs(w.getnframes() / w.getframerate() - seconds) < 1e-3
    if fmt == "flac":
        # STREAMINFO carries the total sample count.
        total = int.from_bytes(data[21:26], "big") & ((1 << 36) - 1)
        _, rate = decode(data, fmt)
        assert abs(total / rate - seconds) < 1e-3


def test_default_format_is_mp3_like_openai(client: openai.OpenAI) -> None:
    """A client that names no response_format gets MP3, as OpenAI's API defaults to."""
    with client.audio.speech.with_streaming_response.create(
        model="auto", voice="alloy", input=ONE
    ) as response:
        assert response.headers["content-type"] == CONTENT_TYPES["mp3"]
        data = response.read()
    check_audio(data, "mp3", ONE)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "opus", "flac"])
def test_speech_transcribes_back(client: openai.OpenAI, gateway, fmt: str) -> None:
    chunks, _ = speak_streamed(gateway, TWO, fmt)
    back = client.audio.transcriptions.create(model="auto", file=(f"tts.{fmt}", b"".join(chunks)))
    rate = wer([TWO], [back.text])
    print(f"piper {fmt} (streamed) -> whisper WER {rate:.3f}: {back.text!r}")
    assert rate <= MAX_ROUND_TRIP_WER, back.text


def sse_events(response) -> list[dict]:
    events = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            events.append(json.loads(line[len("data: "):]))
        else:
            assert line == "" or line.startswith(":"), line
    return events


def test_sse_stream_has_deltas_and_usage(client: openai.OpenAI) -> None:
    started = time.monotonic()
    with client.audio.speech.with_streaming_response.create(
        model="auto", voice="alloy", input=TWO, response_format="pcm", stream_format="sse"
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    elapsed = time.monotonic() - started
    *deltas, done = events
    assert len(deltas) >= 2, "one delta per sentence"
    for event in deltas:
        assert_valid("SpeechAudioDeltaEvent", event)
        assert event["type"] == "speech.audio.delta"
    assert_valid("SpeechAudioDoneEvent", done)
    assert done["type"] == "speech.audio.done"
    usage = done["usage"]
    assert usage["input_tokens"] > len(TWO) // 2  # phoneme ids: about one a character
    assert usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    pcm = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    seconds = check_audio(pcm, "pcm", TWO)
    # output_tokens are 20 ms frames of the voice's audio.
    assert abs(usage["output_tokens"] / 50 - seconds) < 0.1, (usage, seconds)
    print(f"sse: {len(deltas)} deltas, {seconds:.2f} s of audio in {elapsed:.2f} s")


@pytest.mark.parametrize("fmt", ["mp3", "opus", "wav"])
def test_sse_deltas_concatenate_to_the_file(client: openai.OpenAI, fmt: str) -> None:
    with client.audio.speech.with_streaming_response.create(
        model="auto", voice="alloy", input=TWO, response_format=fmt, stream_format="sse"
    ) as response:
        events = sse_events(response)
    assert events[-1]["type"] == "speech.audio.done"
    data = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    check_audio(data, fmt, TWO)


@pytest.mark.parametrize(
    "body,param,needle",
    [
        ({"response_format": "aac"}, "response_format", "response_format 'aac' is not supported"),
        ({"response_format": "ogg"}, "response_format", "wav, pcm, mp3, opus, flac"),
        ({"stream_format": "bogus"}, "stream_format", "stream_format 'bogus'"),
    ],
)
def test_bad_format_requests(gateway, body: dict, param: str, needle: str) -> None:
    request = {"model": "auto", "voice": "joe", "input": "Hello there.", **body}
    r = httpx.post(f"{gateway.base_url}/audio/speech", json=request, timeout=30)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and needle in error["message"], error


@pytest.mark.parametrize("fmt", ["mp3", "opus", "flac"])
def test_chat_audio_answer_formats(client: openai.OpenAI, fmt: str) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto",
        max_tokens=12,
        temperature=0,
        modalities=["text", "audio"],
        audio={"voice": "alloy", "format": fmt},
        messages=[{"role": "user", "content": "Say hello."}],
    )
    body = raw.http_response.json()
    assert_valid("CreateChatCompletionResponse", body)
    audio = body["choices"][0]["message"]["audio"]
    data = base64.b64decode(audio["data"])
    samples, rate = decode(data, fmt)
    assert len(samples) / rate > 0.2
    assert np.abs(samples).max() > 0.05


def test_streamed_chat_audio_stays_pcm16(gateway) -> None:
    body = {
        "model": "auto",
        "max_tokens": 4,
        "stream": True,
        "modalities": ["text", "audio"],
        "audio": {"voice": "alloy", "format": "mp3"},
        "messages": [{"role": "user", "content": "Say hello."}],
    }
    r = httpx.post(f"{gateway.base_url}/chat/completions", json=body, timeout=30)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "audio.format" and "pcm16" in error["message"]


def tts_steps(gateway) -> float:
    """How many text-to-speech steps have completed (the pipeline step histogram's count)."""
    metrics = httpx.get(gateway.base_url.removesuffix("/v1") + "/metrics", timeout=30).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("switchyard_pipeline_step_duration_seconds_count{") and 'step="tts"' in line
    )


def test_client_disconnect_stops_synthesis(gateway) -> None:
    """A client that hangs up after the first piece of a long answer stops the synthesis: the
    speech step never completes (it would be counted), even given the time to speak it all."""
    speak_streamed(gateway, ONE, "mp3")  # the voice is loaded
    started = time.monotonic()
    speak_streamed(gateway, TWO, "mp3")
    two_sentences = time.monotonic() - started
    before = tts_steps(gateway)
    body = {"model": "auto", "voice": "alloy", "input": " ".join([TWO] * 8), "response_format": "mp3"}
    with httpx.stream("POST", f"{gateway.base_url}/audio/speech", json=body, timeout=120) as r:
        assert r.status_code == 200
        next(r.iter_raw())
    time.sleep(min(1.5 * 8 * two_sentences + 1, 8))
    assert tts_steps(gateway) == before
    # The voice is free: the next request is answered.
    chunks, _ = speak_streamed(gateway, ONE, "pcm")
    assert len(b"".join(chunks)) > PCM_RATE  # half a second or more of speech
    assert tts_steps(gateway) == before + 1
