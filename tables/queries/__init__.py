"""Baton's queries, beside the tables they touch: one module per table or aggregate.

Each query is an async function taking keyword arguments and returning msgspec Structs
(or plain values); nothing outside a module reads a row by string key. Piccolo's query
builder says the statement wherever it can, run through ``tables.db.run`` (the fair
turn, and the current transaction when there is one).
"""
