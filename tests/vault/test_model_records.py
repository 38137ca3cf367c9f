"""The typed records of vault/model: every document a vault holds converts to
its record and back to the very same document (so a record read and written
again is byte-identical once sealed), and a malformed document is an
``IntegrityError`` naming what is wrong, never a KeyError or TypeError."""

from __future__ import annotations

import base64
import copy
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from confvault import age
from confvault.errors import IntegrityError
from confvault.vault.model import identity
from confvault.vault.model.audit import ChainEntry, Segment, Stamped
from confvault.vault.model.directory import GranteeDirectory
from confvault.vault.model.grant import Grant
from confvault.vault.model.index import CompartmentIndex, NoteEntry, Profile
from confvault.vault.model.note_format import NoteMeta
from confvault.vault.model.root import (
    ClientRecord,
    CompartmentEntry,
    RootRecord,
    Settings,
)
from confvault.vault.store import fs, manifest, sealing
from confvault.vault.store.objects import ObjectStore

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "vault-format-1"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())


def _documents(tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every sealed JSON document of the stored fixture vault, by kind."""
    with tarfile.open(FIXTURE / "vault.tar") as tar:
        tar.extractall(tmp_path, filter="tar")
    disk = fs.Root(tmp_path / "vault")
    store = ObjectStore(disk)
    current = manifest.load(disk)
    owner = identity.unseal_with_passphrase(
        store.get(current.pointer("owner")), EXPECTED["passphrase"].encode()
    )
    top = json.loads(age.decrypt(store.get(current.pointer("root")), [owner.key]))
    docs: dict[str, list[dict[str, Any]]] = {"root": [top], "bucket": []}
    for entry in top["buckets"].values():
        key = base64.b64decode(entry["file_key"])
        plain = age.decrypt_with_file_key(store.get(entry["object"]), key)
        docs["bucket"].append(json.loads(plain))
    docs["index"] = []
    for bucket in docs["bucket"]:
        for client in bucket["clients"].values():
            for entry in client["compartments"].values():
                text = age.decrypt(store.get(entry["key"]), [owner.key]).decode()
                key = age.parse_identities(text)[0]
                docs["index"].append(
                    sealing.open_document(store.get(entry["index"]), [key], "index")
                )
    audit = sealing.open_document(
        store.get(current.pointer("audit")), [owner.key], "audit"
    )
    grantee = age.parse_identity((FIXTURE / "grantee-identity.txt").read_text())
    docs["audit"] = [audit]
    docs["grantee"] = [
        sealing.open_document(store.get(digest), [grantee], "grantee")
        for name, digest in current.body.pointers.items()
        if name.startswith("grantee:")
    ]
    return docs


def test_every_document_of_a_stored_vault_converts_back_to_itself(
    tmp_path: Path,
) -> None:
    docs = _documents(tmp_path)
    assert [len(docs[k]) for k in docs] == [1, 2, 3, 1, 1]
    top = {k: v for k, v in docs["root"][0].items() if k != "buckets"}
    clients = {
        cid: ClientRecord.from_doc(c, cid)
        for bucket in docs["bucket"]
        for cid, c in bucket["clients"].items()
    }
    root = RootRecord.from_doc(top, clients)
    assert root.top_doc() == top
    for bucket in docs["bucket"]:
        for cid, client in bucket["clients"].items():
            assert clients[cid].to_doc() == client
    for doc in docs["index"]:
        assert CompartmentIndex.from_doc(doc, "index").to_doc() == doc
    segment = Segment.from_doc(docs["audit"][0])
    assert segment.to_doc() == docs["audit"][0]
    assert len(segment.entries) == 17
    directory = GranteeDirectory.from_doc(docs["grantee"][0])
    assert directory.to_doc() == docs["grantee"][0]
    assert set(directory.clients) == {
        cid for cid, name in EXPECTED["clients"].items() if name == "Ann Example"
    }
    # A version 1 root (every client inline) reads the same.
    assert RootRecord.from_doc(root.to_doc()) == root


def test_absent_keys_stay_absent_and_nulls_stay_null() -> None:
    entry = {"key": "k", "key_created": "t", "notes": 1, "drafts": 0, "index": "i"}
    assert CompartmentEntry.from_doc(entry, "e").to_doc() == entry
    assert CompartmentEntry.from_doc({**entry, "attachments": 0}, "e").attachments == 0
    client = {"name": "A", "created": "t", "compartments": {"records": entry}}
    assert ClientRecord.from_doc(client, "ab").to_doc() == client
    assert ClientRecord.from_doc({**client, "last_note": "d"}, "ab").last_note == "d"
    old = {"work_factor": 10, "created": "t"}  # a root written before the others
    for settings in (
        old,
        {**old, "recovery_recipient": None, "max_key_age_days": 180},
        {**old, "recovery_recipient": "age1x", "identity_rotated": "t2"},
    ):
        assert Settings.from_doc(settings).to_doc() == settings
    assert Settings.from_doc(old).recovery is None
    top = {"format": "confvault/root/v2", "vault": "v", "grants": [], "settings": old}
    assert RootRecord.from_doc(top, {}).top_doc() == top
    for pending in ([], [["ab", "records"]]):
        doc = {**top, "pending_rotation": pending}
        assert RootRecord.from_doc(doc, {}).top_doc() == doc


def _note_doc() -> dict[str, Any]:
    meta = NoteMeta(
        *("ab12340000000001", "ab12340000000000", "progress", "T", "d", "c", "draft"),
        3,
        "0" * 64,
        "",
    )
    return {**meta.to_json(), "object": "1" * 64, "file_key": "a2V5"}


def test_note_entries_round_trip_with_and_without_a_kept_file_key() -> None:
    doc = _note_doc()
    entry = NoteEntry.from_doc(doc, "index")
    assert entry.to_doc() == doc
    assert entry == NoteEntry.of(entry.meta, "1" * 64, "a2V5")
    streamed = {k: v for k, v in doc.items() if k != "file_key"}
    assert NoteEntry.from_doc(streamed, "index").to_doc() == streamed
    assert NoteEntry.from_doc(streamed, "index").file_key is None
    moved = entry.stored_at("2" * 64, None)
    assert moved.to_doc() == {**streamed, "object": "2" * 64}
    assert entry.to_doc() == doc  # a record is a value: unchanged


def test_a_damaged_note_entry_round_trips_and_an_older_one_has_none() -> None:
    doc = _note_doc()
    entry = NoteEntry.from_doc(doc, "index")
    assert entry.damaged is None
    damaged = entry.marked_damaged(
        "2026-12-07T10:00:00Z: object 111111111111 is missing"
    )
    marked = {**doc, "damaged": "2026-12-07T10:00:00Z: object 111111111111 is missing"}
    assert damaged.to_doc() == marked
    assert NoteEntry.from_doc(marked, "index") == damaged
    assert damaged.meta == entry.meta  # not part of what the note's header holds
    streamed = {k: v for k, v in marked.items() if k != "file_key"}
    index = {
        "format": "confvault/index/v1",
        "client": "ab12340000000000",
        "compartment": "records",
        "notes": [doc, marked, streamed],
    }
    read = CompartmentIndex.from_doc(index, "records index")
    assert read.to_doc() == index
    assert [n.damaged is None for n in read.notes] == [True, False, False]
    with pytest.raises(IntegrityError, match="'damaged' is not text"):
        NoteEntry.from_doc({**doc, "damaged": None}, "index")


def test_an_index_reads_all_its_entries_and_names_a_malformed_one() -> None:
    good = _note_doc()
    streamed = {k: v for k, v in good.items() if k != "file_key"}
    index = {
        "format": "confvault/index/v1",
        "client": "ab12340000000000",
        "compartment": "records",
        "notes": [good, streamed, {**good, "id": "ab12340000000002"}],
    }
    read = CompartmentIndex.from_doc(index, "records index")
    assert read.to_doc() == index
    assert [n.file_key for n in read.notes] == ["a2V5", None, "a2V5"]
    assert read.counts() == (0, 3, 0)
    for bad, message in (
        ({**good, "body_size": 3.0}, "'body_size' is not a whole number"),
        ({**good, "signature": 5}, "'signature' is not text or null"),
        ({**good, "file_key": None}, "'file_key' is not text"),
        ([good], "not a JSON object"),
    ):
        notes = [good, streamed, bad]
        with pytest.raises(IntegrityError, match=message):
            CompartmentIndex.from_doc({**index, "notes": notes}, "records index")


Mutation = Callable[[dict[str, Any]], object]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("title"), "no 'title'"),
        (lambda d: d.update(colour="red"), "unexpected key 'colour'"),
        (lambda d: d.update(body_size="3"), "'body_size' is not a whole number"),
        (lambda d: d.update(body_size=True), "'body_size' is not a whole number"),
        (lambda d: d.update(id=7), "'id' is not text"),
        (lambda d: d.update(template=["x"]), "'template' is not text or null"),
        (lambda d: d.update(file_key=None), "'file_key' is not text"),
    ],
)
def test_a_malformed_note_entry_names_what_is_wrong(
    change: Mutation, message: str
) -> None:
    doc = _note_doc()
    change(doc)
    with pytest.raises(IntegrityError, match=f"is malformed: .*{message}"):
        NoteEntry.from_doc(doc, "records index of client ab123400")


SETTINGS = {"work_factor": 10, "created": "t"}
GRANT = {
    "id": "g1",
    "recipient": "age1x",
    "label": "sup",
    "clients": ["ab"],
    "all": False,
    "psychotherapy": False,
    "since": "t",
    "until": None,
}


@pytest.mark.parametrize(
    ("read", "doc", "change", "message"),
    [
        (Grant.from_doc, GRANT, lambda d: d.update(clients="ab"), "'clients' is not"),
        (Grant.from_doc, GRANT, lambda d: d.update(all=1), "'all' is not true"),
        (Grant.from_doc, GRANT, lambda d: d.pop("until"), "no 'until'"),
        (
            Settings.from_doc,
            SETTINGS,
            lambda d: d.update(work_factor="10"),
            "'work_factor' is not a whole number",
        ),
        (
            lambda d: ClientRecord.from_doc(d, "ab"),
            {"name": "A", "created": "t", "compartments": {"records": []}},
            lambda d: None,
            "the records compartment of client ab is malformed: not a JSON object",
        ),
        (
            lambda d: Profile.from_doc(d, "profile"),
            {"name": "A", "fields": {"dob": 1990}, "created": "t"},
            lambda d: None,
            "'fields' holds a value that is not text",
        ),
        (
            lambda d: RootRecord.from_doc(d, {}),
            {"format": "f", "vault": "v", "grants": {}, "settings": SETTINGS},
            lambda d: None,
            "'grants' is not a list",
        ),
        (
            lambda d: RootRecord.from_doc(d, {}),
            {"format": "f", "vault": "v", "grants": [], "settings": SETTINGS},
            lambda d: d.update(pending_rotation=[["ab"]]),
            "a pending rotation is not a pair",
        ),
        (
            Segment.from_doc,
            {"format": "f", "vault": "v", "number": 0, "previous": None},
            lambda d: d.update(entries=[{"seq": 0}]),
            "no 'action'",
        ),
    ],
)
def test_a_malformed_record_names_what_is_wrong(
    read: Callable[[Any], object],
    doc: dict[str, Any],
    change: Mutation,
    message: str,
) -> None:
    doc = copy.deepcopy(doc)
    change(doc)
    with pytest.raises(IntegrityError, match=message):
        read(doc)


def test_records_are_values_a_change_is_a_new_record() -> None:
    entry = CompartmentEntry("k", "t", 0, 0, "i", 0)
    root = RootRecord("v", {"ab": ClientRecord("A", "t", {})}, (), None)
    changed = root.with_compartment("ab", "records", entry)
    assert root.clients["ab"].compartments == {}
    assert changed.clients["ab"].compartments == {"records": entry}
    assert changed.pending_with([("ab", "records")]) == (("ab", "records"),)
    pending = changed.with_pending((("ab", "records"),))
    assert pending.pending_with([("ab", "records"), ("cd", "records")]) == (
        ("ab", "records"),
        ("cd", "records"),
    )


def test_an_inbox_entry_of_the_wrong_shape_is_refused() -> None:
    good = {
        "action": "note-show",
        "client": None,
        "note": None,
        "details": None,
        "time": "t",
        "actor": "grantee:age1x",
    }
    stamped = Stamped.from_inbox(good)
    assert (stamped.event.details, stamped.signed) == ({}, False)
    entry = ChainEntry.link(stamped, None)
    assert (entry.seq, entry.prev) == (0, "0" * 64)
    assert ChainEntry.from_doc(entry.to_doc(), "entry") == entry
    for change in ({"details": "x"}, {"client": 5}, {"action": None}):
        with pytest.raises(IntegrityError, match="audit inbox entry is malformed"):
            Stamped.from_inbox({**good, **change})


def test_custodians_round_trip_and_are_absent_in_older_roots() -> None:
    old = {"work_factor": 10, "created": "t"}
    top = {"format": "confvault/root/v2", "vault": "v", "grants": [], "settings": old}
    assert RootRecord.from_doc(top, {}).custody is None
    member = {"name": "jane", "recipient": "age1x", "added": "t"}
    split = {
        "created": "t",
        "threshold": 2,
        "executor": "age1e",
        "shares": {"jane": "00ff"},
    }
    for custodians in (
        {"members": []},
        {"members": [member]},
        {"members": [member], "split": split},
        {
            "members": [member],
            "split": {**split, "notice": 604800},
            "notice": {"started": "t2", "shares": ["jane"]},
        },
    ):
        doc = {**top, "custodians": custodians}
        assert RootRecord.from_doc(doc, {}).top_doc() == doc
    bad = {**top, "custodians": {"members": [{**member, "extra": 1}]}}
    with pytest.raises(IntegrityError, match="custodian record"):
        RootRecord.from_doc(bad, {})


def test_retention_hold_birth_date_and_requests_round_trip() -> None:
    """Issue 18's fields: optional everywhere, absent in older documents."""
    client = {
        "name": "A",
        "created": "2026-01-01T00:00:00Z",
        "compartments": {},
        "hold": {"reason": "subpoena", "since": "2026-02-01T00:00:00Z"},
        "retention": {"years": 10, "minor_years": 3, "majority": 21},
        "released": "2026-01-15T00:00:00Z",  # an earlier hold's end
    }
    assert ClientRecord.from_doc(copy.deepcopy(client), "ab").to_doc() == client
    settings = {**SETTINGS, "retention": {"years": 7}, "request_days": 45}
    assert Settings.from_doc(copy.deepcopy(settings)).to_doc() == settings
    profile = {"name": "A", "fields": {}, "created": "t", "born": "2012-02-29"}
    assert Profile.from_doc(copy.deepcopy(profile), "p").to_doc() == profile
    request = {"id": "0a1b2c3d", "client": "ab", "received": "2026-01-31"}
    request |= {"due": "2026-03-02", "opened": "t", "by": "her lawyer"}
    top = {"format": "confvault/root/v2", "vault": "v", "grants": []}
    top["settings"] = SETTINGS
    top["requests"] = [request, {**request, "closed": "t", "outcome": "sent"}]
    assert RootRecord.from_doc(copy.deepcopy(top), {}).top_doc() == top
    with pytest.raises(IntegrityError, match="'years' is not a whole number"):
        ClientRecord.from_doc({**client, "retention": {"years": "7"}}, "ab")
    with pytest.raises(IntegrityError, match="unexpected key 'note'"):
        ClientRecord.from_doc(
            {**client, "hold": {"reason": "r", "since": "t", "note": 1}}, "ab"
        )
    entry = {"key": "k", "key_created": "t", "notes": 1, "drafts": 0, "index": "i"}
    covered = ClientRecord.from_doc(
        {**client, "compartments": {"records": entry}}, "ab"
    )
    grantee = GranteeDirectory.of(
        RootRecord("v", {"ab": covered}, (), None), Grant.from_doc(GRANT), "age1o"
    )
    # a grantee's directory holds neither the hold nor the retention rule
    assert grantee.to_doc()["clients"] == {
        "ab": {
            "name": "A",
            "created": client["created"],
            "compartments": {"records": entry},
        }
    }
