"""``volsam serve`` refuses a port it cannot use in one line, before printing its banner or a token."""

from __future__ import annotations

import socket

import pytest

from volsam.cli.main import run


def _run(capsys, *args) -> tuple[int, str, str]:
    code = run([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_a_port_out_of_range_is_one_line(capsys, port):
    code, out, err = _run(capsys, "serve", "--port", port)
    assert code == 2 and out == "" and err == f"volsam: error: --port must be 1..65535, got {port}\n"


def test_a_port_in_use_is_one_line_and_no_banner_or_token_is_printed(capsys):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    try:
        code, out, err = _run(capsys, "serve", "--port", port)
        assert code == 2 and out == "" and err.count("\n") == 1
        assert err.startswith(f"volsam: error: cannot listen on 127.0.0.1:{port}: ") and "choose --port" in err
        code, out, err = _run(capsys, "serve", "--host", "0.0.0.0", "--port", port)  # would print a new token
        assert code == 2 and "token" not in err and err.count("\n") == 1
    finally:
        busy.close()


def test_an_address_this_machine_does_not_have_is_one_line(capsys):
    code, _, err = _run(capsys, "serve", "--host", "203.0.113.7", "--port", "8000")  # TEST-NET-3
    assert code == 2 and err.startswith("volsam: error: cannot listen on 203.0.113.7:8000: ") and err.count("\n") == 1
