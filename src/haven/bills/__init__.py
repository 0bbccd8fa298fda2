"""Bills: what vendors charge a property, and the payments (append-only) that settle them."""
