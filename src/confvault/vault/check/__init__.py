"""Checking a vault: keyless (signatures and hashes) and deep (every record opened)."""
