"""Prometheus counters of webhook delivery, registered in the node's registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry or CollectorRegistry()
        self.attempts = Counter("onair_webhook_attempts", "Webhook delivery attempts from this node, by outcome "
                                "(delivered, retrying, given up)", ["outcome"], registry=registry)
        self.dropped = Counter("onair_webhook_events_dropped", "Webhook events dropped: the hub's queue was full, "
                               "or an endpoint's pending queue was", ["where"], registry=registry)
