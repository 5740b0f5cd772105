"""The episode header says why an episode ended as ``error`` (FINDINGS20 #8: the viewer showed ``outcome error``
and nothing of the agent's error or of the failed model call, which belongs to no step): the agent's error with
its failed attempts, or the env's exception. Real files; the real app headless for the screen."""

from __future__ import annotations

import asyncio

import gymnasium as gym

from trajrec.recorder import Recorder, open_episode
from trajrec.recorder.model_call import ModelCall
from trajrec.tui.episode_header import header_text


class Boom(gym.Env):  # type: ignore[type-arg]
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):  # type: ignore[no-untyped-def]
        if action == 1:
            raise RuntimeError("the env broke")
        return 0, 0.0, False, False, {}


def _agent_failed(tmp_path) -> str:  # type: ignore[no-untyped-def]
    env = Recorder(Boom(), tmp_path / "agent")
    env.reset(seed=0)
    env.step(0)
    attempts = [{"error": "http_error", "status": 503, "latency": 0.5, "message": f"busy {k}"} for k in range(5)]
    call = ModelCall(model="m", attempts=attempts,
                     error={"error": "http_error", "status": 503, "message": "the server is down"})
    env.end_episode_with_error("the model server failed 6 attempts", model_call=call.to_dict())
    env.close()
    return str(env.episode_path)


def test_the_agents_error_and_its_failed_attempts_are_under_the_verdict(tmp_path) -> None:
    text = header_text(open_episode(_agent_failed(tmp_path)), width=120).plain
    assert "error   agent: the model server failed 6 attempts" in text
    assert "attempt 1 failed: http_error 503 after 0.50 s: busy 0" in text and "busy 2" in text
    assert "busy 3" not in text and "... 3 more" in text  # 5 attempts and the final error: 3 shown


def test_the_envs_exception_is_named_and_other_episodes_have_no_error_line(tmp_path) -> None:
    env = Recorder(Boom(), tmp_path / "env")
    env.reset(seed=0)
    try:
        env.step(1)
    except RuntimeError:
        pass
    env.close()
    text = header_text(open_episode(env.episode_path), width=120).plain
    error_line = [line for line in text.splitlines() if line.startswith("error")]
    assert len(error_line) == 1 and "RuntimeError" in error_line[0]
    ok = Recorder(Boom(), tmp_path / "ok")
    ok.reset(seed=0)
    ok.step(0)
    ok.close()
    assert "error " not in header_text(open_episode(ok.episode_path), width=120).plain


def test_the_viewer_shows_it(tmp_path) -> None:
    from trajrec.tui.app import TrajrecApp

    path = _agent_failed(tmp_path)

    async def run() -> None:
        app = TrajrecApp([path])
        async with app.run_test(size=(140, 40)) as pilot:
            from trajrec.tui.episode_header import EpisodeHeader

            for _ in range(200):
                await pilot.pause(0.02)
                headers = app.screen.query(EpisodeHeader)
                if headers and "agent: the model server failed" in str(headers.first().render()):
                    break
            else:
                raise AssertionError("the header never showed the agent's error")

    asyncio.run(run())
