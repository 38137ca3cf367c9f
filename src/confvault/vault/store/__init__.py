"""Bytes on disk: everything the vault directory holds, and how it is reached.

``layout`` names every path of the format and the grammar of every name;
``rootfs`` is the only code that opens, lists, stats, renames, writes or
removes anything under the vault root (by descriptor, checked names only);
``fs`` adds the lock, temporary files and durability over it (its docstring
draws the line between the two). Over them: ``objects`` (content-addressed
sealed objects), ``shards`` and ``manifest`` (the signed commit point),
``transaction`` (all-or-nothing writes), ``sealing``, ``signing`` and
``root_index`` (sealed documents), ``seen`` (this machine's rollback
memory), ``paths`` (default locations), ``forked`` (a second process for
long copies) and ``hardening`` (no core dumps). ``documents`` types the JSON
they parse and write.
"""
