"""What the runtime records and reports.

``stats`` the live aggregates; ``histogram`` latency buckets; ``store`` the SQLite store
and its rollups; ``report``, ``report_text`` and ``trend_chart`` what is read back;
``prometheus`` the optional exporter; ``audit_rebuild`` the store rebuilt from audit
logs; ``timespec`` the windows reports cover; ``outbox`` the rows the router keeps until
the store has them.
"""
