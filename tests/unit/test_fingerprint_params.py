"""Collector parameters built from the built-in description."""

from __future__ import annotations

import pytest

from tacops.backup.fingerprint import params_for_host, without_secrets
from tacops.foundation.description import load_description
from tacops.foundation.errors import TacopsError


@pytest.fixture(scope="module")
def description():
    return load_description()


def test_params_crypto_host(description):
    params = params_for_host(description, "robert-crypto", hsm_pin="1234")
    assert params["host"] == "robert-crypto"
    assert params["databases"] == ["robert"]
    assert params["application_trees"] == ["/etc/postgresql", "/opt/robert-crypto", "/etc/softhsm"]
    assert "/etc" in params["system_trees"]
    assert "/var/lib/postgresql/15/main" in params["ignore"]
    assert params["hsm"]["token_label"] == "robert"
    assert params["hsm"]["key_label"] == "robert-kek"
    assert params["hsm"]["pin"] == "1234"
    assert without_secrets(params)["hsm"]["pin"] is None
    assert params["hsm"]["pin"] == "1234"


def test_params_routes_on_loopback(description):
    routes = {route["name"]: route for route in params_for_host(description, "robert-ws")["routes"]}
    assert routes["register"]["url"] == "https://127.0.0.1/api/v6/register"
    assert routes["register"]["host_header"] == "api.tousanticovid.gouv.fr"
    assert routes["register"]["body"] == {}
    assert "{id}" not in routes["captcha-image"]["url"]
    assert routes["captcha-image"]["body"] is None
    assert routes["captcha"]["ignore_fields"] == ["id", "serverTime"]
    assert routes["clea-wreport"]["host_header"] == "signal-api.tousanticovid.gouv.fr"


def test_params_host_without_hsm(description):
    assert params_for_host(description, "static-zone")["hsm"] is None


def test_params_unknown_host(description):
    with pytest.raises(TacopsError, match="not found in profile"):
        params_for_host(description, "nowhere")
