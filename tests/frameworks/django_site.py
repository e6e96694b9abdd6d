"""A one-file Django site that tests/test_real_frameworks.py serves with gunicorn.

``REHEARSAL_DJANGO_DEBUG=1`` switches ``DEBUG`` on, and nothing else: Django then answers an
unknown path with its technical 404 page (the URL patterns) and a crash with its technical
500 page (traceback and settings). Otherwise the site is what a careful team ships:
``SecurityMiddleware`` (nosniff, Referrer-Policy, COOP; HSTS over https), clickjacking
protection, a Content-Security-Policy, and session and CSRF cookies with Django's defaults
(``HttpOnly`` on the session cookie only, ``SameSite=Lax``; ``Secure`` is for https).

The CSP comes from a small middleware: Django 6 has one built in, but needs Python 3.12,
and this suite runs on 3.10 too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import django
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.urls import path

CSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'"

settings.configure(
    DEBUG=os.environ.get("REHEARSAL_DJANGO_DEBUG") == "1",
    SECRET_KEY="rehearsal-tests-only-" + "k" * 40,
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.sessions"],
    # Signed cookies: sessions without a database.
    SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
    MIDDLEWARE=[
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
        f"{__name__}.ContentSecurityPolicyMiddleware",
    ],
    SECURE_HSTS_SECONDS=31_536_000,
    SECURE_HSTS_INCLUDE_SUBDOMAINS=True,
    X_FRAME_OPTIONS="DENY",
)
django.setup()


class ContentSecurityPolicyMiddleware:
    """Adds the site's Content-Security-Policy to every response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        return response


def home(request: HttpRequest) -> HttpResponse:
    request.session["visits"] = request.session.get("visits", 0) + 1
    token = get_token(request)  # sets the csrftoken cookie
    form = f'<form method="post"><input type="hidden" name="csrf" value="{token}"></form>'
    return HttpResponse(f"<!doctype html><html><title>Shop</title><body>{form}</body></html>")


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


def dot_env(request: HttpRequest) -> HttpResponse:
    # A route that serves a file that is not there: it crashes, and DEBUG shows why.
    return HttpResponse(Path("/nonexistent/rehearsal/.env").read_text())


urlpatterns = [path("", home), path("health", health), path(".env", dot_env)]
application = get_wsgi_application()
