"""``python -m confvault.agent``: the agent process (started by ``client.start``)."""

from confvault.agent.daemon import main

main()
