"""Work orders: the work a maintenance request spawns, assigned to an insured vendor."""
