"""Pure decisions, with the time passed in: no threads, no sockets, no actors.

``routing`` picks a task's next step; ``task`` keeps one task's progress and builds its
records; ``backoff``, ``breaker``, ``rate_limits`` and ``wait_queue`` are a provider's
admission rules; ``provider_table`` is the router's view of its provider actors.
"""
