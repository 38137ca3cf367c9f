"""`retention apply --yes` killed at every durable step (the crash runner of
test_crash.py): the due client is either whole or entirely shredded, the
vault verifies, and the next nightly run finishes the job."""

from __future__ import annotations

import shutil
from pathlib import Path

from confvault.vault import Vault
from confvault.vault.model.retention import RetentionRule

from .test_crash import (
    ALLOWED_AFTER_CRASH,
    PASSPHRASE,
    Base,
    _state_dir,
    copy_base,
    run_cli,
)

ARGS = ["retention", "apply", "--yes"]
BOTH = ["Ann Active", "Cleo Due"]


def _make(root: Path) -> Base:
    base = Base(root)
    root.mkdir()
    base.passphrase_file.write_bytes(PASSPHRASE)
    base.passphrase_file.chmod(0o600)
    vault, _ = Vault.init(
        base.vault,
        PASSPHRASE,
        work_factor=10,
        min_work_factor=10,
        state_dir=_state_dir(base.state),
    )
    ann = vault.add_client("Ann Active")
    vault.add_note(ann.id, b"Still seen.\n", title="Now")
    cleo = vault.add_client("Cleo Due")
    base.ids["note"] = vault.add_note(
        cleo.id, b"Last session.\n", title="Last", date="2001-01-01"
    ).id
    vault.set_retention(RetentionRule(1), client=cleo.id)
    return base


def _open(root: Path) -> Vault:
    return Vault.open(
        root / "vault", passphrase=PASSPHRASE, state_dir=_state_dir(root / "state")
    )


def test_retention_apply_killed_at_every_step_is_all_or_nothing(ram_path: Path) -> None:
    base = _make(ram_path / "base")
    reference = ram_path / "reference"
    copy_base(base, reference)
    run = run_cli("0", reference, base, ARGS, b"")
    assert run.returncode == 0, run.stderr
    assert run.total == len(run.steps) > 0, run.stderr
    assert [c.name for c in _open(reference).clients()] == ["Ann Active"]
    points = [str(n) for n in range(1, run.total + 1)]
    points += [f"{run.total}+", str(run.total + 1)]
    labels = []
    for point in points:
        root = ram_path / f"kill-{point}"
        copy_base(base, root)
        killed = run_cli(point, root, base, ARGS, b"")
        assert killed.returncode in (0, -9), (point, killed.stderr)
        vault = _open(root)
        report = vault.verify(deep=True)
        bad = [f for f in report.findings if f.code not in ALLOWED_AFTER_CRASH]
        assert report.ok, (point, report)
        assert bad == [], (point, bad)
        names = [c.name for c in vault.clients()]
        if names == BOTH:
            labels.append("old")
            assert vault.note(base.ids["note"]).body == b"Last session.\n", point
        else:
            labels.append("new")
            assert names == ["Ann Active"], (point, names)
        # the next nightly run finishes (or finds nothing left to do)
        again = run_cli("0", root, base, ARGS, b"")
        assert again.returncode == (0 if names == BOTH else 3), (point, again.stderr)
        after = _open(root)
        assert [c.name for c in after.clients()] == ["Ann Active"], point
        assert after.verify(deep=True).ok, point
        shutil.rmtree(root)
    assert "old" in labels, labels
    assert "new" in labels, labels
