"""`confvault age`: exact exit codes, messages, files and what never leaks."""

from __future__ import annotations

import os
from pathlib import Path

from confvault import age

PASSPHRASE = "a long passphrase for tests"


def _pass_file(tmp_path: Path, text: str = PASSPHRASE + "\n") -> Path:
    path = tmp_path / "pass.txt"
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_version(cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout == "confvault 0.1.0\n"


def test_keygen_writes_0600_and_prints_public_key(cli, tmp_path: Path) -> None:
    key = tmp_path / "k.txt"
    result = cli("age", "keygen", "-o", str(key))
    assert result.exit_code == 0
    assert key.stat().st_mode & 0o777 == 0o600
    identity = age.parse_identities(key.read_text())[0]
    assert result.stderr == f"Public key: {identity.recipient}\n"
    assert identity.encode() not in result.output


def test_keygen_refuses_to_overwrite_a_key(cli, tmp_path: Path) -> None:
    key = tmp_path / "k.txt"
    key.write_text("precious")
    result = cli("age", "keygen", "-o", str(key))
    assert result.exit_code == 1
    assert result.stderr.startswith("confvault: error: ")
    assert "already exists" in result.stderr
    assert key.read_text() == "precious"


def test_keygen_y_prints_recipient(cli, identity_file: Path) -> None:
    identity = age.parse_identities(identity_file.read_text())[0]
    result = cli("age", "keygen", "-y", str(identity_file))
    assert result.exit_code == 0
    assert result.stdout == f"{identity.recipient}\n"


def test_encrypt_decrypt_files_round_trip(
    cli, identity_file: Path, tmp_path: Path
) -> None:
    identity = age.parse_identities(identity_file.read_text())[0]
    plain = tmp_path / "p.bin"
    plain.write_bytes(os.urandom(70_000))
    sealed, opened = tmp_path / "s.age", tmp_path / "o.bin"
    assert (
        cli(
            "age",
            "encrypt",
            "-r",
            str(identity.recipient),
            "-o",
            str(sealed),
            str(plain),
        ).exit_code
        == 0
    )
    assert (
        cli(
            "age", "decrypt", "-i", str(identity_file), "-o", str(opened), str(sealed)
        ).exit_code
        == 0
    )
    assert opened.read_bytes() == plain.read_bytes()
    assert opened.stat().st_mode & 0o777 == 0o600


def test_stdin_stdout_armor_round_trip(cli, identity_file: Path) -> None:
    identity = age.parse_identities(identity_file.read_text())[0]
    sealed = cli(
        "age", "encrypt", "-a", "-r", str(identity.recipient), input=b"note text"
    )
    assert sealed.exit_code == 0
    assert sealed.stdout.startswith("-----BEGIN AGE ENCRYPTED FILE-----\n")
    opened = cli("age", "decrypt", "-i", str(identity_file), input=sealed.stdout_bytes)
    assert opened.exit_code == 0
    assert opened.stdout_bytes == b"note text"


def test_recipients_file(cli, tmp_path: Path) -> None:
    ids = [age.X25519Identity.generate() for _ in range(2)]
    rfile = tmp_path / "recipients.txt"
    rfile.write_text("# team\n" + "".join(f"{i.recipient}\n" for i in ids) + "\n")
    sealed = cli("age", "encrypt", "-R", str(rfile), input=b"x")
    assert sealed.exit_code == 0
    for identity in ids:
        assert age.decrypt(sealed.stdout_bytes, [identity]) == b"x"


def test_passphrase_file_round_trip_and_never_echoed(cli, tmp_path: Path) -> None:
    pfile = _pass_file(tmp_path)
    sealed = cli(
        "age",
        "encrypt",
        "-p",
        "--work-factor",
        "10",
        "--passphrase-file",
        str(pfile),
        input=b"secret note",
    )
    assert sealed.exit_code == 0
    assert PASSPHRASE.encode() not in sealed.stdout_bytes + sealed.stderr_bytes
    opened = cli(
        "age", "decrypt", "--passphrase-file", str(pfile), input=sealed.stdout_bytes
    )
    assert opened.exit_code == 0
    assert opened.stdout_bytes == b"secret note"
    # the trailing newline of the file is not part of the passphrase
    assert (
        age.decrypt(sealed.stdout_bytes, [age.ScryptIdentity(PASSPHRASE.encode())])
        == b"secret note"
    )


def test_wrong_passphrase_exit_12(cli, tmp_path: Path) -> None:
    sealed = age.encrypt(b"n", [age.ScryptRecipient(b"right passphrase", 10)])
    pfile = _pass_file(tmp_path, "wrong passphrase\n")
    result = cli("age", "decrypt", "--passphrase-file", str(pfile), input=sealed)
    assert result.exit_code == 12
    assert (
        result.stderr.splitlines()[0]
        == "confvault: error: no identity matched any of the recipients (scrypt)"
    )
    assert result.stdout_bytes == b""


def test_wrong_identity_exit_12(cli, identity_file: Path) -> None:
    other = age.X25519Identity.generate()
    sealed = age.encrypt(b"n", [other.recipient])
    result = cli("age", "decrypt", "-i", str(identity_file), input=sealed)
    assert result.exit_code == 12
    assert "no identity matched any of the recipients (X25519)" in result.stderr


def test_no_passphrase_and_no_terminal_fails_fast(cli) -> None:
    result = cli("age", "encrypt", "-p", input=b"data")
    assert result.exit_code == 2
    assert "stdin is not a terminal" in result.stderr
    assert "--passphrase-file" in result.stderr


def test_empty_passphrase_file_refused(cli, tmp_path: Path) -> None:
    result = cli(
        "age",
        "encrypt",
        "-p",
        "--passphrase-file",
        str(_pass_file(tmp_path, "\n")),
        input=b"d",
    )
    assert result.exit_code == 1
    assert "is empty" in result.stderr
    assert result.stdout_bytes == b""


def test_world_readable_passphrase_file_warns(cli, tmp_path: Path) -> None:
    pfile = _pass_file(tmp_path)
    pfile.chmod(0o644)
    result = cli(
        "age",
        "encrypt",
        "-p",
        "--work-factor",
        "10",
        "--passphrase-file",
        str(pfile),
        input=b"d",
    )
    assert result.exit_code == 0
    assert "readable by other users" in result.stderr


def test_passphrase_with_recipient_refused(cli, tmp_path: Path) -> None:
    r = age.X25519Identity.generate().recipient
    result = cli(
        "age",
        "encrypt",
        "-p",
        "--passphrase-file",
        str(_pass_file(tmp_path)),
        "-r",
        str(r),
        input=b"d",
    )
    assert result.exit_code == 1
    assert "must be alone" in result.stderr


def test_missing_recipients(cli) -> None:
    result = cli("age", "encrypt", input=b"d")
    assert result.exit_code == 1
    assert "missing recipients" in result.stderr


def test_bad_recipient_is_usage_error(cli) -> None:
    result = cli("age", "encrypt", "-r", "age1notakey", input=b"d")
    assert result.exit_code == 2
    assert "age1notakey is not an age1... recipient" in result.stderr


def test_missing_input_file(cli, identity_file: Path, tmp_path: Path) -> None:
    result = cli("age", "decrypt", "-i", str(identity_file), str(tmp_path / "nope.age"))
    assert result.exit_code == 1
    assert "cannot read input" in result.stderr


def test_corrupt_header_exit_13_and_no_output_file(
    cli, identity_file: Path, tmp_path: Path
) -> None:
    identity = age.parse_identities(identity_file.read_text())[0]
    sealed = bytearray(age.encrypt(b"note", [identity.recipient]))
    sealed[30] ^= 1
    src, out = tmp_path / "bad.age", tmp_path / "out.txt"
    src.write_bytes(bytes(sealed))
    result = cli("age", "decrypt", "-i", str(identity_file), "-o", str(out), str(src))
    assert result.exit_code in (12, 13)
    assert not out.exists()


def test_truncated_payload_keeps_only_authenticated_prefix(
    cli, identity_file: Path, tmp_path: Path
) -> None:
    identity = age.parse_identities(identity_file.read_text())[0]
    plaintext = os.urandom(3 * 65536 + 10)
    sealed = age.encrypt(plaintext, [identity.recipient])
    src, out = tmp_path / "cut.age", tmp_path / "out.bin"
    src.write_bytes(sealed[:-20])  # the short final chunk is cut
    result = cli("age", "decrypt", "-i", str(identity_file), "-o", str(out), str(src))
    assert result.exit_code == 13
    assert "payload" in result.stderr
    assert f"{out} is incomplete: it holds only the {3 * 65536} bytes" in result.stderr
    assert out.read_bytes() == plaintext[: 3 * 65536]


def test_not_an_age_file(cli, identity_file: Path) -> None:
    result = cli("age", "decrypt", "-i", str(identity_file), input=b"hello world")
    assert result.exit_code == 13
    assert result.stderr.splitlines()[0] == "confvault: error: not an age file"


def test_identity_file_with_garbage_names_line_not_content(cli, tmp_path: Path) -> None:
    bad = tmp_path / "id.txt"
    bad.write_text("# comment\nAGE-SECRET-KEY-1NOTREALLYAKEYATALL\n")
    result = cli("age", "decrypt", "-i", str(bad), input=b"x")
    assert result.exit_code == 2
    assert "line 2" in result.stderr
    assert "NOTREALLY" not in result.stderr


def test_help_on_every_command(cli) -> None:
    for args in (
        ["--help"],
        ["age", "--help"],
        ["age", "keygen", "--help"],
        ["age", "encrypt", "--help"],
        ["age", "decrypt", "--help"],
    ):
        result = cli(*args)
        assert result.exit_code == 0, args
        assert "Exit status: 0 success" in result.stdout, args


# --- post-quantum hybrid keys (age1pq1..., AGE-SECRET-KEY-PQ-1...) ---------------


def _pq_identity_file(tmp_path: Path, *identities: age.AnyIdentity) -> Path:
    path = tmp_path / "pq-key.txt"
    path.write_text("".join(f"{i.encode()}\n" for i in identities))
    path.chmod(0o600)
    return path


def test_keygen_pq_writes_0600_and_prints_public_key(cli, tmp_path: Path) -> None:
    key = tmp_path / "pq.txt"
    result = cli("age", "keygen", "--pq", "-o", str(key))
    assert result.exit_code == 0
    assert key.stat().st_mode & 0o777 == 0o600
    lines = key.read_text().splitlines()
    assert lines[0].startswith("# created: ")
    assert lines[2].startswith("AGE-SECRET-KEY-PQ-1")
    (identity,) = age.parse_identities(key.read_text())
    assert isinstance(identity, age.HybridIdentity)
    assert lines[1] == f"# public key: {identity.recipient}"
    assert str(identity.recipient).startswith("age1pq1")
    assert result.stderr == f"Public key: {identity.recipient}\n"
    assert identity.encode() not in result.output


def test_keygen_y_prints_the_recipient_of_each_kind(cli, tmp_path: Path) -> None:
    pq, classic = age.HybridIdentity.generate(), age.X25519Identity.generate()
    result = cli("age", "keygen", "-y", str(_pq_identity_file(tmp_path, pq, classic)))
    assert result.exit_code == 0
    assert result.stdout == f"{pq.recipient}\n{classic.recipient}\n"


def test_encrypt_to_pq_recipient_decrypt_with_pq_identity_file(
    cli, tmp_path: Path
) -> None:
    identity = age.HybridIdentity.generate()
    plain = tmp_path / "p.bin"
    plain.write_bytes(os.urandom(70_000))
    sealed, opened = tmp_path / "s.age", tmp_path / "o.bin"
    result = cli(
        "age", "encrypt", "-r", str(identity.recipient), "-o", str(sealed), str(plain)
    )
    assert result.exit_code == 0
    assert b"\n-> mlkem768x25519 " in sealed.read_bytes()[:100]
    key = _pq_identity_file(tmp_path, age.X25519Identity.generate(), identity)
    result = cli("age", "decrypt", "-i", str(key), "-o", str(opened), str(sealed))
    assert result.exit_code == 0
    assert opened.read_bytes() == plain.read_bytes()


def test_pq_recipients_file_and_armor(cli, tmp_path: Path) -> None:
    ids = [age.HybridIdentity.generate() for _ in range(2)]
    rfile = tmp_path / "recipients.txt"
    rfile.write_text("# team\n" + "".join(f"{i.recipient}\n" for i in ids))
    sealed = cli("age", "encrypt", "-a", "-R", str(rfile), input=b"x")
    assert sealed.exit_code == 0
    assert sealed.stdout.startswith("-----BEGIN AGE ENCRYPTED FILE-----\n")
    for identity in ids:
        assert age.decrypt(sealed.stdout_bytes, [identity]) == b"x"


def test_pq_and_classic_recipients_are_not_mixed(cli, tmp_path: Path) -> None:
    pq, classic = age.HybridIdentity.generate(), age.X25519Identity.generate()
    out = tmp_path / "s.age"
    result = cli(
        "age",
        "encrypt",
        "-r",
        str(classic.recipient),
        "-r",
        str(pq.recipient),
        "-o",
        str(out),
        input=b"d",
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        "confvault: error: incompatible recipients: a post-quantum (age1pq1...) "
        "recipient cannot seal a file together with classic ones (age1..., passphrase)"
    )
    assert not out.exists()
    rfile = tmp_path / "mixed.txt"
    rfile.write_text(f"{pq.recipient}\n{classic.recipient}\n")
    result = cli("age", "encrypt", "-R", str(rfile), "-o", str(out), input=b"d")
    assert result.exit_code == 1
    assert "incompatible recipients" in result.stderr
    assert not out.exists()


def test_wrong_pq_identity_exit_12(cli, tmp_path: Path) -> None:
    sealed = age.encrypt(b"n", [age.HybridIdentity.generate().recipient])
    key = _pq_identity_file(tmp_path, age.HybridIdentity.generate())
    result = cli("age", "decrypt", "-i", str(key), input=sealed)
    assert result.exit_code == 12
    assert "no identity matched any of the recipients (mlkem768x25519)" in result.stderr


def test_help_names_both_kinds_of_key(cli) -> None:
    keygen = cli("age", "keygen", "--help").stdout
    assert "--pq" in keygen
    assert "AGE-SECRET-KEY-PQ-1" in keygen
    encrypt = " ".join(cli("age", "encrypt", "--help").stdout.split())
    assert "age1pq1" in encrypt
    assert "age1..." in encrypt
    decrypt = " ".join(cli("age", "decrypt", "--help").stdout.split())
    assert "AGE-SECRET-KEY-PQ-1" in decrypt
