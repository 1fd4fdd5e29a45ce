"""Project middleware: language switch, Content-Security-Policy, async-capable static files."""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.utils.deprecation import MiddlewareMixin
from whitenoise.middleware import WhiteNoiseMiddleware


class LanguageParameterMiddleware(MiddlewareMixin):
    supported = {code for code, _name in settings.LANGUAGES}

    def process_request(self, request):
        chosen = request.GET.get("lang")
        if chosen in self.supported:
            # LocaleMiddleware reads the cookie next, so this request is served in it too.
            request.COOKIES[settings.LANGUAGE_COOKIE_NAME] = chosen

    def process_response(self, request, response):
        chosen = request.GET.get("lang")
        if chosen in self.supported:
            response.set_cookie(
                settings.LANGUAGE_COOKIE_NAME, chosen, max_age=365 * 24 * 3600, samesite="Lax"
            )
        return response


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """A strict Content-Security-Policy on every response: only this site's own files run.

    Pages carry no inline script or style (data reaches scripts through json_script and data-*
    attributes), so a text answer that slipped into markup still could not execute.
    """

    def process_response(self, request, response):
        policy = content_security_policy(request.get_host())
        response.headers.setdefault("Content-Security-Policy", policy)
        return response


def content_security_policy(host: str) -> str:
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"font-src 'self'; connect-src 'self' ws://{host} wss://{host}; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    """WhiteNoise, usable in Django's async chain.

    WhiteNoise's middleware is sync-only, and one sync-only middleware sends every request
    through Django's single shared sync thread: the join storm queued there at ~35 joins/s.
    Static files are still served by WhiteNoise (in a thread); everything else stays async.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        super().__init__(get_response)
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.acall(request)
        return super().__call__(request)

    async def acall(self, request):
        if self.autorefresh:
            static_file = await sync_to_async(self.find_file)(request.path_info)
        else:
            static_file = self.files.get(request.path_info)
        if static_file is not None:
            return await sync_to_async(self.serve)(static_file, request)
        return await self.get_response(request)
