/* The API docs page (/api/v1/docs/, templates/api/docs.html): start the vendored Swagger UI on the portal's
   schema. Its settings come from the page (data- attributes and a JSON element), not an inline script: the
   Content-Security-Policy allows none. Requests sent with the browser's session carry the CSRF header on writes. */
(function () {
  "use strict";
  var holder = document.getElementById("swagger-ui");
  var settings = JSON.parse(document.getElementById("swagger-settings").textContent);
  var csrfHeader = holder.dataset.csrfHeader;
  var csrfToken = holder.dataset.csrfToken;
  window.ui = SwaggerUIBundle(Object.assign({
    url: holder.dataset.schemaUrl,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    requestInterceptor: function (request) {
      if (request.method && request.method !== "GET" && request.credentials === "same-origin") {
        request.headers[csrfHeader] = csrfToken;
      }
      return request;
    },
  }, settings));
})();
