"""Escape is the one key that does not keep its place however fast keys come, and the docs say so (README's
keys, docs/LABELS.md "Escape is the exception", the episode help; FINDINGS32 #10): a terminal sends Alt+key as
escape followed by the key, so Textual's input parser reads a key arriving within its escape timeout (~0.1 s)
after escape together with it, as one key, and the escape never reaches the app (``c``, escape, ``+`` at once left
the note prompt open holding ``+``). Escape sent on its own (the timeout passed) is escape.

This pins the parser's behaviour the docs describe, in Textual's own parser (the one ``trajrec view`` reads the
terminal with): if a Textual release tells the two apart, this fails and the docs' warning can go."""

from __future__ import annotations

import pytest
from textual import constants, events
from textual._xterm_parser import XTermParser


def keys(parser: XTermParser, data: str) -> list[str]:
    """The keys ``data`` (bytes as the terminal sends them, all in one read) gives."""
    return [event.key for event in parser.feed(data) if isinstance(event, events.Key)]


def test_a_key_right_after_escape_is_read_with_it_and_the_escape_is_lost() -> None:
    for sent, read in [("c\x1b+", ["c", "plus"]),         # the note prompt then holds "+": no escape came
                       ("t\x1bc", ["t", "alt+c"]),        # a letter: Alt+letter
                       ("#\x1b-", ["number_sign", "en_dash"])]:  # (the parser's table of Alt characters)
        parser = XTermParser()
        assert keys(parser, sent) + keys(parser, "") == read, sent  # "" (the end of input) flushes what waits


def test_escape_on_its_own_is_escape(monkeypatch: pytest.MonkeyPatch) -> None:
    """The escape timeout passed (made 0 here, not waited for) before the next key: escape, then the key."""
    monkeypatch.setattr(constants, "ESCAPE_DELAY", 0.0)
    parser = XTermParser()
    read = keys(parser, "c\x1b")
    read += [event.key for event in parser.tick() if isinstance(event, events.Key)]
    read += keys(parser, "+")
    assert read == ["c", "escape", "plus"]
