// Swagger UI for /api/docs, from the collector's own copy of its assets (no CDN: closed
// networks), started from this file because the page's CSP allows no inline script.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null, // the default sends the document to an online validator
  });
});
