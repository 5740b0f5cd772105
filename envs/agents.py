"""Seeded scripted agents that behave like a weak model in the built-in envs.

Each agent plans its episode at ``reset`` from the task (``info["task"]``) and the env's answer
key, drawing its mistakes from a ``random.Random(seed)``: malformed JSON, unknown tools, wrong
arguments, wrong paths repeated before they are corrected, plausible wrong fixes, giving up
until the step limit. The plan is then played out one action per ``act`` call, each with a short
``{"thought": ...}`` note. ``skill`` (0..1) scales how often mistakes happen; at 1 an agent is
almost always clean.

The mess is shaped for the recorder's classification: a failed step (``info["error"]``) is often
followed by the *same* tool failing again (a retry) and then succeeding (a recovery).

>>> agent = make_agent("trajrec/MathCalc-v0", seed=3, skill=1.0)
>>> agent.reset("", {"task": {"id": "math-change-1"}})
>>> agent.act("", {})
('{"tool": "calc", "args": {"expr": "50 - 14*3"}}', {'thought': 'Work it out with the calculator: 50 - 14*3.'})
"""

from __future__ import annotations

import json
import random
import re
import shlex
from collections import deque
from typing import Any, ClassVar

from trajrec.envs import code_tasks, math_calc, shell_tasks, support_kb
from trajrec.envs._tools import nearest

Step = tuple[str, str]  # (action, thought)


def _call(tool: str, **args: Any) -> str:
    return json.dumps({"tool": tool, "args": args})


class ScriptedAgent:
    """Base class: validates ``skill``, owns the RNG and plays out the plan made at ``reset``.

    Args:
        seed: Seeds the agent's RNG; the same seed, task sequence and observations give the same actions.
        skill: In [0, 1]; the chance of each kind of mistake shrinks as skill grows.
    """

    env_id: ClassVar[str]
    name: ClassVar[str]
    version: ClassVar[str] = "1"

    def __init__(self, *, seed: int, skill: float = 0.6) -> None:
        if isinstance(skill, bool) or not isinstance(skill, (int, float)) or not 0 <= skill <= 1:
            raise ValueError(f"skill must be a number in [0, 1], found {skill!r}; e.g. skill=0.6")
        self.seed = seed
        self.skill = float(skill)
        self._rng = random.Random(seed)
        self._plan: deque[Step] = deque()
        self._task_id = ""

    @property
    def slip(self) -> float:
        """Base chance of a mistake: 0.02 at skill 1, 0.38 at the default 0.6, 0.92 at 0."""
        return 0.02 + 0.9 * (1.0 - self.skill)

    def reset(self, observation: str, info: dict[str, Any]) -> None:
        """Plan the episode for the task in ``info["task"]``.

        Raises:
            ValueError: ``info`` has no ``task`` with an ``id`` (pass the info that ``env.reset`` returned).
        """
        task = info.get("task") if isinstance(info, dict) else None
        if not isinstance(task, dict) or not isinstance(task.get("id"), str):
            raise ValueError(
                f"{type(self).__name__}.reset expected the reset info of {self.env_id} with info['task']['id']; "
                f"found info keys {sorted(info) if isinstance(info, dict) else type(info).__name__}"
            )
        self._task_id = task["id"]
        self._plan = deque(self._make_plan(task))

    def act(self, observation: str, info: dict[str, Any]) -> tuple[str, dict[str, str]]:
        """Return the next action and a note ``{"thought": ...}``."""
        action, thought = self._plan.popleft() if self._plan else self._stall()
        return action, {"thought": thought}

    def _chance(self, p: float) -> bool:
        return self._rng.random() < p

    def _make_plan(self, task: dict[str, Any]) -> list[Step]:
        raise NotImplementedError

    def _stall(self) -> Step:
        """The action repeated once the plan is used up (an agent that gave up)."""
        raise NotImplementedError


class ScriptedMathAgent(ScriptedAgent):
    """Computes with ``calc`` (sometimes with broken syntax), then submits (sometimes a typical wrong answer)."""

    env_id = "trajrec/MathCalc-v0"
    name = "scripted-math"

    def _make_plan(self, task: dict[str, Any]) -> list[Step]:
        key = math_calc.answer_key(task["id"])
        expr, p = key["expr"], self.slip
        plan: list[Step] = []
        if self._chance(p * 0.5):
            plan.append((_call("calc", expr=expr)[:-1], "Compute it."))  # lost the closing brace
        if self._chance(p * 0.3):
            plan.append((_call("calculator", expr=expr), "Use the calculator tool."))
        if self._chance(p):
            broken = _garble(expr)
            plan.append((_call("calc", expr=broken), f"Work it out: {broken}."))
            if self._chance(0.5):
                plan.append((_call("calc", expr=broken), "Maybe it was a glitch; try the same again."))
            plan.append((_call("calc", expr=expr), "Fix the syntax and compute again."))
        else:
            plan.append((_call("calc", expr=expr), f"Work it out with the calculator: {expr}."))
        if self._chance(p * 0.15):
            return plan  # gives up: keeps re-checking until the step limit
        wrong = self._chance(p * 0.7)
        if wrong:
            plan.append((_call("calc", expr=key["slip"]), "Hmm, maybe it should be this instead."))
        answer = key["slip_answer"] if wrong else key["answer"]
        if self._chance(p * 0.5):
            bad = (
                _call("submit", value=_number(answer))
                if self._chance(0.5)
                else _call("submit", answer=f"about {answer}")
            )
            plan.append((bad, f"The answer is {answer}."))
            if self._chance(0.5):
                plan.append((bad, "Submit it again."))
        plan.append((_call("submit", answer=_number(answer)), f"Submit {answer}."))
        return plan

    def _stall(self) -> Step:
        key = math_calc.answer_key(self._task_id)
        return _call("calc", expr=key["slip"]), "Let me double-check before submitting."


def _garble(expr: str) -> str:
    """A typical syntax slip: ``x`` for ``*``, or a missing closing parenthesis."""
    if "*" in expr:
        return expr.replace("*", " x ", 1)
    if ")" in expr:
        return expr[: expr.rindex(")")] + expr[expr.rindex(")") + 1 :]
    return expr + " ="


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() else value


class ScriptedCodeAgent(ScriptedAgent):
    """Reads, runs the tests, edits (sometimes a plausible wrong fix first), reruns, submits."""

    env_id = "trajrec/CodeRepair-v0"
    name = "scripted-code"

    def _make_plan(self, task: dict[str, Any]) -> list[Step]:
        key = code_tasks.answer_key(task["id"])
        module, tests, line = key["module"], key["tests"], key["line"]
        p = self.slip
        plan: list[Step] = []
        if self._chance(p * 0.3):
            plan.append((_call("ls"), "See which files there are."))
        plan.append((_call("list_files"), "List the project files."))
        if self._chance(p * 0.4):
            wrong = f"src/{module}"
            plan.append((_call("read_file", path=wrong), f"The code is probably in {wrong}."))
            if self._chance(0.5):
                plan.append((_call("read_file", path=wrong), "Try reading it again."))
        plan.append((_call("read_file", path=module), f"Read {module}."))
        if self._chance(0.5):
            plan.append((_call("read_file", path=tests), "Read the tests to see what is expected."))
        plan.append((_call("run_tests"), "Run the tests to see what fails."))
        if self._chance(p * 0.12):
            return plan  # gives up: keeps re-reading until the step limit

        def edit(text: str, *, start: Any = line) -> str:
            return _call("edit", path=module, start=start, end=line, text=text)

        if self._chance(p * 0.5):
            bad = edit(key["fixed"], start=str(line))  # line number as a string
            plan.append((bad, f"Fix line {line}."))
            if self._chance(0.5):
                plan.append((bad, "Apply the same edit again."))
        if self._chance(p):
            plan.append((edit(key["decoy"]), f"I think line {line} should be: {key['decoy'].strip()}"))
            if self._chance(0.45):
                plan.append((_call("submit"), "That fixes it; submit."))
                return plan
            plan.append((_call("run_tests"), "Check the fix."))
            plan.append((edit(key["fixed"]), f"Still failing; line {line} should be: {key['fixed'].strip()}"))
        else:
            plan.append((edit(key["fixed"]), f"Line {line} should be: {key['fixed'].strip()}"))
        if not self._chance(p * 0.3):
            plan.append((_call("run_tests"), "Run the tests again."))
        plan.append((_call("submit"), "Tests pass; submit."))
        return plan

    def _stall(self) -> Step:
        module = code_tasks.answer_key(self._task_id)["module"]
        return _call("read_file", path=module), "I don't see the bug yet; read the code again."


_SHELL_THOUGHTS = {
    "ls": "Look at what is there.",
    "cat": "Read the file first.",
    "find": "Find the files involved.",
    "mkdir": "Create the folder.",
    "touch": "Create the README.",
    "mv": "Move the files.",
    "cp": "Copy the file.",
    "rm": "Delete it.",
    "sed": "Replace the setting.",
    "echo": "Append the line.",
    "done": "That should be everything.",
}


class ScriptedShellAgent(ScriptedAgent):
    """Follows the task's solution with shell habits gone wrong: typos, wrong order, > for >>."""

    env_id = "trajrec/Shell-v0"
    name = "scripted-shell"

    def _make_plan(self, task: dict[str, Any]) -> list[Step]:
        task_id = task["id"]
        kind = task_id.split("-")[1]
        cmds = shell_tasks.solution(task_id)
        p = self.slip
        sabotage = self._chance(p * 0.6)
        cmds = self._mishandle(kind, cmds, sabotage)
        plan: list[Step] = []
        if self._chance(p * 0.4):
            plan.append(("dir", "List the directory."))
        for i, cmd in enumerate(cmds):
            word = cmd.split()[0]
            thought = _SHELL_THOUGHTS.get(word, "Next step.")
            if i == 0 and word in ("cat", "ls") and self._chance(p * 0.6):
                typo = _typo(cmd)
                plan.append((typo, thought))
                if self._chance(0.5):
                    plan.append((typo, "Try that again."))
                thought = "Fix the path."
            if word in ("cat", "ls") and len(cmd.split()) == 2 and self._chance(0.3):
                path = cmd.split()[1]
                if self._chance(p * 0.6):
                    plan.append((_call(word, file=path), thought))
                    thought = "The argument is called path."
                plan.append((_call(word, path=path), thought))
                continue
            plan.append((cmd, thought))
            if word == "ls" and i == 0 and self._chance(p * 0.12):
                return plan  # gives up after a first look
        return plan

    def _mishandle(self, kind: str, cmds: list[str], sabotage: bool) -> list[str]:
        """Insert this task kind's typical failing-then-fixed step, or (sabotage) break the solution."""
        p = self.slip
        if kind == "organize":
            mkdir, mv = cmds[1], cmds[2]
            if sabotage:
                return [cmds[0], mkdir, mv.replace("/*.", "/*.x"), "done"]  # pattern matches nothing
            if self._chance(p):
                early = [mv] * (2 if self._chance(0.5) else 1)
                return [cmds[0], *early, mkdir, *cmds[2:]]  # mv before mkdir fails, then works
        elif kind == "config":
            sed = cmds[1]
            if sabotage:
                return [cmds[0], sed.replace(" = ", "="), "done"]  # matches nothing: a silent no-op
            if self._chance(p):
                return [cmds[0], sed.replace("/' ", "/ ", 1), *cmds[1:]]  # unclosed quote, then fixed
        elif kind == "cleanup":
            if sabotage:
                last_rm = [c for c in cmds if c.startswith("rm ")][-1]
                return [c for c in cmds if c != last_rm]  # forgets one file
            if self._chance(p):
                head, _, name = next(c for c in cmds if c.startswith("rm ")).rpartition("/")
                return [cmds[0], f"{head}/old_{name}", *cmds[1:]]  # rm of a file that is not there
        elif kind == "layout":
            mkdir = cmds[0]
            if sabotage:
                return [mkdir, cmds[2], "done"]  # forgets the README
            if self._chance(p):
                return [mkdir.replace("mkdir -p ", "mkdir "), *cmds]  # no -p: parent missing
        elif kind == "backup":
            cp = cmds[1]
            if sabotage:
                return [cp.rstrip("/"), "done"]  # no mkdir, no slash: copies to a *file* named backup
            if self._chance(p):
                return [cp, cmds[0], cp, *cmds[2:]]  # cp before mkdir fails, then works
        elif kind == "append":
            echo = cmds[1]
            if sabotage:
                return [cmds[0], echo.replace(" >> ", " > "), "done"]  # > overwrites the file
            if self._chance(p):
                line, path = echo[len("echo ") :].rsplit(" >> ", 1)
                bad = json.dumps({"tool": "echo", "args": {"text": _unquote(line), "file": path, "append": True}})
                return [cmds[0], bad, *cmds[1:]]
        return cmds

    def _stall(self) -> Step:
        return "ls", "Not sure what to do next; look around again."


def _typo(cmd: str) -> str:
    """Drop one letter from the last path component: ``cat /etc/hosts`` -> ``cat /etc/hots``."""
    word, _, path = cmd.partition(" ")
    if not path:
        return f"{word}x"
    head, sep, name = path.rpartition("/")
    letters = [i for i, ch in enumerate(name) if ch.isalpha()]
    if len(letters) < 2:
        return f"{word} {path}_"
    i = letters[len(letters) // 2]
    return f"{word} {head}{sep}{name[:i]}{name[i + 1 :]}"


def _unquote(token: str) -> str:
    parts = shlex.split(token)
    return parts[0] if parts else token


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


class ScriptedSupportAgent(ScriptedAgent):
    """Searches, reads (sometimes a mistyped id first), answers with some of the key facts."""

    env_id = "trajrec/SupportTicket-v0"
    name = "scripted-support"

    def _make_plan(self, task: dict[str, Any]) -> list[Step]:
        ticket = next(t for t in support_kb.TICKETS if t.id == task["id"])
        p = self.slip
        doc = support_kb.DOCS[ticket.docs[0]]
        query = doc.title.lower() if self._chance(0.5) else ticket.text.split('"')[1]
        plan: list[Step] = []
        if self._chance(p * 0.4):
            plan.append((f"search: {query}", "Look it up in the knowledge base."))
        if self._chance(p * 0.5):
            bad = _call("search", q=query)
            plan.append((bad, "Search the knowledge base."))
            if self._chance(0.5):
                plan.append((bad, "Search again."))
        plan.append((_call("search", query=query), "Search the knowledge base."))
        if self._chance(p * 0.4):
            typo = doc.id.replace("0", "O", 1) if "0" in doc.id else doc.id + "0"
            plan.append((_call("read", doc_id=typo), f"Open {typo}."))
            if self._chance(0.5):
                plan.append((_call("read", doc_id=typo), "Open it again."))
        plan.append((_call("read", doc_id=doc.id), f"Read {doc.id}."))
        if len(ticket.docs) > 1 and self._chance(0.7):
            plan.append((_call("read", doc_id=ticket.docs[1]), f"Also read {ticket.docs[1]}."))
        if self._chance(p * 0.1):
            return plan  # gives up: keeps searching until the step limit
        text = self._compose(ticket, p)
        if self._chance(p * 0.3):
            plan.append((_call("answer", message=text), "Reply to the customer."))
        plan.append((_call("answer", text=text), "Reply to the customer."))
        return plan

    def _compose(self, ticket: support_kb.Ticket, p: float) -> str:
        if self._chance(p * 0.12):
            return "Please check our help center for this."
        bodies = " ".join(support_kb.DOCS[d].body for d in ticket.docs)
        sentences: list[str] = []
        for _label, alternatives in ticket.facts:
            if self._chance(p * 0.35):
                continue  # leaves this fact out
            sentence = next(
                (s for s in _SENTENCE.split(bodies) if any(a.lower() in s.lower() for a in alternatives)),
                f"Please note: {alternatives[0]}.",
            )
            if sentence not in sentences:
                sentences.append(sentence)
        if ticket.forbidden and self._chance(p * 0.5):
            sentences.append("To speed things up, please reply with your password.")
        cite = f" (see {ticket.docs[0]})" if not self._chance(p * 0.35) else ""
        body = " ".join(sentences) or "We are looking into it."
        return f"Hi, thanks for reaching out. {body}{cite} Best regards, Support"

    def _stall(self) -> Step:
        ticket = next(t for t in support_kb.TICKETS if t.id == self._task_id)
        return _call("search", query=ticket.text.split('"')[1]), "Not sure yet; search again."


AGENTS: dict[str, type[ScriptedAgent]] = {
    cls.env_id: cls for cls in (ScriptedMathAgent, ScriptedCodeAgent, ScriptedShellAgent, ScriptedSupportAgent)
}


def make_agent(env_id: str, *, seed: int, skill: float = 0.6) -> ScriptedAgent:
    """Return the scripted agent for ``env_id``.

    Args:
        env_id: A registered trajrec env id, e.g. ``"trajrec/Shell-v0"``.
        seed: Seeds the agent's mistakes.
        skill: In [0, 1]; 1 is nearly always clean.

    Raises:
        ValueError: Unknown env id (the message names the known ones).
    """
    cls = AGENTS.get(env_id)
    if cls is None:
        close = nearest(str(env_id), AGENTS)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"no scripted agent for env id {env_id!r}{hint}; known: {', '.join(AGENTS)}")
    return cls(seed=seed, skill=skill)
