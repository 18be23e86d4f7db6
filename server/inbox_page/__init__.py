"""The seniors' inbox page: ``GET /inbox`` and its static assets (CSS, ES modules, icon).

No build step and no framework: ``page.html`` and ``assets/`` are what the browser runs.
"""

from server.inbox_page.routes import INBOX_PAGE_ROUTES

__all__ = ["INBOX_PAGE_ROUTES"]
