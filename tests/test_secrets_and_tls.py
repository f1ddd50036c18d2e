"""Secrets come from the environment and never show in output; TLS to Elasticsearch is verified.

The TLS tests talk to a small HTTPS server on 127.0.0.1 with a self-signed certificate made for
the test (openssl), answering like an Elasticsearch node's root endpoint.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from elastic_transport import TlsError

from tests.support.runner import FAST_CRAWL, clean_env, run_veille, write_config
from veille.core.config import ConfigError, Environment
from veille.core.es import make_client
from veille.core.mailer import SmtpSettings

ES_SECRET = "es-pw-7f3a9c-never-print"
SMTP_SECRET = "smtp-pw-41bd2e-never-print"


def test_credentials_inside_the_elasticsearch_url_are_refused_and_not_echoed():
    result = run_veille(
        "search", "x", env=clean_env(VEILLE_ES_URL=f"https://elastic:{ES_SECRET}@127.0.0.1:9")
    )
    assert result.returncode == 2
    assert "VEILLE_ES_USER and VEILLE_ES_PASSWORD" in result.stderr
    assert ES_SECRET not in result.stdout + result.stderr


def test_connection_settings_do_not_show_their_secrets(monkeypatch):
    monkeypatch.setenv("VEILLE_ES_PASSWORD", ES_SECRET)
    monkeypatch.setenv("VEILLE_ES_API_KEY", ES_SECRET)
    monkeypatch.setenv("VEILLE_SMTP_PASSWORD", SMTP_SECRET)
    assert ES_SECRET not in repr(Environment.from_env())
    assert SMTP_SECRET not in repr(SmtpSettings.from_env())


def test_a_crawl_and_its_errors_never_print_the_passwords(sites, es_url, index_prefix, tmp_path):
    env = clean_env(
        VEILLE_ES_URL=es_url,
        VEILLE_ES_USER="veille",
        VEILLE_ES_PASSWORD=ES_SECRET,
        VEILLE_SMTP_USER="veille",
        VEILLE_SMTP_PASSWORD=SMTP_SECRET,
        VEILLE_INDEX_PREFIX=index_prefix,
        VEILLE_DATA_DIR=str(tmp_path / "data"),
        VEILLE_CONFIG=str(write_config(tmp_path / "config", sites, ["northern-ledger"])),
    )
    outputs = [
        run_veille("crawl", "northern-ledger", "-v", *FAST_CRAWL, env=env),
        run_veille("search", "police", env={**env, "VEILLE_ES_URL": "http://127.0.0.1:9"}),
        run_veille("spool", "list", env=env),
    ]
    assert outputs[0].returncode == 0, outputs[0].stderr[-2000:]
    assert outputs[1].returncode == 3
    for output in outputs:
        for secret in (ES_SECRET, SMTP_SECRET):
            assert secret not in output.stdout + output.stderr


# --- TLS ---------------------------------------------------------------------------------


class _RootEndpoint(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"version": {"number": "8.14.3"}, "tagline": "You Know, for Search"})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """An HTTPS 'node' on 127.0.0.1 and the self-signed certificate it presents."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "node.pem", folder / "node.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RootEndpoint)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert
    server.shutdown()
    server.server_close()


def _info(env: Environment) -> dict:
    client = make_client(env, max_retries=0)
    try:
        return client.info().body
    finally:
        client.close()


def test_an_unknown_certificate_is_refused_by_default(tls_node):
    url, _ = tls_node
    with pytest.raises(TlsError) as refused:
        _info(Environment(es_url=url))
    assert "CERTIFICATE_VERIFY_FAILED" in repr(refused.value)


def test_the_ca_bundle_setting_makes_the_certificate_trusted(tls_node, monkeypatch):
    url, cert = tls_node
    monkeypatch.setenv("VEILLE_ES_URL", url)
    monkeypatch.setenv("VEILLE_ES_CA_CERTS", str(cert))
    assert _info(Environment.from_env())["version"]["number"] == "8.14.3"


def test_turning_verification_off_takes_an_explicit_false(tls_node, monkeypatch):
    url, _ = tls_node
    monkeypatch.setenv("VEILLE_ES_URL", url)
    monkeypatch.setenv("VEILLE_ES_VERIFY_CERTS", "false")
    assert _info(Environment.from_env())["version"]["number"] == "8.14.3"
    monkeypatch.setenv("VEILLE_ES_VERIFY_CERTS", "nope")
    with pytest.raises(ConfigError, match="VEILLE_ES_VERIFY_CERTS"):
        Environment.from_env()
