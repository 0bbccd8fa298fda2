"""The organization itself and its members."""
