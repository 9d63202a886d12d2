"""Tables that never cut what a person must type.

Rich shrinks a table that does not fit by truncating cells and headers ("20261201T222717Z-
manu…", "proc…"). Here a column is either a *key* (ids and names a later command takes: never
wrapped, never cut) or folds onto more lines; headers always show whole; and when even that
does not fit, the least useful columns go first (``drop``: higher goes sooner).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text


@dataclass(frozen=True)
class Column:
    header: str
    #: an id or a name to type: shown whole, on one line
    key: bool = False
    #: when the table is too wide, columns with a drop rank go, highest first
    drop: int = 0
    #: the narrowest a folding column may get (its header is never cut either way)
    min_width: int = 6
    #: kept on one line, like a key, when the table still fits that way; folded otherwise
    whole: bool = False


def fitted(columns: Sequence[Column], rows: Sequence[Sequence[str | Text]], *, width: int,
           title: str | None = None) -> Table:
    """A Table of ``rows`` that fits ``width`` columns of terminal without cutting keys."""
    keep = list(range(len(columns)))

    def widest(index: int) -> int:
        """The header or the longest line of a cell, whichever is wider: one line, whole."""
        return max([len(columns[index].header),
                    *(len(line) for r in rows for line in str(r[index]).split("\n"))])

    def need(index: int) -> int:
        col = columns[index]
        if col.key:
            return widest(index)
        return max(len(col.header) if " " not in col.header else
                   max(len(w) for w in col.header.split()), col.min_width)

    def total(indexes: list[int], whole: frozenset[int] = frozenset()) -> int:
        widths = (widest(i) if i in whole else need(i) for i in indexes)
        return sum(widths) + 3 * len(indexes) + 1  # borders and padding

    droppable = sorted((i for i, c in enumerate(columns) if c.drop), key=lambda i: -columns[i].drop)
    while total(keep) > width and droppable:
        keep.remove(droppable.pop(0))
    whole = frozenset(i for i in keep if columns[i].whole)
    if whole and total(keep, whole) > width:
        whole = frozenset()  # they do not fit on one line: they fold like the others
    table = Table(title=title, title_justify="left") if title else Table()
    for i in keep:
        col = columns[i]
        if i in whole or col.key:
            table.add_column(col.header, no_wrap=True, min_width=widest(i))
        else:
            table.add_column(col.header, overflow="fold", min_width=need(i))
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    return table
