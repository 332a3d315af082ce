"""Nothing → a self-signed certificate for 127.0.0.1 and a server-side SSLContext.

kubectl (client-go) never sends a bearer token to a plain-http server, so the emulator speaks
HTTPS. The certificate is made once per process with the `openssl` command line (the standard
library cannot make one); the kubeconfig carries it as `certificate-authority-data`, so clients
verify the server as they would a real cluster. The private key only ever lives in a temporary
directory for the moment it takes to load it.
"""

from __future__ import annotations

import functools
import ssl
import subprocess
import tempfile
from pathlib import Path


class TlsError(RuntimeError):
    """The certificate could not be made (no `openssl`?)."""


@functools.cache
def _material() -> tuple[bytes, bytes]:
    with tempfile.TemporaryDirectory(prefix="velapy-emulator-tls-") as d:
        cert, key = Path(d) / "cert.pem", Path(d) / "key.pem"
        cmd = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
               "-days", "3650", "-subj", "/CN=velapy-emulator", "-keyout", str(key), "-out", str(cert),
               "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
               "-addext", "basicConstraints=critical,CA:TRUE",
               "-addext", "keyUsage=critical,digitalSignature,keyCertSign",
               "-addext", "extendedKeyUsage=serverAuth"]
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as e:
            raise TlsError(f"cannot make the emulator's TLS certificate with openssl: {e}") from None
        return cert.read_bytes(), key.read_bytes()


def certificate() -> bytes:
    """The PEM certificate clients must trust."""
    return _material()[0]


def server_context() -> ssl.SSLContext:
    cert, key = _material()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(prefix="velapy-emulator-tls-") as d:
        (Path(d) / "cert.pem").write_bytes(cert)
        key_path = Path(d) / "key.pem"
        key_path.touch(mode=0o600)
        key_path.write_bytes(key)
        ctx.load_cert_chain(str(Path(d) / "cert.pem"), str(key_path))
    return ctx
