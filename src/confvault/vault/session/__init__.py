"""An open vault (``Session``): opening, locking, the manifest, the root index, the audit trail's
writing side and the grantee directories. Operations (``vault.ops``) build on it."""
