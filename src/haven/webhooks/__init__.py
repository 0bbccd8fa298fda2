"""Webhook subscriptions and their delivery (Standard Webhooks), shared by every instance."""
