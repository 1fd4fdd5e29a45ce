import re

from django.core.files.base import ContentFile
from whitenoise.storage import CompressedManifestStaticFilesStorage

COMMENT_LINE = re.compile(rb"^[ \t]*//[^\n]*\n", re.MULTILINE)


def served_js(source: bytes) -> bytes:
    """A script as collectstatic serves it: without its comment-only lines. The comments are
    for whoever reads the source; a phone on congress Wi-Fi would download each one (the
    phone's modules are about a fifth comment). Only whole lines go, so no code or string is
    touched, and a file with a template literal running over lines (a line holding an odd
    number of backticks) is left as it is, since a "//" line inside one is text."""
    if any(line.count(b"`") % 2 for line in source.splitlines()):
        return source
    return COMMENT_LINE.sub(b"", source)


class _ServedScripts:
    """The source storage, handing out scripts as served (the manifest hashes those)."""

    def __init__(self, storage):
        self.storage = storage

    def open(self, path, mode="rb"):
        with self.storage.open(path, mode) as source:
            return ContentFile(served_js(source.read()), name=path)

    def __getattr__(self, name):
        return getattr(self.storage, name)


class StaticStorage(CompressedManifestStaticFilesStorage):
    """Hashed, precompressed static files; ES module imports are rewritten to hashed names too,
    so a module's relative import and the page's modulepreload name the same file."""

    support_js_module_import_aggregation = True

    def post_process(self, paths, *args, **kwargs):
        served = {
            name: (_ServedScripts(storage), path) if name.endswith(".js") else (storage, path)
            for name, (storage, path) in paths.items()
        }
        yield from super().post_process(served, *args, **kwargs)
