"""CLIENT on the command line: a unique prefix of a word of the name, any case;
an ambiguous one lists the candidates and exits 2 (issue 15)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

Run = Callable[..., Any]


@pytest.fixture
def people(ready: Run) -> dict[str, str]:
    ids = {}
    for name in ("Ann Example", "Annabel Stone", "Zoë Ströme", "Bob Marsh"):
        result = ready("client", "add", name, "--json")
        assert result.exit_code == 0, result.output
        ids[name] = json.loads(result.stdout)["id"]
    return ids


@pytest.mark.parametrize(
    ("ref", "name"),
    [
        ("bob", "Bob Marsh"),
        ("marsh", "Bob Marsh"),
        ("EXAMPLE", "Ann Example"),
        ("ströme", "Zoë Ströme"),
        ("ZOË", "Zoë Ströme"),
    ],
)
def test_note_add_list_and_client_show_take_a_word_prefix(
    ready: Run, people: dict[str, str], ref: str, name: str
) -> None:
    added = ready("note", "add", ref, "--title", "t", "--json", input="text")
    assert added.exit_code == 0, added.output
    note = json.loads(added.stdout)
    assert note["client"] == people[name]
    listed = ready("note", "list", ref, "--json")
    assert listed.exit_code == 0, listed.output
    assert [n["id"] for n in json.loads(listed.stdout)] == [note["id"]]
    shown = ready("client", "show", ref, "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["id"] == people[name]


def test_exact_name_and_id_still_work(ready: Run, people: dict[str, str]) -> None:
    bob = people["Bob Marsh"]
    for ref in ("bob marsh", bob, bob[:8]):
        shown = ready("client", "show", ref, "--json")
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.stdout)["id"] == bob


@pytest.mark.parametrize(
    "command", [("note", "add"), ("note", "list"), ("client", "show")]
)
def test_an_ambiguous_prefix_lists_both_and_exits_2(
    ready: Run, people: dict[str, str], command: tuple[str, ...]
) -> None:
    result = ready(*command, "ann", input="text")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "confvault: error: 2 clients match that reference; give more of the name "
        "or of the ID",
        f"  {people['Ann Example']}  Ann Example",
        f"  {people['Annabel Stone']}  Annabel Stone",
        "confvault: hint: give more of the name, or of the ID",
    ]
    listed = json.loads(ready("note", "list", "--json").stdout)
    assert listed == []  # note add wrote nothing


def test_the_candidates_are_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    """A name comes from the vault: the candidate list prints it as any other
    untrusted text, escaped (cli/_output.safe), whatever the vault holds."""
    import typer

    from confvault.cli._errors import fail
    from confvault.errors import AmbiguousClientError

    err = AmbiguousClientError(
        "2 clients match that reference; give more of the name or of the ID",
        (("a" * 32, "Ann\x1b]0;owned\x07"), ("b" * 32, "Ann\u202eelpmaxE")),
    )
    with pytest.raises(typer.Exit) as caught:
        fail(err)
    assert caught.value.exit_code == 2
    assert capsys.readouterr().err.splitlines()[1:3] == [
        f"  {'a' * 32}  Ann\\x1b]0;owned\\x07",
        f"  {'b' * 32}  Ann\\u202eelpmaxE",
    ]


def test_no_match_keeps_the_missing_client_error(
    ready: Run, people: dict[str, str]
) -> None:
    result = ready("note", "list", "xylo")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "confvault: error: no client with that name or ID prefix",
        "confvault: hint: `confvault client list` shows names and IDs",
    ]


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("", "the client reference is empty"),
        ("   ", "the client reference is empty"),
        ("ann\x1b[2J", "the client reference contains a control character"),
        ("a" * 5000, "the client reference is longer than 200 characters"),
    ],
)
def test_a_hostile_reference_exits_2_with_a_clear_line(
    ready: Run, people: dict[str, str], ref: str, message: str
) -> None:
    result = ready("note", "add", ref, input="text")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"confvault: error: {message}",
        "confvault: hint: give a client's name, the start of a word of it, or its ID",
    ]
    assert json.loads(ready("note", "list", "--json").stdout) == []


def test_options_naming_a_client_take_a_word_prefix_too(
    ready: Run, people: dict[str, str]
) -> None:
    shown = ready("audit", "--client", "MARSH", "--json")
    assert shown.exit_code == 0, shown.output
    entries = json.loads(shown.stdout)
    assert [(e["action"], e["client"]) for e in entries] == [
        ("client-add", people["Bob Marsh"])
    ]
    ambiguous = ready("audit", "--client", "ann", "--json")
    assert ambiguous.exit_code == 2
    assert ambiguous.stdout == ""
