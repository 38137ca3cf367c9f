"""What the signed manifest says, checked without a key: its shards, its
object count and pointers, and this machine's memory of the vault (a
rollback, a changed signer, another vault at a known path)."""

from __future__ import annotations

from pathlib import Path

from confvault.errors import ConfvaultError
from confvault.vault.check.findings import Findings
from confvault.vault.store import manifest
from confvault.vault.store.seen import SeenStore


def memory(
    root: Path, body: manifest.ManifestBody, seen: SeenStore, report: Findings
) -> None:
    """The vault against what this machine saw before, here and at this path."""
    try:
        seen.check_place(root, body.vault_id)
    except ConfvaultError as err:
        report.error("vault-replaced", manifest.MANIFEST_NAME, str(err))
    try:
        known = seen.get(body.vault_id)
    except ConfvaultError as err:
        report.error("seen-unreadable", manifest.MANIFEST_NAME, str(err))
        return
    if known is None:
        report.warning(
            "never-seen",
            manifest.MANIFEST_NAME,
            "this machine has never seen this vault: a consistent but older copy, "
            "or one built by someone else, cannot be told apart here; compare its "
            "vault ID and generation with the machine that writes it",
        )
        return
    if not manifest.signer_descends(body, known[1]):
        report.error(
            "signer-changed",
            manifest.MANIFEST_NAME,
            "the manifest is signed by a different key than this machine saw before",
        )
    elif body.generation < known[0]:
        report.error(
            "rollback",
            manifest.MANIFEST_NAME,
            f"generation {body.generation} is older than generation {known[0]} seen before",
        )


def live_objects(current: manifest.Manifest, report: Findings) -> set[str]:
    """The live objects the shards name; a shard that does not load, a count
    or a pointer that does not match them, is an error."""
    body = current.body
    live: set[str] = set()
    for prefix in sorted(body.shards):
        try:
            live |= current.shard(prefix)
        except ConfvaultError as err:
            report.error("shard", body.shards[prefix], str(err))
    shards_ok = not report.has("shard")
    if len(live) != body.objects and shards_ok:
        report.error(
            "count",
            manifest.MANIFEST_NAME,
            "the manifest's object count does not match its shards",
        )
    for name, digest in sorted(body.pointers.items()):
        if shards_ok and digest not in live:
            report.error(
                "pointer", name, f"the {name} object is not among the live objects"
            )
    return live
