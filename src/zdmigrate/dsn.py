"""Database URLs and libpq DSNs: refused before use when unusable, and shown without secrets.

Warning: libpq's own parse errors quote the whole string they could not read,
password included (``missing "=" after "postgress://app:s3cr3t@db/shop"``), so
no message of libpq's about a URL is ever passed on; `problem` says what is
wrong in words of its own, and `redact` shows only what it can prove holds no
password (the scheme and host of a URL libpq cannot parse; nothing of a
``key=value`` string it cannot parse).

    redact("postgresql://app:s3cr3t@db/shop")   # 'postgresql://app:***@db/shop'
    redact("postgress://app:s3cr3t@db/shop")    # 'postgress://db (cannot be parsed)'
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

#: URL schemes zdmigrate accepts; the SQLAlchemy spellings become ``postgresql://``.
SCHEMES = ("postgresql", "postgres")
_DRIVER_SCHEMES = ("postgresql+psycopg", "postgresql+psycopg2", "postgres+psycopg")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_UNPARSEABLE_DSN = "<a connection string that cannot be parsed>"


def normalize_url(url: str) -> str:
    """Accept SQLAlchemy-style URLs (``postgresql+psycopg://``) as libpq URLs."""
    match = _SCHEME.match(url)
    if match and match.group(1) in _DRIVER_SCHEMES:
        return "postgresql://" + url[match.end():]
    return url


def problem(url: str) -> str | None:
    """Why `url` is not a PostgreSQL URL or DSN libpq can use, in a sentence; None if it is.

    The sentence never quotes `url` (it may hold a password).
    """
    match = _SCHEME.match(url)
    if match:
        scheme = match.group(1)
        if scheme.lower() in SCHEMES + _DRIVER_SCHEMES and scheme not in SCHEMES + _DRIVER_SCHEMES:
            return (f"the database URL's scheme {scheme}:// must be written in lower case "
                    f"({scheme.lower()}://)")
        if scheme not in SCHEMES + _DRIVER_SCHEMES:
            return (f"the database URL is a {scheme}:// URL; zdmigrate needs a PostgreSQL URL "
                    "(postgresql://user@host/dbname) or key=value settings")
    reason = _libpq_reason(normalize_url(url))
    if reason is None:
        return None
    if match:
        return f"the database URL cannot be parsed: {reason}"
    return ("the database URL is neither a postgresql:// URL nor key=value settings libpq can "
            f"read: {reason}")


def redact(url: str | None) -> str:
    """`url` with any password replaced by ``***``: safe to print, whatever `url` holds."""
    if not url:
        return "<none>"
    password = _password(url)
    if password is _UNREADABLE:
        return _scheme_and_host(url)
    match = _SCHEME.match(url)
    if match:
        shown = _redact_url(url)
    else:
        shown = re.sub(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", url)
    # libpq may read a password where the URL syntax does not put one (an unescaped
    # / or ? in it): show nothing that contains it
    if isinstance(password, str) and password and password in shown:
        return _scheme_and_host(url) if match else _UNPARSEABLE_DSN
    return shown


def scrub(text: str, url: str | None) -> str:
    """`text` (e.g. a driver's error message) with `url` and its password taken out."""
    if not url:
        return text
    text = text.replace(url, redact(url))
    password = _password(url)
    if isinstance(password, str) and password:
        text = text.replace(password, "***")
    return text


_UNREADABLE = object()


def _password(url: str) -> str | object | None:
    """The password libpq reads from `url`: None if none, _UNREADABLE if libpq cannot parse it."""
    match = _SCHEME.match(url)
    if match and match.group(1) not in SCHEMES + _DRIVER_SCHEMES:
        return _UNREADABLE
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(normalize_url(url))
    except ProgrammingError:
        return _UNREADABLE
    password = params.get("password")
    return None if password is None else str(password)


def _libpq_reason(url: str) -> str | None:
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(url)
    except ProgrammingError as exc:
        message = str(exc)
        if "percent-encoded" in message:
            return "a % is not followed by two hex digits (write a literal % as %25)"
        if "IPv6" in message or '"]"' in message:
            return "a [ opens an IPv6 host address that is never closed with ]"
        if 'missing "="' in message:
            return "each setting must be written key=value"
        if "unterminated quoted string" in message:
            return "a quoted value is never closed"
        if "invalid connection option" in message:
            return "it names a setting libpq does not know"
        return "libpq cannot parse it"
    return None


def _redact_url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return _scheme_and_host(url)
    netloc = parts.netloc
    after_host = url.split("://", 1)[1][len(netloc):]
    if "@" in after_host:
        # an @ after the host part: a password with an unescaped / ? or # in it
        return _scheme_and_host(url)
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = re.sub(r"(?i)(password=)[^&]*", r"\1***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _scheme_and_host(url: str) -> str:
    match = _SCHEME.match(url)
    if not match:
        return _UNPARSEABLE_DSN
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        host = ""
    # the host part follows the last @ of the authority, so it never holds the password
    host = host if re.fullmatch(r"[A-Za-z0-9.:_-]*", host) else ""
    return f"{match.group(1)}://{host} (cannot be parsed)"
