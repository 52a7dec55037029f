"""Where a language model's answers come from: an OpenAI-compatible chat endpoint (vLLM, llama.cpp's server, hosted
APIs) or a local Hugging Face model; and the response cache on disk that makes an interrupted evaluation resume
without asking again.

The endpoint client is the standard library's (urllib): bounded concurrency by threads, a time-out per request,
retries with exponential back-off (honouring Retry-After) on 429, 5xx, time-outs and dropped connections. An error
that retrying cannot fix (a model the server rejects, an answer that is not the JSON the API promises, an endpoint
that never answers) stops the evaluation with one line; every answer received so far stays in the cache.

The API key is read from the environment variable named by `key_env` when a request is sent; it is kept in no
attribute, written to no file, and named in no message.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

from generators.core import ConfigError

from .items import SYSTEM_PROMPT

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class Cache:
    """Responses on disk, one JSON line per answered request, keyed by a hash of what was asked (model, messages,
    sampling settings): appended and flushed as each answer arrives, so a killed evaluation loses at most the
    answers in flight; a torn last line is skipped when read."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self.responses: dict[str, str] = {}
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                    self.responses[str(entry["key"])] = str(entry["response"])
                except (ValueError, KeyError, TypeError):
                    continue  # a torn line from a kill mid-write
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> str | None:
        return self.responses.get(key)

    def put(self, key: str, response: str) -> None:
        with self._lock:
            self.responses[key] = response
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps({"key": key, "response": response}) + "\n")
                f.flush()
                os.fsync(f.fileno())


def request_key(identity: dict, prompt: str) -> str:
    return hashlib.sha256(json.dumps([identity, prompt], sort_keys=True).encode()).hexdigest()[:32]


class Backend:
    """Answers prompts; `identity` names what answers (it keys the cache and is recorded, never a secret)."""

    identity: dict = {}

    def ask(self, prompt: str) -> str:
        raise NotImplementedError

    def answer_all(self, prompts: list[str], cache: Cache, concurrency: int = 1, progress=None) -> list[str]:
        """Every prompt's response, from the cache where it was asked before; the rest asked `concurrency` at a
        time, each cached as it arrives. An error stops the pool (requests in flight finish) and is raised."""
        keys = [request_key(self.identity, p) for p in prompts]
        todo = list(dict.fromkeys(k for k in keys if cache.get(k) is None))
        prompt_of = dict(zip(keys, prompts))
        if todo:
            def one(key):
                cache.put(key, self.ask(prompt_of[key]))
                if progress:
                    progress()
            pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
            try:
                futures = [pool.submit(one, k) for k in todo]
                wait(futures, return_when=FIRST_EXCEPTION)
            finally:  # an error or Ctrl-C: nothing new is asked, the answers in flight arrive and are cached
                pool.shutdown(wait=True, cancel_futures=True)
            for f in futures:
                if not f.cancelled() and f.exception() is not None:
                    raise f.exception()
        return [cache.get(k) for k in keys]


class EndpointBackend(Backend):
    """POST /chat/completions of an OpenAI-compatible server."""

    def __init__(self, endpoint: str, model: str, key_env: str = "OPENAI_API_KEY", max_tokens: int = 1024,
                 temperature: float = 0.0, timeout: float = 120.0, retries: int = 6, backoff: float = 1.0,
                 system: str = SYSTEM_PROMPT):
        if not endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"--endpoint must be an http:// or https:// URL, got {endpoint!r}")
        if not model:
            raise ConfigError("--model must name the model the endpoint serves")
        if timeout <= 0 or retries < 0 or max_tokens < 1:
            raise ConfigError("--timeout must be > 0, --retries >= 0 and --max-tokens >= 1")
        base = endpoint.rstrip("/")
        self.url = base if base.endswith("/chat/completions") else base + "/chat/completions"
        self.model, self.key_env, self.system = model, key_env, system
        self.max_tokens, self.temperature = max_tokens, temperature
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.identity = {"backend": "endpoint", "url": self.url, "model": model, "max_tokens": max_tokens,
                         "temperature": temperature, "system": system}

    def _post(self, body: bytes) -> bytes:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.key_env, "")
        if key:
            headers["Authorization"] = "Bearer " + key
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            return resp.read()

    def ask(self, prompt: str) -> str:
        messages = ([{"role": "system", "content": self.system}] if self.system else []) + \
            [{"role": "user", "content": prompt}]
        body = json.dumps({"model": self.model, "messages": messages, "max_tokens": self.max_tokens,
                           "temperature": self.temperature}).encode()
        last = ""
        for attempt in range(self.retries + 1):
            wait_s = self.backoff * 2 ** attempt
            try:
                raw = self._post(body)
            except urllib.error.HTTPError as e:
                detail = _error_text(e)
                if e.code not in RETRY_STATUS:
                    raise ConfigError(f"the endpoint refused the request (HTTP {e.code}): {detail}; check --model "
                                      f"and --endpoint") from None
                last = f"HTTP {e.code}: {detail}"
                after = e.headers.get("Retry-After") if e.headers else None
                if after and after.replace(".", "", 1).isdigit():
                    wait_s = max(wait_s, min(float(after), 60.0))
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
                last = str(getattr(e, "reason", e)) or type(e).__name__
            else:
                return _content(raw)
            if attempt < self.retries:
                time.sleep(wait_s)
        raise ConfigError(f"the endpoint {self.url} did not answer after {self.retries + 1} tries (last: {last}); "
                          f"is the server up? Answers so far are cached: run again to resume")


def _error_text(e) -> str:
    try:
        text = e.read().decode("utf-8", "replace")
        message = json.loads(text).get("error", text)
        message = message.get("message", message) if isinstance(message, dict) else message
    except Exception:
        message = getattr(e, "reason", "") or ""
    return " ".join(str(message).split())[:200] or "no detail"


def _content(raw: bytes) -> str:
    try:
        content = json.loads(raw)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        head = " ".join(raw[:80].decode("utf-8", "replace").split())
        raise ConfigError(f"the endpoint answered something that is not a chat completion ({head!r}); is "
                          f"--endpoint an OpenAI-compatible /v1 URL?") from None
    return "" if content is None else str(content)


class HuggingFaceBackend(Backend):
    """A local causal language model (transformers, the `hf` extra), greedy decoding, the chat template where the
    tokenizer has one."""

    def __init__(self, path: str, max_tokens: int = 256, system: str = SYSTEM_PROMPT, device: str = "cpu"):
        if not Path(path).is_dir():
            raise ConfigError(f"--hf {path}: no such model folder (a local folder of a saved model)")
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise ConfigError("--hf needs the transformers package: pip install 'reasoning-testbed[hf]'") from None
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path).to(device).eval()
        self.max_tokens, self.system, self.device = max_tokens, system, device
        self.identity = {"backend": "hf", "path": str(Path(path).resolve()), "max_tokens": max_tokens,
                         "system": system}
        self._lock = threading.Lock()  # one generation at a time: the model is not shared across threads

    def ask(self, prompt: str) -> str:
        import torch

        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            messages = ([{"role": "system", "content": self.system}] if self.system else []) + \
                [{"role": "user", "content": prompt}]
            text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = (self.system + "\n\n" if self.system else "") + prompt + "\n"
        ids = tok(text, return_tensors="pt").to(self.device)
        with self._lock, torch.no_grad():
            out = self.model.generate(**ids, max_new_tokens=self.max_tokens, do_sample=False,
                                      pad_token_id=tok.pad_token_id if tok.pad_token_id is not None
                                      else tok.eos_token_id)
        return tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
