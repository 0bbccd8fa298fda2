"""Units: the rentable spaces of a property."""
