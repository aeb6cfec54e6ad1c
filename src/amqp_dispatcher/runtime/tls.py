"""TLS: the settings of an amqps:// connection, and the one SSL context built from them at start.

Owns turning cafile, certfile, keyfile and verify into an ssl.SSLContext, and every way that
can fail (a missing or unreadable file, an encrypted key that OpenSSL would otherwise prompt
for) as one ConfigurationError, so that a bad file is a setting error at start rather than a
connection failure retried until startup_timeout. Knows nothing of URLs or of pika.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from .errors import ConfigurationError


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsSettings:
    verify: bool = True
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    server_hostname: str | None = None
    # Built once at start from the settings above (see build_context), so that every connection
    # shares it and a bad file is reported before any connection is tried.
    context: ssl.SSLContext | None = field(default=None, compare=False, repr=False)


def build_context(tls: TlsSettings) -> ssl.SSLContext:
    """The TLS context of the settings; a file that is missing or unreadable is a ConfigurationError."""
    try:
        context = ssl.create_default_context(cafile=tls.cafile)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cafile in RABBITMQ_URL: {_shown(tls.cafile)}: {_file_problem(exc)}") from None
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if tls.certfile:
        try:
            context.load_cert_chain(tls.certfile, tls.keyfile, password=_no_key_password)
        except _EncryptedKey:
            raise ConfigurationError(
                f"keyfile in RABBITMQ_URL: {_shown(tls.keyfile or tls.certfile)} is encrypted, and amqp-dispatcher "
                "cannot prompt for its password; give it an unencrypted key"
            ) from None
        except (OSError, ValueError) as exc:
            files = _shown(tls.certfile) + (f" and {_shown(tls.keyfile)}" if tls.keyfile else "")
            raise ConfigurationError(f"certfile/keyfile in RABBITMQ_URL: {files}: {_file_problem(exc)}") from None
    return context


class _EncryptedKey(Exception):
    """The key file asks for a password (OpenSSL would otherwise prompt on the terminal)."""


def _no_key_password() -> bytes:
    raise _EncryptedKey


def _file_problem(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"not a PEM file OpenSSL can read ({exc.reason or exc})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _shown(path: str | None) -> str:
    """A file name in a message: quoted, escaped, never long."""
    text = path or ""
    return repr(text if len(text) <= 200 else text[:197] + "...")
