"""Everything that talks to L1: the anvil development node, contract artifacts and bindings."""
