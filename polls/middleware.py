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
