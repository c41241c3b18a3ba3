"""HTTP requests to the origin (Apache) and to the web front.

Requests carry ``Accept-Encoding: identity``, so a server that compresses on the fly
returns the file's own encoding. They follow no redirect, so a redirect is compared as it
is. Paths are percent-encoded byte for byte from their UTF-8 form: ``+``, ``%``,
spaces and non-ASCII characters reach the server as the names they are.
"""

from __future__ import annotations

import hashlib
import ssl
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import urllib3

from tacops.foundation.errors import InvalidInputError, UnreachableError
from tacops.foundation.i18n import _

USER_AGENT = "tacops-static-zones"


@dataclass(frozen=True)
class ObjectHeaders:
    """The three headers a bucket object carries for the apps."""

    content_type: str | None
    content_encoding: str | None
    cache_control: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"content_type": self.content_type, "content_encoding": self.content_encoding,
                "cache_control": self.cache_control}


@dataclass(frozen=True)
class Answer:
    url: str
    status: int
    headers: ObjectHeaders
    location: str | None
    sha256: str | None = None
    size: int | None = None
    body: bytes | None = None


def encode_path(path: str) -> str:
    """Percent-encode a relative path for a URL, keeping only the slashes and unreserved characters."""
    return urllib.parse.quote(path, safe="/")


def check_base_url(url: str, option: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidInputError(_("{option} must be an http:// or https:// URL, not {value!r}.").format(
            option=option, value=url), hint=_("For example: {option} https://app-static.example.org/").format(
                option=option))
    return url if url.endswith("/") else url + "/"


def tls_hint(error: Exception) -> str:
    text = str(error)
    if "mismatch" in text or "doesn't match" in text or "not valid for" in text:
        return _("Use in the URL a name that the certificate carries (map it to the server in /etc/hosts if "
                 "needed).")
    return _("Give the CA that signed its certificate (verify.ca_file).")


def guard_lab_address(host: str) -> None:
    """Check the route before connecting to an address of the built-in lab.

    An address in the lab's subnet must be reached through the lab's bridge. After the lab
    is torn down, the same address would otherwise go out by the default route.
    """
    import ipaddress

    from tacops.foundation.description import load_description
    from tacops.foundation.errors import RouteGuardError
    from tacops.lab import guard

    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        return
    for profile in load_description().profiles.values():
        network = getattr(profile, "network", None)
        if network is not None and address in network.subnet:
            try:
                guard.verify_route(host, network.bridge)
            except guard.RouteRejected as error:
                raise RouteGuardError(_("Connection to {address} rejected: {error}.").format(
                    address=host, error=error),
                    hint=_("Start the lab with 'tacops lab up'; the lab only connects to addresses on its own "
                           "bridge.")) from None


class Client:
    """A pooled, thread-safe HTTP client for one base URL."""

    def __init__(self, base_url: str, *, option: str, ca_file: Path | None = None, workers: int = 16,
                 timeout: float = 30.0) -> None:
        self.base_url = check_base_url(base_url, option)
        self.option = option
        parsed = urllib.parse.urlsplit(self.base_url)
        self.host = parsed.hostname or ""
        guard_lab_address(self.host)
        kwargs: dict[str, object] = {}
        if parsed.scheme == "https":
            kwargs["cert_reqs"] = "CERT_REQUIRED"
            if ca_file is not None:
                kwargs["ca_certs"] = str(ca_file)
        self.pool = urllib3.PoolManager(num_pools=4, maxsize=workers, block=True, retries=False,
                                        timeout=urllib3.Timeout(connect=10.0, read=timeout), **kwargs)

    def url(self, path: str) -> str:
        """``path`` is relative ("json/x.json"), or a raw request path starting with "/"."""
        if path.startswith("/"):
            parsed = urllib.parse.urlsplit(self.base_url)
            return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, path, "", ""))
        return self.base_url + encode_path(path)

    def request(self, method: str, path: str, *, keep_body: bool = False) -> Answer:
        url = self.url(path)
        try:
            response = self.pool.request(method, url, redirect=False, preload_content=False, decode_content=False,
                                         headers={"Accept-Encoding": "identity", "User-Agent": USER_AGENT})
        except urllib3.exceptions.SSLError as error:
            raise UnreachableError(_("TLS failed with {url}: {error}").format(url=url, error=error), host=self.host,
                                   hint=tls_hint(error)) from None
        except urllib3.exceptions.HTTPError as error:
            raise UnreachableError(_("{url} is unreachable: {error}").format(url=url, error=error), host=self.host,
                                   hint=_("Check {option} and that the server runs.").format(option=self.option)) \
                from None
        try:
            digest, size, body = hashlib.sha256(), 0, bytearray()
            if method != "HEAD":
                for chunk in response.stream(1 << 16, decode_content=False):
                    digest.update(chunk)
                    size += len(chunk)
                    if keep_body:
                        body += chunk
        finally:
            response.release_conn()
        headers = response.headers
        return Answer(url=url, status=response.status,
                      headers=ObjectHeaders(headers.get("Content-Type"), headers.get("Content-Encoding"),
                                            headers.get("Cache-Control")),
                      location=headers.get("Location"),
                      sha256=None if method == "HEAD" else digest.hexdigest(),
                      size=None if method == "HEAD" else size,
                      body=bytes(body) if keep_body else None)

    def head(self, path: str) -> Answer:
        return self.request("HEAD", path)

    def get(self, path: str, *, keep_body: bool = False) -> Answer:
        return self.request("GET", path, keep_body=keep_body)

    def close(self) -> None:
        self.pool.clear()


def normalize_location(location: str | None, request_url: str) -> str | None:
    """Reduce a redirect target to path and query, so an origin and a front on different hosts compare."""
    if location is None:
        return None
    absolute = urllib.parse.urljoin(request_url, location)
    parsed = urllib.parse.urlsplit(absolute)
    path = urllib.parse.quote(urllib.parse.unquote(parsed.path), safe="/")
    return path + (f"?{parsed.query}" if parsed.query else "")


def peer_chain_spki(url: str, *, ca_file: Path | None, timeout: float = 10.0) -> list[str]:
    """Return the SHA-256 pins (base64) of the public keys the server at ``url`` presents, leaf first.

    The verified chain is read where Python offers it, so a pin on an intermediate or root
    matches as it does for the apps. Otherwise only the leaf is read.
    """
    import base64
    import socket

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname or "", parsed.port or 443
    guard_lab_address(host)
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw:
            with context.wrap_socket(raw, server_hostname=host) as tls:
                ders: list[bytes] = []
                getter = getattr(tls, "get_verified_chain", None) or getattr(
                    getattr(tls, "_sslobj", None), "get_verified_chain", None)
                if getter is not None:
                    for certificate in getter():
                        ders.append(certificate.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]
                                    if not isinstance(certificate, bytes) else certificate)
                if not ders:
                    ders = [tls.getpeercert(binary_form=True) or b""]
    except ssl.SSLError as error:
        raise UnreachableError(_("TLS failed with {url}: {error}").format(url=url, error=error), host=host,
                               hint=tls_hint(error)) from None
    except OSError as error:
        raise UnreachableError(_("{url} is unreachable: {error}").format(url=url, error=error), host=host,
                               hint=_("Check {option} and that the server runs.").format(option="--front")) from None
    pins = []
    for der in ders:
        certificate = x509.load_der_x509_certificate(der)
        spki = certificate.public_key().public_bytes(serialization.Encoding.DER,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo)
        pins.append(base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii"))
    return pins
