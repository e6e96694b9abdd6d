r"""Whether a regular expression can backtrack catastrophically, decided before it meets text.

Python's ``re`` backtracks, and holds the interpreter while it does (a SIGTERM handler does not
run): ``^https?://([a-z0-9]+-?)+\.prod\.example\.com`` searched in a 40-character host that
almost matches takes longer than any CI job lives. :func:`backtracking_problem` finds the
shape behind such patterns in the parse tree of the standard library's own parser: a
repetition inside another repetition whose end is ambiguous, because what it repeats may also
come right after it. Then each extra character doubles the ways to split the text, and a
failing search tries them all:

- ``(a+)+``, ``([a-z0-9]+-?)+``, ``(\d+\.?\d+)*``: the inner ``+`` can stop or go on at the
  same character;
- ``(ab|[a-z]b)+``, ``(a|a)+``: two alternatives of a repeated group match the same text.

``([a-z0-9-]+\.)+`` is fine: each part ends at a ``.`` that the part cannot contain. Character
classes are compared on a sample alphabet (ASCII plus a few non-ASCII letters, digits and
spaces), so a report is always a real overlap; a construct the analysis cannot see into
(a back-reference) counts as matching anything.
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

__all__ = ["REWRITE_HINT", "backtracking_problem"]

REWRITE_HINT = (
    "a pattern whose repeated groups cannot split the same text in several ways: repeat a "
    r"character class instead of a group (^https?://[a-z0-9-]+\.prod\.example\.com), or end "
    r"each repeated part at a character the part cannot contain (([a-z0-9-]+\.)+)"
)

_ALPHABET = frozenset(
    [chr(code) for code in range(128)] + ["é", "ß", "Ω", "中", "٣", "\u00a0", "\u2028"]
)
_CATEGORY_TESTS = {
    "CATEGORY_DIGIT": r"\d",
    "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S",
    "CATEGORY_WORD": r"\w",
    "CATEGORY_NOT_WORD": r"\W",
}
_Chars = frozenset[str]
_Node = tuple[Any, Any]


@cache
def _sre() -> Any:
    """The standard library's regex parser (``re._parser``; ``sre_parse`` before 3.11)."""
    if sys.version_info >= (3, 11):
        return importlib.import_module("re._parser")
    return importlib.import_module("sre_parse")  # deprecated (with a warning) only from 3.11


class _Ambiguous(Exception):
    """The pattern has a repetition that can split the same text in several ways."""


def backtracking_problem(pattern: str) -> str | None:
    """Why *pattern* can backtrack catastrophically, or ``None`` when it cannot.

    *pattern* must compile (:func:`re.compile` is the caller's first check).
    """
    sre = _sre()
    parsed = sre.parse(pattern)
    analysis = _Analysis(sre)
    try:
        analysis.walk(list(parsed), frozenset(), loops=0, flags=parsed.state.flags)
    except _Ambiguous as exc:
        return str(exc)
    return None


class _Analysis:
    def __init__(self, sre: Any) -> None:
        self.sre = sre
        self.single = {sre.LITERAL, sre.NOT_LITERAL, sre.ANY, sre.IN}
        self.repeats = {sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)}
        self.zero_width = {sre.AT, sre.ASSERT, sre.ASSERT_NOT}

    # -- what a piece can start with, and whether it can match nothing ----------------------

    def first(self, seq: Sequence[_Node], flags: int) -> tuple[_Chars, bool]:
        """The characters *seq* can start with, and whether it can match the empty string."""
        chars: set[str] = set()
        for node in seq:
            start, nullable = self.first_of(node, flags)
            chars |= start
            if not nullable:
                return frozenset(chars), False
        return frozenset(chars), True

    def first_of(self, node: _Node, flags: int) -> tuple[_Chars, bool]:
        op, av = node
        sre = self.sre
        if op in self.single:
            return self.members(op, av, flags), False
        if op in self.zero_width:
            return frozenset(), True
        if op is sre.SUBPATTERN:
            return self.first(av[3], _with_flags(flags, av[1], av[2]))
        if op is getattr(sre, "ATOMIC_GROUP", None):
            return self.first(av, flags)
        if op is sre.BRANCH:
            return _union(self.first(branch, flags) for branch in av[1])
        if op in self.repeats:
            low, high, body = av
            start, nullable = self.first(body, flags)
            return (start if high > 0 else frozenset()), low == 0 or nullable
        if op is sre.GROUPREF_EXISTS:
            _, yes, no = av
            return _union([self.first(yes, flags), self.first(no or [], flags)])
        return _ALPHABET, True  # a back-reference: could be anything, or nothing

    def members(self, op: Any, av: Any, flags: int) -> _Chars:
        """The sample characters one single-character item matches."""
        sre = self.sre
        if op is sre.ANY:
            return _ALPHABET if flags & re.DOTALL else _ALPHABET - {"\n"}
        if op is sre.LITERAL:
            return _cased(chr(av), flags)
        if op is sre.NOT_LITERAL:
            return _ALPHABET - _cased(chr(av), flags)
        items = list(av)
        negate = bool(items) and items[0][0] is sre.NEGATE
        chars = frozenset(
            ch for ch in _ALPHABET if any(self.in_item(item, ch, flags) for item in items)
        )
        return _ALPHABET - chars if negate else chars

    def in_item(self, item: tuple[Any, Any], ch: str, flags: int) -> bool:
        op, av = item
        sre = self.sre
        variants = _cased(ch, flags)
        if op is sre.LITERAL:
            return chr(av) in variants
        if op is sre.RANGE:
            return any(av[0] <= ord(v) <= av[1] for v in variants)
        if op is sre.CATEGORY:
            test = _CATEGORY_TESTS.get(str(av))
            if test is None:
                return True  # an internal category: assume it matches
            ascii_only = re.ASCII if flags & re.ASCII else 0
            return re.fullmatch(test, ch, ascii_only) is not None
        return False  # NEGATE is handled by the caller

    # -- where a repetition's end is ambiguous ----------------------------------------------

    def walk(self, seq: Sequence[_Node], follow: _Chars, *, loops: int, flags: int) -> None:
        """Check every node of *seq*; *follow*: what can come after *seq* ends.

        *loops* counts the repetitions (of more than one) around *seq*. Nothing follows the
        end of the pattern or of a lookaround: reaching it is a match, not a choice.
        """
        after = follow
        for node in reversed(seq):
            self.visit(node, after, loops=loops, flags=flags)
            start, nullable = self.first_of(node, flags)
            after = start | after if nullable else start

    def visit(self, node: _Node, follow: _Chars, *, loops: int, flags: int) -> None:
        op, av = node
        sre = self.sre
        if op in self.repeats:
            low, high, body = av
            start, _ = self.first(body, flags)
            if loops and low != high and op is not getattr(sre, "POSSESSIVE_REPEAT", None):
                overlap = start & follow
                if overlap:
                    raise _Ambiguous(
                        "a repetition inside a repeated group can stop or go on at the same "
                        f"character ({_show(overlap)}), so the text splits in many ways"
                    )
            repeated = high > 1
            self.walk(
                body,
                start | follow if repeated else follow,
                loops=loops + repeated,
                flags=flags,
            )
        elif op is sre.SUBPATTERN:
            self.walk(av[3], follow, loops=loops, flags=_with_flags(flags, av[1], av[2]))
        elif op is getattr(sre, "ATOMIC_GROUP", None):
            self.walk(av, follow, loops=loops, flags=flags)
        elif op is sre.BRANCH:
            branches = av[1]
            if loops:
                self.refuse_overlapping(branches, flags)
            for branch in branches:
                self.walk(branch, follow, loops=loops, flags=flags)
        elif op is sre.GROUPREF_EXISTS:
            _, yes, no = av
            for branch in (yes, no or []):
                self.walk(branch, follow, loops=loops, flags=flags)
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            self.walk(av[1], frozenset(), loops=loops, flags=flags)

    def refuse_overlapping(self, branches: Sequence[Sequence[_Node]], flags: int) -> None:
        """Alternatives of single characters only, of one length, that share a text."""
        shapes = [self.shape(branch, flags) for branch in branches]
        for index, one in enumerate(shapes):
            for other in shapes[index + 1 :]:
                if one is None or other is None or len(one) != len(other):
                    continue
                if all(a & b for a, b in zip(one, other, strict=True)):
                    raise _Ambiguous(
                        "two alternatives of a repeated group match the same text, so the "
                        "text splits in many ways"
                    )

    def shape(self, branch: Sequence[_Node], flags: int) -> list[_Chars] | None:
        """The character set of each position of *branch*, if it is single characters only."""
        if not all(op in self.single for op, _ in branch):
            return None
        return [self.members(op, av, flags) for op, av in branch]


def _union(parts: Iterable[tuple[_Chars, bool]]) -> tuple[_Chars, bool]:
    chars: set[str] = set()
    nullable = False
    for start, empty in parts:
        chars |= start
        nullable = nullable or empty
    return frozenset(chars), nullable


def _with_flags(flags: int, add: int, remove: int) -> int:
    return (flags | add) & ~remove


def _cased(ch: str, flags: int) -> _Chars:
    if flags & re.IGNORECASE:
        return frozenset({ch, ch.lower(), ch.upper()})
    return frozenset({ch})


def _show(chars: _Chars) -> str:
    shown = sorted(chars)
    text = " ".join(repr(ch) for ch in shown[:5])
    return text + (" ..." if len(shown) > 5 else "")
