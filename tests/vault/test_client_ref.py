"""CLIENT references: a whole ID, a whole name, or a unique prefix of the ID or
of a word of the name, any case (issue 15, finding things without typing IDs)."""

from __future__ import annotations

import pytest

from confvault.errors import (
    AmbiguousClientError,
    ClientNotFoundError,
    ClientReferenceError,
)
from confvault.vault import Vault


@pytest.fixture
def people(vault: Vault) -> dict[str, str]:
    """name -> ID for a few clients whose names share words and letters."""
    names = [
        "Ann Example",
        "Bob Marsh",
        "Annabel Stone",
        "Zoë Ströme",
        "Clara Straße",
        "Jean-Luc Picard",
    ]
    return {name: vault.add_client(name).id for name in names}


@pytest.mark.parametrize(
    ("ref", "name"),
    [
        ("bob", "Bob Marsh"),  # a prefix of the first word
        ("mar", "Bob Marsh"),  # of a later word
        ("MARSH", "Bob Marsh"),  # any case
        ("exa", "Ann Example"),
        ("annab", "Annabel Stone"),
        ("zoË", "Zoë Ströme"),  # unicode, casefolded both sides
        ("STRÖ", "Zoë Ströme"),
        ("strass", "Clara Straße"),  # ß casefolds to ss
        ("luc", "Jean-Luc Picard"),  # a hyphen separates words too
        ("jean-l", "Jean-Luc Picard"),
        ("ann ex", "Ann Example"),  # a prefix of the whole name
        ("  bob  ", "Bob Marsh"),  # trimmed, as a whole ID is
    ],
)
def test_a_unique_prefix_of_a_word_of_the_name_finds_the_client(
    vault: Vault, people: dict[str, str], ref: str, name: str
) -> None:
    assert vault.client(ref).id == people[name]
    assert vault.notes(ref) == []


def test_an_ambiguous_prefix_lists_every_candidate_by_name(
    vault: Vault, people: dict[str, str]
) -> None:
    with pytest.raises(AmbiguousClientError) as caught:
        vault.client("ann")
    assert caught.value.candidates == (
        (people["Ann Example"], "Ann Example"),
        (people["Annabel Stone"], "Annabel Stone"),
    )
    assert str(caught.value) == (
        "2 clients match that reference; give more of the name or of the ID"
    )
    assert "Ann" not in str(caught.value)  # names stay out of the message


def test_an_ambiguous_prefix_writes_nothing(
    vault: Vault, people: dict[str, str]
) -> None:
    generation = vault.manifest.generation
    with pytest.raises(AmbiguousClientError):
        vault.add_note("st", b"text")  # Stone, Ströme, Straße
    assert vault.manifest.generation == generation


def test_an_exact_name_beats_a_prefix_of_another(vault: Vault) -> None:
    ann = vault.add_client("Ann")
    annabel = vault.add_client("Annabel Ann")
    assert vault.client("ann").id == ann.id
    assert vault.client("ANN").id == ann.id
    assert vault.client("annabel").id == annabel.id


def test_an_id_and_its_prefix_still_find_the_client(
    vault: Vault, people: dict[str, str]
) -> None:
    bob = people["Bob Marsh"]
    assert vault.client(bob).id == bob
    assert vault.client(bob.upper()).id == bob
    assert vault.client(bob[:12]).id == bob


def test_an_id_prefix_that_begins_another_clients_name_is_ambiguous(
    vault: Vault,
) -> None:
    first = vault.add_client("First")
    prefix = first.id[:6]
    other = vault.add_client(f"{prefix.upper()}son")
    with pytest.raises(AmbiguousClientError) as caught:
        vault.client(prefix)
    assert {c[0] for c in caught.value.candidates} == {first.id, other.id}
    assert vault.client(first.id[:12]).id == first.id


def test_no_match_is_the_missing_client_error(
    vault: Vault, people: dict[str, str]
) -> None:
    with pytest.raises(ClientNotFoundError) as caught:
        vault.client("xylo")
    assert type(caught.value) is ClientNotFoundError
    assert str(caught.value) == "no client with that name or ID prefix"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("", "the client reference is empty"),
        ("   ", "the client reference is empty"),
        ("\t\n", "the client reference is empty"),
        ("an\x1bn", "the client reference contains a control character"),
        ("an\x00", "the client reference contains a control character"),
        (
            "ann\u202e",
            "the client reference contains a right-to-left or bidi control mark",
        ),
        ("a" * 201, "the client reference is longer than 200 characters"),
    ],
)
def test_a_reference_no_client_could_match_is_refused_clearly(
    vault: Vault, people: dict[str, str], ref: str, message: str
) -> None:
    with pytest.raises(ClientReferenceError) as caught:
        vault.client(ref)
    assert str(caught.value) == message
    assert isinstance(caught.value, ClientNotFoundError)  # as before: not found
