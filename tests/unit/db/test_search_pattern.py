"""`contains_pattern`, the one LIKE escaping every list's `?search=` goes through."""

from __future__ import annotations

import re

import pytest

from haven.db.pagination import LIKE_ESCAPE, contains_pattern


def _like(pattern: str, text: str) -> bool:
    """SQL LIKE with ESCAPE '/', as the databases evaluate it (on lower-cased text)."""
    regex, chars = [], iter(pattern)
    for char in chars:
        if char == LIKE_ESCAPE:
            regex.append(re.escape(next(chars)))
        elif char == "%":
            regex.append(".*")
        elif char == "_":
            regex.append(".")
        else:
            regex.append(re.escape(char))
    return re.fullmatch("".join(regex), text, re.DOTALL) is not None


@pytest.mark.parametrize(
    ("term", "pattern"),
    [
        ("oak", "%oak%"),
        ("  Oak St ", "%oak st%"),  # trimmed and case-folded
        ("100%", "%100/%%"),
        ("a_b", "%a/_b%"),
        ("a/b", "%a//b%"),
        ("/%_", "%///%/_%"),
    ],
)
def test_wildcards_and_the_escape_character_are_taken_literally(term: str, pattern: str) -> None:
    assert contains_pattern(term) == pattern


@pytest.mark.parametrize(
    ("term", "text", "matches"),
    [
        ("100%", "100% oak", True),
        ("100%", "1000 oak", False),  # % is not "anything"
        ("a_b", "a_b house", True),
        ("a_b", "axb house", False),  # _ is not "any one character"
        ("a/b", "unit a/b", True),
        ("a/b", "unit ab", False),
        ("OAK", "old oak road", True),
    ],
)
def test_the_pattern_matches_the_term_anywhere_and_nothing_else(
    term: str, text: str, matches: bool
) -> None:
    assert _like(contains_pattern(term), text) is matches
