// Starts Swagger UI on this server's OpenAPI document. A file, not an inline script: the
// page's policy runs scripts from Baton only. The document is found next to this file's
// folder, so the page also works behind a proxy that serves Baton under a sub-path.
"use strict";

const openapiUrl = new URL("../openapi.json", document.currentScript.src);

window.ui = SwaggerUIBundle({
  url: openapiUrl.href,
  dom_id: "#swagger-ui",
  deepLinking: true,
  // No validator badge: it would fetch from validator.swagger.io.
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
