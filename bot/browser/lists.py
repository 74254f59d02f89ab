"""Reading a public list back to a letter: where it would be, and whether the rows read prove it
is not there (DESIGN.md "Deleted": a covered miss).

Lists show the newest first. A list look that did not find the letter proves it absent only
when it read back to a row sent before the letter, or to the list's end; otherwise it is
`not_covered` and proves nothing. The algorithms here do not know how a page is fetched: the
browser runner and the plain HTTP runner hand them a function that reads page n.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Awaitable, Callable

from bot.scenario.times import after, before, parse_time
from bot.vocab import FlowOutcome


@dataclass(frozen=True)
class ListPage:
    """What one page of a list said about the letter."""

    n: int
    found: bool
    rows: int
    older: str | None       # the first row surely sent before the letter, as shown
    all_newer: bool         # every row surely sent after it
    last: bool              # no rows, or the list's last page


class PagesSpent(Exception):
    """`max_pages` page loads made without settling where the letter would be."""


def read_rows(n: int, found: bool, texts: list[str], formats: list[str], since: datetime, last: bool) -> ListPage:
    """A page's rows (their shown times) weighed against the letter's time."""
    times = [parse_time(t, formats) for t in texts]
    return ListPage(n=n, found=found, rows=len(texts),
                    older=next((" ".join(t.split()) for t, v in zip(texts, times) if before(v, since)), None),
                    all_newer=bool(times) and all(after(v, since) for v in times),
                    last=last or not texts)


Result = tuple[FlowOutcome, str, int | None]      # outcome, what was read, the page it was found on


async def in_order(read: Callable[[int], Awaitable[ListPage]], advance: Callable[[int], Awaitable[bool]],
                   max_pages: int) -> Result:
    """Page after page (`advance(n)` goes from page n to the next; False at the end)."""
    for n in range(1, max_pages + 1):
        p = await read(n)
        if p.found:
            return FlowOutcome.FOUND, f"found on page {n}", n
        if p.older is not None:
            return FlowOutcome.NOT_FOUND, f"not on the {n} page(s) read back to a row of {p.older}, older than the letter", None
        if p.last or not await advance(n):
            return FlowOutcome.NOT_FOUND, f"not on the {n} page(s) of the list, read to its end", None
    return (FlowOutcome.NOT_COVERED, f"not on the first {max_pages} page(s), all newer than the letter: "
            "the list was not read back to it", None)


async def by_number(look: Callable[[int], Awaitable[ListPage]], max_pages: int) -> Result:
    """A list whose pages are numbered: the page where rows older than the letter begin is found
    by doubling then halving the page number, and the letter, if the list has it, sits just
    before them. A few page loads for a list of hundreds of pages; `look` raises PagesSpent
    past `max_pages` loads."""
    looked: dict[int, ListPage] = {}

    async def page(n: int) -> ListPage:
        if n not in looked:
            if len(looked) >= max_pages:
                raise PagesSpent()
            looked[n] = await look(n)
        return looked[n]

    def ends(p: ListPage) -> bool:
        return p.older is not None or p.last

    try:
        lo, hi = 0, 1
        while True:                  # double: a page where older rows begin, or the end
            p = await page(hi)
            if p.found:
                return FlowOutcome.FOUND, f"found on page {p.n} ({len(looked)} page(s) read)", p.n
            if ends(p):
                break
            lo, hi = hi, hi * 2
        while hi - lo > 1:           # halve: the first such page
            mid = (lo + hi) // 2
            p = await page(mid)
            if p.found:
                return FlowOutcome.FOUND, f"found on page {p.n} ({len(looked)} page(s) read)", p.n
            lo, hi = (lo, mid) if ends(p) else (mid, hi)
        # The letter, if listed, is just before the first older row: on that page, or further
        # back while a page may still hold rows of its time (a list showing dates only).
        n = hi
        while n >= 1:
            p = await page(n)
            if p.found:
                return FlowOutcome.FOUND, f"found on page {p.n} ({len(looked)} page(s) read)", p.n
            if n < hi and p.all_newer:
                break
            n -= 1
    except PagesSpent:
        return (FlowOutcome.NOT_COVERED, f"not on the {len(looked)} page(s) read, which did not reach back to "
                f"the letter (max_pages {max_pages})", None)
    edge = looked[hi]
    return (FlowOutcome.NOT_FOUND, f"not on the list: read {len(looked)} page(s) back to "
            + (f"a row of {edge.older}, older than the letter" if edge.older else "its end"), None)
