"""The API in a browser: Swagger UI at ``/docs``, reading ``/openapi.json``, when FLOWHOOK_API_DOCS is on.

The page and its scripts come from the flask-swagger-ui package, which ships Swagger UI's files:
nothing is fetched from elsewhere, and the page's Content-Security-Policy says so to the browser.
A flow builder reads every handler's input and status variables there and tries a call, with a
token (its *Authorize* button) where tokens are set.
"""

from __future__ import annotations

from flask import Flask, Response
from flask_swagger_ui import get_swaggerui_blueprint

from flowhook.settings import Settings

URL = "/docs"

# Swagger UI's page is one inline script and inline styles; everything else is served from here.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)

SWAGGER_UI_CONFIG = {
    "app_name": "Flowhook API",
    # The plain layout: no top bar that loads the document of any address typed into it.
    "layout": "BaseLayout",
    # Swagger UI would send the document to validator.swagger.io for a badge: nothing leaves here.
    "validatorUrl": None,
    "displayRequestDuration": True,
    # A handler's input variables show in its schema without unfolding each level.
    "defaultModelExpandDepth": 3,
}


def init_app(app: Flask, settings: Settings) -> None:
    """Serve the page at ``/docs`` when the settings switch it on."""
    if not settings.api_docs:
        return  # /docs answers 404, as any unknown path
    blueprint = get_swaggerui_blueprint(URL, "/openapi.json", config=SWAGGER_UI_CONFIG, blueprint_name="apidocs")
    blueprint.after_request(_secure)
    app.register_blueprint(blueprint)


def _secure(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
