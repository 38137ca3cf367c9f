"""`confvault demo`: a guided run on throwaway data in a temporary directory."""

from __future__ import annotations

import tempfile
from pathlib import Path

from confvault import age
from confvault.cli import _output


def run_codec_demo() -> None:
    """Seal and open a synthetic note with the age codec, and show the file."""
    with tempfile.TemporaryDirectory(prefix="confvault-demo-") as tmp:
        directory = Path(tmp)
        identity = age.X25519Identity.generate()
        key_file = directory / "demo-key.txt"
        key_file.write_text(identity.encode() + "\n")
        key_file.chmod(0o600)
        note = b"Session 1 (synthetic demo data): client reports better sleep.\n"
        sealed = directory / "note.age"
        sealed.write_bytes(age.encrypt(note, [identity.recipient], armored=True))
        _output.stdout.print("[bold]confvault demo[/bold]: the age codec")
        _output.stdout.print(f"  identity      {key_file} (recipient {identity.recipient})")
        _output.stdout.print(f"  sealed note   {sealed} ({sealed.stat().st_size} bytes)")
        opened = age.decrypt(sealed.read_bytes(), [identity])
        assert_same = "matches" if opened == note else "DOES NOT MATCH"
        _output.stdout.print(f"  opened again  {len(opened)} bytes, {assert_same}")
        _output.stdout.print(
            f"  stock age     age -d -i {key_file} {sealed}  (would print the same)"
        )
    _output.stdout.print("the temporary directory has been removed")
