"""The hand-off domain: create (park/escalate), claim, release, read, queue.

Plain async functions over asyncpg connections from Piccolo's pool (``tables.db``);
the controllers only translate HTTP to these calls and back.
"""
