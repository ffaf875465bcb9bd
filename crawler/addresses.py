"""Where the crawler may connect: an address policy enforced on every fetch.

A government page can link to, redirect to, or load from any address, including the
crawler's own network: cloud metadata (169.254.169.254), private ranges, loopback. The
policy refuses every address that is not globally routable (private, loopback,
link-local, multicast, reserved, unspecified, shared/CGNAT, benchmarking, documentation,
IPv6 unique-local and the IPv4 addresses embedded in IPv6 forms), unless it lies in a
network listed in ``GOVEVIDENCE_ALLOWED_NETWORKS``, and every scheme but http(s). A name
is refused when ANY of the addresses it resolves to is refused, so a name that answers
with both a public and a private address cannot be used to reach the private one.

It is enforced at four points:

- ``AddressPolicyMiddleware`` (downloader middleware, runs right before the download
  handler): every Scrapy request, each redirect hop (redirects are scheduled again) and
  robots.txt fetches; it raises ``RefusedAddress``, recorded as ``private_address``.
- ``PolicyResolver`` (``TWISTED_DNS_RESOLVER``): the resolver Twisted connects with never
  hands out a refused address, so a name cannot be re-resolved to a private address
  between the middleware's check and the connection.
- ``abort_refused_request`` (``PLAYWRIGHT_ABORT_REQUEST``): every request chromium
  intercepts while rendering (documents, frames, subresources, fetch/XHR, beacons) is
  aborted when, and only when, its address is refused.
- ``GuardedBrowserProvider`` (``PLAYWRIGHT_BROWSER_PROVIDER``): chromium is launched with
  a SOCKS5 proxy served here, on loopback, inside the crawler. Every connection the browser
  opens, including those interception never sees (redirect hops, WebSockets, service
  workers, preconnects), asks this proxy, which resolves the name itself, checks every
  address and connects only to a checked one. With a SOCKS5 proxy Playwright also tells
  chromium not to resolve names itself.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.resolver import CachingThreadedResolver
from scrapy.settings import BaseSettings
from scrapy_playwright.provider import PlaywrightBrowserProvider
from twisted.internet import defer
from twisted.internet.error import DNSLookupError
from twisted.python.failure import Failure

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = frozenset({"http", "https"})
# Browser URLs that never open a connection (inline data, in-page objects).
LOCAL_BROWSER_SCHEMES = frozenset({"data", "blob", "about"})
STATS_SCRAPY = "govevidence/refused_requests"
STATS_BROWSER = "govevidence/refused_browser_requests"

# Special-purpose blocks that ``ipaddress`` does not name on every Python version.
_NAMED_NETWORKS: tuple[tuple[Network, str], ...] = tuple(
    (ipaddress.ip_network(net), reason) for net, reason in (
        ("0.0.0.0/8", "'this network' (0.0.0.0/8)"),
        ("100.64.0.0/10", "shared address space (CGNAT, 100.64.0.0/10)"),
        ("192.0.0.0/24", "IETF protocol assignments (192.0.0.0/24)"),
        ("192.0.2.0/24", "documentation (TEST-NET-1)"),
        ("198.51.100.0/24", "documentation (TEST-NET-2)"),
        ("203.0.113.0/24", "documentation (TEST-NET-3)"),
        ("198.18.0.0/15", "benchmarking (198.18.0.0/15)"),
        ("192.88.99.0/24", "6to4 relay anycast (192.88.99.0/24)"),
        ("240.0.0.0/4", "reserved (240.0.0.0/4)"),
        ("2001:db8::/32", "documentation (2001:db8::/32)"),
        ("3fff::/20", "documentation (3fff::/20)"),
        ("100::/64", "discard-only (100::/64)"),
        ("fc00::/7", "unique local (fc00::/7)"),
        ("fec0::/10", "site-local (fec0::/10)"),
        ("2001::/23", "IETF protocol assignments (2001::/23)"),
    )
)
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
# RFC 6761: names under these never resolve on the public internet.
_RESERVED_NAME_SUFFIXES = ("invalid",)


def parse_networks(value: Any) -> tuple[Network, ...]:
    """CIDRs from a list or a comma/space separated string; a bad entry raises ValueError."""
    if value is None:
        return ()
    items = value.replace(",", " ").split() if isinstance(value, str) else [str(v).strip() for v in value]
    networks = []
    for item in items:
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ValueError(f"GOVEVIDENCE_ALLOWED_NETWORKS: not a network: {item!r} ({exc})") from None
    return tuple(networks)


@dataclass(frozen=True)
class Refusal:
    """Why a URL or host may not be fetched."""

    host: str
    addresses: tuple[str, ...]
    reason: str

    def __str__(self) -> str:
        where = f"{self.host} -> {', '.join(self.addresses)}" if self.addresses and self.addresses != (self.host,) else self.host
        return f"{where}: {self.reason}"


class RefusedAddress(IgnoreRequest):
    """A request to an address the policy refuses (recorded as ``private_address``)."""

    def __init__(self, refusal: Refusal, url: str = "") -> None:
        self.refusal = refusal
        self.url = url
        self.host, self.addresses, self.reason = refusal.host, refusal.addresses, refusal.reason
        super().__init__(f"refused address {refusal}" + (f" for {url}" if url else ""))


class AddressPolicy:
    """Which IP addresses, hosts and URLs may be contacted."""

    def __init__(self, allowed_networks: Iterable[Network | str] = ()) -> None:
        self.allowed: tuple[Network, ...] = tuple(
            n if isinstance(n, (ipaddress.IPv4Network, ipaddress.IPv6Network)) else ipaddress.ip_network(n, strict=False)
            for n in allowed_networks)

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> "AddressPolicy":
        return cls(parse_networks(settings.get("GOVEVIDENCE_ALLOWED_NETWORKS")))

    def _allowed(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.allowed)

    def address_refusal(self, address: str | IPAddress) -> str | None:
        """None when the address may be contacted, else the reason it may not."""
        try:
            ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        except ValueError:
            return f"not an IP address: {address!r}"
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        if self._allowed(ip):
            return None
        if isinstance(ip, ipaddress.IPv6Address):
            embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
            if embedded is None and any(ip in net for net in _NAT64):
                embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
            if embedded is not None:
                inner = self.address_refusal(embedded)
                return f"embeds {embedded}: {inner}" if inner else None
        for flag, reason in (("is_unspecified", "unspecified"), ("is_loopback", "loopback"),
                             ("is_link_local", "link-local"), ("is_multicast", "multicast")):
            if getattr(ip, flag):
                return reason
        for net, reason in _NAMED_NETWORKS:
            if ip.version == net.version and ip in net:
                return reason
        if ip.is_private:
            return "private"
        if ip.is_reserved:
            return "reserved"
        if not ip.is_global:
            return "not globally routable"
        return None

    def addresses_refusal(self, host: str, addresses: Iterable[str]) -> Refusal | None:
        """A host is refused when any of its addresses is."""
        addresses = tuple(dict.fromkeys(addresses))
        reasons = [(a, r) for a in addresses if (r := self.address_refusal(a))]
        if not reasons:
            return None
        return Refusal(host, addresses, "; ".join(f"{a} is {r}" for a, r in reasons))

    def literal_refusal(self, host: str) -> Refusal | None | bool:
        """For a host without a lookup: a Refusal, None (allowed IP literal), or True (a name to resolve)."""
        bare = host.strip("[]").rstrip(".").lower()
        if not bare:
            return Refusal(host, (), "no host")
        try:
            ip = ipaddress.ip_address(bare)
        except ValueError:
            if bare.rsplit(".", 1)[-1] in _RESERVED_NAME_SUFFIXES:
                return Refusal(host, (), "reserved name (never resolvable)")
            return True
        reason = self.address_refusal(ip)
        return Refusal(host, (str(ip),), f"{ip} is {reason}") if reason else None

    def url_refusal(self, url: str) -> Refusal | None | bool:
        """Scheme and literal-host check of a URL (same answers as ``literal_refusal``)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            return Refusal(parts.netloc or url[:60], (), f"scheme {scheme or '(none)'!r} is not http(s)")
        return self.literal_refusal(parts.hostname or "")


class AddressGuard:
    """The policy plus name resolution (all addresses, cached briefly) and refusal counts."""

    def __init__(self, policy: AddressPolicy, stats: Any = None, *, dns_timeout: float = 30.0,
                 cache_seconds: float = 60.0, cache_size: int = 10_000) -> None:
        self.policy = policy
        self.stats = stats
        self.dns_timeout = dns_timeout
        self.cache_seconds = cache_seconds
        self.cache_size = cache_size
        self._cache: dict[str, tuple[float, tuple[str, ...]]] = {}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "AddressGuard":
        settings = crawler.settings
        return cls(AddressPolicy.from_settings(settings), crawler.stats,
                   dns_timeout=settings.getfloat("DNS_TIMEOUT", 60.0))

    async def resolve(self, host: str, port: int | None = None) -> tuple[str, ...]:
        """Every address of a name (IPv4 and IPv6); empty when it does not resolve."""
        key = host.rstrip(".").lower()
        cached = self._cache.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(key, port or 80, type=socket.SOCK_STREAM), self.dns_timeout)
        except (OSError, UnicodeError, asyncio.TimeoutError):
            return ()
        addresses = tuple(dict.fromkeys(info[4][0] for info in infos))
        if len(self._cache) >= self.cache_size:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = (time.monotonic() + self.cache_seconds, addresses)
        return addresses

    async def check_host(self, host: str, port: int | None = None) -> tuple[tuple[str, ...], Refusal | None]:
        """(addresses to connect to, refusal). Unresolvable names give ((), None)."""
        literal = self.policy.literal_refusal(host)
        if isinstance(literal, Refusal):
            return (), literal
        if literal is None:
            return (host.strip("[]"),), None
        addresses = await self.resolve(host, port)
        return addresses, self.policy.addresses_refusal(host, addresses)

    async def url_refusal(self, url: str) -> Refusal | None:
        literal = self.policy.url_refusal(url)
        if literal is not True:
            return literal or None
        parts = urlsplit(url)
        return (await self.check_host(parts.hostname or "", parts.port))[1]

    def count(self, key: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(key)


# The guard of the running crawl, shared with the browser hooks, which scrapy-playwright
# builds without access to the crawler. Without a crawl the strict default applies.
_current_guard: AddressGuard | None = None
# Names the resolver refused, so the middleware can record a DNS failure as what it was.
_resolver_refusals: dict[str, Refusal] = {}


def current_guard() -> AddressGuard:
    global _current_guard
    if _current_guard is None:
        _current_guard = AddressGuard(AddressPolicy())
    return _current_guard


def _dns_failure_types() -> tuple[type[BaseException], ...]:
    from scrapy import exceptions as scrapy_exc

    extra = getattr(scrapy_exc, "CannotResolveHostError", None)
    return (DNSLookupError,) + ((extra,) if extra else ())


class AddressPolicyMiddleware:
    """Refuses requests whose URL scheme, IP literal or resolved addresses the policy refuses."""

    def __init__(self, guard: AddressGuard) -> None:
        self.guard = guard
        self.dns_failures = _dns_failure_types()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> "AddressPolicyMiddleware":
        global _current_guard
        guard = AddressGuard.from_crawler(crawler)
        _current_guard = guard
        return cls(guard)

    async def process_request(self, request: Request) -> None:
        refusal = await self.guard.url_refusal(request.url)
        if refusal is not None:
            self._refuse(request, refusal)

    def process_exception(self, request: Request, exception: Exception) -> None:
        if isinstance(exception, self.dns_failures):
            host = (urlsplit(request.url).hostname or "").rstrip(".").lower()
            refusal = _resolver_refusals.pop(host, None)
            if refusal is not None:
                self._refuse(request, refusal)

    def _refuse(self, request: Request, refusal: Refusal) -> None:
        self.guard.count(STATS_SCRAPY)
        logger.warning("Refused %s: %s", request.url, refusal)
        raise RefusedAddress(refusal, request.url)


class PolicyResolver(CachingThreadedResolver):
    """Scrapy's caching resolver that never returns an address the policy refuses."""

    def __init__(self, reactor: Any, cache_size: int, timeout: float, policy: AddressPolicy) -> None:
        super().__init__(reactor, cache_size, timeout)
        self.policy = policy

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: Any) -> "PolicyResolver":
        settings = crawler.settings
        cache_size = settings.getint("DNSCACHE_SIZE") if settings.getbool("DNSCACHE_ENABLED") else 0
        return cls(reactor, cache_size, settings.getfloat("DNS_TIMEOUT"), AddressPolicy.from_settings(settings))

    def getHostByName(self, name: str, timeout: Any = ()) -> defer.Deferred:  # noqa: N802 (Twisted API)
        literal = self.policy.literal_refusal(name)
        if isinstance(literal, Refusal):
            return defer.fail(self._refused(name, literal))
        d = super().getHostByName(name, timeout)
        d.addCallback(self._checked, name)
        return d

    def _checked(self, address: str, name: str) -> str | Failure:
        refusal = self.policy.addresses_refusal(name, [address])
        if refusal is not None:
            return Failure(self._refused(name, refusal))
        return address

    @staticmethod
    def _refused(name: str, refusal: Refusal) -> DNSLookupError:
        key = name.rstrip(".").lower()
        if len(_resolver_refusals) > 1000:
            _resolver_refusals.clear()
        _resolver_refusals[key] = refusal
        logger.warning("Resolver refused %s", refusal)
        return DNSLookupError(f"refused address {refusal}")


# --- the browser ----------------------------------------------------------------------

async def abort_refused_request(request: Any) -> bool:
    """``PLAYWRIGHT_ABORT_REQUEST``: abort a browser request only when its address is refused."""
    scheme = urlsplit(request.url).scheme.lower()
    if scheme in LOCAL_BROWSER_SCHEMES:
        return False
    guard = current_guard()
    refusal = await guard.url_refusal(request.url)
    if refusal is None:
        return False
    guard.count(STATS_BROWSER)
    guard.count(f"{STATS_BROWSER}/intercepted")
    logger.warning("Browser request refused (%s %s): %s", request.resource_type, request.url[:200], refusal)
    return True


class PolicyProxy:
    """A SOCKS5 (RFC 1928, CONNECT, no authentication) proxy on loopback that connects only
    to addresses the policy accepts, and only to the very addresses it checked."""

    REPLY_OK, REPLY_NOT_ALLOWED, REPLY_HOST_UNREACHABLE, REPLY_BAD_COMMAND, REPLY_BAD_ADDRESS = 0, 2, 4, 7, 8

    def __init__(self, guard_getter: Any = current_guard, connect_timeout: float = 30.0) -> None:
        self.guard_getter = guard_getter
        self.connect_timeout = connect_timeout
        self.server: asyncio.base_events.Server | None = None

    async def start(self, host: str = "127.0.0.1") -> int:
        self.server = await asyncio.start_server(self._serve, host, 0)
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    @staticmethod
    def _reply(writer: asyncio.StreamWriter, code: int) -> None:
        writer.write(bytes([5, code, 0, 1, 0, 0, 0, 0, 0, 0]))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: asyncio.StreamWriter | None = None
        try:
            version, count = await reader.readexactly(2)
            methods = await reader.readexactly(count)
            if version != 5 or 0 not in methods:
                writer.write(b"\x05\xff")
                return
            writer.write(b"\x05\x00")
            version, command, _, kind = await reader.readexactly(4)
            if kind == 1:
                host = socket.inet_ntop(socket.AF_INET, await reader.readexactly(4))
            elif kind == 4:
                host = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
            elif kind == 3:
                host = (await reader.readexactly((await reader.readexactly(1))[0])).decode("idna")
            else:
                self._reply(writer, self.REPLY_BAD_ADDRESS)
                return
            port = int.from_bytes(await reader.readexactly(2), "big")
            if command != 1:
                self._reply(writer, self.REPLY_BAD_COMMAND)
                return
            guard = self.guard_getter()
            addresses, refusal = await guard.check_host(host, port)
            if refusal is not None:
                guard.count(STATS_BROWSER)
                guard.count(f"{STATS_BROWSER}/proxy")
                logger.warning("Browser connection refused (%s:%s): %s", host, port, refusal)
                self._reply(writer, self.REPLY_NOT_ALLOWED)
                return
            up_reader = None
            for address in addresses:
                try:
                    up_reader, upstream = await asyncio.wait_for(
                        asyncio.open_connection(address, port), self.connect_timeout)
                    break
                except (OSError, asyncio.TimeoutError):
                    continue
            if upstream is None or up_reader is None:
                self._reply(writer, self.REPLY_HOST_UNREACHABLE)
                return
            self._reply(writer, self.REPLY_OK)
            await writer.drain()
            await asyncio.gather(self._pipe(reader, upstream), self._pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError, UnicodeError, OSError):
            pass
        finally:
            for stream in (upstream, writer):
                if stream is not None:
                    stream.close()

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
            if sink.can_write_eof():
                sink.write_eof()
        except (ConnectionError, OSError):
            sink.close()


class GuardedBrowserProvider(PlaywrightBrowserProvider):
    """``PLAYWRIGHT_BROWSER_PROVIDER``: launches chromium behind ``PolicyProxy``."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.proxy = PolicyProxy()
        self.proxy_port: int | None = None

    async def start(self) -> None:
        await super().start()
        self.proxy_port = await self.proxy.start()
        logger.info("Browser connections go through the address policy proxy on 127.0.0.1:%s", self.proxy_port)

    async def launch_browser(self) -> Any:
        if self.browser_type is None or self.config.cdp_url or self.config.connect_url:
            if self.config.cdp_url or self.config.connect_url:
                logger.warning("Remote browser: only intercepted requests are checked against the address policy")
            return await super().launch_browser()
        options = {**self.config.launch_options,
                   "proxy": {"server": f"socks5://127.0.0.1:{self.proxy_port}"}}
        logger.info("Launching browser %s", self.browser_type.name)
        browser = await self.browser_type.launch(**options)
        # Service workers fetch outside request interception: every context of this
        # browser, however it is created, blocks them.
        new_context = browser.new_context

        async def new_context_without_service_workers(**kwargs: Any) -> Any:
            kwargs.setdefault("service_workers", "block")
            return await new_context(**kwargs)

        browser.new_context = new_context_without_service_workers  # type: ignore[method-assign]
        return browser

    async def launch_persistent_context(self, context_kwargs: dict) -> Any:
        kwargs = {"service_workers": "block", **context_kwargs}
        if not (self.config.cdp_url or self.config.connect_url):
            kwargs.setdefault("proxy", {"server": f"socks5://127.0.0.1:{self.proxy_port}"})
        return await super().launch_persistent_context(kwargs)

    async def close(self) -> None:
        await self.proxy.close()
        await super().close()
