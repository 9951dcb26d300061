"""The site's own "not found" page, also while DEBUG is on.

With DEBUG on (the demo) Django answers Http404 with its technical page, which
shows the URL patterns and settings hints to whoever mistypes a run number.
This middleware renders the site's 404 template instead; with DEBUG off Django
uses the same template anyway.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render


class NotFoundPageMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        if isinstance(exception, Http404):
            return render(request, "404.html", status=404)
        return None
