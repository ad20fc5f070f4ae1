"""pytest fixtures of the live strongSwan + espd tests (see README.md here; the lab is livelab.py)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from livelab import Lab, Session, Unavailable  # noqa: E402
from netlab import NetLab, NetSession  # noqa: E402
from netlab import Unavailable as NetUnavailable  # noqa: E402

MARKERS = {
    "slow": "runs traffic for tens of seconds",
    "strongswan": "strongSwan's charon driving espd (test_auth ... test_vips; needs the charon plugins)",
    "netns": "espd between network namespaces (test_netns.py; was scripts/netns-test.sh)",
    "nat": "many clients behind one NAT (test_nat_clients.py; was scripts/nat-test.sh)",
    "control": "the control plane (was scripts/control-test.sh)",
    "hostile": "floods, forgeries and resource limits (was scripts/hostile-test.sh)",
    "soak": "the soak (was scripts/soak.sh)",
    "bench": "the benchmark drivers (was scripts/bench-*.sh)",
}


def pytest_configure(config):
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


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


@pytest.fixture(scope="session")
def netsession():
    """The espd-only suites' session (netlab.NetSession): skipped without root; an error when a tool
    or the espd binary is missing. At its end, nothing of the run may be left."""
    try:
        s = NetSession()
    except NetUnavailable as e:
        pytest.skip(str(e))
    print(f"\n{s.describe()}")
    failed = []
    s.failed = failed
    yield s
    left = s.leftovers()
    s.close(keep=bool(failed))
    assert not left, f"left behind by the run: {', '.join(left)}"


@pytest.fixture
def net(netsession, request, record_property):
    """One test's lab (netlab.NetLab): pair()/nat(n), espd(...), tool_bg(...); stopped and deleted at
    the end, which must leave no namespace and no process behind."""
    # short (control sockets live in it: 107 bytes at most) and unique in the run: the module, then
    # the bash name (the id) or the function's name (test_netns and test_nat_clients both have
    # test_configs[configs])
    module = os.path.splitext(os.path.basename(str(request.node.path)))[0].removeprefix("test_")
    callspec = getattr(request.node, "callspec", None)
    name = callspec.id if callspec else request.node.name
    lab = NetLab(netsession, f"{module}.{name}".replace("/", "_"))
    try:
        yield lab
    finally:
        left = lab.close()
        for i, fig in enumerate(lab.figures):
            record_property(f"figure{i}", fig)
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            netsession.failed.append(request.node.nodeid)
            print(f"\nlogs: {lab.dir}")
    assert not left, f"left behind after teardown: {', '.join(left)}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the item (the net fixture keeps the logs of a failed test)."""
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep
