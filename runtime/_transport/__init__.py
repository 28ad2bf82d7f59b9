"""What runs on the I/O loop: the loop, HTTP, attempts, signing and the start-up check.

``io_loop`` is the one asyncio thread; ``loop_inbox`` hands a loop work from other
threads, waking it once a batch; ``http`` the provider client and the one boundary
where transport errors become `ProviderError`; ``attempt`` one bounded attempt;
``aws`` and ``signing`` SigV4 for Bedrock; ``credentials`` the start-up check.
"""
