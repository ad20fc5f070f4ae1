"""The README's deployment examples as written: espd.json passes `espd check`, the pki commands
make a CA and the gateway's certificate, and every swanctl.conf loads into a charon with the
plugins (its connections, pools and secrets, nothing refused). The PSK example also connects
clients in scripts/demo.py."""

import os
import re
import shutil

import pytest

from liveproc import run

pytestmark = pytest.mark.strongswan

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLES = os.path.join(REPO, "examples", "strongswan")


def readme_pki_commands():
    """The shell block under "A CA and the gateway's certificate with `pki`" in README.md."""
    text = open(os.path.join(REPO, "README.md")).read()
    start = text.index("A CA and the gateway's certificate with `pki`:")
    block = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("       "):
            break
        block.append(line.strip())
    assert block and block[0] == "cd /etc/swanctl", block
    return "\n".join(block[1:])


def sections(path):
    """{section: [names]} of a swanctl.conf: the entries of its top-level blocks."""
    out, top = {}, None
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        if m := re.match(r"^(\w+) \{$", line):
            top = m.group(1)
            out[top] = []
        elif m := re.match(r"^  ([\w-]+) \{$", line):
            out[top].append(m.group(1))
    return out


def test_readme_examples_load(lab, record_property):
    p = run([lab.session.espd, "check", "--config", os.path.join(EXAMPLES, "espd.json")], check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ike: IKE only (no marker) on udp 192.0.2.1:500" in p.stdout, p.stdout

    gw = lab.gateway({}, load=False, extra_plugins=("eap-identity", "eap-mschapv2"))
    d = gw.charon.swanctl_dir
    pki = run(["bash", "-euo", "pipefail", "-c", f"cd {d}\n{readme_pki_commands()}"], check=False)
    assert pki.returncode == 0, pki.stderr
    for f in ("x509ca/ca.crt", "x509/gw.crt", "private/gw.key"):
        assert os.path.getsize(os.path.join(d, f)) > 0, f
    loaded = {}
    for name in ("swanctl-psk.conf", "swanctl-cert-eap.conf", "swanctl-l2tp.conf"):
        path = os.path.join(d, name)
        shutil.copy(os.path.join(EXAMPLES, name), path)
        out = gw.charon.swanctl("--load-all", "--clear", "--file", path, check=False)
        # (swanctl's stderr lists its own optional plugins that are not installed)
        text = out.stdout
        assert out.returncode == 0 and "failed" not in text, f"{name}: {text} {out.stderr[-1000:]}"
        conns = re.findall(r"loaded connection '([^']+)'", text)
        want = sections(path)
        assert sorted(conns) == sorted(want["connections"]), (name, conns, want)
        for pool in want.get("pools", []):
            assert f"loaded pool '{pool}'" in text, (name, pool, text)
        assert len(re.findall(r"loaded (ike|eap) secret", text)) == len(want["secrets"]), (name, text)
        listed = gw.charon.swanctl("--list-conns").stdout
        for c in conns:
            assert re.search(rf"^{re.escape(c)}: IKEv[12]", listed, re.M), (name, c, listed)
        loaded[name] = conns
    print(f"\nREADME examples: {loaded}")
    record_property("examples", loaded)
