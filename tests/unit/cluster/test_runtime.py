"""The cluster layer before its lifespan: what exists at once, and what only after start."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from haven.cluster.runtime import Cluster, NotStartedError
from haven.config import load_settings


def test_before_start_the_links_do_not_exist_and_metrics_still_render() -> None:
    cluster = Cluster(load_settings({"HAVEN_ENV": "test", "SECRET_KEY": "x" * 48}))
    assert cluster.instance.state == "starting"
    with pytest.raises(NotStartedError):
        _ = cluster.links
    with pytest.raises(NotStartedError):
        _ = cluster.gate
    assert b"haven_instance_ready 0.0" in generate_latest(cluster.metrics.registry)
