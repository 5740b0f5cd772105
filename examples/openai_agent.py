"""Record an LLM tool-calling agent in a built-in env, through any OpenAI-compatible server.

    pip install 'trajrec[openai]'
    ollama serve & ollama pull qwen3:4b          # or: vllm serve MODEL --enable-auto-tool-choice ...
    python examples/openai_agent.py --model qwen3:4b --base-url http://localhost:11434/v1 --out runs/llm
    trajrec ls runs/llm && trajrec view runs/llm

The loop is the whole recipe (see docs/RECORDING.md): send the conversation with the env's tool schemas, time
the call, keep the failed attempts, put a ModelCall in the step's note, step the env with the tool call, send the
observation back as the tool's result (or as a user message when the reply had no tool call). When every attempt
fails there is no action: the failed call goes into the summary's `agent_error` and the episode ends as `error`.
`trajrec record ENV --agent openai` runs a fuller version of this agent (trajrec/openai_agent.py: retries with
backoff, reminders when a reply has no tool call, a stop while waiting on the model kept).
"""

from __future__ import annotations

import argparse
import json
import time
from time import perf_counter

import gymnasium as gym
import openai

import trajrec.envs  # noqa: F401  (registers trajrec/*)
from trajrec import Recorder
from trajrec.recorder.errors import AgentError
from trajrec.recorder.model_call import ModelCall, failed_attempt


def run_episode(env: Recorder, client: openai.OpenAI, model: str, seed: int, sampling: dict) -> dict:
    observation, info = env.reset(seed=seed)
    tools = info["tools"]  # the built-in envs give their tools as OpenAI function schemas
    messages = [{"role": "system", "content": "Solve the task. Call exactly one tool per turn."},
                {"role": "user", "content": observation}]
    sent = 0  # each step records only the messages the previous call did not send
    terminated = truncated = False
    while not (terminated or truncated):
        attempts = []
        for attempt in range(4):
            p0 = perf_counter()
            try:
                response = client.chat.completions.create(model=model, messages=messages, tools=tools, **sampling)
                if not hasattr(response.choices[0].message, "model_dump"):
                    raise TypeError("the first choice's message is not an object")
                break
            except openai.APITimeoutError as exc:  # record, wait, try again (each kind as docs/RECORDING.md names it)
                attempts.append(failed_attempt("timeout", str(exc)[:300], latency=perf_counter() - p0))
            except openai.APIError as exc:  # HTTP errors, no connection
                status = getattr(exc, "status_code", None)
                attempts.append(failed_attempt("http_error" if status else "connection", str(exc)[:300],
                                               status=status, latency=perf_counter() - p0))
            except (ValueError, AttributeError, IndexError, TypeError) as exc:  # a 200 reply that is no completion
                attempts.append(failed_attempt("malformed", f"{type(exc).__name__}: {exc}"[:300],
                                               latency=perf_counter() - p0))
            if attempt < 3:
                time.sleep(0.2 * 2 ** attempt)
        else:  # no action: the caller ends the episode as an error, with this failed call on record
            failed = ModelCall(model=model, error=attempts.pop(), attempts=attempts, messages=messages[sent:],
                               messages_before=sent, sampling=sampling)
            raise AgentError(f"the model server failed 4 attempts: {failed.error['message']}",
                             {"model_call": failed.to_dict()})
        call = ModelCall.from_openai(response, latency=perf_counter() - p0, attempts=attempts, sampling=sampling,
                                     messages=messages[sent:], messages_before=sent,
                                     tools=tools if sent == 0 else None)
        sent = len(messages)
        env.note(model_call=call.to_dict())

        reply = response.choices[0].message
        messages.append(reply.model_dump(exclude_none=True, include={"role", "content", "tool_calls"}))
        if reply.tool_calls:
            tc = reply.tool_calls[0]
            # Arguments are passed as the model wrote them: the env reports bad JSON as a failed step.
            action = json.dumps({"name": tc.function.name, "arguments": tc.function.arguments})
        else:
            tc, action = None, reply.content or ""
        observation, reward, terminated, truncated, info = env.step(action)
        if tc is not None:
            messages.append({"role": "tool", "tool_call_id": tc.id, "content": observation})
            for other in reply.tool_calls[1:]:
                messages.append({"role": "tool", "tool_call_id": other.id, "content": "not run: one call per turn"})
        else:
            messages.append({"role": "user", "content": observation})
    return env.end_episode() or {}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--base-url", default=None, help="e.g. http://localhost:11434/v1 (default: OpenAI's)")
    p.add_argument("--env", default="trajrec/MathCalc-v0")
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument("--temperature", type=float, default=0.2)
    p.add_argument("--request-timeout", type=float, default=60.0, help="seconds per request")
    p.add_argument("--out", default="runs/openai-example")
    args = p.parse_args()

    # max_retries=0: the loop above retries itself, so that every failed attempt is recorded.
    client = openai.OpenAI(base_url=args.base_url, api_key="none" if args.base_url else None, max_retries=0,
                           timeout=args.request_timeout)
    sampling = {"temperature": args.temperature}
    env = Recorder(gym.make(args.env), args.out,
                   agent={"name": "openai-example", "model": args.model, "base_url": args.base_url,
                          "sampling": sampling})
    try:
        for seed in range(args.episodes):
            try:
                summary = run_episode(env, client, args.model, seed, sampling)
            except AgentError as exc:  # the server is down: keep the failed call, end the episode as an error
                env.end_episode_with_error(str(exc), **exc.note)
                raise SystemExit(f"{exc}; seed {seed} was closed with outcome error ({env.episode_path})") from None
            model = summary.get("model") or {}
            print(f"seed {seed}: {summary.get('outcome')} in {summary.get('steps')} steps, "
                  f"{model.get('total_tokens', 0)} tokens, {model.get('latency', 0):.2f} s -> {env.episode_path}")
    finally:
        env.close()


if __name__ == "__main__":
    main()
