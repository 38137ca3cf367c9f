"""`confvault demo`: the main flow on a throwaway vault with synthetic records."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer
from rich.markup import escape

from confvault.cli import _output
from confvault.cli._errors import EXIT_STATUS
from confvault.vault import Vault
from confvault.vault.model import policy
from confvault.vault.model.results import VerifyReport

commands = typer.Typer()

DEMO_PASSPHRASE = b"demo passphrase - not for real records"
_CLIENTS = {
    "Alex Demo": [
        (
            "Intake",
            "intake",
            "Presenting problem: trouble sleeping since a job change.\n",
        ),
        (
            "Session 2",
            "progress",
            "Subjective: sleeping better; practising the wind-down routine.\n",
        ),
    ],
    "Sam Sample": [
        (
            "Session 1",
            "progress",
            "Discussed stress at work and a plan for the week.\n",
        ),
    ],
}


def _say(step: str, detail: str = "") -> None:
    _output.stdout().print(
        f"[bold cyan]>[/bold cyan] {step}"
        + (f"  [dim]{escape(detail)}[/dim]" if detail else "")
    )


@commands.command(epilog=EXIT_STATUS)
def demo() -> None:
    """Walk through confvault on throwaway data in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="confvault-demo-") as tmp:
        path = Path(tmp) / "vault"
        _output.stdout().print(
            "[bold]confvault demo[/bold] — synthetic data in a temporary vault\n"
        )
        vault, recovery = Vault.init(
            path,
            DEMO_PASSPHRASE,
            work_factor=policy.MIN_WORK_FACTOR,
            state_dir=Path(tmp) / "state",
        )
        _say(
            "init: created a vault, owner keys sealed with a passphrase "
            f"(scrypt 2^{policy.MIN_WORK_FACTOR})",
            str(path),
        )
        _say(
            "      a recovery key was generated (a real `init` shows it once)",
            f"{(recovery or '')[:22]}…",
        )
        ids = {}
        for name, notes in _CLIENTS.items():
            client = vault.add_client(name, {"referral": "demo"})
            ids[name] = client.id
            _say(f"client add {name}", f"id {client.id}")
            for title, kind, body in notes:
                note = vault.add_note(client.id, body.encode(), kind=kind, title=title)
                _say(f"note add ({kind}, signed and locked)", f"id {note.id}")
        draft = vault.add_note(
            ids["Sam Sample"],
            b"Process notes (draft).\n",
            kind="psychotherapy",
            draft=True,
        )
        _say(
            "note add --kind psychotherapy --draft (its own compartment and key)",
            f"id {draft.id}",
        )
        vault.sign_note(draft.id)
        _say("note sign: the draft is now signed and locked")
        first = vault.notes(ids["Alex Demo"])[0]
        addendum = vault.amend(first.id, b"Addendum: intake date corrected.\n")
        _say(
            "note amend: corrections are addenda, the original never changes",
            f"id {addendum.id}",
        )
        view = vault.note(first.id)
        _say(
            f"note show {first.id[:8]}: signature {view.signature}",
            view.body.decode().strip(),
        )
        hits = vault.search("sleep")
        _say(
            f"note search sleep: {len(hits)} notes match",
            ", ".join(h.note.title for h in hits),
        )
        listed = vault.notes()
        _say(
            f"note list: {len(listed)} notes (psychotherapy notes only with --psychotherapy)"
        )
        report: VerifyReport = vault.verify(deep=True)  # the facade says Any
        _say(
            f"verify --deep: {'ok' if report.ok else 'PROBLEMS'}",
            f"{report.objects_checked} objects, {report.notes_checked} notes checked",
        )
        files = sorted(p.relative_to(path) for p in path.rglob("*") if p.is_file())
        sample = next(str(f) for f in files if f.parts[0] == "objects")
        _say(
            f"on disk: {len(files)} files; no names, titles or dates in the clear",
            sample,
        )
    _output.stdout().print(
        "\nthe temporary vault has been deleted. Start yours with `confvault init`."
    )
