"""Label values and fields: what a label may hold, checked when it is written and when it is read.

People type values (``+1``, ``bad``, ``0.7``, ``typo``); :func:`parse_value` turns text into a value and
:func:`validate_value` says what is allowed. Reading a labels file applies the same rules (without the hints meant
for people typing), so an odd line is skipped rather than breaking every reader.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Any

from .codec import numpy_if_loaded
from .errors import TrajrecUsageError
from .model import CHECK_KINDS

_RATING_WORDS = {"good": 1, "bad": -1, "neutral": 0, "+1": 1, "1": 1, "-1": -1, "0": 0, "+0": 0, "-0": 0}
_VERDICT_WORDS = ("pass", "passed", "fail", "failed", "true", "false", "ok", "good", "bad", "neutral", "correct",
                  "incorrect", "yes", "no", "success", "error", "wrong")
# \Z, not $: "$" also matches before a final newline, which would let "bad\n" pass as one word.
_TAG_OK = re.compile(r"\A[^\s,]+\Z")
_MAX_CATEGORY = 200

_NOT_UNICODE = ("holds a lone surrogate (bytes that are not UTF-8, e.g. typed in a Latin-1 terminal or decoded with "
                "surrogateescape); labels are UTF-8 text: retype it, or set the terminal to UTF-8")


def _bad_text(value: Any) -> bool:
    # Lone surrogates ("\\ud800" in JSON) decode but cannot be written back as UTF-8: every export would fail.
    if type(value) is not str:
        return True
    if value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _value_problem(value: Any) -> str | None:
    """Why a stored label value is not one :func:`validate_value` accepts (the read-side check, without the
    misspelling hints, which are for people typing)."""
    if type(value) is bool:
        return None
    if type(value) is int:
        return None if value in (-1, 0, 1) else f"rating {value} is not -1, 0 or +1"
    if type(value) is float:
        return None if math.isfinite(value) else "score is not a finite number"
    if type(value) is str:
        if _bad_text(value) or not value.strip() or "\n" in value or len(value) > _MAX_CATEGORY:
            return "category is not a short name on one line"
        return None
    return f"value is {type(value).__name__}, not a rating, score, pass/fail or category"


def rating(value: Any) -> int | None:
    """A label value as a ternary rating -1/0/+1, or None when it is not one (a category, a score out of range).

    Booleans and pass/fail words read as +1/-1; floats read as their sign (a score's direction).

    >>> [rating(v) for v in (1, 0, -1, True, False, "pass", "bad", 0.8, -0.2, 0.0, "typo", None)]
    [1, 0, -1, 1, -1, 1, -1, 1, -1, 0, None, None]
    """
    if isinstance(value, bool):
        return 1 if value else -1
    if isinstance(value, int):
        return value if value in (-1, 0, 1) else None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return 1 if value > 0 else -1 if value < 0 else 0
    if isinstance(value, str):
        low = value.strip().lower()
        if low in _RATING_WORDS:
            return _RATING_WORDS[low]
        from trajrec.recorder.model import verdict

        v = verdict(low)
        if v is not None:
            return 1 if v else -1
    return None


def parse_value(text: str) -> Any:
    """Read a label value typed by a person: ``+1``/``-1``/``0`` and ``good``/``bad``/``neutral`` are ratings,
    ``pass``/``fail``/``true``/``false`` verdicts, a number with a dot a score, anything else a category.

    >>> [parse_value(t) for t in ("+1", "bad", "neutral", "pass", "0.75", "typo")]
    [1, -1, 0, True, 0.75, 'typo']
    """
    if not isinstance(text, str):
        return validate_value(text)
    low = text.strip().lower()
    if low in _RATING_WORDS:
        return _RATING_WORDS[low]
    if low in ("pass", "passed", "true", "yes"):
        return True
    if low in ("fail", "failed", "false", "no"):
        return False
    try:
        num = float(low)
    except ValueError:
        return validate_value(text.strip())
    if num.is_integer() and "." not in low and "e" not in low:
        if num not in (-1, 0, 1):
            # validate_value's message speaks Python (value=2.0, score=2): this one speaks of what is typed.
            raise TrajrecUsageError(f"a rating is -1, 0 or +1, got {text.strip()}; type a score with a decimal point "
                                    f"({num:.1f}), or keep it as the label's score (--score {text.strip()})")
        return validate_value(int(num))
    return validate_value(num)


def validate_value(value: Any) -> Any:
    """Check a label value and return it as plain data; raise :class:`TrajrecUsageError` saying what is allowed.

    Allowed: a rating -1, 0 or +1 (int), a score (finite float), pass/fail (bool) or a category (str).
    """
    np = numpy_if_loaded()  # not imported for the test: without numpy no value is a numpy value
    if np is not None and isinstance(value, np.generic):
        value = value.item()
    if value is None:
        raise TrajrecUsageError("a label needs a value: a rating -1/0/+1, a score (float), pass/fail (True/False) "
                                "or a category (text)")
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value not in (-1, 0, 1):
            if value.bit_length() > 64:  # beyond any score (and its decimal text may be too long to make)
                raise TrajrecUsageError(f"a rating is -1, 0 or +1, got an int of {value.bit_length()} bits")
            raise TrajrecUsageError(f"a rating is -1, 0 or +1, got {value}; a score goes in as a float "
                                    f"(value={float(value)!r}) or as score={value}")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TrajrecUsageError(f"a score must be a finite number, got {value!r}")
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise TrajrecUsageError("a category value cannot be empty; pass a rating -1/0/+1, pass/fail or a "
                                    "category name")
        if _bad_text(text):
            raise TrajrecUsageError(f"the value {text!r} {_NOT_UNICODE}")
        if "\n" in text or len(text) > _MAX_CATEGORY:
            raise TrajrecUsageError(f"a category is a short name on one line (at most {_MAX_CATEGORY} characters); "
                                    "put explanations in rationale=")
        low = text.lower()
        if low in _RATING_WORDS or _is_number(low):
            what = "a rating" if low in _RATING_WORDS and not _is_number(low) else "a number"
            raise TrajrecUsageError(f"value {value!r} is text that reads as {what}; pass the number itself "
                                    f"(e.g. {parse_value(text)!r}), or parse typed text with parse_value({value!r})")
        if low not in _VERDICT_WORDS:
            near = difflib.get_close_matches(low, _VERDICT_WORDS, n=1, cutoff=0.75)
            if near:
                raise TrajrecUsageError(f"value {value!r} looks like a misspelling of {near[0]!r}; did you mean "
                                        f"{near[0]!r}? (a category name must not be this close to a rating or "
                                        "verdict word)")
        return text
    raise TrajrecUsageError(f"a label value must be a rating -1/0/+1 (int), a score (float), pass/fail (bool) or a "
                            f"category (str), got {type(value).__name__}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _validate_target(target: Any) -> int | str:
    if target == "episode":
        return "episode"
    if isinstance(target, bool) or not isinstance(target, int):
        np = numpy_if_loaded()
        if np is not None and isinstance(target, np.integer):
            target = int(target)
    if isinstance(target, int) and not isinstance(target, bool) and target >= 0:
        return target
    raise TrajrecUsageError(f"a label target is 'episode' or a step index >= 0, got {target!r}")


def _validate_kind(kind: Any) -> str:
    if kind in CHECK_KINDS:
        return str(kind)
    near = difflib.get_close_matches(str(kind), CHECK_KINDS, n=1, cutoff=0.5)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise TrajrecUsageError(f"unknown label kind {kind!r}{hint}; kinds are {', '.join(CHECK_KINDS)} "
                            "(people label with kind='judge', judge='human:<name>')")


def _validate_judge(judge: Any, kind: str) -> str:
    if not isinstance(judge, str) or not judge.strip() or any(c.isspace() for c in judge):
        raise TrajrecUsageError(f"judge must name who labeled, without spaces: 'human:<name>', "
                                f"'<rules>@<version>' or 'model:<name>', got {judge!r}")
    if _bad_text(judge):
        raise TrajrecUsageError(f"the judge {judge!r} {_NOT_UNICODE}")
    if judge.startswith("human:"):
        if not judge[6:]:
            raise TrajrecUsageError("judge 'human:' needs a name: 'human:ana'")
        if kind != "judge":
            raise TrajrecUsageError(f"a human label has kind 'judge', got kind={kind!r} for judge {judge!r}")
    return judge


def _validate_text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TrajrecUsageError(f"{name} must be text or None, got {type(value).__name__}")
    if _bad_text(value):
        raise TrajrecUsageError(f"the {name} {value!r} {_NOT_UNICODE}")
    return value


def _validate_score(score: Any) -> float | None:
    if score is None:
        return None
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        try:
            score = float(score)
        except (TypeError, ValueError):
            raise TrajrecUsageError(f"score must be a number or None, got {score!r}") from None
    score = float(score)
    if not math.isfinite(score):
        raise TrajrecUsageError(f"score must be a finite number, got {score!r}")
    return score
