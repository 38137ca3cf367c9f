"""Records requests (export) and retention (shred)."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from confvault import age
from confvault.errors import ClientNotFoundError, VaultExistsError
from confvault.vault import Vault
from confvault.vault.ops import compartments
from confvault.vault.ops.export import seal_export
from confvault.vault.ops.export_sinks import DirectorySink


@pytest.fixture
def record(vault: Vault, tmp_path: Path) -> dict[str, object]:
    vault.add_client("Ann Example", {"dob": "1990-01-01"})
    vault.add_client("Bob")
    n1 = vault.add_note(
        "Ann Example",
        b"First session text.\n",
        title="Intake",
        date="2026-01-05",
        kind="intake",
    )
    n2 = vault.add_note(
        "Ann Example", b"Second session.\n", title="S2", date="2026-01-12"
    )
    pt = vault.add_note(
        "Ann Example", b"process notes\n", kind="psychotherapy", date="2026-01-12"
    )
    pdf = tmp_path / "consent form.pdf"
    pdf.write_bytes(os.urandom(2_500_000))
    att = vault.add_attachment("Ann Example", pdf, title="Consent")
    vault.add_note("Bob", b"bob\n")
    return {"n1": n1, "n2": n2, "pt": pt, "att": att, "pdf": pdf}


def test_export_directory_is_complete_private_and_readable(
    vault: Vault, record, tmp_path: Path
) -> None:
    out = tmp_path / "request"
    result = vault.export_client("Ann Example", DirectorySink(out))
    assert (result.notes, result.attachments, result.psychotherapy) == (2, 1, False)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    n1, n2, att = record["n1"], record["n2"], record["att"]
    assert files == sorted(
        [
            "index.md",
            f"notes/2026-01-05_{n1.id}.md",
            f"notes/2026-01-12_{n2.id}.md",
            f"notes/{att.date[:10]}_{att.id}.md",
            f"attachments/{att.id}_consent_form.pdf",
        ]
    )
    for path in out.rglob("*"):
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600)
    text = (out / f"notes/2026-01-05_{n1.id}.md").read_text()
    assert text.endswith("---\nFirst session text.\n")
    assert "signature: valid" in text
    assert "kind: intake" in text
    assert (out / f"attachments/{att.id}_consent_form.pdf").read_bytes() == record[
        "pdf"
    ].read_bytes()
    index = (out / "index.md").read_text()
    assert "# Record of Ann Example" in index
    assert "- dob: 1990-01-01" in index
    assert "Psychotherapy notes are not included" in index
    assert "process notes" not in "".join(
        p.read_text(errors="replace") for p in out.rglob("*.md")
    )
    with pytest.raises(VaultExistsError):
        DirectorySink(out)


def test_export_with_psychotherapy(vault: Vault, record, tmp_path: Path) -> None:
    result = vault.export_client(
        "Ann Example", DirectorySink(tmp_path / "all"), psychotherapy=True
    )
    assert result.notes == 3
    pt = record["pt"]
    assert (
        (tmp_path / "all" / f"notes/2026-01-12_{pt.id}.md")
        .read_text()
        .endswith("process notes\n")
    )


def test_sealed_export_opens_with_stock_age(
    vault: Vault, record, tmp_path: Path, age_bin: str
) -> None:
    recipient = age.X25519Identity.generate()
    key = tmp_path / "requester.key"
    key.write_text(recipient.encode() + "\n")
    sealed = tmp_path / "record.age"
    with sealed.open("wb") as f:
        seal_export(vault, "Ann Example", recipient.recipient, f)
    plain = subprocess.run(
        [age_bin, "-d", "-i", str(key), str(sealed)], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(plain)) as tar:
        names = sorted(tar.getnames())
        body = tar.extractfile(f"record/notes/2026-01-12_{record['n2'].id}.md").read()
        pdf = tar.extractfile(
            f"record/attachments/{record['att'].id}_consent_form.pdf"
        ).read()
    assert len([n for n in names if n.startswith("record/notes/")]) == 3
    assert body.endswith(b"Second session.\n")
    assert pdf == record["pdf"].read_bytes()
    assert b"First session" not in sealed.read_bytes()


def test_shred_destroys_every_file_of_the_client(
    vault: Vault, record, tmp_path: Path, age_bin: str
) -> None:
    root = vault.session.root_record(vault.manifest)
    cid = next(c for c, v in root.clients.items() if v.name == "Ann Example")
    keys = [
        compartments.open_compartment(vault.session, root, cid, name).key
        for name in root.clients[cid].compartments
    ]
    key_file = tmp_path / "old-client-keys.txt"
    key_file.write_text("".join(k.encode() + "\n" for k in keys))
    result = vault.shred_client("Ann Example")
    assert (result.notes, result.files_destroyed) == (4, 8)
    assert "backups" in result.limits
    for path in (vault.root / "objects").rglob("*"):
        if path.is_file():
            done = subprocess.run(
                [age_bin, "-d", "-i", str(key_file), str(path)],
                capture_output=True,
                check=False,
            )
            assert done.returncode != 0, path
    with pytest.raises(ClientNotFoundError):
        vault.client("Ann Example")
    assert [c.name for c in vault.clients()] == ["Bob"]
    assert vault.verify(deep=True).findings == ()
    assert [e.action for e in vault.audit(action="client-shred")] == ["client-shred"]
