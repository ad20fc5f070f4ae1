"""pytest fixtures of the live strongSwan + espd tests (see README.md here; the lab is livelab.py)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from livelab import Lab, Session, Unavailable  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: runs traffic for tens of seconds")


@pytest.fixture(scope="session")
def session():
    try:
        s = Session.open("espd-live.")
    except Unavailable as e:
        pytest.skip(str(e))
    print(f"\n{s.describe()}")
    yield s
    s.close()


@pytest.fixture
def lab(session, request):
    name = request.node.name.replace("[", "-").replace("]", "")
    lab = Lab(session, name)
    try:
        yield lab
    finally:
        lab.close()
