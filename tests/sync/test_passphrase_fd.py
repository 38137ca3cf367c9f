"""A sync that needs the passphrase after it opened the vault reads a
``--passphrase-fd`` source once: the descriptor is read when the vault
opens, and the merge that must open the other device's new owner key file
uses the same passphrase, not a second read of a closed descriptor."""

from __future__ import annotations

import json
import os
from typing import Any

from .conftest import PASSPHRASE, Device, state_of
from .test_merge_keys import _b_writes, _check_equal, _signer, two  # noqa: F401


def _sync_with_fd(device: Device, passphrase: bytes) -> Any:
    """``confvault --vault V --passphrase-fd N sync --json`` on the device."""
    # the command reads and closes ``read`` (never closed here: its number
    # may name another file by then)
    read, write = os.pipe()
    os.write(write, passphrase + b"\n")
    os.close(write)
    return device.run("--passphrase-fd", str(read), "sync", "--json", passphrase=False)


def _rotated_there(devices: tuple[Device, Device]) -> Device:
    """A rotated its identity and pushed; B wrote notes: B's sync merges
    under A's new owner key, whose key file opens with the passphrase."""
    first, second = devices
    first.ok("identity", "rotate")
    assert first.json("sync")["action"] == "pushed"
    _b_writes(second)
    return second


def test_a_merge_under_a_rotated_owner_key_reads_the_fd_once(
    two: tuple[Device, Device],  # noqa: F811
) -> None:
    first, second = two
    _rotated_there(two)
    merged = _sync_with_fd(second, PASSPHRASE.encode())
    assert merged.exit_code == 0, (merged.output, merged.stderr)
    report = json.loads(merged.stdout)
    assert report["action"] == "merged"
    assert report["key_events"] == ["identity-rotate"]
    assert first.json("sync")["action"] == "pulled"
    _check_equal(first, second)
    assert _signer(second) == _signer(first)


def test_a_wrong_passphrase_on_the_fd_changes_nothing(
    two: tuple[Device, Device],  # noqa: F811
) -> None:
    second = _rotated_there(two)
    before = state_of(second)
    refused = _sync_with_fd(second, b"not the passphrase at all")
    assert refused.exit_code == 12, (refused.output, refused.stderr)
    assert "the passphrase does not open this vault" in refused.stderr
    assert "Traceback" not in refused.output
    assert state_of(second) == before
