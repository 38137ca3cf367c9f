"""The unlock agent: a process that holds the owner's keys for one vault.

``confvault unlock`` starts it (``client.start``); commands of the same user
then open the vault with its keys (``client.AgentKeys``, an ``OwnerKeys``)
without a passphrase, until ``confvault lock``, the idle or maximum time, or
the vault's disappearance ends it. The keys never leave the agent: it unwraps
file keys, signs, and derives the few MAC keys the vault needs (docs/SECURITY.md,
"Unlock sessions").

    paths.py     where the sockets live (a private runtime directory)
    protocol.py  the messages: framed JSON, bounded, every socket op timed out
    durations.py ``--idle 15m``: parsing and bounds
    daemon.py    the agent process (``python -m confvault.agent``)
    client.py    finding, starting, asking and ending an agent
"""
