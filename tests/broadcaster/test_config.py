"""Options come from defaults, a TOML file, ONAIR_* variables and the command line, in that order."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from broadcaster import config


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults():
    c = config.load(parse([]), environ={})
    assert (c.http_port, c.rtmp_port, c.data_dir, c.reconnect_grace) == (8080, 1935, Path("data"), 30.0)
    assert c.redis_url == ""


def test_precedence_file_env_cli(tmp_path: Path):
    toml = tmp_path / "onair.toml"
    toml.write_text('http_port = 9001\nrtmp_port = 1936\nreconnect_grace = 10\nice_host = ["127.0.0.1"]\n')
    env = {"ONAIR_RTMP_PORT": "1937", "ONAIR_SEGMENT_TARGET": "4"}
    c = config.load(parse(["--config", str(toml), "--segment-target", "3"]), environ=env)
    assert c.http_port == 9001          # file
    assert c.rtmp_port == 1937          # env beats file
    assert c.segment_target == 3.0      # cli beats env
    assert c.reconnect_grace == 10.0
    assert c.ice_host == ("127.0.0.1",)


def test_onair_table_in_toml(tmp_path: Path):
    toml = tmp_path / "onair.toml"
    toml.write_text('[onair]\nhttp_port = 9100\n')
    assert config.load(parse(["--config", str(toml)]), environ={}).http_port == 9100


@pytest.mark.parametrize("argv, env, message", [
    (["--http-port", "abc"], {}, "option http_port: cannot read 'abc' as int"),
    (["--http-port", "70000"], {}, "option http_port: 70000 is not a port number"),
    ([], {"ONAIR_RECONNECT_GRACE": "-1"}, "option reconnect_grace: must be >= 0"),
    (["--rtmps-port", "1936"], {}, "option rtmps_port: needs tls_cert and tls_key"),
    (["--chat-sockets-per-address", "-1"], {}, "option chat_sockets_per_address: must be >= 0 (0 turns the limit off)"),
    ([], {"ONAIR_CHAT_REACTIONS_PER_ADDRESS": "-5"},
     "option chat_reactions_per_address: must be >= 0 (0 turns the limit off)"),
])
def test_bad_values_are_named(argv, env, message):
    with pytest.raises(config.ConfigError) as info:
        config.load(parse(argv), environ=env)
    assert str(info.value) == message


def test_unknown_option_in_file(tmp_path: Path):
    toml = tmp_path / "onair.toml"
    toml.write_text("htp_port = 1\n")
    with pytest.raises(config.ConfigError, match="unknown option 'htp_port'"):
        config.load(parse(["--config", str(toml)]), environ={})


def test_repeatable_option_from_env():
    c = config.load(parse([]), environ={"ONAIR_ICE_HOST": "127.0.0.1, ::1"})
    assert c.ice_host == ("127.0.0.1", "::1")


def test_metrics_listen_is_a_port_on_loopback_or_a_host_and_port():
    assert config.parse_listen("9464") == ("127.0.0.1", 9464)
    assert config.parse_listen("0.0.0.0:9464") == ("0.0.0.0", 9464)
    assert config.parse_listen("[::1]:9464") == ("::1", 9464)
    assert config.load(parse(["--metrics-listen", "9464"]), environ={}).metrics_listen == "9464"
    for bad in ("http", "host:", "1:99999", "9464x"):
        with pytest.raises(config.ConfigError, match="metrics_listen"):
            config.load(parse(["--metrics-listen", bad]), environ={})
    assert config.load(parse([]), environ={}).metrics_listen == ""
    assert config.load(parse([]), environ={"ONAIR_ACCESS_LOG": "true"}).access_log is True


@pytest.mark.parametrize("token, problem", [
    ("change-me", "it has 9 characters, at least 24 are required"),
    ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "it uses fewer than 10 different characters"),
    ("changemechangemechangeme", "it uses fewer than 10 different characters"),
])
def test_weak_admin_tokens_are_refused(token: str, problem: str):
    with pytest.raises(config.ConfigError) as info:
        config.load(parse([]), environ={"ONAIR_ADMIN_TOKEN": token})
    assert str(info.value).startswith(f"option admin_token: too weak: {problem} (generate one with")


def test_a_strong_admin_token_and_none_are_accepted():
    assert config.load(parse(["--admin-token", "Zr8pQ2vX9mT4kW7bN1cJ5hF3"]), environ={}).admin_token
    assert config.load(parse([]), environ={}).admin_token == ""  # the node generates one


def test_a_weak_token_in_the_admin_token_file_stops_the_node(tmp_path: Path):
    from broadcaster.app import admin_token, create_app

    node = config.NodeConfig(data_dir=tmp_path)
    generated = admin_token(node)
    assert config.weak_token(generated) is None and (tmp_path / "admin-token").stat().st_mode & 0o777 == 0o600
    assert admin_token(node) == generated
    (tmp_path / "admin-token").write_text("letmein\n")
    with pytest.raises(config.ConfigError, match="admin token in .* is too weak: it has 7 characters"):
        create_app(node)
