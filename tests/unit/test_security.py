"""The network rules a member checks before it binds anything."""

from __future__ import annotations

import logging

import pytest

import coord
from coord.security import check_network_exposure, is_loopback_host, load_secret

GOOD_SECRET = "Zq8vN2kLr5tWb9xYc3mPd7fHg1jKs4aE"


@pytest.mark.parametrize("address", ["10.1.2.3:7000", "0.0.0.0:7000", "node-a.example:7000", "[2001:db8::1]:7000"])
def test_non_loopback_member_without_secret_refuses_to_start(address: str) -> None:
    with pytest.raises(coord.ConfigurationError) as info:
        coord.Coordinator(address, peers=["127.0.0.1:7001"])
    message = str(info.value)
    assert "not a loopback address" in message and "secret" in message and address in message


def test_a_non_loopback_peer_is_enough_to_refuse() -> None:
    with pytest.raises(coord.ConfigurationError, match="10.0.0.9:7002 is not a loopback address"):
        coord.Coordinator("127.0.0.1:7001", peers=["10.0.0.9:7002"])


def test_a_non_loopback_zookeeper_endpoint_without_secret_refuses_to_start() -> None:
    # Its session passwords are keyed by the secret: without one they could be forged.
    with pytest.raises(coord.ConfigurationError, match="ZooKeeper endpoint 0.0.0.0:2181 is not a loopback"):
        coord.Coordinator("127.0.0.1:7001", peers=["127.0.0.1:7002"], zk_address="0.0.0.0:2181")
    coord.Coordinator("127.0.0.1:7001", peers=["127.0.0.1:7002"], zk_address="127.0.0.1:2181")
    coord.Coordinator("10.0.0.1:7001", peers=["10.0.0.2:7002"], zk_address="0.0.0.0:2181", secret=GOOD_SECRET)


def test_loopback_without_secret_warns_loudly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="coord"):
        check_network_exposure("127.0.0.1:7001", ["localhost:7002", "[::1]:7003"], None)
    assert "WITHOUT a cluster secret" in caplog.text


def test_non_loopback_with_secret_is_accepted_and_the_secret_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        member = coord.Coordinator("10.1.2.3:7000", peers=["10.1.2.4:7000"], secret=GOOD_SECRET)
    assert member.address == "10.1.2.3:7000"
    assert GOOD_SECRET not in caplog.text


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [("short", "at least 32"), ("a" * 40, "too uniform"), (12345, "str or bytes")],
)
def test_weak_secrets_are_rejected(secret: object, fragment: str) -> None:
    with pytest.raises(coord.ConfigurationError, match=fragment):
        load_secret(secret)  # type: ignore[arg-type]


def test_secret_sources_argument_file_then_environment(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "secret"
    path.write_text(GOOD_SECRET + "\n")
    monkeypatch.setenv("COORD_SECRET", "E" + GOOD_SECRET)
    assert load_secret(None, str(path)) == GOOD_SECRET.encode()
    assert load_secret(None, None) == ("E" + GOOD_SECRET).encode()
    assert load_secret("A" + GOOD_SECRET, str(path)) == ("A" + GOOD_SECRET).encode()
    with pytest.raises(coord.ConfigurationError, match="cannot read"):
        load_secret(None, str(tmp_path / "missing"))


def test_loopback_detection() -> None:
    assert all(map(is_loopback_host, ["127.0.0.1", "127.8.9.10", "::1", "localhost"]))
    assert not any(map(is_loopback_host, ["10.0.0.1", "0.0.0.0", "example.com", "::"]))


@pytest.mark.parametrize("address", ["7001", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000", 7001])
def test_malformed_addresses_are_rejected(address: object) -> None:
    with pytest.raises(coord.ConfigurationError, match="address"):
        coord.Coordinator(address)  # type: ignore[arg-type]


def test_group_writable_data_dir_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from coord.replication import prepare_data_dir

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o770)
    with pytest.raises(coord.ConfigurationError, match="mode 770"):
        prepare_data_dir(str(data_dir))
    fresh = tmp_path / "fresh"
    prepare_data_dir(str(fresh))
    assert fresh.stat().st_mode & 0o777 == 0o700
