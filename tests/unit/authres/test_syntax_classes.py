"""The regex forms of is_token / is_text against their character predicates."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mailseal.authres import syntax

EDGES = ["", " ", "\t", "a", "a b", "~", "\x7f", "\x80", "\ud7ff", "\ud800", "\udfff",
         "\ue000", "\U0010ffff", "x=y", "é", "(c)", "\r", "\n", "\x00"]


def test_edges_match_the_character_predicates() -> None:
    for text in EDGES + [a + b for a in EDGES for b in EDGES]:
        assert syntax.is_token(text) == (bool(text) and all(map(syntax.is_token_char, text)))
        assert syntax.is_text(text) == all(map(syntax.is_text_char, text)), repr(text)


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=12))
def test_any_text_matches_the_character_predicates(text: str) -> None:
    assert syntax.is_token(text) == (bool(text) and all(map(syntax.is_token_char, text)))
    assert syntax.is_text(text) == all(map(syntax.is_text_char, text))
