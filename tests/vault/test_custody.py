"""Custodians (issue 18): K of N shares open the vault, K-1 do not; a new
split makes every old share useless; the notice; the audit entries."""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from confvault import age
from confvault.errors import (
    KeyFormatError,
    NotFoundError,
    NoticePendingError,
    SharesError,
    UnsafeInputError,
    VaultExistsError,
)
from confvault.vault import Vault
from confvault.vault.model.custody import SealedShare
from tests.conftest import require_binary
from tests.vault.conftest import PASSPHRASE, Clock, reopen
from tests.vault.test_readonly import read_only_mount  # noqa: F401


def _keys(n: int, pq: bool = False) -> list[age.AnyIdentity]:
    make = age.HybridIdentity if pq else age.X25519Identity
    return [make.generate() for _ in range(n)]


class Delivered:
    """What ``split`` delivers, kept (the CLI writes the files instead)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def __call__(self, files: list[SealedShare]) -> None:
        self.files = {f.custodian: f.sealed for f in files}


def _setup(
    vault: Vault, keys: list[age.AnyIdentity], threshold: int, **kw: object
) -> dict[str, str]:
    """Custodians c0..cN-1 added and split; each one's share words."""
    for number, key in enumerate(keys):
        vault.add_custodian(f"c{number}", str(key.recipient))
    got = Delivered()
    vault.split_custody(threshold, got, **kw)  # type: ignore[arg-type]
    return {
        name: age.decrypt(sealed, [keys[int(name[1:])]]).decode()
        for name, sealed in got.files.items()
    }


def _open(vault: Vault, shares: list[str], clock: Clock, state_dir: Path) -> Vault:
    opened, _ = Vault.open_by_custodians(
        vault.root, shares, clock=clock, state_dir=state_dir
    )
    return opened


@pytest.fixture
def filled(vault: Vault) -> Vault:
    client = vault.add_client("Ada Lovelace")
    vault.add_note(client.id, b"first session", kind="progress")
    return vault


def test_any_k_of_n_open_and_k_minus_1_do_not(
    filled: Vault, clock: Clock, state_dir: Path
) -> None:
    keys = _keys(4)
    words = _setup(filled, keys, 3)
    assert sorted(words) == ["c0", "c1", "c2", "c3"]
    assert all(len(w.split()) == 33 for w in words.values())
    for combo in itertools.combinations(sorted(words), 3):
        opened = _open(filled, [words[c] for c in combo], clock, state_dir)
        assert [c.name for c in opened.clients()] == ["Ada Lovelace"]
        note = opened.notes()[0]
        assert opened.note(note.id).body == b"first session"
    for combo in itertools.combinations(sorted(words), 2):
        with pytest.raises(SharesError, match="2 shares given; this split needs 3"):
            _open(filled, [words[c] for c in combo], clock, state_dir)


def test_open_is_audited_with_the_custodians(
    filled: Vault, clock: Clock, state_dir: Path
) -> None:
    words = _setup(filled, _keys(3), 2)
    clock.advance(days=1)
    _, opening = Vault.open_by_custodians(
        filled.root, [words["c2"], words["c0"]], clock=clock, state_dir=state_dir
    )
    assert opening.shares == ("c2", "c0")
    assert opening.opened == "2026-03-03T09:00:00Z"
    assert opening.notice_started is None
    owner = reopen(filled, state_dir)
    entries = [e for e in owner.audit() if e.action.startswith("custodian")]
    assert [e.action for e in entries] == [
        "custodian-add",
        "custodian-add",
        "custodian-add",
        "custodian-split",
        "custodian-open",
    ]
    assert entries[-1].details["custodians"] == ["c2", "c0"]
    assert entries[-1].time == "2026-03-03T09:00:00Z"
    assert entries[3].details["threshold"] == 2


def test_a_new_split_makes_old_shares_useless(
    filled: Vault, clock: Clock, state_dir: Path
) -> None:
    keys = _keys(3)
    old = _setup(filled, keys, 2)
    filled.remove_custodian("c2")
    # Until the next split, the removed custodian's share still counts.
    assert _open(filled, [old["c2"], old["c0"]], clock, state_dir).clients()
    got = Delivered()
    report = filled.split_custody(2, got)
    assert report.shares == ("c0", "c1")
    new = {n: age.decrypt(s, [keys[int(n[1:])]]).decode() for n, s in got.files.items()}
    with pytest.raises(SharesError, match="earlier split"):
        _open(filled, [old["c2"], old["c0"]], clock, state_dir)
    with pytest.raises(SharesError, match="earlier split"):
        _open(filled, [old["c0"], old["c1"]], clock, state_dir)
    with pytest.raises(SharesError, match="different splits"):
        _open(filled, [old["c2"], new["c0"]], clock, state_dir)
    assert _open(filled, [new["c0"], new["c1"]], clock, state_dir).clients()


def test_wrong_corrupted_and_foreign_words(
    filled: Vault, make_vault, clock: Clock, state_dir: Path
) -> None:
    words = _setup(filled, _keys(2), 2)
    one = words["c0"].split()
    changed = " ".join([*one[:-1], "academic" if one[-1] != "academic" else "acid"])
    with pytest.raises(SharesError, match="share 2 is not a valid SLIP-39 share"):
        _open(filled, [words["c1"], changed], clock, state_dir)
    with pytest.raises(SharesError, match="share 1 is not a valid"):
        _open(filled, ["correct horse battery staple"], clock, state_dir)
    with pytest.raises(SharesError, match="given twice"):
        _open(filled, [words["c0"], words["c0"].upper()], clock, state_dir)
    with pytest.raises(SharesError, match="no share"):
        _open(filled, [], clock, state_dir)
    other, _ = make_vault("other")
    foreign = _setup(other, _keys(2), 2)
    with pytest.raises(SharesError, match="earlier split \\(or of another vault\\)"):
        _open(filled, list(foreign.values()), clock, state_dir)
    # The messages never quote the words (the library's own do: not shown).
    with pytest.raises(SharesError) as err:
        _open(filled, [words["c1"], changed], clock, state_dir)
    assert " ".join(one[:2]) not in str(err.value)
    assert " ".join(words["c1"].split()[:2]) not in str(err.value)


@pytest.mark.parametrize(
    "name",
    [
        "../evil",
        "a/b",
        "a\\b",
        ".hidden",
        "tab\there",
        "nul\x00",
        "bell\x07",
        "",
        "x" * 65,
    ],
)
def test_hostile_custodian_names_are_refused(vault: Vault, name: str) -> None:
    with pytest.raises(UnsafeInputError):
        vault.add_custodian(name, str(age.X25519Identity.generate().recipient))
    assert vault.custodians() == []


def test_add_list_remove(vault: Vault) -> None:
    key = age.X25519Identity.generate()
    info = vault.add_custodian("Dr.Jane_Doe-2", str(key.recipient))
    assert (info.name, info.recipient, info.added, info.has_share) == (
        "Dr.Jane_Doe-2",
        str(key.recipient),
        "2026-03-02T09:00:00Z",
        False,
    )
    with pytest.raises(VaultExistsError):
        vault.add_custodian(
            "Dr.Jane_Doe-2", str(age.X25519Identity.generate().recipient)
        )
    with pytest.raises(VaultExistsError):
        vault.add_custodian("other", str(key.recipient))
    with pytest.raises(KeyFormatError, match="classic"):
        vault.add_custodian("pq", str(age.HybridIdentity.generate().recipient))
    assert [c.name for c in vault.custodians()] == ["Dr.Jane_Doe-2"]
    assert vault.remove_custodian("Dr.Jane_Doe-2").name == "Dr.Jane_Doe-2"
    with pytest.raises(NotFoundError):
        vault.remove_custodian("Dr.Jane_Doe-2")
    assert vault.custodians() == []


def test_split_refusals_change_nothing(vault: Vault) -> None:
    with pytest.raises(NotFoundError, match="no custodians"):
        vault.split_custody(2, Delivered())
    for number, key in enumerate(_keys(3)):
        vault.add_custodian(f"c{number}", str(key.recipient))
    generation = vault.status().generation
    for bad in (0, 4, 1):
        with pytest.raises(UnsafeInputError):
            vault.split_custody(bad, Delivered())

    def fail(files: list[SealedShare]) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        vault.split_custody(2, fail)
    assert vault.status().generation == generation
    assert vault.manifest is not None
    assert vault.manifest.pointer("executor") is None


def test_notice_refuses_before_the_period_and_opens_after(
    filled: Vault, clock: Clock, state_dir: Path
) -> None:
    import datetime as dt

    words = _setup(filled, _keys(2), 2, notice=dt.timedelta(days=7))
    shares = [words["c0"], words["c1"]]
    with pytest.raises(NoticePendingError) as err:
        _open(filled, shares, clock, state_dir)
    assert err.value.until == "2026-03-09T09:00:00Z"
    status = reopen(filled, state_dir).custody_status()
    assert status is not None
    assert (status.notice, status.access_from) == (
        "2026-03-02T09:00:00Z",
        "2026-03-09T09:00:00Z",
    )
    clock.advance(days=6, hours=23)
    with pytest.raises(NoticePendingError):
        _open(filled, shares, clock, state_dir)
    clock.advance(hours=1)
    opened, opening = Vault.open_by_custodians(
        filled.root, shares, clock=clock, state_dir=state_dir
    )
    assert opening.notice_started == "2026-03-02T09:00:00Z"
    assert [c.name for c in opened.clients()] == ["Ada Lovelace"]


def test_cancel_restarts_the_notice(
    filled: Vault, clock: Clock, state_dir: Path
) -> None:
    import datetime as dt

    words = _setup(filled, _keys(2), 2, notice=dt.timedelta(days=7))
    shares = [words["c0"], words["c1"]]
    with pytest.raises(NoticePendingError):
        _open(filled, shares, clock, state_dir)
    owner = Vault.open(
        filled.root, passphrase=PASSPHRASE, clock=clock, state_dir=state_dir
    )
    cancelled = owner.cancel_custodian_notice()
    assert cancelled is not None
    assert cancelled.shares == ("c0", "c1")
    assert owner.cancel_custodian_notice() is None
    clock.advance(days=8)
    with pytest.raises(NoticePendingError) as err:
        _open(filled, shares, clock, state_dir)
    assert err.value.until == "2026-03-17T09:00:00Z"  # a new notice, from now
    actions = [e.action for e in owner.audit() if e.action.startswith("custodian-")]
    assert actions[-3:] == ["custodian-notice", "custodian-cancel", "custodian-notice"]


def test_identity_rotation_keeps_custodian_access(
    filled: Vault, clock: Clock, state_dir: Path
) -> None:
    words = _setup(filled, _keys(3), 2)
    filled.rotate_identity(PASSPHRASE)
    opened = _open(filled, [words["c1"], words["c2"]], clock, state_dir)
    assert opened.owner_key_fingerprint() == filled.owner_key_fingerprint()
    assert opened.note(opened.notes()[0].id).body == b"first session"


def test_postquantum_vault_shares(make_vault, clock: Clock, state_dir: Path) -> None:
    vault, _ = make_vault("pq", postquantum=True)
    vault.add_client("Grace Hopper")
    keys = _keys(2, pq=True)
    words = _setup(vault, keys, 2)
    opened = _open(vault, list(words.values()), clock, state_dir)
    assert [c.name for c in opened.clients()] == ["Grace Hopper"]


def test_stock_age_opens_a_share_file(filled: Vault, tmp_path: Path) -> None:
    age_bin = require_binary("age")
    key = age.X25519Identity.generate()
    key_file = tmp_path / "custodian-key.txt"
    key_file.write_text(key.encode() + "\n")
    filled.add_custodian("solo", str(key.recipient))
    got = Delivered()
    filled.split_custody(1, got)
    share = tmp_path / "share-solo.age"
    share.write_bytes(got.files["solo"])
    out = subprocess.run(
        [age_bin, "-d", "-i", str(key_file), str(share)],
        capture_output=True,
        check=True,
    )
    words = out.stdout.decode()
    assert len(words.split()) == 33
    assert words.endswith("\n")


def test_migrate_drops_the_split_and_its_shares(
    filled: Vault, clock: Clock, state_dir: Path
) -> None:
    words = _setup(filled, _keys(2), 2)
    filled.migrate_pq(PASSPHRASE)
    assert filled.manifest is not None
    assert filled.manifest.pointer("executor") is None
    status = filled.custody_status()
    assert status is not None
    assert (status.custodians, status.split, status.threshold) == (2, None, None)
    with pytest.raises(SharesError, match="no custodian split"):
        _open(filled, list(words.values()), clock, state_dir)
    # The classic custodians' keys must be replaced before a new split.
    with pytest.raises(UnsafeInputError, match="not of this vault's kind"):
        filled.split_custody(2, Delivered())
    assert "custodian-split-dropped" in [e.action for e in filled.audit()]


def test_open_on_read_only_media_is_spooled_and_folded(
    filled: Vault,
    read_only_mount,  # noqa: F811
    clock: Clock,
    state_dir: Path,
) -> None:
    words = _setup(filled, _keys(2), 2)
    ro = read_only_mount(filled.root)
    opened, opening = Vault.open_by_custodians(
        ro, list(words.values()), clock=clock, state_dir=state_dir
    )
    assert opened.read_only
    assert opening.shares == ("c0", "c1")
    assert [c.name for c in opened.clients()] == ["Ada Lovelace"]
    owner = reopen(filled, state_dir)  # the writable vault folds the spool
    opens = [e for e in owner.audit() if e.action == "custodian-open"]
    assert [e.details["custodians"] for e in opens] == [["c0", "c1"]]
