"""deploy/'s files as a test runs them: the nginx site rendered with the test's own names, addresses
and folders, under a minimal nginx.conf of the test's own, and a self-signed certificate."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.live import ROOT

DEPLOY = ROOT / "deploy"
NGINX = Path("/usr/sbin/nginx")
PLACEHOLDERS = ("SERVER_NAME", "TLS_CERTIFICATE", "TLS_CERTIFICATE_KEY", "STATIC_ROOT", "APP_SERVERS")


def self_signed_certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A certificate for `name` (a host name or an IP address), its own authority: a client
    given it as its CA file verifies the balancer for real."""
    certificate, key = directory / "tls.crt", directory / "tls.key"
    san = f"IP:{name}" if re.fullmatch(r"[0-9.]+", name) else f"DNS:{name}"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName={san}",
            "-keyout",
            str(key),
            "-out",
            str(certificate),
        ],
        check=True,
        capture_output=True,
    )
    return certificate, key


def render_site(values: dict[str, str], logs: Path) -> str:
    """deploy/nginx/consult.conf with every ${NAME} replaced (as envsubst with the list does) and
    its logs written under `logs`."""
    text = (DEPLOY / "nginx" / "consult.conf").read_text()
    for name in PLACEHOLDERS:
        text = text.replace("${" + name + "}", values[name])
    left = re.findall(r"\$\{[A-Z_]+\}", text)
    assert not left, f"placeholders the render does not know: {left}"
    return text.replace("/var/log/nginx/", f"{logs}/")


def nginx_main_conf(directory: Path, site: str, *, user: str = "root") -> Path:
    """An nginx.conf of the test's own (pid, logs and temporary files in `directory`) that
    includes the rendered site as Debian's sites-enabled would."""
    (directory / "site.conf").write_text(site)
    for temp in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (directory / temp).mkdir(exist_ok=True)
    conf = directory / "nginx.conf"
    conf.write_text(
        f"user {user};\n"
        "worker_processes 1;\n"
        f"pid {directory}/nginx.pid;\n"
        f"error_log {directory}/error.log warn;\n"
        "events { worker_connections 1024; }\n"
        "http {\n"
        "    include /etc/nginx/mime.types;\n"
        "    default_type application/octet-stream;\n"
        "    sendfile on;\n"
        f"    client_body_temp_path {directory}/body;\n"
        f"    proxy_temp_path {directory}/proxy;\n"
        f"    fastcgi_temp_path {directory}/fastcgi;\n"
        f"    uwsgi_temp_path {directory}/uwsgi;\n"
        f"    scgi_temp_path {directory}/scgi;\n"
        f"    access_log {directory}/access.log;\n"
        f"    include {directory}/site.conf;\n"
        "}\n"
    )
    return conf
