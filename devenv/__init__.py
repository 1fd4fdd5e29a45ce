"""What ``dev.py`` does, one module per concern (standard library only: it runs before the
virtualenv exists, with the system's python3).

- ``shell``: where things are (the checkout, ``.venv``, ``var/``, the address served) and how
  a step runs a command or ``manage.py``.
- ``install``: the virtualenv and its requirements, Debian's Chromium, the translations, the
  database and static files, each skipped when its inputs did not change.
- ``private_redis``: the private Redis server on a unix socket (serve, the tests, the bench).
- ``processes``: stopping started processes, SIGTERM first.
- ``daphne``: one listening socket shared by several Daphne processes, their launcher, and the
  wait until every one of them accepts.
- ``supervisor``: serve's watch over its children (restart after a pause, give up on one that
  keeps dying, stop in order).
- ``serve``: ``dev.py serve`` (the network guard, the environment, the printed lines).
- ``testrun``: ``dev.py test``.
"""
