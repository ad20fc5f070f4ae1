"""A CA, a gateway certificate and client certificates made with strongSwan's pki."""

import os

from liveproc import run

DN = "C=CH, O=espd live test"


def _pki(*args, input=None):
    return run(["pki", *args], timeout=30, input=input).stdout


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


class CA:
    def __init__(self, workdir):
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.key = os.path.join(workdir, "ca.key")
        self.cert = os.path.join(workdir, "ca.crt")
        _write(self.key, _pki("--gen", "--type", "ecdsa", "--size", "256", "--outform", "pem"))
        _write(
            self.cert,
            _pki(
                "--self",
                "--ca",
                "--lifetime",
                "30",
                "--in",
                self.key,
                "--type",
                "ecdsa",
                "--dn",
                f"{DN}, CN=espd live test CA",
                "--outform",
                "pem",
            ),
        )

    def issue(self, name, server=False):
        """(key path, cert path) of a new end-entity certificate with SAN name."""
        key = os.path.join(self.dir, f"{name}.key")
        cert = os.path.join(self.dir, f"{name}.crt")
        _write(key, _pki("--gen", "--type", "ecdsa", "--size", "256", "--outform", "pem"))
        pub = _pki("--pub", "--in", key, "--type", "ecdsa", "--outform", "pem")
        args = [
            "--issue",
            "--lifetime",
            "30",
            "--cacert",
            self.cert,
            "--cakey",
            self.key,
            "--type",
            "pub",
            "--dn",
            f"{DN}, CN={name}",
            "--san",
            name,
            "--outform",
            "pem",
        ]
        if server:
            args += ["--flag", "serverAuth"]
        _write(cert, _pki(*args, input=pub))
        return key, cert

    def install(self, charon, name=None):
        """Copies the CA (and name's key and certificate) into charon's swanctl directory."""
        d = charon.swanctl_dir
        run(["cp", self.cert, os.path.join(d, "x509ca", "ca.crt")])
        if name:
            run(["cp", os.path.join(self.dir, f"{name}.key"), os.path.join(d, "private", f"{name}.key")])
            run(["cp", os.path.join(self.dir, f"{name}.crt"), os.path.join(d, "x509", f"{name}.crt")])
