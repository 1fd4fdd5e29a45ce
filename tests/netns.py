"""Network namespaces in tests: ``loadgen/netns.py`` (the bench builds the same hosts, so the
namespaces live there, beside the load generator that uses them) with pytest's side of it.

Tests that need namespaces call ``require_netns()`` first: without root or where the sandbox
forbids them the test is skipped with the reason in the summary (``-ra``). CI runs as root, and
there a refusal is a failure, never a skip: the several-hosts test must really run there.
"""

from __future__ import annotations

import os

import pytest

from loadgen import netns
from loadgen.netns import Network, remove_leftovers

__all__ = ["Network", "network", "remove_leftovers", "require_netns"]


def require_netns() -> None:
    reason = netns.unavailable()
    if reason is None:
        return
    message = f"NOT RUN: this test makes hosts out of network namespaces, and {reason}"
    if os.environ.get("CI") and os.geteuid() == 0:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def network(request):
    """A network of the hosts a test names (``@pytest.mark.parametrize`` or a module's
    ``HOSTS``), removed again, all of it, however the test ends."""
    require_netns()
    names = getattr(request, "param", None) or request.module.HOSTS
    made = Network.make(list(names))
    yield made
    made.remove()
