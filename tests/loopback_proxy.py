"""HAProxy on loopback with the deployment example's configuration (examples/deploy), for the
test that runs the example and the cluster benchmark."""

from __future__ import annotations

import subprocess
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "deploy" / "haproxy.cfg"


def loopback_config(certificate: Path, proxy_port: int, bot_ports: list[int]) -> str:
    """The example with loopback addresses; each replaced line must be in it once."""
    text = EXAMPLE.read_text()
    replacements = {
        "    bind :443 ssl crt /etc/haproxy/certs/bot.example.org.pem\n": (
            f"    bind 127.0.0.1:{proxy_port} ssl crt {certificate}\n"
        ),
        **{
            f"    server bot{n} 127.0.0.1:{8080 + n} check\n": (
                f"    server bot{n} 127.0.0.1:{port} check\n"
            )
            for n, port in enumerate(bot_ports, start=1)
        },
    }
    for line, replacement in replacements.items():
        assert text.count(line) == 1, f"the example no longer has: {line!r}"
        text = text.replace(line, replacement)
    return text


def make_certificate(folder: Path) -> Path:
    """A self-signed certificate for 127.0.0.1, key and certificate in one file as HAProxy
    takes them."""
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt"),
            *("ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    bundle = folder / "bundle.pem"
    bundle.write_text(cert.read_text() + key.read_text())
    return bundle


def haproxy(config: Path) -> subprocess.Popen[str]:
    """HAProxy in the foreground; its log (a line per request) beside its configuration."""
    with (config.parent / "haproxy.log").open("w") as log:
        return subprocess.Popen(
            ["haproxy", "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT, text=True
        )


def start_proxy(folder: Path, proxy_port: int, bot_ports: list[int]) -> subprocess.Popen[str]:
    """HAProxy running the example on loopback, its configuration and certificate in
    `folder`."""
    config = folder / "haproxy.cfg"
    config.write_text(loopback_config(make_certificate(folder), proxy_port, bot_ports))
    return haproxy(config)
