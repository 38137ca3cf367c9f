"""Bytes on disk: the layout of a vault directory and the only code that
opens, lists, renames or removes anything under it (``rootfs``)."""
