"""The events queue's metrics: the events loop's observer, apart from :class:`~lakecircle.service.metrics.Metrics`.

Made by :meth:`Metrics.add_events() <lakecircle.service.metrics.Metrics.add_events>` on its registry
when ``LCC_EVENTS_QUEUE`` is set, and handed to the loop of :mod:`lakecircle.engine.events` as an
``EventsObserver``: ``lakecircle_events_total{kind,result}`` counts the queue's messages (every
kind and result from 0) and ``lakecircle_events_queue_readable`` is 0 while the queue cannot be
read. Neither has an ``account`` label (one queue serves the service, hub or not), and neither
exists without a queue, so a LakeCircle without events exposes what it always did.
"""

from __future__ import annotations

import itertools

from prometheus_client import CollectorRegistry, Counter, Gauge

from lakecircle.core.events import EventKind, EventResult
from lakecircle.service.metric_names import EVENT_KINDS, EVENT_RESULTS, EVENTS_HELP

TOTAL = "lakecircle_events_total"
READABLE = "lakecircle_events_queue_readable"


class EventMetrics:
    """The events' two collectors on ``registry``, and the loop's observer methods that feed them."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.total = Counter(TOTAL, EVENTS_HELP[TOTAL], ("kind", "result"), registry=registry)
        self.readable = Gauge(READABLE, EVENTS_HELP[READABLE], registry=registry)
        for kind, result in itertools.product(EVENT_KINDS, EVENT_RESULTS):
            self.total.labels(kind, result)

    def event_counted(self, kind: EventKind, result: EventResult, count: int) -> None:
        """``count`` messages of ``kind`` ended as ``result``."""
        self.total.labels(str(kind), str(result)).inc(count)

    def events_readable(self, readable: bool) -> None:
        """The queue can be read (1), or not (0)."""
        self.readable.set(1 if readable else 0)
