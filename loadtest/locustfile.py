"""Locust scenario of the TousAntiCovid apps on the public routes of the CT back end.

Run against any base URL, for example the Flexible Engine Ingress during the scale-up
demonstration:

    locust -f loadtest/locustfile.py --headless --host https://api.example \\
        --clea-host https://signal-api.example --users 2000 --spawn-rate 50 --run-time 15m \\
        --csv out/ct --csv-full-history
    python loadtest/report.py summarize --csv-prefix out/ct

Request bodies have the shapes of the public OpenAPI specifications of robert-server
(``openapi-robert-server-v1.yml``) and clea-server (``openapi-clea-server-v1.yml``), with
random bytes where the apps send keys, MACs and EBIDs. A real server cannot verify those
MACs, so it answers ``/status``, ``/unregister`` and ``/deleteExposureHistory`` with 401 or
430. ``--accept-statuses documented`` counts every status the specification documents for a
route (other than 5xx) as a success. The default, ``2xx``, suits servers that only check
shapes, such as the lab stand-in.
"""

from __future__ import annotations

import base64
import os
import random
import string
import time

import gevent
import locust.stats
from locust import HttpUser, events, task

ROBERT_PREFIX = "/api/v6"
CLEA_PREFIX = "/api/clea/v1"
# Difference between the NTP era (1900-01-01) and the Unix epoch, in seconds.
NTP_UNIX_OFFSET = 2_208_988_800
# Start of the ROBERT service (2020-06-01T00:00:00Z) as an NTP timestamp, and its epoch length.
ROBERT_TIME_START_NTP = 3_799_958_400
ROBERT_EPOCH_SECONDS = 900

# Statuses the specifications document per route, used by --accept-statuses documented.
DOCUMENTED_STATUSES = {
    "captcha": {201, 400},
    "captcha-image": {200, 404},
    "register": {201, 400},
    "status": {200, 400, 401, 430},
    "report": {200, 400},
    "unregister": {200, 400, 430},
    "deleteExposureHistory": {200, 400, 430},
    "wreport": {200, 400, 401},
}


@events.init_command_line_parser.add_listener
def add_arguments(parser):
    parser.add_argument("--clea-host", default="", include_in_web_ui=True,
                        help="base URL of the CLEA API (signal-api host); default: --host")
    parser.add_argument("--accept-statuses", choices=["2xx", "documented"], default="2xx",
                        help="which statuses count as success: 2xx only, or every status the "
                             "specification documents for the route except 5xx")
    parser.add_argument("--think-time", default="1.0:5.0",
                        help="seconds each simulated app waits between requests, as MIN:MAX")
    parser.add_argument("--max-requests", type=int, default=0,
                        help="stop the run after this many requests in total (0: only --run-time stops it)")


@events.init.add_listener
def stop_after_max_requests(environment, **_kwargs):
    limit = environment.parsed_options.max_requests if environment.parsed_options else 0
    if not limit:
        return
    state = {"stopping": False}

    def on_request(**_request_kwargs):
        # The request event fires once per request on the runner's greenlets; quit once.
        if not state["stopping"] and environment.stats.total.num_requests >= limit:
            state["stopping"] = True
            gevent.spawn(environment.runner.quit)

    environment.events.request.add_listener(on_request)


@events.quitting.add_listener
def wait_for_final_csv(environment, **_kwargs):
    # Locust rewrites the --csv files every CSV_STATS_INTERVAL_SEC and not at exit, so they can
    # miss the last interval. The users have stopped here, so one more interval records the
    # final stats before Locust closes the files.
    if environment.parsed_options and environment.parsed_options.csv_prefix:
        gevent.sleep(locust.stats.CSV_STATS_INTERVAL_SEC + 0.2)


def random_base64(size: int) -> str:
    return base64.b64encode(os.urandom(size)).decode("ascii")


def ntp_now() -> int:
    return int(time.time()) + NTP_UNIX_OFFSET


def authentified_body() -> dict:
    """Fields of ROBERT's AuthentifiedRequest: 8-byte EBID, epoch id, 4-byte time, 32-byte MAC."""
    now = ntp_now()
    return {
        "ebid": random_base64(8),
        "epochId": (now - ROBERT_TIME_START_NTP) // ROBERT_EPOCH_SECONDS,
        "time": base64.b64encode(now.to_bytes(8, "big")[4:]).decode("ascii"),
        "mac": random_base64(32),
    }


def push_info() -> dict:
    return {"token": random_base64(24), "locale": "fr-FR", "timezone": "Europe/Paris"}


class TousAntiCovidApp(HttpUser):
    """One installed app. Task weights are an estimate of the request mix, not measured traffic.

    ``/status`` dominates because every registered app polls it several times a day, whereas
    the other calls follow rare user actions (install, declaring a positive test, scanning a
    venue QR code, deleting data).
    """

    def wait_time(self):
        low, high = (float(part) for part in self.environment.parsed_options.think_time.split(":"))
        return random.uniform(low, high)

    def on_start(self):
        options = self.environment.parsed_options
        self.clea_host = (options.clea_host or self.host).rstrip("/")
        self.accept = options.accept_statuses

    def post(self, name: str, url: str, body: dict, expected: int):
        with self.client.post(url, json=body, name=name, catch_response=True) as response:
            self.judge(response, name, expected)
            return response

    def judge(self, response, name: str, expected: int):
        if response.status_code == expected:
            response.success()
        elif self.accept == "documented" and response.status_code in DOCUMENTED_STATUSES[name]:
            response.success()
        else:
            response.failure(f"{name}: HTTP {response.status_code}, expected {expected}")

    @task(80)
    def status(self):
        body = {**authentified_body(), "pushInfo": push_info()}
        self.post("status", f"{ROBERT_PREFIX}/status", body, 200)

    @task(5)
    def register(self):
        """Install: request a captcha, fetch its image, then register with the answer."""
        response = self.post("captcha", f"{ROBERT_PREFIX}/captcha", {"type": "IMAGE", "locale": "fr"}, 201)
        try:
            captcha_id = response.json()["id"]
        except (ValueError, KeyError, TypeError):
            return
        with self.client.get(f"{ROBERT_PREFIX}/captcha/{captcha_id}/image", name="captcha-image",
                             catch_response=True) as image:
            self.judge(image, "captcha-image", 200)
        body = {
            "captcha": "".join(random.choices(string.ascii_uppercase, k=6)),
            "captchaId": captcha_id,
            # An uncompressed P-256 point is 65 bytes.
            "clientPublicECDHKey": random_base64(65),
            "pushInfo": push_info(),
        }
        self.post("register", f"{ROBERT_PREFIX}/register", body, 201)

    @task(2)
    def report(self):
        now = ntp_now()
        hello = {"timeCollectedOnDevice": now - 3600, "timeFromHelloMessage": (now - 3600) & 0xFFFF,
                 "mac": random_base64(5), "rssiCalibrated": -60}
        contacts = [{"ebid": random_base64(8), "ecc": random_base64(1), "ids": [hello]} for _ in range(3)]
        # A 12-character test code, one of the three token lengths ROBERT accepts.
        token = "".join(random.choices(string.ascii_uppercase + string.digits, k=12))
        self.post("report", f"{ROBERT_PREFIX}/report", {"token": token, "contacts": contacts}, 200)

    @task(1)
    def unregister(self):
        body = {**authentified_body(), "pushToken": random_base64(24)}
        self.post("unregister", f"{ROBERT_PREFIX}/unregister", body, 200)

    @task(1)
    def delete_exposure_history(self):
        self.post("deleteExposureHistory", f"{ROBERT_PREFIX}/deleteExposureHistory", authentified_body(), 200)

    @task(6)
    def clea_report(self):
        now = ntp_now()
        visits = [{"qrCode": random_base64(96), "qrCodeScanTime": now - 86400 * day} for day in range(1, 3)]
        body = {"pivotDate": now - 14 * 86400, "visits": visits}
        self.post("wreport", f"{self.clea_host}{CLEA_PREFIX}/wreport", body, 200)
