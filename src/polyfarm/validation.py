"""Pure checks for what reaches polyfarm from outside: browser origins, host names, DSNs and
bearer tokens. Each returns the normalised value or raises ``ValueError`` with a message that
never repeats a secret; the settings tree and the API's host check call them.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qsl, urlsplit

MIN_TOKEN_LENGTH = 16
DSN_SCHEMES = ("postgresql", "postgres")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# One DNS label: letters, digits and inner hyphens, at most 63 characters.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")


def is_ip_literal(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def normalise_host(text: str) -> str:
    """A host name or IP literal, lower-cased; IPv6 without brackets. Raises ValueError."""
    host = text.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if is_ip_literal(host):
        return str(ipaddress.ip_address(host))
    if host.endswith("."):
        host = host[:-1]  # the root label: "example.com." is "example.com"
    if not _HOSTNAME.fullmatch(host):
        raise ValueError(f"{text!r} is not a host name or IP address")
    return host


def normalise_host_pattern(text: str) -> str:
    """An allowed ``Host``: a host name, an IP literal or ``*.domain`` (any subdomain)."""
    if text.strip().startswith("*."):
        return "*." + normalise_host(text.strip()[2:])
    return normalise_host(text)


def host_matches(host: str, patterns: tuple[str, ...]) -> bool:
    """Whether a normalised host is one of ``patterns`` (see ``normalise_host_pattern``)."""
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


def host_of_header(value: str) -> str | None:
    """The host part of an HTTP ``Host`` header (port dropped), normalised; None if malformed."""
    value = value.strip()
    if value.startswith("["):
        host, bracket, port = value[1:].partition("]")
        if not bracket or (port and not port.startswith(":")):
            return None
        port = port[1:]
    else:
        host, _, port = value.partition(":")
    if port and not _is_port(port):  # RFC 9110 allows an empty port after the colon
        return None
    try:
        return normalise_host(host)
    except ValueError:
        return None


def normalise_origin(text: str) -> str:
    """A browser origin as browsers send it: ``scheme://host[:port]``, lower-case, no default
    port, no path. One trailing ``/`` is forgiven; anything else that is not an origin (``*``
    in any disguise, ``null``, paths, credentials, queries) raises ValueError."""
    if "*" in text:
        raise ValueError(f"{text!r}: a wildcard origin is refused; list each origin explicitly")
    candidate = text.strip().removesuffix("/")
    try:
        parts = urlsplit(candidate)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an origin: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"{text!r} is not an origin: it must start with http:// or https://")
    if parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"{text!r} is not an origin: only scheme://host[:port] is allowed")
    host = normalise_host(parts.hostname or "")
    shown = f"[{host}]" if ":" in host else host
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{shown}"
    return f"{scheme}://{shown}:{port}"


def check_token(token: str) -> str:
    """A bearer token: at least ``MIN_TOKEN_LENGTH`` printable ASCII characters, no spaces."""
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(
            f"the token must be at least {MIN_TOKEN_LENGTH} characters (it has {len(token)}); "
            "unset it to leave the API open on loopback"
        )
    if not all("!" <= char <= "~" for char in token):
        raise ValueError("the token may hold printable ASCII characters only, without spaces")
    return token


def check_dsn(dsn: str) -> str:
    """A PostgreSQL URL asyncpg and libpq can both read; the message never shows its password.

    Checked up front so that a typo is one clear line at start, not a traceback from deep in
    the driver (which, for one, takes port 99999 as 99999 modulo 65536).
    """
    try:
        parts = urlsplit(dsn)
    except ValueError as exc:
        raise ValueError(f"the database URL is malformed ({exc})") from None
    if parts.scheme not in DSN_SCHEMES:
        shown = parts.scheme or "none"
        raise ValueError(f"the database URL must start with postgresql:// (scheme: {shown})")
    hosts = parts.netloc.rpartition("@")[2]
    for host in filter(None, hosts.split(",")):
        _check_host_and_port(host)
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "port" and not all(_is_port(p) for p in value.split(",")):
            raise ValueError("the database URL's port must be a number from 1 to 65535")
    return dsn


def _check_host_and_port(host: str) -> None:
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            raise ValueError("the database URL has an unclosed '[' in its host")
        port = host[end + 1 :].removeprefix(":")
    else:
        port = host.partition(":")[2]
    if port and not _is_port(port):
        raise ValueError("the database URL's port must be a number from 1 to 65535")


def _is_port(text: str) -> bool:
    return text.isascii() and text.isdigit() and 1 <= int(text) <= 65535
