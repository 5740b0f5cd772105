"""`OR` is not in the grammar: a query using it says so instead of matching nothing; `AND` is the terms' own
meaning; a quoted "OR" still searches the word."""

from __future__ import annotations

import pytest

from trajrec.replay.query import QueryError, parse_query


def test_or_is_an_error_that_names_the_grammar() -> None:
    with pytest.raises(QueryError, match=r"there is no OR; the terms of a query must all hold \(AND\)"):
        parse_query("steps>5 OR passed")


def test_and_is_the_terms_own_meaning() -> None:
    facts = {"steps": 6, "outcome": "passed", "text": ""}
    assert parse_query("steps>5 AND passed").matches(facts)
    assert not parse_query("steps>5 AND failed").matches(facts)


def test_a_quoted_or_searches_the_word() -> None:
    assert parse_query('"OR"').matches({"text": "cat or dog"})
    assert parse_query("or").matches({"text": "cat or dog"})  # lower case: a word, as before
