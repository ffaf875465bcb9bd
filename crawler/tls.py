"""TLS provenance of every capture: protocol version, the chain the server presented, and
whether it validated.

Scrapy does not verify certificates, and it should not: many government sites have bad
ones and their evidence must still be collected. What the server presented is recorded
instead. ``TlsFactsContextFactory`` (setting ``DOWNLOADER_CLIENTCONTEXTFACTORY``) keeps
Scrapy's non-verifying TLS options and adds, at handshake completion, a record of:

- the negotiated protocol version (``TLSv1.2``, ``TLSv1.3``);
- ``cert_chain_sha256``: SHA-256 over the DER encodings of the certificates the server
  sent, concatenated in the order sent (leaf first);
- ``cert_valid``: the chain leads to a trusted root (the system store, plus the PEM
  bundle named by ``GOVEVIDENCE_CA_BUNDLE``) and the leaf is valid for the host name
  requested; ``cert_error`` says why not.

The facts are kept per (host, port, SHA-256 of the leaf certificate), so a response on a
pooled connection maps back to its handshake through ``response.certificate``; the
store keeps the most recently used ``GOVEVIDENCE_TLS_FACTS_MAX`` entries.
``connection_facts(response)`` returns them for a response.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import ssl
from collections import OrderedDict
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from OpenSSL import SSL, crypto
from service_identity import CertificateError, VerificationError
from service_identity.cryptography import verify_certificate_hostname, verify_certificate_ip_address
from twisted.internet.ssl import Certificate

from scrapy.core.downloader.contextfactory import _get_creator_context, _ScrapyClientContextFactory

logger = logging.getLogger(__name__)

FACTS_MAX = 10_000
EMPTY_FACTS = {"tls_version": None, "cert_chain_sha256": None, "cert_valid": None, "cert_error": None}


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class FactStore:
    """Facts of recent handshakes by (host, port, leaf SHA-256), least recently used dropped first."""

    def __init__(self, max_entries: int = FACTS_MAX) -> None:
        self.max_entries = max_entries
        self._facts: OrderedDict[tuple[str, int, str], dict[str, Any]] = OrderedDict()

    def put(self, key: tuple[str, int, str], facts: dict[str, Any]) -> None:
        self._facts[key] = facts
        self._facts.move_to_end(key)
        while len(self._facts) > self.max_entries:
            self._facts.popitem(last=False)

    def get(self, key: tuple[str, int, str]) -> dict[str, Any] | None:
        facts = self._facts.get(key)
        if facts is not None:
            self._facts.move_to_end(key)
        return facts

    def __len__(self) -> int:
        return len(self._facts)


# One store per process: a response only carries its leaf certificate, not its factory.
STORE = FactStore()


def leaf_digest(certificate: Any) -> str:
    """SHA-256 (hex) of a certificate's DER: a pyOpenSSL ``X509``, twisted ``Certificate`` or cryptography one."""
    if isinstance(certificate, Certificate):
        certificate = certificate.original
    if isinstance(certificate, crypto.X509):
        der = crypto.dump_certificate(crypto.FILETYPE_ASN1, certificate)
    else:
        der = certificate.public_bytes(Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def chain_digest(chain: list[Any]) -> str:
    """SHA-256 (hex) over the DER certificates of a chain, concatenated in order."""
    digest = hashlib.sha256()
    for certificate in chain:
        digest.update(crypto.dump_certificate(crypto.FILETYPE_ASN1, certificate))
    return digest.hexdigest()


def trust_store(ca_bundle: str | None) -> tuple[crypto.X509Store, str | None]:
    """The system's trusted roots plus those of ``ca_bundle``; and a problem loading them, if any."""
    store = crypto.X509Store()
    problem = None
    paths = ssl.get_default_verify_paths()
    loaded = False
    for cafile, capath in ((paths.cafile, None), (None, paths.capath)):
        if (cafile and os.path.isfile(cafile)) or (capath and os.path.isdir(capath)):
            try:
                store.load_locations(cafile, capath)
                loaded = True
            except crypto.Error as exc:
                logger.warning("Could not load the system's trusted roots from %s: %s", cafile or capath, exc)
    if not loaded:
        problem = f"no system trust store at {paths.cafile} or {paths.capath}"
        logger.warning("No trusted roots found (%s): only GOVEVIDENCE_CA_BUNDLE is trusted", problem)
    if ca_bundle:
        try:
            store.load_locations(ca_bundle)
        except (crypto.Error, OSError) as exc:
            problem = f"GOVEVIDENCE_CA_BUNDLE {ca_bundle} could not be loaded: {exc}"
            logger.error("%s", problem)
    return store, problem


def _names(certificate: Any) -> str:
    """The DNS names and addresses a certificate is for (subjectAltName, else its common name)."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return ", ".join(str(v) for v in names.get_values_for_type(x509.DNSName)
                         + names.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        common = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return f"CN={common[0].value}" if common else ""


def validate(chain: list[crypto.X509], host: str, store: crypto.X509Store) -> tuple[bool, str | None]:
    """Whether a presented chain leads to a trusted root and its leaf names ``host``; else why not."""
    if not chain:
        return False, "the server presented no certificate"
    errors = []
    try:
        crypto.X509StoreContext(store, chain[0], chain=chain[1:]).verify_certificate()
    except crypto.X509StoreContextError as exc:
        subject = exc.certificate.to_cryptography().subject.rfc4514_string() if exc.certificate else "?"
        errors.append(f"chain: {exc} (certificate {subject})")
    leaf = chain[0].to_cryptography()
    try:
        if _is_ip(host):
            verify_certificate_ip_address(leaf, host)
        else:
            verify_certificate_hostname(leaf, host)
    except (CertificateError, VerificationError) as exc:
        errors.append(f"hostname: certificate is not valid for {host}; it names {_names(leaf) or 'nothing'}"
                      + (f" ({exc})" if isinstance(exc, CertificateError) else ""))
    return not errors, "; ".join(errors) or None


class TlsFactsContextFactory(_ScrapyClientContextFactory):
    """Scrapy's client context factory (a ``ScrapyClientContextFactory``) that records TLS facts.

    It derives from the class ``ScrapyClientContextFactory`` aliases (deriving from the
    alias itself warns that it is deprecated); ``issubclass`` holds for both.

    Certificates are not enforced (unless ``DOWNLOAD_VERIFY_CERTIFICATES`` says so, as in
    Scrapy); they are validated on the side and the result recorded.
    """

    def __init__(self, *args: Any, ca_bundle: str | None = None, facts_max: int = FACTS_MAX,
                 store: FactStore | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ca_bundle = ca_bundle or None
        self.facts = store if store is not None else STORE
        self.facts.max_entries = facts_max
        self._trust: crypto.X509Store | None = None
        self._trust_problem: str | None = None
        # Validation results by (chain digest, host): pooled and parallel connections repeat them.
        self._validated: OrderedDict[tuple[str, str], tuple[bool, str | None]] = OrderedDict()

    @classmethod
    def from_crawler(cls, crawler: Any, method: int | None = SSL.SSLv23_METHOD, *args: Any, **kwargs: Any):
        settings = crawler.settings
        kwargs.setdefault("ca_bundle", settings.get("GOVEVIDENCE_CA_BUNDLE") or os.environ.get("GOVEVIDENCE_CA_BUNDLE"))
        kwargs.setdefault("facts_max", settings.getint("GOVEVIDENCE_TLS_FACTS_MAX", FACTS_MAX))
        return super().from_crawler(crawler, method, *args, **kwargs)

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        creator = super().creatorForNetloc(hostname, port)
        host, port = hostname.decode("ascii").lower(), int(port)
        # Scrapy builds TLS options, and so an OpenSSL context, per netloc; the context can
        # take an info callback until its first connection is made. Older Twisted already
        # uses the info callback for its own checks: that one is called first.
        previous = getattr(creator, "_identityVerifyingInfoCallback", None)

        def info(connection: SSL.Connection, where: int, ret: int) -> None:
            if previous is not None:
                previous(connection, where, ret)
            if where & SSL.SSL_CB_HANDSHAKE_DONE:
                self.record(connection, host, port)

        _get_creator_context(creator).set_info_callback(info)
        return creator

    def _trust_store(self) -> crypto.X509Store:
        if self._trust is None:
            self._trust, self._trust_problem = trust_store(self.ca_bundle)
        return self._trust

    def record(self, connection: SSL.Connection, host: str, port: int) -> None:
        """Store the facts of a finished handshake (called from OpenSSL's info callback)."""
        try:
            chain = connection.get_peer_cert_chain() or []
            if not chain:
                leaf = connection.get_peer_certificate()
                chain = [leaf] if leaf is not None else []
            if not chain:
                return
            key = (host, port, leaf_digest(chain[0]))
            digest = chain_digest(chain)
            known = self.facts.get(key)
            if known is not None and known["cert_chain_sha256"] == digest:
                return  # a later handshake message (TLS 1.3 session tickets) or a pooled twin
            cached = self._validated.get((digest, host))
            if cached is None:
                cached = validate(chain, host, self._trust_store())
                if not cached[0] and self._trust_problem:
                    cached = (False, f"{cached[1]}; {self._trust_problem}")
                self._validated[(digest, host)] = cached
                while len(self._validated) > self.facts.max_entries:
                    self._validated.popitem(last=False)
            valid, error = cached
            self.facts.put(key, {"tls_version": connection.get_protocol_version_name(), "cert_chain_sha256": digest,
                                 "cert_valid": valid, "cert_error": error})
        except Exception:  # recording must never break a fetch
            logger.exception("Could not record the TLS facts of %s:%s", host, port)


def connection_facts(response: Any, store: FactStore | None = None) -> dict[str, Any]:
    """``tls_version``, ``cert_chain_sha256``, ``cert_valid`` and ``cert_error`` of a response.

    All None for plain HTTP and for pages drawn by the browser (their raw capture carries
    the facts); for HTTPS whose handshake was not recorded (the factory is not configured,
    or the entry was dropped) ``cert_error`` says so.
    """
    facts = dict(EMPTY_FACTS)
    parts = urlsplit(response.url)
    if parts.scheme != "https" or "playwright" in getattr(response, "flags", ()):
        return facts
    certificate = getattr(response, "certificate", None)
    if certificate is None:
        facts["cert_error"] = "no certificate recorded for this response"
        return facts
    try:
        key = ((parts.hostname or "").lower(), parts.port or 443, leaf_digest(certificate))
    except (ValueError, crypto.Error, AttributeError) as exc:
        facts["cert_error"] = f"unreadable certificate: {exc}"
        return facts
    found = (store if store is not None else STORE).get(key)
    if found is None:
        facts["cert_error"] = "TLS handshake facts not recorded (is DOWNLOADER_CLIENTCONTEXTFACTORY set?)"
        return facts
    facts.update(found)
    return facts
