"""Connection settings from the environment: RABBITMQ_URL and the separate variables."""

from __future__ import annotations

import pytest

from amqp_dispatcher.runtime.errors import ConfigurationError
from amqp_dispatcher.runtime.settings import Endpoint, from_environment, parse_url


def settings(**environ: str):  # type: ignore[no-untyped-def]
    return from_environment(environ, default_heartbeat=20)


def test_defaults_are_the_originals_guest_on_localhost() -> None:
    result = settings()
    assert result.endpoints == (Endpoint("localhost", 5672),)
    assert (result.username, result.password, result.vhost, result.heartbeat) == ("guest", "guest", "/", 20)
    assert result.tls is None


def test_separate_variables() -> None:
    result = settings(
        RABBITMQ_HOST="rabbit.internal",
        RABBITMQ_PORT="5673",
        RABBITMQ_USER="svc",
        RABBITMQ_PASS="s3cret",
        RABBITMQ_VHOST="team/orders",
        RABBITMQ_HEARTBEAT="7",
    )
    assert result.endpoints == (Endpoint("rabbit.internal", 5673),)
    assert (result.username, result.password, result.vhost, result.heartbeat) == ("svc", "s3cret", "team/orders", 7)


def test_url_with_several_hosts_ports_and_an_encoded_vhost() -> None:
    result = parse_url(
        "amqp://svc:p%40ss%3Aword@h1:5673,h2:5672,[::1]:5674/team%2Forders?heartbeat=9", default_heartbeat=20
    )
    assert result.endpoints == (Endpoint("h1", 5673), Endpoint("h2", 5672), Endpoint("::1", 5674))
    assert (result.username, result.password) == ("svc", "p@ss:word")
    assert (result.vhost, result.heartbeat) == ("team/orders", 9)


def test_a_port_on_the_last_host_only_applies_to_every_host_as_in_the_original() -> None:
    result = parse_url("amqp://u:p@h1,h2,[::1]:5673/", default_heartbeat=20)
    assert result.endpoints == (Endpoint("h1", 5673), Endpoint("h2", 5673), Endpoint("::1", 5673))
    assert parse_url("amqp://u:p@h1,h2/", default_heartbeat=20).endpoints == (
        Endpoint("h1", 5672),
        Endpoint("h2", 5672),
    )


@pytest.mark.parametrize("hosts", ["h1:5673,h2", "h1,h2:5673,h3", "h1:1,h2,h3:3"])
def test_any_other_mix_of_hosts_with_and_without_ports_is_refused(hosts: str) -> None:
    with pytest.raises(ConfigurationError, match="write a port on every host"):
        parse_url(f"amqp://u:p@{hosts}/", default_heartbeat=20)


@pytest.mark.parametrize(
    "url,vhost", [("amqp://h", "/"), ("amqp://h/", "/"), ("amqp://h/%2F", "/"), ("amqp://h/orders", "orders")]
)
def test_url_vhosts(url: str, vhost: str) -> None:
    assert parse_url(url, default_heartbeat=20).vhost == vhost


def test_amqps_verifies_certificates_by_default() -> None:
    result = parse_url("amqps://u:p@broker/?cafile=/etc/ca.pem", default_heartbeat=20)
    assert result.endpoints == (Endpoint("broker", 5671),)
    assert result.tls is not None and result.tls.verify and result.tls.cafile == "/etc/ca.pem"
    loose = parse_url("amqps://u:p@broker/?verify=verify_none", default_heartbeat=20)
    assert loose.tls is not None and not loose.tls.verify


def test_client_certificates_for_amqps() -> None:
    result = parse_url(
        "amqps://u:p@h/?certfile=/c.pem&keyfile=/k.pem&server_name_indication=rabbit", default_heartbeat=20
    )
    assert result.tls is not None
    assert (result.tls.certfile, result.tls.keyfile, result.tls.server_hostname) == ("/c.pem", "/k.pem", "rabbit")


def test_rabbitmq_heartbeat_wins_over_the_url_which_wins_over_the_config() -> None:
    assert settings(RABBITMQ_URL="amqp://h/?heartbeat=9").heartbeat == 9
    assert settings(RABBITMQ_URL="amqp://h/?heartbeat=9", RABBITMQ_HEARTBEAT="3").heartbeat == 3
    assert settings(RABBITMQ_URL="amqp://h/").heartbeat == 20


def test_url_wins_over_separate_variables_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    result = settings(RABBITMQ_URL="amqp://u:p@h/v", RABBITMQ_HOST="other", RABBITMQ_PASS="x")
    assert result.endpoints == (Endpoint("h", 5672),) and result.password == "p"
    assert "RABBITMQ_HOST, RABBITMQ_PASS are ignored" in caplog.text


@pytest.mark.parametrize(
    "environ,message",
    [
        ({"RABBITMQ_URL": "http://h"}, "must start with amqp:// or amqps://"),
        ({"RABBITMQ_URL": "amqp://h:notaport"}, "the port of host 'h' in RABBITMQ_URL is not a port number"),
        ({"RABBITMQ_URL": "amqp://h/a/b"}, "percent-encode each '/' in it as %2F"),
        ({"RABBITMQ_URL": "amqp://h/?heartbeet=5"}, "unknown option 'heartbeet'"),
        ({"RABBITMQ_URL": "amqp://h/?heartbeat=-1"}, "is not a number of seconds"),
        ({"RABBITMQ_URL": "amqp://h/?cafile=x"}, "need an amqps:// URL"),
        ({"RABBITMQ_URL": "amqp://h1,,h2"}, "empty host"),
        ({"RABBITMQ_PORT": "70000"}, "RABBITMQ_PORT"),
        ({"RABBITMQ_HEARTBEAT": "soon"}, "RABBITMQ_HEARTBEAT"),
    ],
)
def test_bad_settings_are_explained(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("?", r"\?")):
        from_environment(environ, default_heartbeat=20)


def test_the_password_never_appears_in_the_description_or_repr() -> None:
    result = parse_url("amqps://svc:Hunter2-secret@h1:5671,h2:5999/v", default_heartbeat=20)
    assert "Hunter2-secret" not in result.describe() and "Hunter2-secret" not in repr(result)
    assert result.describe() == "amqps://svc@h1:5671,h2:5999/v"
