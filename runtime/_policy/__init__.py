"""Pure decisions, with the time passed in: no threads, no sockets, no actors.

``routing`` picks a task's next step; ``task`` keeps one task's progress and builds its
records; ``hedging`` races a second provider against a slow first one; ``latency`` keeps
the providers' live latency and says how much of a deadline an attempt may take;
``stream_rate`` judges a stream against its floor rate; ``backoff``, ``breaker``,
``rate_limits`` and ``wait_queue`` are a provider's admission rules; ``provider_table``
is the router's view of its provider actors, ``held_replies`` says when the replies it
holds for their records go out. ``planner`` orders each task's chain by its
role's ``rules`` (with ``language`` detection) and ``strategies``, from the snapshot it
keeps: calls in flight, latency, ``quota`` reports and sticky ``sessions``.
``budget_ledger`` keeps the budgets'
accounts (reserve, settle, alerts, forecasts) over ``budget_periods``, and ``budget_gate``
is the router's side of it (a call's worst case, its hold).
"""
