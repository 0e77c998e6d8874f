"""Outbound targets (server.core.outbound): which URLs a plugin may be pointed at, the
allow-list that admits local ones on purpose, and the shared HTTP client that checks every
connection again, connects to the address it checked and never follows a redirect."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from server.core import outbound
from server.core.errors import ConfigError
from server.core.outbound import AllowList, OutboundRefused, RedirectRefused, check_url, http_client
from server.settings import Settings, load_settings
from receiver import start_receiver

REFUSED = [
    ("http://127.0.0.1/", "127.0.0.1", "loopback"),
    ("http://127.1.2.3:8080/x", "127.1.2.3", "loopback"),
    ("http://[::1]/", "::1", "loopback"),
    ("http://10.1.2.3/", "10.1.2.3", "private"),
    ("http://172.16.0.9/", "172.16.0.9", "private"),
    ("http://192.168.1.1/", "192.168.1.1", "private"),
    ("http://[fd00::1]/", "fd00::1", "private"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254", "link-local"),
    ("http://[fe80::1]/", "fe80::1", "link-local"),
    ("http://[::ffff:127.0.0.1]/", "::ffff:7f00:1", "loopback"),
    ("http://[::ffff:169.254.169.254]/", "::ffff:a9fe:a9fe", "link-local"),
    ("http://0.0.0.0/", "0.0.0.0", "unspecified"),
    ("http://100.64.0.1/", "100.64.0.1", "carrier-grade NAT"),
    ("http://224.0.0.1/", "224.0.0.1", "multicast"),
    ("http://240.0.0.1/", "240.0.0.1", "private"),
    ("http://localhost:8000/", "127.0.0.1", "loopback"),
    ("http://LOCALHOST./", "127.0.0.1", "loopback"),
    # Numeric forms the C library reads as 127.0.0.1 connect there, so they are refused.
    ("http://2130706433/", "127.0.0.1", "loopback"),
    ("http://0x7f.1/", "127.0.0.1", "loopback"),
]


@pytest.mark.parametrize(("url", "address", "why"), REFUSED)
def test_local_and_private_targets_are_refused(url: str, address: str, why: str) -> None:
    # When a URL reaching this machine or its network is checked with no allow-list
    with pytest.raises(OutboundRefused) as caught:
        check_url(url, (), field="webhook_url")
    # Then it is refused, naming the field, the address, why and the setting that admits it
    error = caught.value
    assert error.permanent
    assert error.field == "webhook_url"
    assert error.message.startswith("webhook_url: host ")
    assert ipaddress.ip_address(error.address) == ipaddress.ip_address(address)
    assert why in error.message
    assert "DEALFLOW_OUTBOUND_ALLOW" in error.message


def test_an_octal_address_is_refused() -> None:
    # httpx itself will not build a URL with 0177.0.0.1 (so nothing could send to it); it is
    # refused either way
    with pytest.raises(OutboundRefused) as caught:
        check_url("http://0177.0.0.1/", (), field="url")
    assert caught.value.permanent and caught.value.field == "url"


@pytest.mark.parametrize(
    "url",
    [
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://metadata/",
        "https://METADATA.GOOGLE.INTERNAL./x",
    ],
)
def test_metadata_names_are_refused_without_resolving(url: str) -> None:
    with pytest.raises(OutboundRefused) as caught:
        check_url(url, (), field="url")
    assert caught.value.address is None
    assert "metadata" in caught.value.message and caught.value.field == "url"


@pytest.mark.parametrize(
    "url",
    ["ftp://93.184.215.14/", "file:///etc/passwd", "gopher://127.0.0.1/", "http://", "not a url"],
)
def test_only_http_and_https_urls_with_a_host_pass(url: str) -> None:
    with pytest.raises(OutboundRefused) as caught:
        check_url(url, ("127.0.0.1",), field="base_url")
    assert caught.value.message.startswith("base_url: ")


def test_public_addresses_pass_without_connecting() -> None:
    # Literal addresses resolve without DNS and nothing listens there for the test
    check_url("https://93.184.215.14/api", ())
    check_url("http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:8443/", ())
    check_url("https://8.8.8.8/dns-query", ())


def test_the_allow_list_admits_listed_hosts_addresses_and_blocks() -> None:
    check_url("http://127.0.0.1:9000/erp", ("127.0.0.1",))
    check_url("http://localhost:9000/erp", ("localhost",))
    check_url("http://10.20.30.40/", ("10.0.0.0/8",))
    check_url("http://[::1]:9000/", ("::1",))
    check_url("http://2130706433/", ("127.0.0.0/8",))
    check_url("http://metadata.google.internal/", ("metadata.google.internal",))
    # and nothing else: a listed block does not admit a neighbour
    with pytest.raises(OutboundRefused):
        check_url("http://192.168.0.1/", ("10.0.0.0/8", "127.0.0.1"))
    # a listed name admits the name, not every name resolving to the same address
    with pytest.raises(OutboundRefused):
        check_url("http://127.0.0.1/", ("localhost",))


def test_an_allow_list_entry_that_is_no_block_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="DEALFLOW_OUTBOUND_ALLOW.*'10.0.0.0/33'"):
        AllowList.parse(["10.0.0.0/33"])


def test_the_setting_is_read_from_the_environment() -> None:
    settings = load_settings({"DEALFLOW_OUTBOUND_ALLOW": "127.0.0.1, localhost,10.0.0.0/8"})
    assert settings.outbound_allow == ("127.0.0.1", "localhost", "10.0.0.0/8")
    assert load_settings({}).outbound_allow == ()


def test_a_name_that_does_not_resolve_is_left_to_the_send_time_check() -> None:
    check_url("https://no-such-host.invalid/hook", ())


# --- the shared client -------------------------------------------------------------------------


@pytest.fixture
def receivers() -> Any:
    first, second = start_receiver(), start_receiver()
    yield first, second
    first.close()
    second.close()


def test_the_client_refuses_a_local_target_before_connecting(receivers: Any) -> None:
    receiver, _ = receivers
    # Given a client whose settings have no allow-list
    client = http_client(Settings())
    # When it is asked to post to the local receiver
    with pytest.raises(OutboundRefused) as caught:
        client.post(receiver.url + "/hook", json={"x": 1})
    # Then nothing reached the receiver, and the refusal is permanent, naming the address
    assert receiver.requests == []
    assert caught.value.permanent and caught.value.address == "127.0.0.1"
    assert caught.value.message.startswith("outbound request: host '127.0.0.1' is a loopback")


def test_the_client_reaches_an_allowed_target(receivers: Any) -> None:
    receiver, _ = receivers
    client = http_client(Settings(outbound_allow=("127.0.0.1",)))
    assert client.post(receiver.url + "/hook", json={"x": 1}).status_code == 200
    assert [r.path for r in receiver.received()] == ["/hook"]


def test_requests_sent_while_a_side_effect_runs_carry_its_hops(receivers: Any) -> None:
    receiver, _ = receivers
    client = http_client(Settings(outbound_allow=("127.0.0.1",)))
    # When one request is sent inside hops(3), one after it
    with outbound.hops(3):
        client.post(receiver.url + "/inside", json={})
    client.post(receiver.url + "/after", json={})
    # Then only the first says how deep a chain led to it
    assert [r.headers.get("dealflow-hops") for r in receiver.received()] == ["3", None]


@pytest.mark.parametrize(
    ("document", "hops"),
    [({"event": {"depth": 0}}, 1), ({"event": {"depth": 4}}, 5), ({}, 1), (None, 1)],
)
def test_a_side_effect_sends_its_events_depth_plus_one(document: Any, hops: int) -> None:
    from server.core.execution import sent_hops

    assert sent_hops(document) == hops


def test_the_client_connects_to_the_address_it_checked(
    receivers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a name only the checked resolution knows (the system resolver cannot find it),
    # resolving to an address inside the allow-list
    receiver, _ = receivers
    port = receiver.server.server_address[1]
    monkeypatch.setattr(
        outbound, "resolve", lambda host, port: [ipaddress.ip_address("127.0.0.1")]
    )
    client = http_client(Settings(outbound_allow=("127.0.0.0/8",)))
    # When a request goes to that name
    response = client.post(f"http://erp.rebind.invalid:{port}/hook", json={})
    # Then the connection went to the checked address, with the URL's host in Host
    assert response.status_code == 200
    (request,) = receiver.received("/hook")
    assert request.headers["host"] == f"erp.rebind.invalid:{port}"


def test_a_name_that_now_resolves_to_a_local_address_is_refused_at_send(
    receivers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a name that passed when it was saved, and now resolves to loopback
    receiver, _ = receivers
    port = receiver.server.server_address[1]
    monkeypatch.setattr(
        outbound, "resolve", lambda host, port: [ipaddress.ip_address("127.0.0.1")]
    )
    # When a request goes to it, under an allow-list that does not admit it
    with pytest.raises(OutboundRefused) as caught:
        http_client(Settings(outbound_allow=("10.0.0.0/8",))).get(
            f"http://hooks.rebind.invalid:{port}/x"
        )
    # Then it is refused before connecting
    assert "resolves to 127.0.0.1, a loopback address" in caught.value.message
    assert receiver.requests == []


def test_redirects_are_refused_naming_the_location(receivers: Any) -> None:
    # Given a target answering 302 to another server
    first, second = receivers
    first.respond("/hook", 302, Location=second.url + "/internal")
    client = http_client(Settings(outbound_allow=("127.0.0.1",)))
    # When a request is sent
    with pytest.raises(RedirectRefused) as caught:
        client.post(first.url + "/hook", json={})
    # Then the redirect is not followed: a permanent error naming the status and Location
    assert caught.value.permanent and caught.value.status == 302
    assert caught.value.location == second.url + "/internal"
    assert f"HTTP 302, a redirect to {second.url}/internal" in caught.value.message
    assert second.requests == []


def test_the_client_is_shared_per_allow_list() -> None:
    allowed = Settings(outbound_allow=("127.0.0.1",))
    assert http_client(allowed) is http_client(Settings(outbound_allow=("127.0.0.1",)))
    assert http_client(allowed) is not http_client(Settings())
    assert http_client(None) is http_client(Settings())
    assert http_client(allowed).follow_redirects is False
