"""Baton's queries, beside the tables they touch: one module per table or aggregate.

Each query is an async function taking keyword arguments and returning msgspec Structs
(never an ``asyncpg.Record`` read by key outside its module). Piccolo's query builder
says what it can (``tables.db.run``); raw SQL is left only where a measurement or the
builder's reach says so, each statement with its reason beside it, and every one is
EXPLAINed against the migrated schema by tests/tables/test_raw_sql_explains.py.

Why raw on the click path (create, claim, release, queue, and auth's per-request user
read): the builder costs ~0.2-0.3 ms of CPU per query over the same statement through
``tables.db`` (select by primary key: 0.37-0.48 ms against 0.14-0.17 ms; ``Table.raw``
0.18-0.23 ms; bench/piccolo_cost.py), and a create runs six to eight statements.
"""
