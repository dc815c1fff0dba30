"""The sellers' web page under `/app`: static files (Preact + htm, Chart.js, vendored) that call
the public API from the browser with the user's bearer token."""

from services.gateway.web.routes import mount

__all__ = ["mount"]
