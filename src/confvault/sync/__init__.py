"""Sync over git (issue 16): the engine (``git``), the device's state
(``state``), the vault as a git tree (``tree``), and a device's replica
(``replica``: connect, sync) and ``clone``. No terminal code."""
