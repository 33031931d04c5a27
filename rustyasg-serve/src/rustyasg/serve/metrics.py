"""Prometheus metrics of one server (``GET /metrics``), in a registry of their own.

=========================================== =========== ==============================================
name                                        type        what
=========================================== =========== ==============================================
``rustyasg_serve_requests_total``           counter     requests by endpoint and HTTP status
``rustyasg_serve_request_seconds``          histogram   request latency, receive to response
``rustyasg_serve_rejected_total``           counter     refusals by reason (4xx status, queue_full)
``rustyasg_serve_batch_rows``               histogram   rows per model call
``rustyasg_serve_batch_requests``           histogram   requests per model call
``rustyasg_serve_inference_seconds``        histogram   model call time
``rustyasg_serve_queue_depth``              gauge       requests waiting for a batch
=========================================== =========== ==============================================

Example::

    >>> m = ServeMetrics(); m.observe_request("predict", 200, 0.01)
    >>> b"rustyasg_serve_requests_total" in m.render()[0]
    True
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServeMetrics:
    """The server's metrics (see the module docstring)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("rustyasg_serve_requests", "Requests by endpoint and HTTP status",
                                ["endpoint", "code"], registry=r)
        self.latency = Histogram("rustyasg_serve_request_seconds", "Request latency (receive to response)",
                                 ["endpoint"], buckets=_LATENCY_BUCKETS, registry=r)
        self.rejected = Counter("rustyasg_serve_rejected", "Refused requests by reason", ["reason"], registry=r)
        self.batch_rows = Histogram("rustyasg_serve_batch_rows", "Rows per model call", buckets=_SIZE_BUCKETS,
                                    registry=r)
        self.batch_requests = Histogram("rustyasg_serve_batch_requests", "Requests per model call",
                                        buckets=_SIZE_BUCKETS, registry=r)
        self.inference = Histogram("rustyasg_serve_inference_seconds", "Model call time", buckets=_LATENCY_BUCKETS,
                                   registry=r)
        self.queue_depth = Gauge("rustyasg_serve_queue_depth", "Requests waiting for a batch", registry=r)

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint=endpoint, code=str(status)).inc()
        self.latency.labels(endpoint=endpoint).observe(seconds)

    def observe_batch(self, rows: int, requests: int, seconds: float) -> None:
        self.batch_rows.observe(rows)
        self.batch_requests.observe(requests)
        self.inference.observe(seconds)

    def render(self):
        """``(body, content_type)`` in the Prometheus text format."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
