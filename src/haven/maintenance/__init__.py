"""Maintenance: requests to fix something at a property, their status and comments."""
