"""``docklab doctor`` (being written)."""

COMMANDS = []
