"""Manifest shards are read only when every line is a name with their prefix;
the manifest file is standard indented JSON."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confvault.errors import IntegrityError
from confvault.vault.store import manifest


def _write_shard(root: Path, data: bytes) -> str:
    (root / manifest.SHARDS_DIR).mkdir(mode=0o700, exist_ok=True)
    name = hashlib.sha256(data).hexdigest()
    path = root / manifest.SHARDS_DIR / name
    path.write_bytes(data)
    path.chmod(0o600)
    return name


def _names(prefix: str, count: int) -> list[str]:
    return sorted(
        prefix + hashlib.sha256(bytes([i])).hexdigest()[2:] for i in range(count)
    )


def test_a_well_formed_shard_reads_back(tmp_path: Path) -> None:
    names = _names("ab", 5)
    body = "".join(f"{n}\n" for n in names).encode()
    name = _write_shard(tmp_path, b"confvault/shard/v1\n" + body)
    assert manifest.read_shard(tmp_path, name, "ab") == frozenset(names)


@pytest.mark.parametrize(
    "body",
    [
        "cd" + "0" * 62 + "\n",  # another prefix
        "ab" + "0" * 61 + "\n",  # too short
        "ab" + "0" * 63 + "\n",  # too long
        "ab" + "0" * 61 + "G\n",  # not hex
        "AB" + "0" * 62 + "\n",  # upper case
        "ab" + "0" * 62,  # no final newline
        "ab" + "0" * 62 + "\n\n",  # an empty line
        "ab" + "0" * 62 + " \n",  # a space
        "ab" + "0" * 30 + "\n" + "0" * 31 + "\n",  # a line break inside a name
        "ab" + "0" * 62 + "\n" + "ab" + "0" * 61 + "\x00\n",  # a NUL
    ],
)
def test_a_malformed_shard_is_refused_even_when_its_hash_matches(
    tmp_path: Path, body: str
) -> None:
    name = _write_shard(tmp_path, b"confvault/shard/v1\n" + body.encode())
    with pytest.raises(IntegrityError, match="manifest shard ab is malformed"):
        manifest.read_shard(tmp_path, name, "ab")


_LEAF = st.one_of(st.text(), st.integers(), st.none(), st.booleans())
_VALUE = st.recursive(
    _LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(), inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), _VALUE, max_size=5))
def test_manifest_text_is_exactly_the_standard_indented_json(doc: dict) -> None:
    # The manifest file's layout is what RECOVERY.md's sed commands read.
    assert manifest._indented(doc, "\n") == json.dumps(doc, indent=1, sort_keys=True)


def _manifest_with(root: Path, names: set[str]) -> manifest.Manifest:
    """A manifest whose shards hold ``names`` (written through ``next_body``)."""
    body, files, _ = manifest.next_body(
        None, manifest.Changes(added=set(names)), vault_id="v", signer="s", time="t"
    )
    for data in files.values():
        _write_shard(root, data)
    return manifest.Manifest(root, body)


_HASH = st.binary(min_size=8, max_size=8).map(lambda b: hashlib.sha256(b).hexdigest())


@settings(max_examples=60, deadline=None)
@given(
    first=st.sets(_HASH, max_size=60),
    added=st.sets(_HASH, max_size=20),
    data=st.data(),
)
def test_a_commit_edits_each_shard_to_exactly_the_live_names(
    tmp_path_factory: pytest.TempPathFactory,
    first: set[str],
    added: set[str],
    data: st.DataObject,
) -> None:
    root = tmp_path_factory.mktemp("shards")
    current = _manifest_with(root, first)
    removed = data.draw(st.sets(st.sampled_from(sorted(first)))) if first else set()
    body, files, known = manifest.next_body(
        current,
        manifest.Changes(added=added, removed=removed),
        vault_id="v",
        signer="s",
        time="t",
    )
    for blob in files.values():
        _write_shard(root, blob)
    live = (first - removed) | added
    fresh = manifest.Manifest(root, body)  # reads the files written
    carried = manifest.Manifest(root, body, known)  # the lines carried over
    assert fresh.all_objects() == carried.all_objects() == live
    assert body.objects == len(live)
    for prefix in body.shards:
        assert (
            fresh.lines(prefix)
            == "".join(
                f"{n}\n" for n in sorted(n for n in live if n[:2] == prefix)
            ).encode()
        )
    for name in first | added:
        assert carried.contains(name) == (name in live)
    if live:  # a prefix of a live name is not a live name
        assert not carried.contains(next(iter(live))[:10])
