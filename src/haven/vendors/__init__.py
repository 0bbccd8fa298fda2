"""Vendors: businesses that do work on properties, and whether their insurance lets them."""
