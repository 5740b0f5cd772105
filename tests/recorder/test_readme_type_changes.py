"""README's "Recording your own env" says which values ``state_at`` gives back as another type. Each value of
such a type, recorded in a state, must come back as the type the README says (and every type that changes must
be named there), with a warning only where the README says one is given."""

from __future__ import annotations

import collections
import enum
import re
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from trajrec import Recorder, open_episode

README = Path(__file__).resolve().parents[2] / "README.md"


class _Level(enum.IntEnum):
    HIGH = 2


class _Color(str, enum.Enum):
    RED = "red"


class _Pair(collections.namedtuple("_Pair", "x y")):
    pass


class _MyList(list):  # type: ignore[type-arg]
    pass


class _MySet(set):  # type: ignore[type-arg]
    pass


class _MyFloat(float):
    pass


class _MyComplex(complex):
    pass


# value, the type it comes back as, the words of the README paragraph that name the change
CHANGES: dict[str, tuple[Any, type, tuple[str, ...]]] = {
    "bytearray": (bytearray(b"ab"), bytes, ("`bytearray`", "as `bytes`")),
    "memoryview": (memoryview(b"cd"), bytes, ("`memoryview`",)),
    "OrderedDict": (collections.OrderedDict(a=1), dict, ("`OrderedDict`", "as `dict`")),
    "defaultdict": (collections.defaultdict(list, a=[1]), dict, ("`defaultdict`",)),
    "Counter": (collections.Counter("aab"), dict, ("`Counter`",)),
    "IntEnum": (_Level.HIGH, int, ("`IntEnum` member as `int`",)),
    "str enum": (_Color.RED, str, ("`str` enum",)),
    "list subclass": (_MyList([1]), list, ("subclasses of dict, list, set, str, int, float and complex",)),
    "set subclass": (_MySet({1}), set, ("subclasses of dict, list, set",)),
    "float subclass": (_MyFloat(1.5), float, ("float and complex as their",)),
    "complex subclass": (_MyComplex(1 + 2j), complex, ("complex as their",)),
    "numpy bool": (np.bool_(True), bool, ("numpy bool",)),
    "numpy str": (np.str_("x"), str, ("string",)),
    "numpy bytes": (np.bytes_(b"x"), bytes, ("bytes scalars",)),
    "NamedTuple": (_Pair(1, 2), tuple, ("tuple subclasses (NamedTuples) as plain tuples",)),
}


class _TypesEnv(gym.Env):
    observation_space = gym.spaces.Discrete(2)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return 0, {}

    def state_dict(self) -> dict[str, Any]:
        return {name: value for name, (value, _, _) in CHANGES.items()} | {"complex": 1 + 2j}

    def step(self, action: int):
        return 0, 0.0, True, False, {}


def _paragraph() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("`ep.state_at(i)` rebuilds the state")
    return " ".join(text[start:text.index("\n* ", start)].split())


def test_what_the_readme_says_comes_back_as_another_type(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = Recorder(_TypesEnv(), tmp_path / "run")
        env.reset(seed=0)
        env.step(0)
        env.close()
    state = open_episode(env.episode_path).state_at(0)
    paragraph = _paragraph()
    for name, (value, back, words) in CHANGES.items():
        got = state[name]
        assert type(got) is back and type(value) is not back, (name, type(got))
        assert got == (bytes(value) if back is bytes and not isinstance(value, np.bytes_) else value), name
        for w in words:
            assert w in paragraph, f"README does not say that a {name} comes back as {back.__name__}: {w!r}"
    assert state["complex"] == 1 + 2j and type(state["complex"]) is complex  # exact: not in the list
    # Only tuple subclasses are warned about (the README says the others change silently).
    warned = [str(w.message) for w in caught if "trajrec" in str(w.message)]
    assert len(warned) == 1 and "_Pair" in warned[0], warned
    assert re.search(r"Only tuple subclasses are warned about when recorded; the others change type silently",
                     paragraph)
