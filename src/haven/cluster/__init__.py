"""The load-balancer layer: request middleware, health, registry, metrics, drain."""
