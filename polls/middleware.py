"""``?lang=nl`` on any page switches the language and remembers it in a cookie."""

from django.conf import settings


class LanguageParameterMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.supported = {code for code, _name in settings.LANGUAGES}

    def __call__(self, request):
        chosen = request.GET.get("lang")
        if chosen in self.supported:
            # LocaleMiddleware reads the cookie next, so this request is served in it too.
            request.COOKIES[settings.LANGUAGE_COOKIE_NAME] = chosen
        response = self.get_response(request)
        if chosen in self.supported:
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME, chosen, max_age=365 * 24 * 3600, samesite="Lax"
            )
        return response


class ContentSecurityPolicyMiddleware:
    """A strict Content-Security-Policy on every response: only this site's own files run.

    Pages carry no inline script or style (data reaches scripts through json_script and data-*
    attributes), so a text answer that slipped into markup still could not execute.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        host = request.get_host()
        policy = (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"font-src 'self'; connect-src 'self' ws://{host} wss://{host}; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        )
        response.headers.setdefault("Content-Security-Policy", policy)
        return response
