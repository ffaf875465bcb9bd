"""TLS provenance recorded by a real Scrapy crawl of loopback HTTPS servers with certificates made here."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from scrapy.core.downloader.contextfactory import ScrapyClientContextFactory
from scrapy.http import HtmlResponse
from twisted.internet.ssl import Certificate

from crawler.tls import FactStore, TlsFactsContextFactory, connection_facts, leaf_digest

REPO_ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime.now(dt.timezone.utc)
DER = serialization.Encoding.DER


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _cert(subject: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None, *, ca: bool,
          names: list[x509.GeneralName] | None = None) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    builder = (x509.CertificateBuilder()
               .subject_name(_name(subject))
               .issuer_name(issuer_cert.subject if issuer_cert else _name(subject))
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOW - dt.timedelta(days=1))
               .not_valid_after(NOW + dt.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()), critical=False)
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


class _Page(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: several pages over one pooled connection

    def do_GET(self) -> None:
        body = f"<html><body><p>{self.path}</p></body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


class Servers:
    """Loopback servers: each name maps to a base URL; ``chains`` to the DER chain each presents."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.urls: dict[str, str] = {}
        self.chains: dict[str, list[bytes]] = {}
        self._servers: list[ThreadingHTTPServer] = []

    def add(self, name: str, chain: list[x509.Certificate] | None, key=None, *, tls_max=None) -> None:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
        scheme = "http"
        if chain:
            pem = self.folder / f"{name}.pem"
            pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())
                            + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(pem)
            if tls_max is not None:
                context.maximum_version = tls_max
            server.socket = context.wrap_socket(server.socket, server_side=True)
            self.chains[name] = [c.public_bytes(DER) for c in chain]
            scheme = "https"
        self._servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.urls[name] = f"{scheme}://127.0.0.1:{server.server_address[1]}"

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pki")
    root = _cert("GovEvidence Test Root", None, ca=True)
    intermediate = _cert("GovEvidence Test Intermediate", root, ca=True)
    loopback = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
    leaf, leaf_key = _cert("127.0.0.1", intermediate, ca=False, names=loopback)
    other, other_key = _cert("www.other.gov.cn", intermediate, ca=False, names=[x509.DNSName("www.other.gov.cn")])
    selfsigned, selfsigned_key = _cert("127.0.0.1", None, ca=False, names=loopback)
    bundle = folder / "ca.pem"
    bundle.write_bytes(root[0].public_bytes(serialization.Encoding.PEM))
    servers = Servers(folder)
    servers.add("valid", [leaf, intermediate[0]], leaf_key)
    servers.add("tls12", [leaf, intermediate[0]], leaf_key, tls_max=ssl.TLSVersion.TLSv1_2)
    servers.add("selfsigned", [selfsigned], selfsigned_key)
    servers.add("mismatch", [other, intermediate[0]], other_key)
    servers.add("plain", None)
    yield servers, bundle
    servers.close()


CRAWL_SCRIPT = textwrap.dedent("""
    import json, sys
    import scrapy
    from scrapy.crawler import CrawlerProcess
    from crawler import settings as project
    from crawler.tls import connection_facts

    urls, out, extra = sys.argv[1].split(","), sys.argv[2], json.loads(sys.argv[3])

    class Facts(scrapy.Spider):
        name = "facts"

        async def start(self):
            for url in urls:
                yield scrapy.Request(url, dont_filter=True, errback=self.failed)

        def parse(self, response):
            facts = connection_facts(response)
            facts.update(url=response.url, ip_address=str(response.ip_address) if response.ip_address else None)
            yield facts

        def failed(self, failure):
            yield {"url": failure.request.url, "failure": repr(failure.value)}

    settings = {
        "DOWNLOAD_HANDLERS": project.DOWNLOAD_HANDLERS,
        "TWISTED_REACTOR": project.TWISTED_REACTOR,
        "PLAYWRIGHT_LAUNCH_OPTIONS": project.PLAYWRIGHT_LAUNCH_OPTIONS,
        "DOWNLOADER_CLIENTCONTEXTFACTORY": "crawler.tls.TlsFactsContextFactory",
        "ROBOTSTXT_OBEY": False, "RETRY_ENABLED": False, "TELNETCONSOLE_ENABLED": False,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1, "DOWNLOAD_TIMEOUT": 20, "LOG_LEVEL": "WARNING",
        "FEEDS": {out: {"format": "jsonlines"}},
    }
    settings.update(extra)
    process = CrawlerProcess(settings)
    process.crawl(Facts)
    process.start()
""")


def _crawl(tmp_path: Path, name: str, urls: list[str], extra: dict) -> subprocess.Popen:
    script = tmp_path / "crawl_facts.py"
    script.write_text(CRAWL_SCRIPT, encoding="utf-8")
    out = tmp_path / f"{name}.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("GOVEVIDENCE_CA_BUNDLE", None)
    return subprocess.Popen([sys.executable, str(script), ",".join(urls), str(out), json.dumps(extra)],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _results(tmp_path: Path, name: str, process: subprocess.Popen) -> dict[str, dict]:
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert "Traceback" not in output, output
    rows = [json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
    return {row["url"]: row for row in rows}


def test_crawl_records_tls_facts(pki, tmp_path):
    servers, bundle = pki
    urls = servers.urls
    pages = [f"{urls['valid']}/a", f"{urls['valid']}/b", f"{urls['valid'].replace('127.0.0.1', 'localhost')}/c",
             f"{urls['tls12']}/", f"{urls['selfsigned']}/", f"{urls['mismatch']}/", f"{urls['plain']}/"]
    trusted = _crawl(tmp_path, "trusted", pages, {"GOVEVIDENCE_CA_BUNDLE": str(bundle)})
    system_only = _crawl(tmp_path, "system", [f"{urls['valid']}/"], {})
    rows = _results(tmp_path, "trusted", trusted)
    untrusted = _results(tmp_path, "system", system_only)
    assert not [r for r in rows.values() if "failure" in r], rows  # bad certificates are still fetched

    chain = hashlib.sha256(b"".join(servers.chains["valid"])).hexdigest()
    for page in pages[:3]:  # two over one pooled connection, one by DNS name
        row = rows[page]
        assert row["tls_version"] == "TLSv1.3", row
        assert row["cert_chain_sha256"] == chain
        assert row["cert_valid"] is True and row["cert_error"] is None, row
        assert row["ip_address"] == "127.0.0.1"
    tls12 = rows[f"{urls['tls12']}/"]
    assert tls12["tls_version"] == "TLSv1.2" and tls12["cert_valid"] is True
    assert tls12["cert_chain_sha256"] == chain

    selfsigned = rows[f"{urls['selfsigned']}/"]
    assert selfsigned["cert_valid"] is False
    assert "self-signed" in selfsigned["cert_error"] or "self signed" in selfsigned["cert_error"]
    assert selfsigned["cert_chain_sha256"] == hashlib.sha256(servers.chains["selfsigned"][0]).hexdigest()

    mismatch = rows[f"{urls['mismatch']}/"]
    assert mismatch["cert_valid"] is False
    assert "hostname" in mismatch["cert_error"] and "127.0.0.1" in mismatch["cert_error"]
    assert "www.other.gov.cn" in mismatch["cert_error"]
    assert "chain" not in mismatch["cert_error"]  # the chain itself is trusted

    plain = rows[f"{urls['plain']}/"]
    assert {k: plain[k] for k in ("tls_version", "cert_chain_sha256", "cert_valid", "cert_error")} == {
        "tls_version": None, "cert_chain_sha256": None, "cert_valid": None, "cert_error": None}

    # Without the test CA the same chain does not lead to a trusted root.
    row = untrusted[f"{urls['valid']}/"]
    assert row["cert_valid"] is False and row["cert_chain_sha256"] == chain
    assert "unable to get local issuer certificate" in row["cert_error"], row


def test_facts_are_keyed_by_leaf_and_bounded(pki):
    servers, _ = pki
    leaf_der = servers.chains["valid"][0]
    certificate = Certificate.loadPEM(ssl.DER_cert_to_PEM_cert(leaf_der))
    store = FactStore(max_entries=2)
    url = servers.urls["valid"] + "/"
    port = int(url.rsplit(":", 1)[1].strip("/"))
    facts = {"tls_version": "TLSv1.3", "cert_chain_sha256": "ab" * 32, "cert_valid": True, "cert_error": None}
    store.put(("127.0.0.1", port, leaf_digest(certificate)), facts)
    response = HtmlResponse(url, body=b"<html></html>", certificate=certificate)
    assert connection_facts(response, store) == facts
    # Another port, or another leaf, is another connection.
    other = HtmlResponse(url.replace(str(port), str(port + 1)), body=b"", certificate=certificate)
    assert connection_facts(other, store)["cert_valid"] is None
    assert "not recorded" in connection_facts(other, store)["cert_error"]
    assert leaf_digest(certificate) == hashlib.sha256(leaf_der).hexdigest()
    # The least recently used entries go first.
    store.get(("127.0.0.1", port, leaf_digest(certificate)))
    store.put(("a", 1, "x"), facts)
    store.put(("b", 1, "y"), facts)
    assert len(store) == 2 and store.get(("127.0.0.1", port, leaf_digest(certificate))) is None
    # An HTTPS response without a certificate says so; plain HTTP has nothing.
    assert "no certificate" in connection_facts(HtmlResponse(url, body=b""), store)["cert_error"]
    assert set(connection_facts(HtmlResponse("http://127.0.0.1/", body=b""), store).values()) == {None}


def test_factory_is_a_scrapy_client_context_factory():
    assert issubclass(TlsFactsContextFactory, ScrapyClientContextFactory)
