"""Litestar controllers: HTTP in, a domain call, HTTP out. No rules live here."""
