#!/usr/bin/env python
"""Django's command-line utility.

Without DJANGO_SETTINGS_MODULE it runs the production settings, which refuse to start without
their deploy values: never DEBUG with a known key by default. ``dev.py`` chooses the others.
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.prod")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
