"""The ROBERT/CLEA lab stand-in serves each public route with the status and shape of the OpenAPI specs."""

from __future__ import annotations

import base64
import http.client
import json
import threading
from typing import Any, Iterator

import pytest

from tacops.lab.fixtures import robert_standin


def b64(size: int, fill: int = 1) -> str:
    return base64.b64encode(bytes([fill]) * size).decode("ascii")


AUTHENTIFIED = {"ebid": b64(8), "epochId": 4242, "time": b64(4), "mac": b64(32)}
CONTACT = {
    "ebid": b64(8, 2),
    "ecc": b64(1, 3),
    "ids": [{"timeCollectedOnDevice": 3_800_000_000, "timeFromHelloMessage": 1234, "mac": b64(5), "rssiCalibrated": -60}],
}

# route, well-formed body, expected success status, fields the success body must carry
SUCCESS_CASES = [
    ("/api/v6/captcha", {"type": "IMAGE", "locale": "fr"}, 201, {"id"}),
    (
        "/api/v6/register",
        {"captcha": "abcd", "captchaId": "0" * 32, "clientPublicECDHKey": b64(65)},
        201,
        {"tuples", "timeStart", "config"},
    ),
    ("/api/v6/status", dict(AUTHENTIFIED), 200, {"riskLevel", "tuples", "config"}),
    ("/api/v6/report", {"token": "ABC123", "contacts": [CONTACT]}, 200, {"success", "reportValidationToken"}),
    ("/api/v6/unregister", dict(AUTHENTIFIED, pushToken="push"), 200, {"success"}),
    ("/api/v6/deleteExposureHistory", dict(AUTHENTIFIED), 200, {"success"}),
    ("/api/clea/v1/wreport", {"pivotDate": 3_800_000_000, "visits": [{"qrCode": "UVI=", "qrCodeScanTime": 3_800_000_100}]}, 200, {"success", "message"}),
]

# route, malformed body, field the validation errors must name (None: no field)
BAD_CASES = [
    ("/api/v6/captcha", {"type": "VIDEO", "locale": "fr"}, "type"),
    ("/api/v6/captcha", {"type": "IMAGE"}, "locale"),
    ("/api/v6/register", {"captcha": "abcd", "captchaId": "x"}, "clientPublicECDHKey"),
    ("/api/v6/status", dict(AUTHENTIFIED, ebid=b64(9)), "ebid"),
    ("/api/v6/status", dict(AUTHENTIFIED, epochId="12"), "epochId"),
    ("/api/v6/report", {"token": "ABC123"}, "contacts"),
    ("/api/v6/report", {"token": "ABC", "contacts": []}, "token"),
    ("/api/v6/report", {"token": "ABC123", "contacts": [dict(CONTACT, ecc="!!")]}, "contacts[0].ecc"),
    ("/api/v6/unregister", {"ebid": b64(8), "epochId": 1, "time": b64(4)}, "mac"),
    ("/api/v6/deleteExposureHistory", [], None),
    ("/api/clea/v1/wreport", {"visits": []}, "visits"),
    ("/api/clea/v1/wreport", {"visits": [{"qrCode": "UVI="}]}, "visits[0].qrCodeScanTime"),
]


@pytest.fixture(scope="module")
def standin() -> Iterator[tuple[int, int]]:
    api, management = robert_standin.make_servers("127.0.0.1", 0, 0)
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in (api, management)]
    for thread in threads:
        thread.start()
    yield api.server_address[1], management.server_address[1]
    for server in (api, management):
        server.shutdown()
        server.server_close()


def request(port: int, method: str, path: str, body: Any = None, raw: bytes | None = None,
            content_type: str = "application/json") -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        payload = raw
        if payload is None and body is not None:
            payload = json.dumps(body).encode()
        headers = {"Content-Type": content_type} if payload is not None else {}
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(("path", "body", "status", "fields"), SUCCESS_CASES, ids=[c[0] for c in SUCCESS_CASES])
def test_route_success_shape(standin, path, body, status, fields):
    answer_status, content_type, raw = request(standin[0], "POST", path, body)
    assert answer_status == status, raw
    assert content_type == "application/json"
    document = json.loads(raw)
    assert fields <= set(document), document


@pytest.mark.parametrize(("path", "body", "field"), BAD_CASES, ids=[f"{c[0]}-{c[2]}" for c in BAD_CASES])
def test_route_bad_body_400(standin, path, body, field):
    status, _, raw = request(standin[0], "POST", path, body)
    assert status == 400, raw
    document = json.loads(raw)
    assert document["httpStatus"] == 400
    assert document["message"]
    if field is not None:
        assert field in [error["field"] for error in document["validationErrors"]], document


def test_invalid_json_400(standin):
    status, _, raw = request(standin[0], "POST", "/api/v6/status", raw=b"{not json")
    assert status == 400
    assert "not valid JSON" in json.loads(raw)["message"]


def test_wrong_content_type_400(standin):
    status, _, _ = request(standin[0], "POST", "/api/v6/status", raw=b"{}", content_type="text/plain")
    assert status == 400


def test_captcha_id_new_per_call(standin):
    ids = {json.loads(request(standin[0], "POST", "/api/v6/captcha", {"type": "AUDIO", "locale": "en"})[2])["id"]
           for _ in range(3)}
    assert len(ids) == 3


def test_captcha_media_of_issued_id(standin):
    captcha_id = json.loads(request(standin[0], "POST", "/api/v6/captcha", {"type": "IMAGE", "locale": "fr"})[2])["id"]

    status, content_type, image = request(standin[0], "GET", f"/api/v6/captcha/{captcha_id}/image")
    assert status == 200
    assert content_type == "image/png"
    assert image.startswith(b"\x89PNG\r\n\x1a\n")

    status, content_type, audio = request(standin[0], "GET", f"/api/v6/captcha/{captcha_id}/audio")
    assert status == 200
    assert content_type == "audio/wav"
    assert audio[:4] == b"RIFF"
    assert audio[8:12] == b"WAVE"


def test_captcha_media_unknown_id_404(standin):
    status, _, _ = request(standin[0], "GET", f"/api/v6/captcha/{'f' * 32}/image")
    assert status == 404
    status, _, _ = request(standin[0], "GET", "/api/v6/captcha/not-an-id/audio")
    assert status == 404


def test_answers_deterministic(standin):
    for path, body, _, _ in SUCCESS_CASES:
        if path.endswith("/captcha"):
            continue
        first = request(standin[0], "POST", path, body)
        second = request(standin[0], "POST", path, body)
        assert first == second, path


def test_unknown_route_404(standin):
    assert request(standin[0], "POST", "/api/v6/nothing", {})[0] == 404
    assert request(standin[0], "GET", "/api/v5/status")[0] == 404


def test_get_on_post_route_405(standin):
    assert request(standin[0], "GET", "/api/v6/status")[0] == 405


def test_management_health_up(standin):
    status, content_type, raw = request(standin[1], "GET", "/actuator/health")
    assert status == 200
    assert content_type == "application/json"
    assert json.loads(raw) == {"status": "UP"}


def test_api_port_has_no_actuator(standin):
    assert request(standin[0], "GET", "/actuator/health")[0] == 404
