"""The Locust scenario runs headless against the ROBERT/CLEA stand-in on loopback, and its report reads the CSV.

Each run is bounded by ``--run-time`` and ``--max-requests``; the stand-in listens on
127.0.0.1 on a port the kernel picks.
"""

from __future__ import annotations

import importlib.util
import json
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mock_stack import ROOT

LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"
MAX_REQUESTS = 200
USERS = 4


def load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # dataclasses look the module up in sys.modules while the module executes.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


report = load_module("loadtest_report", ROOT / "loadtest" / "report.py")


@pytest.fixture
def standin_url():
    standin = load_module("robert_standin", ROOT / "src" / "tacops" / "lab" / "fixtures" / "robert_standin.py")
    api, management = standin.make_servers("127.0.0.1", 0, 0)
    thread = threading.Thread(target=api.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{api.server_address[1]}"
    api.shutdown()
    api.server_close()
    management.server_close()


def run_locust(host: str, csv_prefix: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", host,
               "--users", str(USERS), "--spawn-rate", str(USERS), "--run-time", "4s", "--stop-timeout", "2",
               "--think-time", "0.01:0.03", "--max-requests", str(MAX_REQUESTS),
               "--csv", str(csv_prefix), "--only-summary", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_locust_mix_against_standin(standin_url, tmp_path):
    prefix = tmp_path / "ct"
    result = run_locust(standin_url, prefix)
    assert result.returncode == 0, result.stderr[-3000:]

    load = report.build_report(str(prefix))
    requested = {route.name: route.requests for route in load.routes if route.requests}
    assert load.total.requests >= 50
    # In-flight requests of each user finish after the limit is reached.
    assert load.total.requests <= MAX_REQUESTS + USERS * 3
    assert load.total.failures == 0, load.failures
    assert load.failures == []
    assert {"status", "captcha", "captcha-image", "register", "wreport"} <= set(requested)
    assert requested["status"] == max(requested.values())
    assert load.total.percentiles_ms["99%"] is not None
    assert load.total.requests_per_second > 0


def test_locust_counts_errors_of_wrong_route(standin_url, tmp_path):
    prefix = tmp_path / "ct"
    result = run_locust(standin_url, prefix, "--clea-host", f"{standin_url}/missing")
    # Locust exits 1 when a request failed.
    assert result.returncode == 1, result.stderr[-3000:]

    load = report.build_report(str(prefix))
    failed = {route.name for route in load.routes if route.failures}
    assert failed == {"wreport"}
    assert [failure["name"] for failure in load.failures] == ["wreport"]
    assert load.failures[0]["error"] == "wreport: HTTP 404, expected 200"
    markdown = report.render_markdown(load)
    assert "## Errors" in markdown
    assert "| POST wreport | wreport: HTTP 404, expected 200 |" in markdown


def fake_kubectl(directory: Path, replicas: list[int]) -> Path:
    """Write a kubectl stand-in that returns one HPA whose current replicas follow ``replicas``."""
    documents = []
    for current in replicas:
        documents.append({"items": [{
            "metadata": {"name": "robert-ws-rest"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "robert-ws-rest"},
                     "minReplicas": 2, "maxReplicas": 10},
            "status": {"currentReplicas": current, "desiredReplicas": min(current + 2, 10),
                       "currentMetrics": [{"type": "Resource",
                                           "resource": {"name": "cpu", "current": {"averageUtilization": 85}}}]},
        }]})
    (directory / "documents.json").write_text(json.dumps(documents))
    script = directory / "kubectl"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, pathlib, sys\n"
        f"directory = pathlib.Path({str(directory)!r})\n"
        "counter = directory / 'calls'\n"
        "calls = int(counter.read_text()) if counter.exists() else 0\n"
        "counter.write_text(str(calls + 1))\n"
        "(directory / 'arguments').write_text(json.dumps(sys.argv[1:]))\n"
        "print(json.dumps(json.loads((directory / 'documents.json').read_text())[calls]))\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_hpa_sampling_bounded_and_reported(tmp_path):
    kubectl = fake_kubectl(tmp_path, [2, 4, 7, 10, 10])
    output = tmp_path / "hpa.csv"

    samples = report.sample_hpa("ct", output, kubeconfig="/tmp/kubeconfig", interval=0.01, duration=30,
                                max_samples=4, kubectl=str(kubectl))

    assert samples == 4
    arguments = json.loads((tmp_path / "arguments").read_text())
    assert arguments == ["get", "hpa", "--namespace", "ct", "--output", "json", "--kubeconfig", "/tmp/kubeconfig"]
    [series] = report.read_replicas(output)
    assert [current for _, current, _ in series.samples] == [2, 4, 7, 10]
    assert series.target == "Deployment/robert-ws-rest"
    assert series.min_replicas_seen == 2
    assert series.max_replicas_seen == 10


def test_summarize_command_writes_json(standin_url, tmp_path):
    prefix = tmp_path / "ct"
    assert run_locust(standin_url, prefix, "--max-requests", "40").returncode == 0
    replicas = tmp_path / "hpa.csv"
    report.sample_hpa("ct", replicas, kubeconfig=None, interval=0.01, duration=30, max_samples=2,
                      kubectl=str(fake_kubectl(tmp_path, [2, 5])))
    output = tmp_path / "report.json"

    assert report.main(["summarize", "--csv-prefix", str(prefix), "--replicas", str(replicas),
                        "--json", str(output)]) == 0

    document = json.loads(output.read_text())
    assert document["total"]["failures"] == 0
    assert document["replicas"][0]["hpa"] == "robert-ws-rest"
    assert [sample[1] for sample in document["replicas"][0]["samples"]] == [2, 5]
