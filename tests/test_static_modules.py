"""The pages' ES modules as production serves them: collectstatic with the site's storage
(hashed names, imports rewritten to them, comment lines dropped), and the phone page preloading
exactly the modules it runs."""

from __future__ import annotations

import json
import posixpath
import re

import pytest
from django.core.management import call_command
from django.template.loader import render_to_string

from polls.models import Question
from polls.storage import served, served_css, served_js

IMPORT = re.compile(r"""(?:\bfrom|\bimport)\s*\(?\s*["']([^"']+\.js)["']""")


@pytest.fixture
def collected(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "polls.storage.StaticStorage"},
    }
    call_command("collectstatic", "--noinput", verbosity=0)
    manifest = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
    return tmp_path, manifest


def imports_of(root, hashed: str) -> list[str]:
    text = (root / hashed).read_text()
    return [
        posixpath.normpath(posixpath.join(posixpath.dirname(hashed), found))
        for found in IMPORT.findall(text)
    ]


def test_every_module_import_names_a_hashed_file_that_exists(collected):
    root, manifest = collected
    hashed_names = set(manifest.values())
    modules = [
        hashed
        for name, hashed in manifest.items()
        if name.endswith(".js") and name.startswith("polls/")
    ]
    assert len(modules) > 20
    for hashed in modules:
        for target in imports_of(root, hashed):
            assert target in hashed_names, (
                f"{hashed} imports {target}, which production does not serve"
            )
            assert (root / target).is_file()


def test_scripts_and_style_sheets_are_served_minified_with_their_code_untouched():
    source = (
        b"// why\nconst a = 'x  // kept'; // gone\n  /* also why */\n"
        b"const re = /^https?:\\/\\//;\nconst t = `a\n// text, not a comment\n  b`;\n"
    )
    assert served_js(source) == (
        b"const a='x  // kept';const re=/^https?:\\/\\//;const t=`a\n// text, not a comment\n  b`;"
    )
    assert served_css(b"/* why */\n.a  {\n  color: red;\n}\n") == b".a{color:red}"
    assert served("polls/icon.svg", b"<svg>  </svg>") == b"<svg>  </svg>"


def test_the_phone_preloads_every_module_it_runs_under_hashed_names(collected, rf):
    root, manifest = collected
    from polls.views import kind_modules

    kinds = kind_modules("phone")
    assert set(kinds) == set(Question.Kind.values)
    html = render_to_string(
        "polls/phone.html",
        {"event": {"title": "T", "code": "C"}, "config": {"kinds": kinds}},
    )
    preloaded = {
        href.removeprefix("/static/")
        for href in re.findall(r'<link rel="modulepreload" href="([^"]+)"', html)
    }
    entry = manifest["polls/phone.js"]
    assert entry in preloaded and set(kinds.values()) <= {f"/static/{p}" for p in preloaded}
    reached, queue = set(), [entry, *(url.removeprefix("/static/") for url in kinds.values())]
    while queue:
        module = queue.pop()
        if module not in reached:
            reached.add(module)
            queue += imports_of(root, module)
    assert reached == preloaded
