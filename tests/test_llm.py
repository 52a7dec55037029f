"""The language-model bridge: text renderings checked by solvers that read only the text, items that are the small
models' examples, scoring, JSONL, the lm-eval folder, and `eval-llm` against a chat-completions server started
here (no network, no downloaded weights)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from helpers import one_line_error, run

import generators
from generators.core import ConfigError
from testbed.llm import items as llm_items
from testbed.llm.backends import Backend, Cache, EndpointBackend
from testbed.llm.evaluate import LLMEval, evaluate_llm
from testbed.llm.items import TextDataset, extract_answer, render_items, reward, score_answer
from testbed.llm.render import STYLES, rendering

CA_TASKS = {
    "RO-S": dict(task="RO-S", radius=1, width=10, steps=6, n_input=2, k=3, mixed_k=True),
    "RO-O": dict(task="RO-O", radius=1, width=9, steps=6, n_input=2, m=3),
    "O-S": dict(task="O-S", radius=1, width=10, steps=8, n_input=4, k=2),
    "O-O": dict(task="O-O", radius=1, width=8, steps=8, n_input=4, m=2),
    "O-SR": dict(task="O-SR", radius=1, width=8, steps=6, n_input=4),
    "RO-S r2": dict(task="RO-S", radius=2, width=16, steps=4, n_input=1, k=3),
}
OTHER_TASKS = {
    "group_words S5": ("group_words", dict(group="S5", length=6)),
    "group_words Z7 last": ("group_words", dict(group="Z7", length=5, targets="last")),
    "facts": ("facts", dict(n_entities=50, name_tokens=2, value_tokens=2)),
    "mqar": ("mqar", dict(seq_len=32, n_pairs=4, vocab_size=256)),
}


def ca(fields):
    return generators.make("ca", fields)


# --- solvers that read only the question's text -------------------------------------------------------------------

def _evolve(state: list[int], table: dict[str, int], radius: int) -> list[int]:
    w = len(state)
    return [table["".join(str(state[(i + d) % w]) for d in range(-radius, radius + 1))] for i in range(w)]


def read_ca(question: str, style: str) -> tuple[list[list[int]], dict | None, int]:
    """(given states, rule table {neighbourhood bits: output} or None, radius) from a question's text alone."""
    if style == "symbolic":
        radius = int(re.search(r"\(radius (\d)\)", question).group(1))
        table = {m.group(1): int(m.group(2)) for m in re.finditer(r"^([01]+) -> ([01])$", question, re.M)} or None
        block = question.split("oldest first:\n")[1].splitlines()
        states = [[int(c) for c in line] for line in block if re.fullmatch(r"[01]+", line)]
        return states, table, radius
    width = int(re.match(r"(\d+) lamps", question).group(1))
    radius = 1 if "the lamp just before it" in question else int(re.search(r"the (\d) lamps before", question).group(1))
    table = {}
    for m in re.finditer(r"^- ((?:o[nf]+, )*o[nf]+): lamp i turns (on|off)\.$", question, re.M):
        table["".join("1" if w == "on" else "0" for w in m.group(1).split(", "))] = int(m.group(2) == "on")
    states = []
    for m in re.finditer(r"^- look \d+: (.*), the rest off\.$", question, re.M):
        on = {int(x) for x in re.findall(r"\d+", m.group(1))}
        states.append([int(i + 1 in on) for i in range(width)])
    return states, table or None, radius


def solve_rule_given(question: str, style: str) -> str:
    states, table, radius = read_ca(question, style)
    many = re.search(r"next (\d+) (?:states|minutes)", question)
    ahead = re.search(r"the state (\d+) steps after|on (\d+) minutes after", question)
    k = int(next(g for g in ahead.groups() if g)) if ahead else 1
    count = int(many.group(1)) if many else 1
    state, rows = states[-1], []
    for step in range(1, (count if many else k) + 1):
        state = _evolve(state, table, radius)
        if many or step == k:
            rows.append("".join(map(str, state)))
    return "\n".join(rows)


def solve_group_word(question: str, style: str) -> str:
    every = "after each move" in question or "prefix products" in question
    if "dial" in question or "cyclic group" in question:
        m = int(re.search(r"has (\d+) positions|Z(\d+)", question).group(1) or
                re.search(r"Z(\d+)", question).group(1))
        moves = [int(x) for x in re.search(r"(?:moves, in order|g_n): ([\d ]+)", question).group(1).split()]
        prefix = np.cumsum(moves) % m
        return " ".join(map(str, prefix if every else prefix[-1:]))
    moves = re.search(r"(?:moves, in order|g_n): ([\d ]+)", question).group(1).split()
    if style == "natural":  # slot j holds the card that was in slot d_j: new arrangement A'(j) = A(d_j)
        arrangement, out = list(range(len(moves[0]))), []
        for move in moves:
            arrangement = [arrangement[int(d)] for d in move]
            out.append("".join(map(str, arrangement)))
    else:  # p_t = p_{t-1} g_t with (ab)(j) = a(b(j))
        p, out = list(range(len(moves[0]))), []
        for g in moves:
            p = [p[int(g[j])] for j in range(len(g))]
            out.append("".join(map(str, p)))
    return " ".join(out if every else out[-1:])


def solve_mqar(question: str, style: str) -> str:
    if style == "natural":
        pairs = dict(re.findall(r"ticket (\S+) holds coat (\w+)", question))
        queries = re.search(r"in this order: ([^.]+)\.", question).group(1).split()
    else:
        pairs = dict(p.split(":") for p in re.search(r"pairs: (.*)", question).group(1).split())
        queries = re.search(r"Queries: (.*)", question).group(1).split()
    return " ".join(pairs[q] for q in queries)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", ["RO-S", "RO-O", "RO-S r2"])
def test_rule_given_questions_are_solvable_from_their_text(name, style):
    """A solver that reads only the question (rule table, states, what is asked) reaches the item's answer: the
    text says what the example means, neighbourhood order and ring included."""
    gen = ca(CA_TASKS[name])
    items, _ = render_items(gen, "test", 3, np.arange(40), None, style)
    for item in items:
        assert solve_rule_given(item["question"], style) == item["answer"]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", ["O-S", "O-O", "O-SR"])
def test_rule_inferred_questions_show_the_given_states(name, style):
    """Without the rule in the text, the states read from it are the example's given states, in order."""
    gen = ca(CA_TASKS[name])
    items, examples = render_items(gen, "val", 1, np.arange(20), None, style)
    given, _ = gen.given(examples)
    for i, item in enumerate(items):
        states, table, radius = read_ca(item["question"], style)
        assert table is None and radius == gen.config.radius
        assert np.array_equal(np.array(states), given[i])


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("name", ["group_words S5", "group_words Z7 last", "mqar"])
def test_other_questions_are_solvable_from_their_text(name, style):
    task, fields = OTHER_TASKS[name]
    gen = generators.make(task, fields)
    solve = solve_mqar if task == "mqar" else solve_group_word
    for item in render_items(gen, "test", 0, np.arange(30), None, style)[0]:
        assert solve(item["question"], style) == item["answer"]


# --- items are the small models' examples ------------------------------------------------------------------------

def all_tasks():
    return [("ca", f, k) for f, k in ((CA_TASKS["RO-S"], 2), (CA_TASKS["O-SR"], None), (CA_TASKS["RO-O"], None),
                                      (CA_TASKS["O-O"], None))] + [(t, f, None) for t, f in OTHER_TASKS.values()]


@pytest.mark.parametrize("task,fields,k", all_tasks())
def test_answers_are_the_examples_targets(task, fields, k):
    """Every item's answer, parsed back, is the target of the small-model example with the same (seed, split,
    index); metadata carry the example's rule, class, k and strata."""
    gen = generators.make(task, fields)
    idx = np.arange(5, 25)
    items, _ = render_items(gen, "test", 7, idx, k, "symbolic")
    examples = gen.sample("test", 7, idx) if k is None else gen.sample_at_depth("test", 7, idx, k)
    pred = rendering(gen, "symbolic").predictions([it["answer"] for it in items], examples)
    mask = examples["loss_mask"]
    assert np.array_equal(pred[mask], examples["targets"][mask])
    for i, it in enumerate(items):
        meta = it["metadata"]
        assert meta["index"] == idx[i] and meta["split"] == "test" and meta["seed"] == 7
        assert meta["generator"] == task and meta["config"] == generators.to_dict(gen.config)
        if task == "ca":
            assert meta["rule_id"] == examples["rule_id"][i] and meta["class_id"] == examples["class_id"][i]
            assert meta["trivial"] == bool(examples["trivial"][i][mask[i]].any())
            assert meta["fresh"] == bool(examples["fresh"][i][mask[i]].all())
            if k is not None:
                assert meta["k"] == k


def test_a_wrong_length_or_unknown_cell_scores_wrong_and_no_answer_scores_zero():
    gen = ca(CA_TASKS["RO-S"])
    items, examples = render_items(gen, "test", 0, np.arange(3), 1)
    text = rendering(gen, "symbolic")
    ans = items[0]["answer"]
    flipped = ("1" if ans[0] == "0" else "0") + ans[1:]
    pred = text.predictions([ans[:-1], None, ans.replace("0", "x", 1) if "0" in ans else ans], examples)
    mask = examples["loss_mask"]
    assert (pred[0][mask[0]] == -1).all() and (pred[1][mask[1]] == -1).all()
    assert score_answer(ans, items[0]) == 1.0 and score_answer(None, items[0]) == 0.0
    assert score_answer(ans[:-1], items[0]) == 0.0
    assert score_answer(flipped, items[0]) == pytest.approx((len(ans) - 1) / len(ans))
    assert score_answer(flipped, items[0], partial=False) == 0.0
    assert score_answer(" ".join(ans), items[0]) == 1.0  # spaces between cells are read through


def test_extract_answer_and_the_trl_reward():
    assert extract_answer("think <answer>1</answer> more <ANSWER> 0110 </ANSWER>") == "0110"
    assert extract_answer("no tags") is None and extract_answer(None) is None
    ds = TextDataset("mqar", dict(seq_len=16, n_pairs=2, vocab_size=64), size=3)
    answers = [it["answer"] for it in ds]
    completions = [[{"role": "assistant", "content": f"<answer>{answers[0]}</answer>"}], "<answer>t1 t2</answer>",
                   "nothing"]
    got = reward(completions, answer=answers, metadata=[it["metadata"] for it in ds])
    assert got[0] == 1.0 and got[2] == 0.0 and 0.0 <= got[1] < 1.0
    assert len(ds) == 3 and ds[1] == list(ds)[1] and ds.score_answer(answers[2], ds[2]) == 1.0


def test_text_dataset_is_deterministic_and_checks_its_input():
    a = TextDataset("ca", CA_TASKS["RO-S"], split="val", seed=5, size=4, k=2, style="natural")
    b = TextDataset("ca", CA_TASKS["RO-S"], split="val", seed=5, size=4, k=2, style="natural")
    assert list(a) == list(b)
    for bad in (dict(style="bogus"), dict(task="zipf_memory"), dict(size=0)):
        with pytest.raises(ConfigError):
            TextDataset(**{"task": "ca", "fields": CA_TASKS["RO-S"], **bad})


def test_register_reasoning_gym_is_optional(monkeypatch):
    """Without the package: False. With a package keeping reasoning-gym's registry contract (a ProceduralDataset
    subclass and a config dataclass, built by name from keyword config): items and scoring by name."""
    import dataclasses
    import types

    monkeypatch.setitem(sys.modules, "reasoning_gym", None)
    assert llm_items.register_reasoning_gym() is False

    class ProceduralDataset:
        pass

    registry = {}

    def register_dataset(name, dataset_cls, config_cls):
        assert name not in registry and issubclass(dataset_cls, ProceduralDataset)
        assert dataclasses.is_dataclass(config_cls)
        registry[name] = (dataset_cls, config_cls)

    def create_dataset(name, **kwargs):
        dataset_cls, config_cls = registry[name]
        return dataset_cls(config=config_cls(**kwargs))

    package = types.ModuleType("reasoning_gym")
    package.dataset = types.SimpleNamespace(ProceduralDataset=ProceduralDataset)
    package.factory = types.SimpleNamespace(DATASETS=registry, register_dataset=register_dataset)
    monkeypatch.setitem(sys.modules, "reasoning_gym", package)
    monkeypatch.setitem(sys.modules, "reasoning_gym.dataset", package.dataset)
    monkeypatch.setitem(sys.modules, "reasoning_gym.factory", package.factory)
    assert llm_items.register_reasoning_gym() is True and llm_items.register_reasoning_gym() is True
    assert set(registry) == {f"testbed_{t}" for t in llm_items.TEXT_TASKS}
    ds = create_dataset("testbed_ca", fields=CA_TASKS["RO-S"], size=5, k=2, seed=3)
    want = TextDataset("ca", CA_TASKS["RO-S"], seed=3, size=5, k=2)
    assert len(ds) == 5 and ds[4] == want[4] and ds.score_answer(want[4]["answer"], ds[4]) == 1.0


# --- eval-llm: responders --------------------------------------------------------------------------------------------

class Responder(Backend):
    """A backend answering each prompt with a function of the prompt (in-process)."""

    def __init__(self, answer, name="responder"):
        self.answer, self.identity, self.calls = answer, {"backend": "test", "model": name}, 0

    def ask(self, prompt):
        self.calls += 1
        return self.answer(prompt)


def oracle_for(sets_items):
    truth = {it["question"]: it["answer"] for it in sets_items}
    return lambda prompt: f"Reasoning...\n<answer>{truth[prompt]}</answer>"


def rows_of(rows, model):
    return [r for r in rows if r["model"] == model]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("task,fields,k", all_tasks())
def test_the_oracle_scores_one_on_every_task_and_style(tmp_path, task, fields, k, style):
    gen = generators.make(task, fields)
    req = LLMEval(gen, style, (k,) if k else (), size=40, seed=2)
    backend = Responder(oracle_for([it for _, its, _ in req.sets() for it in its]), "oracle")
    got = evaluate_llm(req, backend, tmp_path)
    mine = rows_of(got["rows"], "llm:oracle")
    assert mine and all(float(r["exact_match"]) == 1.0 for r in mine)
    log = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert len(log) == 40 and all(x["score"] == 1.0 and x["exact"] == 1.0 for x in log)


@pytest.mark.parametrize("name", ["RO-S", "O-S", "RO-O"])
def test_copying_the_last_state_scores_exactly_the_copy_last_baseline(tmp_path, name):
    gen = ca(CA_TASKS[name])
    ks = (2,) if name != "RO-O" else ()

    def copy_last(prompt):
        states, _, _ = read_ca(prompt, "symbolic")
        rows = gen.config.m if name == "RO-O" else 1
        return "<answer>" + "\n".join(["".join(map(str, states[-1]))] * rows) + "</answer>"

    got = evaluate_llm(LLMEval(gen, "symbolic", ks, size=150, seed=1), Responder(copy_last, "copier"), tmp_path)
    mine, base = rows_of(got["rows"], "llm:copier"), rows_of(got["rows"], "baseline:copy_last")
    assert len(mine) == len(base) > 0
    for a, b in zip(mine, base):
        for col in ("slice", "value", "exact_match", "exact_match_lo", "cell_accuracy", "exact_match_nontrivial",
                    "n", "n_classes"):
            assert a[col] == b[col], col
    assert "llm:copier" in got["table"] and "baseline:copy_last" in got["table"]


def test_results_table_draws_with_the_plot_command(tmp_path):
    gen = ca(CA_TASKS["RO-S"])
    req = LLMEval(gen, "symbolic", (1, 2), size=60)
    evaluate_llm(req, Responder(lambda p: "<answer>0</answer>", "zero"), tmp_path)
    proc = subprocess.run([sys.executable, "-m", "testbed", "plot", "depth", str(tmp_path / "results.csv"),
                           "--out", str(tmp_path / "depth.png")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "depth.png").stat().st_size > 0
    assert "llm:zero" in (tmp_path / "results.txt").read_text()


# --- eval-llm over HTTP ---------------------------------------------------------------------------------------------

class ChatServer:
    """An OpenAI-compatible /v1/chat/completions on 127.0.0.1 answering from `truth` {prompt: answer}, with faults
    on request: every `fail_every`-th request answers 500, every `slow_every`-th waits `slow_s` first; `mode`
    'garbage' answers non-JSON, 'reject' a 404 with an error body; `delay` before every answer."""

    def __init__(self, truth, fail_every=0, slow_every=0, slow_s=0.0, mode="ok", delay=0.0, key=None):
        self.truth, self.fail_every, self.slow_every, self.slow_s = truth, fail_every, slow_every, slow_s
        self.mode, self.delay, self.key = mode, delay, key
        self.lock, self.requests, self.answered = threading.Lock(), 0, {}
        self.bad_auth = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests += 1
                    n = server.requests
                if server.key is not None and self.headers.get("Authorization") != f"Bearer {server.key}":
                    server.bad_auth += 1
                if server.mode == "reject":
                    return self._send(404, json.dumps({"error": {"message": f"model {body['model']} not found"}}))
                if server.mode == "garbage":
                    return self._send(200, "<html>gateway</html>")
                if server.fail_every and n % server.fail_every == 0:
                    return self._send(500, "overloaded")
                if server.slow_every and n % server.slow_every == 0:
                    time.sleep(server.slow_s)
                time.sleep(server.delay)
                prompt = body["messages"][-1]["content"]
                with server.lock:
                    server.answered[prompt] = server.answered.get(prompt, 0) + 1
                content = f"<answer>{server.truth.get(prompt, '')}</answer>"
                self._send(200, json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}))

            def _send(self, code, text):
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(text.encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def quickstart_like():
    return ca(dict(task="RO-S", radius=1, width=12, steps=4, n_input=2, k=2, mixed_k=True))


@pytest.mark.slow
def test_endpoint_retries_faults_at_concurrency_8_and_keeps_the_key_out_of_every_file(tmp_path, monkeypatch):
    gen = quickstart_like()
    req = LLMEval(gen, "symbolic", (1, 2), size=120)
    truth = {it["question"]: it["answer"] for _, its, _ in req.sets() for it in its}
    secret = "sk-test-9f8e7d6c5b4a"
    server = ChatServer(truth, fail_every=7, slow_every=11, slow_s=0.6, key=secret)
    monkeypatch.setenv("TESTBED_TEST_KEY", secret)
    try:
        backend = EndpointBackend(server.url, "m", key_env="TESTBED_TEST_KEY", timeout=0.3, retries=8,
                                  backoff=0.01)
        got = evaluate_llm(req, backend, tmp_path, concurrency=8)
    finally:
        server.close()
    assert len(truth) >= 200
    assert all(float(r["exact_match"]) == 1.0 for r in rows_of(got["rows"], "llm:m"))
    assert server.requests > len(truth) and server.bad_auth == 0  # faults were retried; the key was sent
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    assert secret not in json.dumps(vars(backend), default=str)


@pytest.mark.slow
def test_an_interrupted_evaluation_resumes_without_asking_twice(tmp_path):
    """1,000 items over HTTP; SIGINT mid-run (exit 130, answers in flight cached); the rerun asks only what was
    never answered."""
    fields = ["--task", "RO-S", "--radius", "1", "--width", "12", "--steps", "4", "--n-input", "2"]
    gen = ca(dict(task="RO-S", radius=1, width=12, steps=4, n_input=2))
    req = LLMEval(gen, "symbolic", (1,), size=1000)
    truth = {it["question"]: it["answer"] for _, its, _ in req.sets() for it in its}
    server = ChatServer(truth, delay=0.03)
    cmd = [sys.executable, "-m", "testbed", "eval-llm", "ca", *fields, "--depth", "1", "--size", "1000",
           "--endpoint", server.url, "--model", "m", "--concurrency", "8", "--out", str(tmp_path)]
    try:
        # A shell that starts the suite in the background ignores SIGINT, and the child would inherit that: restore
        # the default so that Python installs its Ctrl-C handler whoever launched the tests.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.time() + 60
        while len(server.answered) < 150 and time.time() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "run the same command again to resume" in err and "Traceback" not in err
        first = len(server.answered)
        assert 150 <= first < len(truth)
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    finally:
        server.close()
    assert again.returncode == 0, again.stderr
    assert len(server.answered) == len(truth) and max(server.answered.values()) == 1  # nothing asked twice
    assert "llm:m" in again.stdout


@pytest.mark.parametrize("mode", ["garbage", "reject", "down"])
def test_a_broken_endpoint_is_one_line_and_the_cache_is_kept(tmp_path, mode):
    gen = quickstart_like()
    req = LLMEval(gen, "symbolic", (1,), size=30)
    truth = {it["question"]: it["answer"] for _, its, _ in req.sets() for it in its}
    server = ChatServer(truth)
    try:  # a first run caches every answer; the broken endpoint then meets a larger request
        evaluate_llm(req, EndpointBackend(server.url, "m", backoff=0.01), tmp_path)
    finally:
        server.close()
    before = (tmp_path / "cache.jsonl").read_text()
    broken = ChatServer(truth, mode=mode if mode != "down" else "ok")
    url = broken.url
    if mode == "down":
        broken.close()
    args = ["ca", "--task", "RO-S", "--radius", "1", "--width", "12", "--steps", "4", "--n-input", "2", "--k", "2",
            "--mixed-k", "--depth", "1", "--size", "40", "--endpoint", url, "--model", "m", "--retries", "1",
            "--timeout", "2", "--out", str(tmp_path)]
    res = run("eval-llm", *args)
    if mode != "down":
        broken.close()
    one_line_error(res, {"garbage": "not a chat completion", "reject": "HTTP 404", "down": "did not answer"}[mode])
    assert (tmp_path / "cache.jsonl").read_text().startswith(before) and before


@pytest.mark.parametrize("args,message", [
    (["ca", "--style", "bogus", "--hf", "x"], "unknown style"),
    (["zipf_memory", "--hf", "x"], "has no text rendering"),
    (["ca"], "give one backend"),
    (["ca", "--endpoint", "localhost:8000", "--model", "m"], "http:// or https://"),
    (["ca", "--task", "O-O", "--depth", "3", "--endpoint", "http://127.0.0.1:9/v1", "--model", "m"], "cannot evaluate"),
    (["mqar", "--depth", "1", "--endpoint", "http://127.0.0.1:9/v1", "--model", "m"], "no depth axis"),
    (["ca", "--hf", "/nonexistent/model"], "no such model folder"),
])
def test_eval_llm_bad_input_is_one_line_exit_2(tmp_path, args, message):
    one_line_error(run("eval-llm", *args, "--out", tmp_path / "o"), message)


def test_eval_llm_on_a_spec_asks_the_small_models_held_out_examples(tmp_path):
    """A spec's data section and [eval] (its k, evaluation seed) choose the items: the quickstart's examples."""
    from testbed import spec as specs

    cfg = specs.resolve(specs.load("experiments/quickstart.toml"))
    req = LLMEval(cfg.task(), "symbolic", tuple(cfg.eval.k), size=20, seed=cfg.eval.seed)
    truth = {it["question"]: it["answer"] for _, its, _ in req.sets() for it in its}
    server = ChatServer(truth)
    try:
        res = run("eval-llm", "experiments/quickstart.toml", "--endpoint", server.url, "--model", "m", "--size", 20,
                  "--out", tmp_path)
    finally:
        server.close()
    assert res.exit_code == 0, res.output
    asked = json.loads((tmp_path / "config.json").read_text())
    assert asked["k"] == [1, 2] and asked["seed"] == cfg.eval.seed and asked["task"] == "ca"
    assert asked["fields"] == generators.to_dict(cfg.task().config)  # the spec's data section, as resolved
    rows = [r for r in csv_rows(tmp_path / "results.csv") if r["model"] == "llm:m" and r["slice"] == "k"]
    assert sorted(int(r["k"]) for r in rows) == [1, 2] and all(float(r["exact_match"]) == 1.0 for r in rows)
    assert len(server.answered) == 40


def csv_rows(path):
    import csv

    with open(path) as f:
        return list(csv.DictReader(f))


def test_hf_without_its_extra_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # as where the hf extra is not installed
    (tmp_path / "model").mkdir()
    one_line_error(run("eval-llm", "ca", "--hf", tmp_path / "model", "--out", tmp_path / "o"),
                   "pip install 'reasoning-testbed[hf]'")


def test_cache_skips_a_torn_last_line(tmp_path):
    cache = Cache(tmp_path / "c.jsonl")
    cache.put("a", "x")
    with open(tmp_path / "c.jsonl", "a") as f:
        f.write('{"key": "b", "resp')
    assert Cache(tmp_path / "c.jsonl").responses == {"a": "x"}


# --- JSONL and the lm-eval folder ----------------------------------------------------------------------------------

def test_gen_jsonl_round_trip(tmp_path):
    out = tmp_path / "items.jsonl"
    args = ["gen", "ca", "--task", "RO-S", "--radius", "1", "--width", "10", "--steps", "6", "--n-input", "2",
            "--k", "3", "--mixed-k", "--depth", "3", "--split", "test", "--seed", "4", "--n", "25", "--format",
            "jsonl", "--style", "natural", "--out", str(out)]
    proc = subprocess.run([sys.executable, "-m", "testbed", *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    got = [json.loads(line) for line in out.read_text().splitlines()]
    want, _ = render_items(ca(CA_TASKS["RO-S"]), "test", 4, np.arange(25), 3, "natural")
    assert got == json.loads(json.dumps(want))
    assert {"question", "answer", "metadata"} == set(got[0]) and got[0]["metadata"]["k"] == 3
    bad = subprocess.run([sys.executable, "-m", "testbed", "gen", "ca", "--format", "jsonl", "--pack"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--format npz" in bad.stderr


def test_lm_eval_folder_parses_and_scores_the_oracle(tmp_path):
    yaml = pytest.importorskip("yaml")
    proc = subprocess.run([sys.executable, "-m", "testbed", "export", "lm-eval", str(tmp_path), "ca",
                           "--task", "RO-S", "--radius", "1", "--width", "12", "--steps", "4", "--n-input", "2",
                           "--k", "2", "--mixed-k", "--depth", "1", "--depth", "2", "--size", "30"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: ("function", loader.construct_scalar(node)))
    spec = yaml.load((tmp_path / "testbed_ca.yaml").read_text(), Loader=Loader)
    assert spec["output_type"] == "generate_until" and spec["custom_dataset"] == ("function", "utils.load")
    assert [m["metric"] for m in spec["metric_list"]] == ["exact_match", "exact_match_k1", "exact_match_k2"]
    sys.path.insert(0, str(tmp_path))
    try:
        import importlib

        utils = importlib.import_module("utils")
        importlib.reload(utils)
        docs = utils.load()["test"]
        docs = list(docs)
        assert len(docs) == 60
        scored = [utils.process_results(d, [f"<answer>{d['answer']}</answer>"]) for d in docs]
        assert utils.mean_scored([s["exact_match"] for s in scored]) == 1.0
        for k in (1, 2):
            per_k = [s[f"exact_match_k{k}"] for s in scored]
            assert per_k.count(1.0) == 30 and utils.mean_scored(per_k) == 1.0
        wrong = utils.process_results(docs[0], ["<answer>nope</answer>"])
        assert wrong["exact_match"] == 0.0
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("utils", None)


# --- the Hugging Face backend (the hf extra) ------------------------------------------------------------------------

@pytest.mark.slow
def test_hf_backend_on_a_tiny_random_model(tmp_path):
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    chars = sorted(set("".join(it["question"] + it["answer"] for it in
                               TextDataset("ca", CA_TASKS["RO-S"], size=5, k=1))) | set("<>/answer \n"))
    vocab = {"[UNK]": 0, "[EOS]": 1, **{c: i + 2 for i, c in enumerate(chars)}}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Split("", "isolated")
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="[EOS]",
                                                pad_token="[EOS]")
    config = transformers.GPT2Config(vocab_size=len(vocab), n_positions=2048, n_embd=16, n_layer=1, n_head=2,
                                     eos_token_id=1, bos_token_id=1)
    transformers.set_seed(0)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path / "model")
    fast.save_pretrained(tmp_path / "model")
    out = tmp_path / "eval"
    proc = subprocess.run([sys.executable, "-m", "testbed", "eval-llm", "ca", "--task", "RO-S", "--radius", "1",
                           "--width", "10", "--steps", "6", "--n-input", "2", "--depth", "1", "--size", "6",
                           "--hf", str(tmp_path / "model"), "--max-tokens", "8", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    log = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert len(log) == 6 and all(isinstance(x["response"], str) for x in log)
    assert json.loads((out / "config.json").read_text())["backend"]["backend"] == "hf"
