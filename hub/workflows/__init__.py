"""The hub's workflows: each function checks a transition, writes its evidence, then commits the state."""
