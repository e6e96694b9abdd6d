"""A one-file Flask app that tests/test_real_frameworks.py serves with Werkzeug, as
``flask run --debug`` does: the Werkzeug server with its interactive debugger.

Run as ``python flask_site.py FD``: it serves on the listening socket FD that the test
bound (so the port is known before the server starts). The app sets the secure headers
itself, and keeps two mistakes a team makes with the stock setup: the debugger is on (a
crash answers with a page that runs code for anyone) and the Werkzeug server names its
version in ``Server``. One more of its own: a remember-me cookie without ``HttpOnly``.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from flask import Flask, Response, jsonify, make_response, session
from werkzeug.debug import DebuggedApplication
from werkzeug.serving import make_server

app = Flask(__name__)
app.secret_key = "rehearsal-tests-only-" + "f" * 40
app.config.update(SESSION_COOKIE_SAMESITE="Lax", DEBUG=True)


@app.after_request
def secure_headers(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Content-Security-Policy"] = "default-src 'self'"
    return response


@app.get("/")
def home() -> Response:
    session["seen"] = True
    response = make_response("<!doctype html><html><title>Shop</title><body>hi</body></html>")
    # Read by the page's scripts (double submit): no HttpOnly, rightly.
    response.set_cookie("csrf_token", secrets.token_hex(16), samesite="Lax")
    # A credential: it must be HttpOnly, and is not.
    response.set_cookie("remember_token", secrets.token_hex(16), samesite="Lax")
    return response


@app.get("/health")
def health() -> Response:
    return jsonify(ok=True)


@app.get("/.env")
def dot_env() -> str:
    return Path("/nonexistent/rehearsal/.env").read_text()


if __name__ == "__main__":
    # What run_simple(use_debugger=True) does, on the socket the test bound.
    debugged = DebuggedApplication(app, evalex=True)
    make_server("127.0.0.1", 0, debugged, threaded=True, fd=int(sys.argv[1])).serve_forever()
