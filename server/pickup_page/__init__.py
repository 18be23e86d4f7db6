"""The pick-up page of an e-mail's link: ``GET`` / ``POST /pickup/{token}``.

Plain server-rendered HTML in the inbox page's look (its CSS, plus ``pickup.css``), no
script: usable on a phone straight from the e-mail.
"""

from server.pickup_page.routes import PICKUP_ROUTES

__all__ = ["PICKUP_ROUTES"]
