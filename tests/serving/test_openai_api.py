"""The OpenAI-compatible API of `tfllm.serve`, driven by the official `openai` client on
loopback: completions and chat equal the SavedModel's own `generate`, streaming sends
tokens before the answer ends, stop strings, usage, 429 under a burst, a disconnect
mid-stream, and every error in OpenAI's shape."""

import concurrent.futures
import json
import time

import keras
import openai
import pytest
import requests
import tensorflow as tf

from tests.interop import published
from tests.serving.models import PROMPTS, corpus
from tfllm.export import modules
from tfllm.export.saved_model import export_module
from tfllm.models import build_pretraining_model, configs
from tfllm.serving.process import ServerProcess
from tfllm.text import chat_templates
from tfllm.text.tokenizers import load_tokenizer, train_tokenizer

CONFIG = """model_config_list {{
  config {{ name: "llama_chat" base_path: "{base}/llama_chat" model_platform: "tensorflow" }}
  config {{ name: "gpt_plain" base_path: "{base}/gpt_plain" model_platform: "tensorflow" }}
}}
"""
MESSAGES = [{"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name a computer."}]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A Llama-family generator with a Qwen2-style tokenizer.json (its ChatML markers are
    special tokens; <|im_end|> ends the text) and a ChatML template, and a GPT one with
    tfllm's SentencePiece and no template, served with a limit of one generation at once."""
    root = tmp_path_factory.mktemp("openai")
    (root / "tok").mkdir()
    (root / "qwen").mkdir()
    tokenizer = load_tokenizer(train_tokenizer("gpt", corpus(), 600, str(root / "tok")))
    published.byte_level_tokenizer("qwen2", root / "qwen" / "tokenizer.json")
    (root / "qwen" / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|im_end|>"}))
    qwen_tokenizer = load_tokenizer(str(root / "qwen"))
    keras.utils.set_random_seed(5)
    llama = build_pretraining_model(configs.override(configs.get_preset("llama_tiny"), {
        "vocab_size": qwen_tokenizer.vocab_size, "hidden_size": 32, "intermediate_size": 64,
        "max_sequence_length": 128}))
    gpt = build_pretraining_model(configs.override(configs.get_preset("gpt_tiny"), {
        "vocab_size": tokenizer.vocab_size, "hidden_size": 32, "intermediate_size": 64,
        "max_sequence_length": 64, "dropout": 0.0}))
    base = str(root / "export")
    chat = modules.GeneratorModule(llama, qwen_tokenizer, 6, chat_templates.named("chatml"))
    export_module(chat, base, "llama_chat", PROMPTS)
    export_module(modules.GeneratorModule(gpt, tokenizer, 6), base, "gpt_plain", PROMPTS)
    (root / "models.config").write_text(CONFIG.format(base=base))
    server = ServerProcess(f"--model_config_file={root / 'models.config'}",
                           "--max_concurrent_generations=1", "--max_request_bytes=4096")
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{server.rest_port}/v1", api_key="none",
                           max_retries=0, timeout=120)
    yield server, client, tf.saved_model.load(f"{base}/llama_chat/1"), chat
    server.stop()


def _generate(saved, prompt, max_tokens, temperature=0.0, top_p=1.0, seed=0):
    outputs = saved.signatures["generate"](
        prompt=tf.constant([prompt]), max_new_tokens=tf.constant([max_tokens]),
        temperature=tf.constant([temperature]), top_k=tf.constant([0]),
        top_p=tf.constant([top_p]), seed=tf.constant([seed]))
    return (outputs["text"].numpy()[0].decode(), int(outputs["num_tokens"][0]),
            int(outputs["prompt_tokens"][0]))


def test_completion_equals_the_saved_models_generate(served):
    _, client, saved, _ = served
    answer = client.completions.create(model="llama_chat", prompt="Science is", max_tokens=8,
                                       temperature=0, seed=3)
    text, generated, prompt_tokens = _generate(saved, "Science is", 8)
    assert answer.object == "text_completion" and answer.model == "llama_chat"
    assert answer.choices[0].text == text
    assert answer.choices[0].finish_reason == ("length" if generated == 8 else "stop")
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (prompt_tokens,
                                                                           generated)
    assert answer.usage.total_tokens == prompt_tokens + generated
    sampled = [client.completions.create(model="llama_chat", prompt="Science is", max_tokens=8,
                                         temperature=1.0, top_p=0.9, seed=7).choices[0].text
               for _ in range(2)]
    assert sampled[0] == sampled[1] == _generate(saved, "Science is", 8, 1.0, 0.9, 7)[0]


def test_chat_renders_the_template_and_stops_at_the_end_of_turn(served):
    _, client, saved, chat = served
    prompt = chat_templates.named("chatml").render(MESSAGES)
    assert prompt.endswith("<|im_start|>assistant\n")
    answer = client.chat.completions.create(model="llama_chat", messages=MESSAGES,
                                            max_tokens=8, temperature=0)
    expected, _, _ = _generate(saved, prompt, 8)
    expected = expected.split("<|im_end|>")[0]
    assert answer.object == "chat.completion"
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content == expected


def test_stop_strings_cut_the_answer(served):
    _, client, saved, _ = served
    full, _, _ = _generate(saved, "The computer", 12)
    stop = full.strip()[2:4]  # two characters inside the greedy answer
    assert stop and stop in full
    answer = client.completions.create(model="llama_chat", prompt="The computer",
                                       max_tokens=12, temperature=0, stop=[stop])
    assert answer.choices[0].text == full[:full.index(stop)]
    assert answer.choices[0].finish_reason == "stop"
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model="llama_chat", prompt="The computer", max_tokens=12, temperature=0, stop=stop,
        stream=True))
    assert streamed == full[:full.index(stop)]


def test_streaming_sends_tokens_before_the_answer_ends(served):
    _, client, saved, _ = served
    pieces, reasons = [], []
    for chunk in client.completions.create(model="llama_chat", prompt="Science is",
                                           max_tokens=10, temperature=0, stream=True):
        pieces.append(chunk.choices[0].text)
        reasons.append(chunk.choices[0].finish_reason)
    assert "".join(pieces) == _generate(saved, "Science is", 10)[0]
    assert reasons[-1] in ("stop", "length") and set(reasons[:-1]) == {None}
    assert sum(1 for p in pieces if p) >= 2  # more than one event carried text
    chat = list(client.chat.completions.create(model="llama_chat", messages=MESSAGES,
                                               max_tokens=6, temperature=0, stream=True))
    assert chat[0].choices[0].delta.role == "assistant"
    assert chat[-1].choices[0].finish_reason in ("stop", "length")


def test_models_are_listed(served):
    _, client, _, _ = served
    assert sorted(m.id for m in client.models.list()) == ["gpt_plain", "llama_chat"]


def test_errors_come_in_openais_shape(served):
    server, client, _, _ = served
    with pytest.raises(openai.NotFoundError) as missing:
        client.completions.create(model="nope", prompt="x", max_tokens=2)
    assert missing.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError, match="no chat template"):
        client.chat.completions.create(model="gpt_plain", messages=MESSAGES)
    for bad in ({"temperature": 3.0}, {"n": 2}, {"stop": ["a"] * 5}, {"max_tokens": 0}):
        with pytest.raises(openai.BadRequestError) as error:
            client.completions.create(model="llama_chat", prompt="x", **bad)
        assert error.value.body["type"] == "invalid_request_error"
    url = f"http://127.0.0.1:{server.rest_port}/v1"
    for body, status in ((b"{not json", 400), (json.dumps({"model": "llama_chat", "prompt":
                                                            "x" * 5000}).encode(), 413)):
        response = requests.post(f"{url}/completions", data=body, timeout=30,
                                 headers={"Content-Type": "application/json"})
        assert response.status_code == status
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    with pytest.raises(openai.BadRequestError, match="needs a role"):
        client.chat.completions.create(model="llama_chat", messages=[{"role": "robot",
                                                                      "content": "hi"}])


def test_past_the_limit_429_and_a_disconnect_frees_the_slot(served):
    server, client, saved, _ = served
    url = f"http://127.0.0.1:{server.rest_port}/v1/completions"
    body = {"model": "llama_chat", "prompt": "Science is", "max_tokens": 100, "temperature": 0}
    # Greedy decoding of this prompt runs all 100 steps (no end-of-text on the way): four
    # requests sent at once overlap, and with one slot the server answers some 429.
    assert _generate(saved, "Science is", 100)[1] == 100
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: requests.post(url, json=body, timeout=120), range(4)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses[0] == 200 and statuses[-1] == 429, statuses
    for refused in (a for a in answers if a.status_code == 429):
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["error"]["type"] == "rate_limit_exceeded"
    holder = requests.post(url, json={**body, "stream": True}, stream=True, timeout=60)
    assert next(holder.iter_lines()).startswith(b"data: ")  # it is generating
    holder.close()  # a client that goes away mid-stream

    def complete():
        return client.completions.create(model="llama_chat", prompt="Science is",
                                          max_tokens=3, temperature=0)

    for _ in range(40):  # the slot comes back (at the stream's next token at the latest)
        outcome = _try(complete)
        if type(outcome).__name__ == "Completion":
            break
        time.sleep(0.25)
    assert type(outcome).__name__ == "Completion", "the disconnected stream kept its slot"


def _try(call):
    try:
        return call()
    except openai.RateLimitError as error:
        return error
