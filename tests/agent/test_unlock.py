"""Unlock sessions through the command line: unlock once, commands without a
passphrase, lock, the lifetimes, the audit entries, and bad input."""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from confvault.agent import client
from confvault.vault.model.root import Settings
from tests.agent.conftest import CONFVAULT, World, alive


def _wait_gone(pid: int, seconds: float) -> float:
    start = time.monotonic()
    while alive(pid) and time.monotonic() - start < seconds:
        time.sleep(0.05)
    return time.monotonic() - start


def test_unlocked_commands_need_no_passphrase_until_lock(world: World) -> None:
    done = world.ok(
        "unlock", "--idle", "10m", "--max", "1h", "--allow-jobs", passphrase=True
    )
    assert done.stdout.startswith("unlocked: locks after 10m without use, at ")
    assert done.stdout.endswith(
        " at the latest (1h 0m); jobs without a terminal may use it\n"
    )
    pid = world.agent_pid()
    added = json.loads(world.ok("client", "add", "Ann Example", "--json").stdout)
    assert added["key_source"] == "agent"
    note = json.loads(
        world.ok("note", "add", added["id"], "--json", stdin="first session\n").stdout
    )
    assert note["key_source"] == "agent"
    shown = world.run("note", "show", note["id"])
    assert (shown.returncode, shown.stderr) == (0, "")
    assert "first session" in shown.stdout
    status = json.loads(world.ok("status", "--json").stdout)
    assert status["key_source"] == "agent"
    unlock = status["unlock"]
    assert (unlock["state"], unlock["idle_seconds"], unlock["max_seconds"]) == (
        "unlocked",
        600,
        3600,
    )
    assert 590 <= unlock["idle_left"] <= 600
    assert 3500 <= unlock["max_left"] <= 3600
    assert unlock["allow_jobs"] is True
    rows = world.ok("status").stdout.splitlines()
    row = next(line for line in rows if line.strip().startswith("unlocked"))
    assert re.fullmatch(
        r"\s*unlocked\s+yes: locks after (10m|9m \d+s) more without use, in "
        r"(1h 0m|59m \d+s) at the latest, jobs allowed\s*",
        row,
    ), row
    # with a passphrase source named, the passphrase is used, not the agent
    listed = json.loads(world.ok("client", "list", "--json", passphrase=True).stdout)
    assert [c["key_source"] for c in listed] == ["passphrase"]

    locked = world.run("lock")
    assert (locked.returncode, locked.stdout, locked.stderr) == (0, "locked\n", "")
    assert _wait_gone(pid, 5) < 5
    assert world.sockets() == []
    after = world.run("client", "list")
    assert after.returncode == 2
    assert after.stderr.startswith("confvault: error: no passphrase given")
    assert json.loads(world.ok("status", "--json", passphrase=True).stdout)[
        "unlock"
    ] == {"state": "locked"}
    trail = [(e["action"], e["details"]) for e in world.audit()]
    assert ("unlock", {"idle": 600, "max": 3600, "allow_jobs": True}) in trail
    assert ("lock", {"reason": "command"}) in trail
    assert trail.index(("lock", {"reason": "command"})) > trail.index(
        ("unlock", {"idle": 600, "max": 3600, "allow_jobs": True})
    )


def test_idle_locks_and_records_the_auto_lock(world: World) -> None:
    pid = world.unlock("--idle", "1s", "--allow-jobs")
    assert _wait_gone(pid, 10) < 10
    assert world.sockets() == []
    not_unlocked = world.run("lock")
    assert (not_unlocked.returncode, not_unlocked.stdout) == (3, "")
    assert not_unlocked.stderr == "confvault: error: this vault is not unlocked\n"
    trail = [(e["action"], e["details"]) for e in world.audit()]
    assert ("auto-lock", {"reason": "idle"}) in trail


def test_max_locks_even_when_in_use(world: World) -> None:
    pid = world.unlock("--idle", "1h", "--max", "3s", "--allow-jobs")
    start = time.monotonic()
    while alive(pid) and time.monotonic() - start < 10:
        world.run("client", "list")  # in use: the idle clock never runs out
    assert not alive(pid)
    assert 2.5 < time.monotonic() - start < 10
    assert ("auto-lock", {"reason": "max"}) in [
        (e["action"], e["details"]) for e in world.audit()
    ]


def test_the_agent_ends_when_its_vault_disappears(world: World) -> None:
    pid = world.unlock("--allow-jobs")
    world.vault.rename(world.tmp / "moved")
    assert _wait_gone(pid, 10) < 10
    assert world.sockets() == []


def test_lock_all_ends_every_agent_of_the_user(world: World) -> None:
    other = world.tmp / "other"
    world.init(other)
    first, second = (
        world.unlock("--allow-jobs"),
        world.unlock("--allow-jobs", vault=other),
    )
    assert len(world.sockets()) == 2
    done = world.run("lock", "--all")
    assert (done.returncode, done.stdout, done.stderr) == (0, "locked 2 vault(s)\n", "")
    assert _wait_gone(first, 5) < 5
    assert _wait_gone(second, 5) < 5
    again = world.run("lock", "--all")
    assert (again.returncode, again.stderr) == (
        3,
        "confvault: error: no vault of yours is unlocked\n",
    )


def test_unlock_twice_says_so_and_keeps_the_first(world: World) -> None:
    pid = world.unlock("--allow-jobs")
    again = world.run("unlock", "--idle", "5m", passphrase=True)
    assert again.returncode == 3
    assert again.stderr.startswith("confvault: error: this vault is unlocked already (")
    assert again.stderr.endswith(
        "confvault: hint: `confvault lock` first to unlock it with other times\n"
    )
    assert world.agent_pid() == pid


def test_wrong_passphrase_leaves_no_agent(world: World) -> None:
    wrong = world.tmp / "wrong.txt"
    wrong.write_text("not the passphrase at all\n")
    wrong.chmod(0o600)
    done = world.run("--passphrase-file", str(wrong), "unlock")
    assert done.returncode == 12
    assert done.stderr.startswith(
        "confvault: error: the passphrase does not open this vault"
    )
    assert world.sockets() == []
    assert "unlock" not in [e["action"] for e in world.audit()]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--idle", "0", "--idle: 0 is out of bounds (1s to 24h 0m)"),
        ("--idle", "-1", "--idle: '-1' is not a duration"),
        ("--idle", "abc", "--idle: 'abc' is not a duration"),
        ("--idle", "1e3", "--idle: '1e3' is not a duration"),
        ("--idle", "99999999h", "--idle: '99999999h' is not a duration"),
        ("--idle", "25h", "--idle: 25h is out of bounds (1s to 24h 0m)"),
        ("--max", "8d", "--max: 8d is out of bounds (1s to 168h 0m)"),
        ("--max", "", "--max: '' is not a duration"),
    ],
)
def test_hostile_durations_are_usage_errors_before_any_prompt(
    world: World, option: str, value: str, message: str
) -> None:
    done = world.run("unlock", f"{option}={value}", passphrase=True)
    assert done.returncode == 2
    assert done.stderr.startswith(f"confvault: error: {message}")
    assert world.sockets() == []


def test_unlock_of_no_vault_is_exit_10(world: World) -> None:
    done = world.run("unlock", passphrase=True, vault=world.tmp / "nothing")
    assert done.returncode == 10
    assert world.sockets() == []


def test_remembered_times_are_the_vault_defaults(world: World) -> None:
    world.unlock("--idle", "2m", "--max", "1h", "--remember", "--allow-jobs")
    world.ok("lock")
    world.unlock("--allow-jobs")
    info = client.probe(world.vault)
    assert info is not None
    assert (info.idle, info.max) == (120, 3600)
    world.ok("lock")
    world.unlock("--idle", "30s", "--allow-jobs")  # an option still wins
    info = client.probe(world.vault)
    assert info is not None
    assert (info.idle, info.max) == (30, 3600)


def test_settings_keep_the_unlock_defaults_and_old_documents_read_back() -> None:
    old = {"work_factor": 18, "created": "2026-01-01T00:00:00Z"}
    assert Settings.from_doc(old).to_doc() == old
    new = {**old, "unlock_idle": 120, "unlock_max": 3600}
    settings = Settings.from_doc(new)
    assert (settings.unlock_idle, settings.unlock_max) == (120, 3600)
    assert settings.to_doc() == new


def test_identity_rotate_locks_first_and_the_lock_is_recorded(world: World) -> None:
    pid = world.unlock("--allow-jobs")
    done = world.run("identity", "rotate", passphrase=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(
        "the vault was locked first (its unlock agent's keys are changing); "
        "`confvault unlock` again afterwards\n"
    )
    assert _wait_gone(pid, 5) < 5
    trail = [(e["action"], e["details"]) for e in world.audit()]
    assert trail.index(("lock", {"reason": "identity-rotate"})) < trail.index(
        ("identity-rotate", {"rekey": False})
    )
    # the passphrase is needed again: nothing serves the old keys
    assert world.run("client", "list").returncode == 2


def test_passphrase_change_never_uses_the_agent(world: World) -> None:
    pid = world.unlock("--allow-jobs")
    new = world.tmp / "new.txt"
    new.write_text("another long passphrase here\n")
    done = world.run("passphrase", "--new-passphrase-file", str(new))  # no source
    assert done.returncode == 2
    assert done.stderr.startswith("confvault: error: no passphrase given")
    assert alive(pid)
    changed = world.run(
        "passphrase", "--new-passphrase-file", str(new), passphrase=True
    )
    assert changed.returncode == 0, changed.stderr
    assert _wait_gone(pid, 5) < 5
    assert ("lock", {"reason": "passphrase-change"}) in [
        (e["action"], e["details"])
        for e in json.loads(
            world.ok("--passphrase-file", str(new), "audit", "--json").stdout
        )
    ]


def test_two_unlocks_at_once_start_one_agent(world: World) -> None:
    argv = [
        *CONFVAULT,
        "--vault",
        str(world.vault),
        "--passphrase-file",
        str(world.pass_file),
    ]
    procs = [
        subprocess.Popen(
            [*argv, "unlock", "--allow-jobs"],
            env=world.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for _ in range(2)
    ]
    results = sorted((p.wait(timeout=120), p.communicate()[1]) for p in procs)
    world.agent_pid()
    assert [code for code, _ in results] == [0, 3]
    assert results[1][1].startswith("confvault: error: this vault is unlocked already")
    assert len(world.sockets()) == 1
    assert [e["action"] for e in world.audit()].count("unlock") == 1
