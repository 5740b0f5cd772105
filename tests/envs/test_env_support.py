"""trajrec/SupportTicket-v0: search and read, the default rubric judge, and pluggable judges."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest
from trajrec import envs  # noqa: F401  (registers the ids)
from trajrec.envs.judges import RubricJudge, judge_identity
from trajrec.envs.support import SupportTicketEnv
from trajrec.envs.support_kb import DOCS, TICKETS, search


def call(tool, **args):
    return json.dumps({"tool": tool, "args": args})


def test_knowledge_base_and_bank_sizes():
    assert 15 <= len(DOCS) <= 30
    assert len(TICKETS) >= 20
    for ticket in TICKETS:
        assert all(doc in DOCS for doc in ticket.docs)


def test_search_finds_the_right_article_for_every_ticket():
    for ticket in TICKETS:
        message = ticket.text.split('"')[1]
        assert set(ticket.docs) & set(search(message)), ticket.id


def test_search_and_read_tools():
    env = SupportTicketEnv()
    env.reset(options={"task_id": "support-refund-annual"})
    obs, *_, info = env.step(call("search", query="refund"))
    assert obs.splitlines()[0].startswith("KB-104  Refund policy: Unused annual plans")
    assert info == {"tool": "search"}
    obs, *_ = env.step(call("search", query="zzzz qqqq"))
    assert obs.startswith("No articles match")
    obs, *_ = env.step(call("read", doc_id="kb-104"))
    assert obs.startswith("KB-104: Refund policy\n")
    obs, *_, info = env.step(call("read", doc_id="KB-1O4"))
    assert (
        info["error"]
        == "read: no article 'KB-1O4' (did you mean 'KB-104'?); ids look like KB-101, use search to find them"
    )
    state = env.state_dict()
    assert state["searches"][0] == {"query": "refund", "results": search("refund")}
    assert state["read"] == ["KB-104"] and state["answer"] is None


GOOD = (
    "Hi! Annual plans can be refunded in full within 30 days of purchase, so you qualify. The money goes back "
    "to the original payment method and takes 5-10 business days to appear (see KB-104)."
)


def test_default_rubric_judge_passes_a_good_answer():
    env = gym.make("trajrec/SupportTicket-v0")
    env.reset(options={"task_id": "support-refund-annual"})
    obs, reward, terminated, truncated, info = env.step(call("answer", text=GOOD))
    [check] = info["checks"]
    assert (reward, terminated, truncated) == (1.0, True, False)
    assert check["kind"] == "judge" and check["judge"] == "rubric-heuristic@1" and check["target"] == "episode"
    assert check["value"] is True and check["score"] == 1.0
    assert check["rationale"] == (
        f"facts 3/3; found: refundable within 30 days, to the original payment method, takes 5-10 business days; "
        f"cites KB-104; length {len(GOOD)} chars within 60-1200; score 1.00 vs threshold 0.80: pass"
    )
    assert env.unwrapped.state_dict()["answer"] == GOOD


@pytest.mark.parametrize(
    ("answer", "value", "score", "fragment"),
    [
        (GOOD.replace(" (see KB-104)", ""), False, 0.75, "no article cited (expected KB-104)"),
        (GOOD.replace("5-10 business days", "a while"), True, 0.8, "missing: takes 5-10 business days"),
        (GOOD.replace("KB-104", "KB-110"), False, 0.75, "cites KB-110 but not a relevant article (KB-104)"),
        ("Yes, see KB-104.", False, 0.25, "length 16 chars outside 60-1200"),
    ],
)
def test_rubric_judge_scores_and_explains(answer, value, score, fragment):
    ticket = next(t for t in TICKETS if t.id == "support-refund-annual")
    verdict = RubricJudge()({"rubric": ticket.rubric()}, answer, [])
    assert verdict["value"] is value and verdict["score"] == score
    assert fragment in verdict["rationale"]


def test_forbidden_phrases_fail_the_answer():
    ticket = next(t for t in TICKETS if t.id == "support-password-reset")
    answer = "Check your spam folder; the link is valid for 24 hours (KB-101). Or reply with your password."
    verdict = RubricJudge()({"rubric": ticket.rubric()}, answer, [])
    assert verdict["value"] is False and "forbidden: asks for the password" in verdict["rationale"]


def test_every_ticket_can_be_passed_from_its_articles():
    judge = RubricJudge()
    for ticket in TICKETS:
        text = " ".join(DOCS[d].body for d in ticket.docs) + f" (see {ticket.docs[0]})"
        verdict = judge({"rubric": ticket.rubric()}, text[:1200], [])
        assert verdict["value"] is True, (ticket.id, verdict["rationale"])


def test_a_pluggable_judge_gets_task_answer_transcript_and_its_verdict_flows_into_the_check():
    seen = {}

    def strict_model(task, answer, transcript):
        seen.update(task=task, answer=answer, transcript=transcript)
        return {"value": False, "score": 0.25, "rationale": "too vague"}

    env = gym.make("trajrec/SupportTicket-v0", judge=strict_model)
    env.reset(options={"task_id": "support-student"})
    env.step(call("search", query="student discount"))
    env.step("not json")
    obs, reward, terminated, truncated, info = env.step(call("answer", text="Yes there is one."))
    assert info["checks"] == [
        {
            "kind": "judge",
            "judge": "model:test_a_pluggable_judge_gets_task_answer_transcript_and_its_verdict_flows_into_the_check.<locals>.strict_model",
            "value": False,
            "score": 0.25,
            "rationale": "too vague",
            "target": "episode",
        }
    ]
    assert reward == 0.0 and terminated
    assert seen["answer"] == "Yes there is one."
    assert seen["task"]["id"] == "support-student" and seen["task"]["rubric"]["docs"] == ["KB-124"]
    assert seen["task"]["reference"][0]["id"] == "KB-124"
    assert [t["tool"] for t in seen["transcript"]] == ["search", None]
    assert seen["transcript"][0]["args"] == {"query": "student discount"}
    assert seen["transcript"][1]["error"].startswith("could not parse the action")


def test_judge_id_attribute_names_the_judge():
    class Grader:
        judge_id = "model:rubric-judge@2"

        def __call__(self, task, answer, transcript):
            return {"value": True, "score": None, "rationale": "fine"}

    env = SupportTicketEnv(judge=Grader())
    env.reset(seed=0)
    *_, reward, _, _, info = env.step(call("answer", text="ok"))
    assert info["checks"][0]["judge"] == "model:rubric-judge@2" and info["checks"][0]["score"] is None
    assert reward == 1.0
    assert judge_identity(Grader()) == "model:rubric-judge@2"


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (True, "returned bool; expected a dict with keys 'value'"),
        ({"score": 1.0}, "expected a dict with keys 'value'"),
        ({"value": True, "score": "high"}, "returned score='high'; expected a float"),
        ({"value": True, "rationale": 3}, "rationale of type int; expected str"),
    ],
)
def test_a_judge_returning_the_wrong_shape_is_a_clear_type_error(returned, message):
    env = SupportTicketEnv(judge=lambda task, answer, transcript: returned)
    env.reset(seed=0)
    with pytest.raises(TypeError, match=r"judge model:\S*<lambda>") as exc:
        env.step(call("answer", text="hello"))
    assert message in str(exc.value)


def test_non_callable_judge_is_refused():
    with pytest.raises(TypeError, match="judge must be callable"):
        SupportTicketEnv(judge="rubric")
