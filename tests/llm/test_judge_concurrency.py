"""``label auto --judge ... --concurrency N``: a model judge called through the real OpenAI client against a local
OpenAI-compatible server that takes its time (and answers one call with a rate-limit error, which the client
retries with backoff): the labels are the ones one thread gives, written in step order, and the calls overlap."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from fake_openai_server import FakeOpenAIServer, error_reply, text_reply

from trajrec.recorder import Recorder
from trajrec.replay.autolabel import label_with_judge
from trajrec.replay.labels import LabelStore

DELAY = 0.05  # seconds the server takes per call


class _ByRequest(list):  # type: ignore[type-arg]
    """The server's replies made from each request (the server pops one per request, under its lock, just after
    keeping the request): the verdict depends on the step, so the labels do not depend on the order calls come."""

    def __init__(self, server: FakeOpenAIServer) -> None:
        super().__init__()
        self.server = server
        self.rate_limited: set[str] = set()

    def __bool__(self) -> bool:
        return True

    def pop(self, index: int = -1) -> dict[str, Any]:
        text = self.server.requests[-1]["body"]["messages"][-1]["content"]
        if "step 1 " in text and text not in self.rate_limited:  # once per step 1: a 429 the client retries
            self.rate_limited.add(text)
            # retry-after-ms: the client's wait before its retry (its own backoff is ~0.5-1 s)
            return {**error_reply(429, "rate limit reached, retry later"), "_headers": {"retry-after-ms": "20"}}
        verdict = "+1" if sum(map(ord, text)) % 3 else "-1"
        return {**text_reply(f"{verdict} because of the step"), "_delay": DELAY}


def _make_judge(base_url: str) -> Any:
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="test", max_retries=3)
    live = {"now": 0, "most": 0}
    lock = threading.Lock()

    def judge(ctx: Any) -> dict[str, Any]:
        with lock:
            live["now"] += 1
            live["most"] = max(live["most"], live["now"])
        try:
            prompt = (f"episode {ctx.episode_id} step {ctx.index} action {ctx.step.action!r} after "
                      f"{len(ctx.previous)} steps")
            reply = client.chat.completions.create(model="judge", messages=[{"role": "user", "content": prompt}])
            text = reply.choices[0].message.content or ""
            return {"value": int(text.split()[0]), "rationale": text}
        finally:
            with lock:
                live["now"] -= 1

    judge.judge_id = "model:fake-judge@1"  # type: ignore[attr-defined]
    judge.live = live  # type: ignore[attr-defined]
    return judge


@pytest.fixture
def run(tmp_path: Path) -> Path:
    import trajrec.envs  # noqa: F401 - registers the ids
    from trajrec.envs.agents import make_agent
    from trajrec.envs.runner import run_episode

    out = tmp_path / "run"
    env = Recorder(gym.make("trajrec/Shell-v0"), out)
    for seed in range(3):
        run_episode(env, make_agent("trajrec/Shell-v0", seed=seed, skill=0.5), seed=seed)
    env.close()
    return out


def _labels(run: Path) -> list[tuple[str, Any, Any, str | None]]:
    store = LabelStore(run)
    return sorted((lab.episode_id, str(lab.target), lab.value, lab.rationale) for lab in store.current())


def test_concurrent_judge_calls_overlap_and_give_the_labels_of_one_thread(run: Path, tmp_path: Path) -> None:
    pytest.importorskip("openai")
    import shutil

    runs = {1: run, 4: tmp_path / "run4"}
    shutil.copytree(run, runs[4])
    most = {}
    for n, folder in runs.items():
        server = FakeOpenAIServer([])
        server.replies = _ByRequest(server)
        with server:
            judge = _make_judge(server.base_url)
            res = label_with_judge([folder], judge, concurrency=n)
        most[n] = judge.live["most"]
        assert res.episodes == 3 and res.added > 6 and not res.unreadable
        assert len(server.replies.rate_limited) == 3  # one 429 per episode, retried by the client
    assert _labels(runs[1]) == _labels(runs[4])
    # The calls overlap (what makes a slow judge faster); the wall time is the bench's to measure, not a test's.
    assert most[1] == 1 and most[4] > 1


def test_a_judge_that_raises_keeps_the_labels_before_in_step_order(run: Path) -> None:
    calls: list[int] = []

    def judge(ctx: Any) -> int:
        calls.append(ctx.index)
        time.sleep(0.01)
        if ctx.index == 3:
            raise RuntimeError("model said no")
        return 1

    from trajrec.replay.autolabel import JudgeError

    from trajrec.replay.exports.source import Source

    order = [(ref.episode_id, ref.n_steps) for ref in Source([run])]
    failing = next(i for i, (_, n) in enumerate(order) if n > 3)  # the first episode with a step 3
    with pytest.raises(JudgeError, match=f"on episode {order[failing][0]} step 3"):
        label_with_judge([run], judge, concurrency=4)
    got: dict[str, set[Any]] = {}
    for lab in LabelStore(run).current():
        got.setdefault(lab.episode_id, set()).add(lab.target)
    want = {eid: set(range(n)) for eid, n in order[:failing]}
    want[order[failing][0]] = {0, 1, 2}  # the steps before the failing one, as with one thread; none after
    assert got == want


def test_cli_concurrency_option(run: Path, tmp_path: Path) -> None:
    judge_file = tmp_path / "slowjudge.py"
    judge_file.write_text("import time\n\n\ndef judge(ctx):\n    time.sleep(0.01)\n"
                          "    return 1 if ctx.index % 2 else -1\n")
    proc = subprocess.run([sys.executable, "-m", "trajrec", "label", "auto", str(run), "--judge",
                           f"{judge_file}:judge", "--concurrency", "3", "--json"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["episodes"] == 3
    bad = subprocess.run([sys.executable, "-m", "trajrec", "label", "auto", str(run), "--judge",
                          f"{judge_file}:judge", "--concurrency", "0"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--concurrency" in bad.stderr


@pytest.mark.parametrize("concurrency", [1, 3])
def test_keep_going_labels_every_other_step_and_counts_the_failed_calls(run: Path, concurrency: int) -> None:
    # A judge that fails on some steps (a model server's error, an unusable answer) must not stop the run.
    from trajrec.replay.exports.source import Source

    failing_now = [True]

    def judge(ctx: Any) -> Any:
        if failing_now[0] and ctx.index == 1:
            raise RuntimeError("model server said 503")
        if failing_now[0] and ctx.index == 2:
            return {"rationale": "no value"}  # unusable
        return 1

    order = [(ref.episode_id, ref.n_steps) for ref in Source([run])]
    res = label_with_judge([run], judge, concurrency=concurrency, keep_going=True)
    failing = sum(min(n, 3) - 1 for _, n in order if n > 1)  # steps 1 and 2 of each episode that has them
    assert res.episodes == len(order) and len(res.judge_errors) == failing
    assert any("RuntimeError: model server said 503" in e for e in res.judge_errors)
    got: dict[str, set[Any]] = {}
    for lab in LabelStore(run).current():
        got.setdefault(lab.episode_id, set()).add(lab.target)
    assert got == {eid: set(range(n)) - {1, 2} for eid, n in order}
    # A rerun, the judge now answering, labels only the steps that failed (the others are already judged).
    failing_now[0] = False
    again = label_with_judge([run], judge, concurrency=concurrency, keep_going=True)
    assert again.added == failing and not again.judge_errors


def test_cli_keep_going(run: Path, tmp_path: Path) -> None:
    judge_file = tmp_path / "flaky.py"
    judge_file.write_text("def judge(ctx):\n    if ctx.index == 0:\n        raise RuntimeError('boom')\n    return 1\n")
    proc = subprocess.run([sys.executable, "-m", "trajrec", "label", "auto", str(run), "--judge",
                           f"{judge_file}:judge", "--keep-going"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "judge call failed" in proc.stderr and "RuntimeError: boom" in proc.stderr
    assert "3 judge calls failed" in proc.stdout and "3 episodes" in proc.stdout
