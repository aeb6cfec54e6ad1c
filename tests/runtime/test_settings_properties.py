"""Connection settings over generated inputs: any environment gives settings or one clear error,
and no shape of URL ever lets its password into a message, a description or a log line."""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from amqp_dispatcher.runtime.errors import ConfigurationError
from amqp_dispatcher.runtime.pika_transport import connection
from amqp_dispatcher.runtime.settings import ConnectionSettings, from_environment, parse_url

VARIABLES = (
    "RABBITMQ_URL",
    "RABBITMQ_HOST",
    "RABBITMQ_HOSTS",
    "RABBITMQ_PORT",
    "RABBITMQ_USER",
    "RABBITMQ_PASS",
    "RABBITMQ_VHOST",
    "RABBITMQ_HEARTBEAT",
)
# Any character, lone surrogates included: the environment hands undecodable bytes in as those.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=30)
# Digits of other scripts and forms, which str.isdigit() accepts and int() reads or refuses.
ODD_DIGITS = st.sampled_from(["²", "١٢", "٥٦٧٢", "５６７２", "1_0", " 5 ", "+5", "-0", "0x10", "5672\n", "1e3", "९"])


def settle(environ: dict[str, str]) -> ConnectionSettings | ConfigurationError:
    try:
        return from_environment(environ, default_heartbeat=20)
    except ConfigurationError as error:
        return error


@contextlib.contextmanager
def captured_logs() -> Iterator[list[str]]:
    """Every line the runtime's loggers write meanwhile, formatted."""
    lines: list[str] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: lines.append(handler.format(record))  # type: ignore[method-assign]
    root = logging.getLogger("amqp-dispatcher")
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def url_variants() -> st.SearchStrategy[str]:
    """RABBITMQ_URL values: mostly well-formed pieces put together, some of them wrong."""
    host = st.sampled_from(["h", "127.0.0.1", "[::1]", "rabbit.internal", "", " ", "h\n", "é.example"])
    port = st.sampled_from(["", ":5672", ":1", ":0", ":70000", ":x", ":٥٦٧٢", ":²", ":"])
    hosts = st.lists(st.tuples(host, port).map("".join), min_size=1, max_size=3).map(",".join)
    path = st.sampled_from(["", "/", "/v", "/%2F", "/a/b", "/%ff", "/" + "v" * 300, "#frag"])
    query = st.sampled_from(
        ["", "?heartbeat=5", "?heartbeat=²", "?heartbeat=", "?heartbeat=1&heartbeat=2", "?x=1", "?connection_timeout=٣"]
    )
    scheme = st.sampled_from(["amqp", "amqps", "http", "AMQP"])
    credentials = st.sampled_from(["", "u:p@", "u@", ":p@", "u:p%ff@", "u%ff:p@", "u\udcff:p@", "u:p\udcff@"])
    return st.tuples(scheme, credentials, hosts, path, query).map(lambda p: f"{p[0]}://{p[1]}{p[2]}{p[3]}{p[4]}")


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(VARIABLES), st.one_of(ANY_TEXT, ODD_DIGITS, url_variants()), max_size=len(VARIABLES)
    )
)
@example({"RABBITMQ_PORT": "²"})
@example({"RABBITMQ_HEARTBEAT": "١٠"})
@example({"RABBITMQ_URL": "amqp://h:٥٦٧٢/"})
@example({"RABBITMQ_USER": "\udcff"})
@example({"RABBITMQ_VHOST": "v" * 256})
def test_any_environment_gives_usable_settings_or_one_line_naming_the_problem(environ: dict[str, str]) -> None:
    outcome = settle(environ)
    if isinstance(outcome, ConfigurationError):
        message = str(outcome)
        assert message and "\n" not in message and message.isprintable(), message
        assert "RABBITMQ_" in message or "cafile" in message or "keyfile" in message, message
        return
    # What the settings accept, pika accepts: building the connection parameters never raises.
    for endpoint in outcome.endpoints:
        connection._parameters(outcome, endpoint, "test", None)
    assert outcome.describe().isprintable()


@pytest.mark.parametrize("value", ["²", "١٢", "５６７２", "0", "65536", "1.5"])
def test_a_port_is_ascii_digits_from_1_to_65535(value: str) -> None:
    outcome = settle({"RABBITMQ_PORT": value})
    assert isinstance(outcome, ConfigurationError) and "port" in str(outcome)


@pytest.mark.parametrize("value", ["²", "١٠", "-1", "65536", "soon", "None"])
def test_a_heartbeat_is_ascii_digits_from_0_to_65535(value: str) -> None:
    outcome = settle({"RABBITMQ_HEARTBEAT": value})
    assert isinstance(outcome, ConfigurationError) and "RABBITMQ_HEARTBEAT" in str(outcome)


TOKEN = "S3CR"
SECRET_PIECES = st.lists(
    st.tuples(st.integers(0, 99), st.sampled_from(["", "/", "?", "#", "@", ":", "%", "&", "=", ",", " ", "%2F", "é"])),
    min_size=1,
    max_size=5,
).map(lambda pieces: "".join(f"{TOKEN}{number}{separator}" for number, separator in pieces))


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(
    secret=SECRET_PIECES,
    user=st.sampled_from(["svc", "", "a:b", "u@x", "us/er"]),
    rest=st.tuples(
        st.sampled_from(["h", "h:5672", "h1,h2:5673", "h1:1,h2", "[::1]:x", "", "h,,h", "h:٥"]),
        st.sampled_from(["", "/", "/v", "/a/b", "/v?heartbeat=x", "/v?nope=1", "?heartbeat=", "/%ff", "#f"]),
    ),
    scheme=st.sampled_from(["amqp", "amqps", "amqp+ssl"]),
)
@example(secret=f"{TOKEN}1/{TOKEN}2", user="svc", rest=("h", "/v"), scheme="amqp")
@example(secret=f"{TOKEN}1?{TOKEN}2", user="svc", rest=("h", "/v"), scheme="amqp")
@example(secret=f"{TOKEN}1#", user="svc", rest=("h:99", ""), scheme="amqp")
def test_no_url_shape_lets_its_password_into_any_output(
    secret: str, user: str, rest: tuple[str, str], scheme: str
) -> None:
    url = f"{scheme}://{user}:{secret}@{rest[0]}{rest[1]}"
    with captured_logs() as lines:
        outcome = settle({"RABBITMQ_URL": url, "RABBITMQ_PASS": "other"})
    if isinstance(outcome, ConfigurationError):
        shown = [str(outcome), repr(outcome)]
    else:
        shown = [outcome.describe(), repr(outcome), *(str(endpoint) for endpoint in outcome.endpoints)]
    shown += lines
    for text in shown:
        assert TOKEN not in text, f"{url!r} leaked into: {text}"


def test_a_message_that_would_show_a_piece_of_the_password_gives_way_to_a_general_one() -> None:
    """The second line of defence, which must not tell which of our words the password holds."""
    from amqp_dispatcher.runtime import settings as module

    url = "amqp://u:S3cret-part/more@h/"
    masked = module._masked("the port of 'h' is S3cret-part (and S3cret-part/more)", url)
    assert "S3cret" not in masked and masked.startswith("RABBITMQ_URL cannot be read")
    general = module._masked("port", "amqp://u:port@h/")
    for password in ("port", "host", "RABBITMQ", "URL", "number"):
        outcome = settle({"RABBITMQ_URL": f"amqp://u:{password}@h:x/"})
        assert str(outcome) == general, "the same general line, whichever of our words the password holds"


def test_a_missing_or_unreadable_certificate_file_is_a_setting_error(tmp_path: Path) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate")
    cases = {
        "amqps://h/?cafile=/nonexistent/ca.pem": "cafile in RABBITMQ_URL: '/nonexistent/ca.pem': No such file",
        f"amqps://h/?cafile={tmp_path}": "Is a directory",
        f"amqps://h/?cafile={not_pem}": "not a PEM file OpenSSL can read",
        f"amqps://h/?certfile={not_pem}": "certfile/keyfile in RABBITMQ_URL",
    }
    for url, expected in cases.items():
        outcome = settle({"RABBITMQ_URL": url})
        assert isinstance(outcome, ConfigurationError) and expected in str(outcome), (url, outcome)


def test_an_encrypted_key_is_refused_rather_than_prompting_for_its_password(tmp_path: Path) -> None:
    import subprocess

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        [*command, "-days", "1", "-subj", "/CN=test", "-passout", "pass:secret"], check=True, capture_output=True
    )
    outcome = settle({"RABBITMQ_URL": f"amqps://h/?certfile={cert}&keyfile={key}"})
    assert isinstance(outcome, ConfigurationError) and "is encrypted" in str(outcome)


def test_the_tls_context_is_built_once_at_start_and_shared() -> None:
    result = from_environment({"RABBITMQ_URL": "amqps://h1:5671,h2:5671/?verify=verify_none"}, default_heartbeat=20)
    assert result.tls is not None and isinstance(result.tls.context, ssl.SSLContext)
    first, second = (connection._ssl_options(result, endpoint) for endpoint in result.endpoints)
    assert first is not None and second is not None and first.context is second.context is result.tls.context


def test_rabbitmq_hosts_of_the_oldest_versions_is_read_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    result = from_environment({"RABBITMQ_HOSTS": "r1,r2", "RABBITMQ_PORT": "5673"}, default_heartbeat=20)
    assert [str(endpoint) for endpoint in result.endpoints] == ["r1:5673", "r2:5673"]
    assert "RABBITMQ_HOSTS is the name of amqp-dispatcher 0.0.x" in caplog.text


def test_an_option_given_twice_is_refused_rather_than_silently_taking_one() -> None:
    with pytest.raises(ConfigurationError, match="heartbeat is given more than once"):
        parse_url("amqp://h/?heartbeat=1&heartbeat=2", default_heartbeat=20)


def test_a_port_in_rabbitmq_host_is_pointed_to_rabbitmq_port() -> None:
    with pytest.raises(ConfigurationError, match="holds a port; write RABBITMQ_PORT=5673 instead"):
        from_environment({"RABBITMQ_HOST": "rabbit:5673"}, default_heartbeat=20)
    assert from_environment({"RABBITMQ_HOST": "::1"}, default_heartbeat=20).endpoints[0].host == "::1"
