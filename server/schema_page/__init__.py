"""``GET /schema``: the API reference, rendered by Swagger UI from files Baton serves itself.

No CDN: the page works on an offline LAN and under its own strict policy (scripts from
Baton only). The OpenAPI document stays at ``/schema/openapi.json``.
"""

from server.schema_page.routes import schema_openapi_config

__all__ = ["schema_openapi_config"]
