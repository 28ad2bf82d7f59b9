"""The `Callboard` object: tasks in, replies out.

``board`` the public class; ``admin`` its stats, health, reports and reload; ``streams``
streamed answers handed to threads and asyncio tasks.
"""
