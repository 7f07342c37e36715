"""The errors a user can fix, and the one way they are shown.

Every entry point (``plankflux <verb>``, the Hydra runs included) catches
:class:`PlankfluxError` once, prints its message and exits with status 1: no
traceback for a bad file, a missing column or a wrong setting. Anything else is a bug
and keeps its traceback.

A check that can find several defects collects them as :class:`Problem` rows and
raises one :class:`ProblemsError` naming them all, so a user fixes a file in one pass.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

MAX_PROBLEMS_SHOWN = 25
# The "ValueError: " that opens the last line of a formatted traceback.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception)(\b[^:]*)?: ")


class PlankfluxError(ValueError):
    """Bad input or settings, told in words the user can act on.

    A ``ValueError`` so that library callers catching ``ValueError`` keep working.
    """


@dataclass(frozen=True)
class Problem:
    """One defect: where it is (file, 1-based line with the header as line 1, column,
    particle) and what is wrong."""

    file: str
    message: str
    line: int | None = None
    column: str | None = None
    particle_id: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f" line {self.line}"
        if self.particle_id:
            where += f" (particle_id {self.particle_id!r})"
        if self.column:
            where += f", column {self.column!r}"
        return f"{where}: {self.message}" if where else self.message


class ProblemsError(PlankfluxError):
    """Several defects of one subject (a campaign, a proposal folder, a source folder).

    Args:
        subject: what failed, as the message's opening words, e.g.
            ``"campaign data/x"`` or ``"cannot ingest proposal folder p"``.
        problems: :class:`Problem` rows or plain strings, every defect found.
        note: words after the count, e.g. ``" (nothing was written)"``.
        hint: a line after the list when some problems are not shown, e.g. the
            command that lists them all.
    """

    def __init__(
        self,
        subject: str,
        problems: Sequence[Problem | str],
        *,
        note: str = "",
        hint: str = "",
        max_shown: int = MAX_PROBLEMS_SHOWN,
    ):
        self.subject = subject
        self.problems = list(problems)
        shown = "\n  ".join(str(p) for p in self.problems[:max_shown])
        more = len(self.problems) - max_shown
        tail = f"\n  ... and {more} more{f' ({hint})' if hint else ''}" if more > 0 else ""
        super().__init__(f"{subject}: {len(self.problems)} problem(s){note}:\n  {shown}{tail}")


#: What every entry point reports as one message and exit status 1, no traceback:
#: bad input or settings (``PlankfluxError`` is a ``ValueError``) and files that are
#: missing, unreadable or in the way (``OSError``). ``PLANKFLUX_TRACEBACK=1`` re-raises.
USER_ERRORS = (ValueError, OSError)


class MissingFileError(PlankfluxError, FileNotFoundError):
    """A file the user named does not exist (also a ``FileNotFoundError``)."""


def describe(err: BaseException) -> str:
    """The message shown for a user error. An error raised in a DataLoader worker
    reaches the main process as the same type with the worker's traceback in its
    message; only the original error's message is kept."""
    text = str(err)
    if "Original Traceback" not in text:
        return text
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if _EXCEPTION_LINE.match(line)]
    if not starts:
        return text
    first = _EXCEPTION_LINE.sub("", lines[starts[-1]], count=1)
    return "\n".join([first, *lines[starts[-1] + 1 :]]).strip()
