import rcssmin
import rjsmin
from django.core.files.base import ContentFile
from whitenoise.storage import CompressedManifestStaticFilesStorage


def served_js(source: bytes) -> bytes:
    """A script as collectstatic serves it: minified (comments and needless whitespace gone).
    The comments and indentation are for whoever reads the source; a phone on congress Wi-Fi
    would download each byte, and the phone page has a budget (docs/performance.md). rJSmin
    keeps strings, regular expressions and (unnested) template literals as they are, and a
    line break wherever leaving it out could change what the code means."""
    return rjsmin.jsmin(source.decode()).encode()


def served_css(source: bytes) -> bytes:
    """A style sheet as collectstatic serves it: minified, for the same budget."""
    return rcssmin.cssmin(source.decode()).encode()


SERVED = {".js": served_js, ".css": served_css}


def served(name: str, source: bytes) -> bytes:
    """A static file's bytes as served: scripts and style sheets minified, the rest as is."""
    for suffix, serve in SERVED.items():
        if name.endswith(suffix):
            return serve(source)
    return source


class _Served:
    """The source storage, handing out scripts and style sheets as served (the manifest hashes
    those, so a changed minifier gives new names)."""

    def __init__(self, storage):
        self.storage = storage

    def open(self, path, mode="rb"):
        with self.storage.open(path, mode) as source:
            return ContentFile(served(path, source.read()), name=path)

    def __getattr__(self, name):
        return getattr(self.storage, name)


class StaticStorage(CompressedManifestStaticFilesStorage):
    """Hashed, precompressed, minified static files; ES module imports are rewritten to hashed
    names too, so a module's relative import and the page's modulepreload name the same file."""

    support_js_module_import_aggregation = True

    def post_process(self, paths, *args, **kwargs):
        minified = {
            name: (_Served(storage), path) if name.endswith(tuple(SERVED)) else (storage, path)
            for name, (storage, path) in paths.items()
        }
        yield from super().post_process(minified, *args, **kwargs)
