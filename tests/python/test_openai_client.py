"""The official `openai` Python client against a real Switchyard gateway, with every response
body validated against OpenAI's OpenAPI spec (see openapi_schema.py).

Greedy decoding (temperature 0) is deterministic, so a streamed answer must equal the
non-streamed one for the same request. Token budgets are small to keep the suite fast.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from openapi_schema import assert_valid, assert_valid_with, validator_with_nullable

SMOL = "smollm2-135m-instruct"
GEMMA = "gemma3-270m"

CHAT_MESSAGES = [{"role": "user", "content": "What is 2 plus 2?"}]
CHAT_MAX_TOKENS = 24
PROMPT = "The capital of France is"
COMPLETION_MAX_TOKENS = 8

# Streamed completions share `CreateCompletionResponse` with non-streamed ones, but that schema
# cannot describe a chunk in the middle of a stream, and the spec itself says what such a chunk
# holds:
# - `choices[].finish_reason` is null until the choice finishes: the spec's own streaming example
#   for `createCompletion` (paths./completions.post x-oaiMeta) shows `"finish_reason": null`;
# - `usage` is null on every chunk but the last when `stream_options.include_usage` is set:
#   `ChatCompletionStreamOptions.include_usage` (which `CreateCompletionRequest.stream_options`
#   uses) says "All other chunks will also include a `usage` field, but with a null value."
# Exactly these two fields accept null here; the rest of the schema is unchanged, and the tests
# below check that the nulls appear only where the spec allows them.
COMPLETION_CHUNK = validator_with_nullable(
    "CreateCompletionResponse",
    ("properties/choices/items/properties/finish_reason", "properties/usage"),
)


def sse_events(response: Any) -> list[dict[str, Any]]:
    """The JSON payloads of a streamed response, checking the SSE framing and `[DONE]`."""
    content_type = response.headers.get("content-type", "")
    assert content_type.startswith("text/event-stream"), content_type
    events: list[dict[str, Any]] = []
    done = False
    for line in response.iter_lines():
        if not line or line.startswith(":"):
            continue
        assert line.startswith("data: "), f"not an SSE data line: {line!r}"
        assert not done, f"data after [DONE]: {line!r}"
        data = line[len("data: ") :]
        if data == "[DONE]":
            done = True
            continue
        events.append(json.loads(data))
    assert done, "the stream did not end with data: [DONE]"
    assert events, "the stream carried no chunks"
    return events


def assert_usage(usage: dict[str, Any], max_tokens: int) -> None:
    assert usage["prompt_tokens"] > 0, usage
    assert 0 < usage["completion_tokens"] <= max_tokens, usage
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"], usage


def assert_error_body(exc: openai.APIStatusError, status: int) -> dict[str, Any]:
    assert exc.status_code == status
    body = exc.response.json()
    assert_valid("ErrorResponse", body)
    return body["error"]


# ---------------------------------------------------------------- chat completions


@pytest.fixture(scope="module")
def greedy_chat(client: openai.OpenAI) -> dict[str, Any]:
    """The raw JSON of a non-streamed greedy chat completion for CHAT_MESSAGES."""
    raw = client.chat.completions.with_raw_response.create(
        model=SMOL, messages=CHAT_MESSAGES, temperature=0, max_tokens=CHAT_MAX_TOKENS
    )
    assert raw.http_response.status_code == 200
    body = raw.http_response.json()
    # The client parses what the gateway sent, too.
    parsed = raw.parse()
    assert parsed.choices[0].message.content == body["choices"][0]["message"]["content"]
    return body


def test_chat_completion(client: openai.OpenAI, greedy_chat: dict[str, Any]) -> None:
    assert_valid("CreateChatCompletionResponse", greedy_chat)
    assert greedy_chat["object"] == "chat.completion"
    assert greedy_chat["model"] == SMOL
    assert len(greedy_chat["choices"]) == 1
    choice = greedy_chat["choices"][0]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    content = choice["message"]["content"]
    assert isinstance(content, str) and content.strip(), choice
    assert choice["finish_reason"] in ("stop", "length"), choice
    assert_usage(greedy_chat["usage"], CHAT_MAX_TOKENS)

    # The same request through the client's typed interface gives the same greedy answer.
    completion = client.chat.completions.create(
        model=SMOL, messages=CHAT_MESSAGES, temperature=0, max_tokens=CHAT_MAX_TOKENS
    )
    assert completion.choices[0].message.content == content
    assert completion.choices[0].finish_reason == choice["finish_reason"]
    assert completion.usage is not None
    assert completion.usage.total_tokens == greedy_chat["usage"]["total_tokens"]


def test_chat_stream_raw_chunks_match_spec(
    client: openai.OpenAI, greedy_chat: dict[str, Any]
) -> None:
    with client.chat.completions.with_streaming_response.create(
        model=SMOL,
        messages=CHAT_MESSAGES,
        temperature=0,
        max_tokens=CHAT_MAX_TOKENS,
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.http_response.status_code == 200
        chunks = sse_events(response)

    for chunk in chunks:
        assert_valid("CreateChatCompletionStreamResponse", chunk)
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == SMOL
    # "Each chunk has the same ID" / "Each chunk has the same timestamp".
    assert len({c["id"] for c in chunks}) == 1, [c["id"] for c in chunks]
    assert len({c["created"] for c in chunks}) == 1, [c["created"] for c in chunks]

    *body, last = chunks
    assert last["choices"] == [], last
    assert last["usage"] is not None, last
    assert_usage(last["usage"], CHAT_MAX_TOKENS)
    assert last["usage"] == greedy_chat["usage"]
    for chunk in body:
        # "All other chunks will also include a `usage` field, but with a null value."
        assert "usage" in chunk and chunk["usage"] is None, chunk
        assert len(chunk["choices"]) == 1, chunk

    choices = [c["choices"][0] for c in body]
    assert choices[0]["delta"].get("role") == "assistant", choices[0]
    finished = [c for c in choices if c["finish_reason"] is not None]
    assert len(finished) == 1 and finished[0] is choices[-1], choices
    assert choices[-1]["finish_reason"] == greedy_chat["choices"][0]["finish_reason"]
    text = "".join(c["delta"].get("content") or "" for c in choices)
    assert text == greedy_chat["choices"][0]["message"]["content"]


def test_chat_stream_with_client(client: openai.OpenAI, greedy_chat: dict[str, Any]) -> None:
    stream = client.chat.completions.create(
        model=SMOL,
        messages=CHAT_MESSAGES,
        temperature=0,
        max_tokens=CHAT_MAX_TOKENS,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert len(chunks) >= 3, chunks
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.total_tokens == greedy_chat["usage"]["total_tokens"]
    assert all(c.usage is None for c in chunks[:-1])
    finish_reasons = [ch.finish_reason for c in chunks for ch in c.choices if ch.finish_reason]
    assert finish_reasons == [greedy_chat["choices"][0]["finish_reason"]]
    text = "".join(ch.delta.content or "" for c in chunks for ch in c.choices)
    assert text == greedy_chat["choices"][0]["message"]["content"]


def test_chat_stop_sequence(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "List three colors, one per line."}]
    free = client.chat.completions.create(
        model=SMOL, messages=messages, temperature=0, max_tokens=32
    )
    free_text = free.choices[0].message.content or ""
    # Without a stop sequence the greedy answer spans lines; otherwise the test proves nothing.
    assert "\n" in free_text.strip(), free_text

    raw = client.chat.completions.with_raw_response.create(
        model=SMOL, messages=messages, temperature=0, max_tokens=32, stop=["\n"]
    )
    body = raw.http_response.json()
    assert_valid("CreateChatCompletionResponse", body)
    choice = body["choices"][0]
    text = choice["message"]["content"]
    assert "\n" not in text, text
    assert text and free_text.startswith(text), (text, free_text)
    assert choice["finish_reason"] == "stop", choice


# ---------------------------------------------------------------- completions


@pytest.fixture(scope="module")
def greedy_completion(client: openai.OpenAI) -> dict[str, Any]:
    raw = client.completions.with_raw_response.create(
        model=SMOL, prompt=PROMPT, temperature=0, max_tokens=COMPLETION_MAX_TOKENS
    )
    assert raw.http_response.status_code == 200
    return raw.http_response.json()


def test_completion(client: openai.OpenAI, greedy_completion: dict[str, Any]) -> None:
    assert_valid("CreateCompletionResponse", greedy_completion)
    assert greedy_completion["object"] == "text_completion"
    assert greedy_completion["model"] == SMOL
    assert len(greedy_completion["choices"]) == 1
    choice = greedy_completion["choices"][0]
    assert choice["index"] == 0
    assert "Paris" in choice["text"], choice
    assert choice["finish_reason"] in ("stop", "length"), choice
    assert_usage(greedy_completion["usage"], COMPLETION_MAX_TOKENS)

    completion = client.completions.create(
        model=SMOL, prompt=PROMPT, temperature=0, max_tokens=COMPLETION_MAX_TOKENS
    )
    assert completion.choices[0].text == choice["text"]
    assert completion.usage is not None
    assert completion.usage.completion_tokens == greedy_completion["usage"]["completion_tokens"]


@pytest.mark.parametrize("include_usage", [False, True])
def test_completion_stream_raw_chunks_match_spec(
    client: openai.OpenAI, greedy_completion: dict[str, Any], include_usage: bool
) -> None:
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    with client.completions.with_streaming_response.create(
        model=SMOL,
        prompt=PROMPT,
        temperature=0,
        max_tokens=COMPLETION_MAX_TOKENS,
        stream=True,
        **extra,
    ) as response:
        assert response.http_response.status_code == 200
        chunks = sse_events(response)

    for chunk in chunks:
        assert_valid_with(COMPLETION_CHUNK, "CreateCompletionResponse (stream chunk)", chunk)
        assert chunk["object"] == "text_completion"
        assert chunk["model"] == SMOL
    assert len({c["id"] for c in chunks}) == 1, [c["id"] for c in chunks]

    if include_usage:
        *body, last = chunks
        assert last["choices"] == [], last
        assert last["usage"] is not None, last
        assert_usage(last["usage"], COMPLETION_MAX_TOKENS)
        assert last["usage"] == greedy_completion["usage"]
        for chunk in body:
            assert "usage" in chunk and chunk["usage"] is None, chunk
    else:
        body = chunks
        for chunk in body:
            # Without include_usage nothing calls for a usage field, let alone a null one.
            assert "usage" not in chunk or chunk["usage"] is not None, chunk

    choices = [c["choices"][0] for c in body]
    assert all(len(c["choices"]) == 1 for c in body), body
    finished = [c for c in choices if c["finish_reason"] is not None]
    assert len(finished) == 1 and finished[0] is choices[-1], choices
    assert choices[-1]["finish_reason"] == greedy_completion["choices"][0]["finish_reason"]
    text = "".join(c["text"] for c in choices)
    assert text == greedy_completion["choices"][0]["text"]


def test_completion_stream_with_client(
    client: openai.OpenAI, greedy_completion: dict[str, Any]
) -> None:
    chunks = list(
        client.completions.create(
            model=SMOL,
            prompt=PROMPT,
            temperature=0,
            max_tokens=COMPLETION_MAX_TOKENS,
            stream=True,
        )
    )
    assert len(chunks) >= 2, chunks
    text = "".join(ch.text for c in chunks for ch in c.choices)
    assert text == greedy_completion["choices"][0]["text"]
    assert chunks[-1].choices[0].finish_reason == greedy_completion["choices"][0]["finish_reason"]


def test_completion_stop_sequence(client: openai.OpenAI, greedy_completion: dict[str, Any]) -> None:
    free_text = greedy_completion["choices"][0]["text"]
    assert "\n" in free_text, free_text  # otherwise stopping at "\n" proves nothing
    raw = client.completions.with_raw_response.create(
        model=SMOL, prompt=PROMPT, temperature=0, max_tokens=COMPLETION_MAX_TOKENS, stop=["\n"]
    )
    body = raw.http_response.json()
    assert_valid("CreateCompletionResponse", body)
    choice = body["choices"][0]
    assert choice["text"] == free_text[: free_text.index("\n")], (choice, free_text)
    assert choice["finish_reason"] == "stop", choice
    assert body["usage"]["completion_tokens"] < greedy_completion["usage"]["completion_tokens"]


def test_gemma_base_model_completion(client: openai.OpenAI) -> None:
    raw = client.completions.with_raw_response.create(
        model=GEMMA, prompt=PROMPT, temperature=0, max_tokens=COMPLETION_MAX_TOKENS
    )
    assert raw.http_response.status_code == 200
    body = raw.http_response.json()
    assert_valid("CreateCompletionResponse", body)
    assert body["model"] == GEMMA
    choice = body["choices"][0]
    assert isinstance(choice["text"], str) and choice["text"].strip(), choice
    assert choice["finish_reason"] in ("stop", "length"), choice
    assert_usage(body["usage"], COMPLETION_MAX_TOKENS)
    assert raw.parse().choices[0].text == choice["text"]


# ---------------------------------------------------------------- models


def test_models_list_and_retrieve(client: openai.OpenAI) -> None:
    raw = client.models.with_raw_response.list()
    assert raw.http_response.status_code == 200
    body = raw.http_response.json()
    assert_valid("ListModelsResponse", body)
    ids = [m["id"] for m in body["data"]]
    assert SMOL in ids and GEMMA in ids, ids
    assert len(ids) == len(set(ids)), ids

    assert {m.id for m in client.models.list()} == set(ids)

    model = client.models.retrieve(SMOL)
    assert model.id == SMOL
    raw_model = client.models.with_raw_response.retrieve(SMOL).http_response.json()
    assert_valid("Model", raw_model)
    assert raw_model == next(m for m in body["data"] if m["id"] == SMOL)


# ---------------------------------------------------------------- errors


def test_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(
            model="no-such-model", messages=CHAT_MESSAGES, max_tokens=4
        )
    error = assert_error_body(info.value, 404)
    assert error["param"] == "model", error
    assert "no-such-model" in error["message"], error

    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("no-such-model")
    assert_error_body(info.value, 404)


def test_temperature_out_of_range_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=SMOL, messages=CHAT_MESSAGES, temperature=5, max_tokens=4
        )
    error = assert_error_body(info.value, 400)
    assert error["param"] == "temperature", error
    assert error["type"] == "invalid_request_error", error


def test_prompt_longer_than_context_is_400(client: openai.OpenAI) -> None:
    long_prompt = " ".join(f"word{i % 50}" for i in range(2000))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=SMOL,
            messages=[{"role": "user", "content": long_prompt}],
            temperature=0,
            max_tokens=8,
        )
    error = assert_error_body(info.value, 400)
    assert "context" in error["message"], error
    assert "context" in str(info.value)

    # The gateway keeps serving afterwards.
    after = client.chat.completions.create(
        model=SMOL, messages=CHAT_MESSAGES, temperature=0, max_tokens=4
    )
    assert after.choices[0].message.content
