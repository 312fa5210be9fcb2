// Starts Swagger UI on the committed OpenAPI document (a file of its own, so the page needs
// no inline script). `validatorUrl: null` turns off the online validator badge, which
// Swagger UI otherwise loads from validator.swagger.io: the page must not reach any other host.
window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: '/api/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    tryItOutEnabled: false,
    validatorUrl: null,
  });
});
