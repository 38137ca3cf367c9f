"""The matching half of ``note search``: open each note, find the query.

    found = search_notes(s.store, comps, "insomnia", SPLIT_NOTES)
    for comp, entry, snippets in found: ...   # in the compartments' order

Opening a note (its object read and hashed, the kept file key's header MAC,
ChaCha20-Poly1305, the body's SHA-256) is independent of every other note,
and most of it is Python between short C calls: threads would take turns at
the GIL. So a search of ``split_from`` notes or more is split in two at a
note boundary, and a forked child (``store.forked``: its own interpreter,
the second processor) opens the second part while this process opens the
first; the child sends back only the positions of its hits and their
snippets. The result is the one a single process gives, in the same order,
and an error either meets (a damaged note) is raised the same. No
plaintext is kept but a hit's three snippets.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from confvault.vault.model import note_format as fmt
from confvault.vault.model.index import NoteEntry
from confvault.vault.ops.compartments import Compartment
from confvault.vault.store import forked
from confvault.vault.store.documents import JSONValue
from confvault.vault.store.objects import ObjectStore

SPLIT_NOTES = 1_500  # fewer notes than this open in ~40 ms: not worth a fork
_HERE = 1 / 2  # of the notes opened here when split
Snippet = tuple[str, str, str]
Hit = tuple[Compartment, NoteEntry, tuple[Snippet, ...]]
_Work = list[tuple[Compartment, NoteEntry]]


def search_notes(
    store: ObjectStore, comps: Sequence[Compartment], query: str, split_from: int
) -> list[Hit]:
    """The notes of ``comps`` whose title or body holds ``query`` (case
    folded), each with up to five snippets, in the order of ``comps`` and
    of their notes."""
    work = [(comp, entry) for comp in comps for entry in comp.notes]
    needle = query.casefold()
    pattern = re.compile(re.escape(query), re.IGNORECASE)

    def scan(start: int, stop: int) -> list[tuple[int, tuple[Snippet, ...]]]:
        found = []
        for at in range(start, stop):
            comp, entry = work[at]
            snippets = _match(store, comp, entry, needle, pattern)
            if snippets:
                found.append((at, snippets))
        return found

    if len(work) < split_from or not forked.available() or forked.processors() < 2:
        positions = scan(0, len(work))
    else:
        cut = int(len(work) * _HERE)

        def there() -> list[object]:
            return [
                [at, [list(x) for x in snips]] for at, snips in scan(cut, len(work))
            ]

        mine, theirs = forked.run_pair(lambda: scan(0, cut), there)
        positions = mine + _positions(theirs, cut, len(work))
    return [(*work[at], snippets) for at, snippets in positions]


def _match(
    store: ObjectStore,
    comp: Compartment,
    entry: NoteEntry,
    needle: str,
    pattern: re.Pattern[str],
) -> tuple[Snippet, ...]:
    """Up to five snippets of ``entry`` around the query; () when it is not there."""
    if entry.kind == "attachment" or entry.damaged is not None:
        text = entry.title
    else:
        data = store.get(entry.object)
        body = fmt.body_recorded(fmt.open_object(data, entry, comp.key), entry)
        text = entry.title + "\n" + body.decode("utf-8", "replace")
    if needle not in text.casefold():
        return ()
    return tuple(_snippet(text, m) for m in pattern.finditer(text))[:5]


def _snippet(text: str, match: re.Match[str], width: int = 40) -> Snippet:
    before = re.sub(r"\s+", " ", text[max(0, match.start() - width) : match.start()])
    after = re.sub(r"\s+", " ", text[match.end() : match.end() + width])
    return (before.lstrip(), match.group(0), after.rstrip())


def _positions(
    theirs: JSONValue, start: int, stop: int
) -> list[tuple[int, tuple[Snippet, ...]]]:
    """The child's hits as JSON gave them back: ``[[position, [[before,
    match, after], ...]], ...]``, positions rising within its part."""
    out: list[tuple[int, tuple[Snippet, ...]]] = []
    for item in theirs if isinstance(theirs, list) else [None]:
        if not (
            isinstance(item, list)
            and len(item) == 2
            and type(item[0]) is int
            and start <= item[0] < stop
            and (not out or out[-1][0] < item[0])
            and isinstance(item[1], list)
        ):
            raise TypeError("the second process sent a malformed hit")
        snippets = []
        for snip in item[1]:
            if not (
                isinstance(snip, list)
                and len(snip) == 3
                and all(isinstance(x, str) for x in snip)
            ):
                raise TypeError("the second process sent a malformed snippet")
            snippets.append((str(snip[0]), str(snip[1]), str(snip[2])))
        out.append((item[0], tuple(snippets)))
    return out
