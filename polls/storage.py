from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    """Hashed, precompressed static files; ES module imports are rewritten to hashed names too."""

    support_js_module_import_aggregation = True
