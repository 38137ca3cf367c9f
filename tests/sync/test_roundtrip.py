"""init + clone + sync round trips between real replicas."""

from __future__ import annotations


def test_clone_is_byte_identical_and_opens(first, second) -> None:
    assert second.files() == first.files()
    listed = second.ok("note", "list", "--json").stdout
    assert "intake" in listed
    second.ok("verify", "--deep")
