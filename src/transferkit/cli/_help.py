"""Help text as a terminal shows it: plain words, wrapped at spaces, paragraphs and lists kept.

argparse's own formatter breaks long words (a comma-separated list of
backbones split mid-name) and words at hyphens, and either runs a description
into one paragraph or prints it raw. The experiments' descriptions are their
docstrings, written for Sphinx, so their markup is turned into plain text too.
"""

from __future__ import annotations

import argparse
import re
import shutil
import textwrap

_ROLE = re.compile(r":(?:py:)?(\w+):`([^`]+)`")
_ITEM = re.compile(r"(?:\d+\.|[-*])\s+")  # "1. " or "- " starts a list item
_CALLABLES = ("func", "meth")


def plain_text(text: str) -> str:
    """Sphinx/reST markup as plain text.

    ``:func:`~a.b.fine_tune``` reads ``fine_tune()``, ``:class:`~a.B``` reads
    ``B`` (without ``~``, the whole dotted name), a role with a title
    (``:ref:`the results <results>```) reads as the title, double backquotes
    are dropped and a literal-block ``::`` ending a line reads ``:``.

    Example:
        >>> plain_text(":func:`~transferkit.train`'s ``epochs``")
        "train()'s epochs"
    """
    def role(match: re.Match) -> str:
        kind, target = match.groups()
        titled = re.fullmatch(r"(.+?)\s*<[^>]+>", target)
        if titled:
            return titled.group(1)
        if target.startswith("~"):
            target = target[1:].rsplit(".", 1)[-1]
        return target + "()" if kind in _CALLABLES else target

    text = _ROLE.sub(role, text)
    text = re.sub(r"``(.+?)``", r"\1", text, flags=re.DOTALL)
    return re.sub(r"::$", ":", text, flags=re.MULTILINE)


def help_width() -> int:
    """The width argparse wraps help to: the terminal's (``$COLUMNS`` first) less 2."""
    return max(shutil.get_terminal_size().columns - 2, 20)


def wrap(text: str, width: int, first: str = "", later: str = "") -> list[str]:
    """``text``'s words in lines of at most ``width``, broken at spaces only.

    A word longer than a line stands on a line of its own rather than being cut.
    """
    return textwrap.wrap(" ".join(text.split()), width, initial_indent=first,
                         subsequent_indent=later, break_long_words=False,
                         break_on_hyphens=False)


def fill_paragraphs(text: str, width: int, indent: str = "") -> str:
    """Text of paragraphs (blank-line separated) refilled to ``width``.

    Lines of a paragraph run together; a line starting with ``1.`` or ``-``
    starts a list item, and the indented lines after it continue the item
    (wrapped with a hanging indent). Other indented lines are pre-formatted
    (a table, already wrapped) and kept as they are.
    """
    paragraphs = re.split(r"\n[ \t]*\n", plain_text(text).strip("\n"))
    return "\n\n".join("\n".join(_fill_paragraph(p, width, indent)) for p in paragraphs)


def _fill_paragraph(paragraph: str, width: int, indent: str) -> list[str]:
    # Blocks to wrap, as (first-line indent, hanging indent, words), or raw lines.
    blocks: list[tuple[str, str, list[str]] | str] = []
    for line in paragraph.splitlines():
        words = line.lstrip()
        lead = line[: len(line) - len(words)]
        last = blocks[-1] if blocks and not isinstance(blocks[-1], str) else None
        item = _ITEM.match(words)
        if item:
            blocks.append((lead, lead + " " * item.end(), [words]))
        elif last and (not lead or last[1]):  # the paragraph, or the item, goes on
            last[2].append(words)
        elif lead:
            blocks.append(line)
        else:
            blocks.append(("", "", [words]))
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, str):
            lines.append(indent + block)
        else:
            first, later, words = block
            lines += wrap(" ".join(words), width, indent + first, indent + later)
    return lines


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter with :func:`fill_paragraphs` descriptions and unbroken words."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return wrap(plain_text(text), width)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return fill_paragraphs(text, width, indent)

    def _format_usage(self, usage, actions, groups, prefix) -> str:
        text = super()._format_usage(usage, actions, groups, prefix)
        if max(map(len, text.splitlines())) <= self._width:
            return text
        # argparse keeps the options beside a program name of up to 3/4 of the
        # width even where they do not fit there: put them under it instead.
        prefix = "usage: " if prefix is None else prefix
        words = " ".join(text.split())[len(prefix) + len(self._prog):]
        parts = re.findall(r"\[[^\]]*\]+|\S+", words)
        lines, line = [], ""
        for part in parts:
            if line and len(prefix) + len(line) + 1 + len(part) > self._width:
                lines.append(line)
                line = ""
            line = f"{line} {part}" if line else part
        indent = " " * len(prefix)
        return "\n".join([prefix + self._prog, *(indent + x for x in [*lines, line])]) + "\n\n"


def definition_list(rows: dict[str, str], *, width: int | None = None, gap: int = 2) -> str:
    """``  name  summary`` lines, each summary wrapped under itself (for an epilog).

    Example:
        >>> print(definition_list({"two_stage": "a CNN on 7 classes, then 3"}, width=30))
          two_stage  a CNN on 7
                     classes, then 3
    """
    width = width or help_width()
    column = 2 + max(map(len, rows)) + gap
    lines: list[str] = []
    for name, summary in rows.items():
        lines += wrap(summary, width, f"  {name:<{column - 2}}", " " * column)
    return "\n".join(lines)
