"""The `Callboard` object: tasks in, replies out.

``board`` the public class; ``admin`` its stats, health, reports and reload; ``streams``
streamed answers handed to threads and asyncio tasks; ``gc_tuning`` Python's collector
set for many calls in flight when a board starts.
"""
