"""Benchmark: the backend's overhead on top of AI-Core, as ratios measured in one run.

    .venv/bin/python bench/run.py            # ~5 minutes on 2 cores

Starts, on this machine only (127.0.0.1): a fresh PostgreSQL database
`tutor_bench`, three `aicore_stub` servers (instant, 2 s, and streaming a word
every 0.1 s), and the production topology: the three gunicorn services
(gunicorn.conf.py, tutor_platform/serving; DEBUG off, DB_POOL, Redis cache)
behind nginx with deploy/nginx.conf. Load comes from a separate process: wrk
when installed for throughput, Python threads for latencies and the
200-student burst, all through nginx. Server CPU is the gunicorn processes'
(nginx's is not counted). Every figure is a ratio against a baseline
measured in the same run, because absolute times on a shared 2-core machine
are noisy.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(PYTHON).with_name("gunicorn"))
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SERVICES = ("app", "ai", "stream")  # tutor_platform.serving.SERVICES, as shipped
# deploy/nginx.conf's upstream of each service, as the template writes it.
TEMPLATE_SERVERS = {"app": "127.0.0.1:8000", "ai": "127.0.0.1:8010", "stream": "127.0.0.1:8020"}
DB_NAME = "tutor_bench"
PG = "postgres://postgres@127.0.0.1:5432"
AI_LATENCY = 2.0
CHUNK_DELAY = 0.1  # the streaming stub: one word every 0.1 s
STREAMS = 400
PROBE_INTERVAL = 0.01
IDLE_PROBE_SECONDS = 3.0
SECRET_KEY = "bench-" + secrets.token_urlsafe(64)  # one per run: tokens made in setup must verify


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "ENV_FILE": os.devnull,
        "DEBUG": "False",
        "SECRET_KEY": SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "False",  # plain HTTP on loopback; TLS ends at the proxy
        "DATABASE_URL": f"{PG}/{DB_NAME}",
        "DB_POOL": "True",
        "CACHE_URL": "redis://127.0.0.1:6379/14",
        "THROTTLE_ANON_RATE": "100000000/min",
        "THROTTLE_USER_RATE": "100000000/min",
        "THROTTLE_AI_RATE": "100000000/min",
        "LOG_LEVEL": "WARNING",
        "STATICFILES_MANIFEST": "False",
        "AI_CORE_MAX_RETRIES": "0",
        # Management commands (migrate, data set-up) never call AI-Core; the servers get a URL.
        "AI_CORE_URL": "stub",
        "AI_CORE_ALLOW_STUB": "True",
    }
    env.update(extra)
    return env


def chosen_serving(args) -> dict[str, str]:
    """The shipped defaults (gunicorn.conf.py, the pool's default size) unless told otherwise."""
    chosen = {
        "GUNICORN_WORKERS": args.workers,
        "GUNICORN_THREADS": args.threads,
        "GUNICORN_AI_THREADS": args.ai_threads,
    }
    return {name: str(value) for name, value in chosen.items() if value is not None}


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=BASE_DIR, env=env, check=True, stdout=subprocess.DEVNULL)


def wait_for(port: int, path: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port}{path}")


@contextmanager
def process(args: list[str], env: dict[str, str], port: int, ready_path: str):
    proc = subprocess.Popen(
        args,
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(port, ready_path)
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


NGINX_MAIN_CONF = """
user root;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/site.conf;
}}
"""


def nginx_site(nginx_port: int, ports: dict[str, int]) -> str:
    """deploy/nginx.conf as shipped, on `nginx_port`, each service's upstream
    on its port in `ports` (the app service's for a service not run)."""
    conf = (BASE_DIR / "deploy" / "nginx.conf").read_text()
    conf = conf.replace("listen 80;", f"listen 127.0.0.1:{nginx_port};")
    conf = conf.replace(
        "access_log /var/log/nginx/tutor_platform.access.log tutor_platform;", "access_log off;"
    )
    for name, server in TEMPLATE_SERVERS.items():
        conf = conf.replace(f"server {server};", f"server 127.0.0.1:{ports.get(name, ports['app'])};")
    return conf


@contextmanager
def served(env: dict[str, str], work: Path, services: tuple[str, ...] = SERVICES, site_edit=None):
    """The gunicorn services (all under one shell, so that `family` of the
    pid yielded is every gunicorn process) behind nginx; yields (nginx's
    port, the shell's pid). `site_edit` may change the nginx site's text
    (a variant of deploy/nginx.conf to compare with the shipped one)."""
    ports = {name: free_port() for name in services}
    command = " & ".join(
        f"GUNICORN_SERVICE={name} {GUNICORN} tutor_platform.wsgi -c gunicorn.conf.py -b 127.0.0.1:{port}"
        for name, port in ports.items()
    )
    nginx_port = free_port()
    work.mkdir(parents=True, exist_ok=True)
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / name).mkdir(exist_ok=True)
    site = nginx_site(nginx_port, ports)
    (work / "site.conf").write_text(site_edit(site) if site_edit else site)
    (work / "nginx.conf").write_text(NGINX_MAIN_CONF.format(dir=work))
    nginx = [NGINX, "-p", str(work), "-c", str(work / "nginx.conf"), "-e", str(work / "error.log"),
             "-g", "daemon off;"]  # fmt: skip
    server_env = {**env, "GUNICORN_SERVICES": ",".join(services)}
    with process(["sh", "-c", command + " & wait"], server_env, ports["app"], "/api/v1/health/") as server:
        for port in ports.values():
            wait_for(port, "/api/v1/health/")
        with process(nginx, env, nginx_port, "/api/v1/health/"):
            time.sleep(1)
            yield nginx_port, server.pid


def family(pid: int) -> list[int]:
    """The process and all its descendants (with the gunicorn services under
    one shell: every master and its workers)."""
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [pid, *(p for child in children.split() for p in family(int(child)))]


def _cpu_time(pids: list[str | int]) -> float:
    """User + system CPU time of these processes so far, in seconds."""
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return total / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children so far."""
    return _cpu_time(family(pid))


def postgres_cpu_seconds() -> float:
    """CPU time of every PostgreSQL process on this machine (the benchmark is its only client)."""
    return _cpu_time(
        subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout.split()
    )


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its children, in MiB."""
    total = 0
    for p in family(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
    return total / 1024


class Client:
    """One keep-alive HTTP connection; returns (status, seconds)."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.port = port
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.error = ""

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, float]:
        data = json.dumps(body).encode() if body is not None else None
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=data, headers=self.headers)
            response = self.conn.getresponse()
            response.read()
        except (http.client.HTTPException, OSError) as exc:
            self.error = type(exc).__name__  # what the last failed call met
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            return 0, time.perf_counter() - started
        return response.status, time.perf_counter() - started


def latencies(client: Client, method: str, path: str, n: int, body: dict | None = None) -> list[float]:
    times = []
    for _ in range(n):
        status, seconds = client.call(method, path, body)
        if status not in (200, 201):
            raise RuntimeError(f"{method} {path} answered {status}")
        times.append(seconds)
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), pct(values, 95)


class Probe:
    """GET /tutors/ every PROBE_INTERVAL seconds (a student browsing, not a
    load of its own: unpaced, it sent 1 800 requests during one burst), from
    a process of its own: sharing this process with hundreds of load
    threads, a probe measured its own wait for this process's GIL as well
    as the server's answer."""

    def __init__(self, port: int) -> None:
        context = multiprocessing.get_context("fork")  # before the load threads start
        self.go, self.halt = context.Event(), context.Event()
        self.results, sender = context.Pipe(duplex=False)
        self.process = context.Process(
            target=Probe._run, args=(port, self.go, self.halt, sender), daemon=True
        )
        self.process.start()
        sender.close()  # the child's end: recv() then fails, not hangs, if the child dies

    @staticmethod
    def _run(port: int, go, halt, sender) -> None:
        probe = Client(port)
        latencies(probe, "GET", "/api/v1/tutors/", 5)  # the connection, before the clock starts
        go.wait()
        times, due = [], time.perf_counter()
        while not halt.is_set():
            times.append(probe.call("GET", "/api/v1/tutors/")[1])
            due = max(due + PROBE_INTERVAL, time.perf_counter())
            halt.wait(due - time.perf_counter())
        sender.send(times)

    def start(self) -> None:
        self.go.set()

    def stop(self) -> list[float]:
        self.halt.set()
        times = self.results.recv()
        self.process.join()
        return times


def peak_rss_while(threads: list[threading.Thread], server_pid: int) -> float:
    """The server's largest RSS (MiB) seen until every thread has ended."""
    peak = 0.0
    while any(t.is_alive() for t in threads):
        peak = max(peak, rss_mb(server_pid))
        time.sleep(0.01)
    return peak


def probed(port: int, seconds: float) -> list[float]:
    """The probe's latencies over `seconds` with nothing else going on."""
    probe = Probe(port)
    probe.start()
    time.sleep(seconds)
    return probe.stop()


def rps(port: int, path: str, token: str | None, seconds: int) -> float:
    if shutil.which("wrk"):
        header = ["-H", f"Authorization: Bearer {token}"] if token else []
        out = subprocess.run(
            ["wrk", "-t2", "-c16", f"-d{seconds}s", *header, f"http://127.0.0.1:{port}{path}"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        if "Non-2xx" in out:
            raise RuntimeError(f"wrk saw errors on {path}:\n{out}")
        return float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")))
    count, stop = [0], time.monotonic() + seconds

    def worker() -> None:
        client = Client(port, token)
        while time.monotonic() < stop:
            if client.call("GET", path)[0] == 200:
                count[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return count[0] / seconds


def prepare_database(env: dict[str, str], data_file: str) -> dict:
    subprocess.run(["psql", PG + "/postgres", "-qc", f"DROP DATABASE IF EXISTS {DB_NAME}"], check=True)
    subprocess.run(["psql", PG + "/postgres", "-qc", f"CREATE DATABASE {DB_NAME}"], check=True)
    manage("migrate", "--noinput", env=env)
    manage("seed_demo", env=env)
    manage("shell", "-c", f"import bench.setup_data as s; s.main({data_file!r})", env=env)
    return json.loads(Path(data_file).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300, help="requests per latency sample")
    parser.add_argument("--seconds", type=int, default=5, help="duration of each throughput run")
    parser.add_argument(
        "--workers", type=int, help="GUNICORN_WORKERS (default: gunicorn.conf.py's, the cores)"
    )
    parser.add_argument("--threads", type=int, help="GUNICORN_THREADS (default: gunicorn.conf.py's, 32)")
    parser.add_argument(
        "--ai-threads", type=int, help="GUNICORN_AI_THREADS (default: gunicorn.conf.py's, 128)"
    )
    parser.add_argument(
        "--cpu-only", action="store_true", help="only the server CPU per request (item 7; ~3 minutes)"
    )
    parser.add_argument(
        "--streams-only", action="store_true", help="only the concurrent streams (item 6; ~2 minutes)"
    )
    parser.add_argument("--streams", type=int, default=STREAMS, help=f"streams at once (default {STREAMS})")
    parser.add_argument("--out", default=str(BASE_DIR / "bench" / "results" / "latest.md"))
    args = parser.parse_args()
    serving = chosen_serving(args)

    stub_fast, stub_slow, stub_words = free_port(), free_port(), free_port()
    env = base_env()
    rows: list[tuple[str, str, str, str]] = []
    stub = [PYTHON, "manage.py", "aicore_stub", "--quiet", "--port"]
    with tempfile.TemporaryDirectory() as tmp:
        print("Loading data (100 000-message chat, 200 students)...", flush=True)
        data = prepare_database(env, f"{tmp}/data.json")
        work = Path(tmp)
        with (
            process([*stub, str(stub_fast)], env, stub_fast, "/api/v1/health"),
            process([*stub, str(stub_slow), "--delay", str(AI_LATENCY)], env, stub_slow, "/api/v1/health"),
            process(
                [*stub, str(stub_words), "--chunk-delay", str(CHUNK_DELAY)], env, stub_words, "/api/v1/health"
            ),
        ):
            if args.streams_only:
                words_env = base_env(AI_CORE_URL=f"http://127.0.0.1:{stub_words}", **serving)
                with served(words_env, work / "words") as (port, pid):
                    rows += measure_streams(port, data, pid, args.streams)
                return finish(rows, args)
            fast_env = base_env(AI_CORE_URL=f"http://127.0.0.1:{stub_fast}", **serving)
            with served(fast_env, work / "fast") as (port, pid):
                if args.cpu_only:
                    rows += measure_cpu(port, data, pid)
                    return finish(rows, args)
                rows += measure_fast(port, data, args)
                rows.append(("", "", "", f"gunicorn RSS after items 1-3, 5: {rss_mb(pid):.0f} MiB"))
                rows += measure_cpu(port, data, pid)
            slow_env = base_env(AI_CORE_URL=f"http://127.0.0.1:{stub_slow}", **serving)
            with served(slow_env, work / "slow") as (port, pid):
                rows += measure_burst(port, data, pid, args)
                rows += measure_burst(port, data, pid, args, per_student=5)
            words_env = base_env(AI_CORE_URL=f"http://127.0.0.1:{stub_words}", **serving)
            with served(words_env, work / "words") as (port, pid):
                rows += measure_streams(port, data, pid, args.streams)
    finish(rows, args)


def finish(rows: list[tuple[str, str, str, str]], args) -> None:
    table = render(rows, args)
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table)


def measure_fast(port: int, data: dict, args) -> list[tuple[str, str, str, str]]:
    client = Client(port, data["token"])
    n = args.n
    for path in ("/api/v1/auth/me/", f"/api/v1/chats/{data['big_chat']}/messages/"):
        latencies(client, "GET", path, 30)  # warm up connections and caches
    me = summary(latencies(client, "GET", "/api/v1/auth/me/", n))
    body = {"content": "Как решить x² − 5x + 6 = 0?"}
    send_empty = summary(latencies(client, "POST", f"/api/v1/chats/{data['empty_chat']}/messages/", n, body))
    send_big = summary(latencies(client, "POST", f"/api/v1/chats/{data['big_chat']}/messages/", n, body))
    newest = summary(latencies(client, "GET", f"/api/v1/chats/{data['big_chat']}/messages/", n))
    deep_path = f"/api/v1/chats/{data['big_chat']}/messages/?before_id={data['big_chat_early_before_id']}"
    deep = summary(latencies(client, "GET", deep_path, n))

    def ms(pair: tuple[float, float]) -> str:
        return f"{pair[0] * 1000:.1f} / {pair[1] * 1000:.1f} ms"

    def ratio(a: tuple[float, float], b: tuple[float, float]) -> str:
        return f"{a[0] / b[0]:.2f} / {a[1] / b[1]:.2f}"

    q = data["send_queries"]
    rows = [
        ("1. send overhead (instant AI-Core) vs GET /auth/me/", f"{ms(send_empty)} vs {ms(me)}",
         ratio(send_empty, me), "≤ 3"),
        ("2. page near the start of a 100k chat vs newest page", f"{ms(deep)} vs {ms(newest)}",
         ratio(deep, newest), "≤ 1.2"),
        ("3. send into the 100k chat vs into an empty chat", f"{ms(send_big)} vs {ms(send_empty)}",
         ratio(send_big, send_empty), "≤ 1.2"),
        ("3. queries per send: 100k chat vs empty chat", f"{q['big']} vs {q['empty']}",
         "same" if q["big"] == q["empty"] else "DIFFERENT", "same"),
    ]  # fmt: skip
    health = rps(port, "/api/v1/health/", data["token"], args.seconds)
    for label, path, token in (
        ("tutor list, anonymous", "/api/v1/tutors/", None),
        ("tutor list", "/api/v1/tutors/", data["token"]),
        ("chat list", "/api/v1/chats/", data["token"]),
        ("50-message page", f"/api/v1/chats/{data['page_chat']}/messages/", data["token"]),
    ):
        value = rps(port, path, token, args.seconds)
        rows.append((f"5. throughput: {label} vs /health/", f"{value:.0f} vs {health:.0f} rps",
                     f"{value / health:.2f}", "≥ 0.5"))  # fmt: skip
    return rows


CPU_REQUESTS = 400  # per figure and round, from CPU_CLIENTS keep-alive connections
CPU_CLIENTS = 4
CPU_ROUNDS = 5  # interleaved; each figure is the median of its rounds (other tenants' load comes and goes)


def measure_cpu(port: int, data: dict, server_pid: int) -> list[tuple[str, str, str, str]]:
    """Server CPU per request: the gunicorn processes' CPU time (and
    PostgreSQL's) over a fixed number of requests, against /health/'s."""
    token, body = data["token"], {"content": "Как решить x² − 5x + 6 = 0?"}
    send_path = f"/api/v1/chats/{data['empty_chat']}/messages/"
    figures = [  # label, method, path, with a token, target
        ("GET /health/", "GET", "/api/v1/health/", False, ""),
        ("GET /tutors/, anonymous", "GET", "/api/v1/tutors/", False, "≤ 1.2"),
        ("GET /courses/, anonymous", "GET", "/api/v1/courses/", False, "≤ 1.2"),
        ("GET /tutors/ with a token", "GET", "/api/v1/tutors/", True, "≤ 1.2"),
        ("GET /auth/me/", "GET", "/api/v1/auth/me/", True, "≤ 2"),
        ("GET /chats/ (50 chats)", "GET", "/api/v1/chats/", True, "≤ 2"),
        ("50-message page", "GET", f"/api/v1/chats/{data['page_chat']}/messages/", True, "≤ 2"),
        ("send (instant AI-Core)", "POST", send_path, True, "≤ 5"),
    ]

    def per_request(method: str, path: str, with_token: bool) -> tuple[float, float]:
        n = CPU_REQUESTS // 4 if method == "POST" else CPU_REQUESTS
        payload = body if method == "POST" else None
        clients = [Client(port, token if with_token else None) for _ in range(CPU_CLIENTS)]
        for client in clients:
            latencies(client, method, path, 5, payload)  # warm up
        gunicorn_before, postgres_before = cpu_seconds(server_pid), postgres_cpu_seconds()
        threads = [
            threading.Thread(target=latencies, args=(c, method, path, n // CPU_CLIENTS, payload))
            for c in clients
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return (cpu_seconds(server_pid) - gunicorn_before) / n, (postgres_cpu_seconds() - postgres_before) / n

    rounds = [[per_request(*figure[1:4]) for figure in figures] for _ in range(CPU_ROUNDS)]
    medians = [
        (statistics.median(r[i][0] for r in rounds), statistics.median(r[i][1] for r in rounds))
        for i in range(len(figures))
    ]
    health = medians[0]

    def ms(pair: tuple[float, float]) -> str:
        return f"{pair[0] * 1000:.2f} ms (+ {pair[1] * 1000:.2f} ms PostgreSQL)"

    return [
        (f"7. server CPU per request: {label} vs /health/", f"{ms(cpu)} vs {ms(health)}",
         f"{cpu[0] / health[0]:.2f}", target)
        for (label, *_request, target), cpu in zip(figures[1:], medians[1:], strict=True)
    ]  # fmt: skip


def measure_burst(
    port: int, data: dict, server_pid: int, args, per_student: int = 1
) -> list[tuple[str, str, str, str]]:
    """Every student sends `per_student` messages at once (200 or 1 000
    sends), while a probe reads /tutors/ over and over."""
    idle = probed(port, IDLE_PROBE_SECONDS)
    probe = Probe(port)
    students = data["students"] * per_student
    barrier = threading.Barrier(len(students) + 1)
    statuses: list[int] = [0] * len(students)
    clients = [Client(port, s["token"]) for s in students]

    def student(i: int) -> None:
        barrier.wait()
        try:
            statuses[i] = clients[i].call(
                "POST", f"/api/v1/chats/{students[i]['chat']}/messages/", {"content": "Объясните производную"}
            )[0]
        except OSError:
            statuses[i] = -1  # the connection failed

    threads = [threading.Thread(target=student, args=(i,)) for i in range(len(students))]
    for t in threads:
        t.start()
    barrier.wait()
    probe.start()
    cpu_before = cpu_seconds(server_pid)
    started = time.perf_counter()
    peak_rss = peak_rss_while(threads, server_pid)
    burst = time.perf_counter() - started
    busy = probe.stop()
    for t in threads:
        t.join()
    cpu_per_send = (cpu_seconds(server_pid) - cpu_before) / len(students)
    ok = statuses.count(201)
    idle_p99, busy_p99 = pct(idle, 99), pct(busy, 99)
    if per_student > 1:
        return [
            (f"4. {len(students)} concurrent sends, AI-Core {AI_LATENCY:.0f} s: wall vs AI-Core latency",
             f"{burst:.2f} s vs {AI_LATENCY:.2f} s ({ok}/{len(students)} answered 201, "
             f"{sum(1 for s in statuses if s >= 500 or s < 0)} 5xx or failed; the others: "
             f"{dict(Counter(s for s in statuses if s != 201)) or 'none'}; connections failed with "
             f"{dict(Counter(c.error for c, s in zip(clients, statuses, strict=True) if s == 0)) or 'none'})",
             f"{burst / AI_LATENCY:.2f}", "all answered"),
            (f"4. GET /tutors/ p99 during {len(students)} sends vs idle",
             f"{busy_p99 * 1000:.1f} vs {idle_p99 * 1000:.1f} ms ({len(busy)} samples)",
             f"{busy_p99 / idle_p99:.2f}", ""),
            (f"4. gunicorn RSS at the peak of {len(students)} sends", f"{peak_rss:.0f} MiB", "", ""),
        ]  # fmt: skip
    return [
        (f"4. {len(students)} concurrent sends, AI-Core {AI_LATENCY:.0f} s: burst vs AI-Core latency",
         f"{burst:.2f} s vs {AI_LATENCY:.2f} s ({ok}/{len(students)} answered 201)",
         f"{burst / AI_LATENCY:.2f}", "≤ 1.5, all 201"),
        ("4. GET /tutors/ p99 during the burst vs idle",
         f"{busy_p99 * 1000:.1f} vs {idle_p99 * 1000:.1f} ms ({len(busy)} samples)",
         f"{busy_p99 / idle_p99:.2f}", "≤ 5"),
        ("4. gunicorn RSS at the burst's peak", f"{peak_rss:.0f} MiB", "", ""),
        ("4. gunicorn CPU per send (why the burst is CPU-bound on 2 cores)",
         f"{cpu_per_send * 1000:.1f} ms × {len(students)} = {cpu_per_send * len(students):.2f} CPU-s",
         "", ""),
    ]  # fmt: skip


QUESTION = "Расскажите подробно, как решать квадратные уравнения через дискриминант, с примером и проверкой"


def open_stream(
    port: int, token: str, chat: int
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
    }
    conn.request(
        "POST", f"/api/v1/chats/{chat}/messages/", body=json.dumps({"content": QUESTION}), headers=headers
    )
    return conn, conn.getresponse()


def read_stream(response: http.client.HTTPResponse) -> tuple[list[tuple[float, str]], str]:
    """(arrival time, text) of each delta, and the final event's content ('' after an error)."""
    deltas, buffer, final = [], b"", ""
    while True:
        chunk = response.read1(65536)
        if not chunk:
            return deltas, final
        now = time.perf_counter()
        buffer += chunk
        while b"\n\n" in buffer:
            block, buffer = buffer.split(b"\n\n", 1)
            lines = block.decode().splitlines()
            name = next((line[7:] for line in lines if line.startswith("event: ")), "")
            data = next((line[6:] for line in lines if line.startswith("data: ")), "")
            if name == "delta":
                deltas.append((now, json.loads(data)["content"]))
            elif name == "assistant_message":
                final = json.loads(data)["content"]
            elif name == "error":
                return deltas, ""


def measure_streams(
    port: int, data: dict, server_pid: int, streams: int = STREAMS
) -> list[tuple[str, str, str, str]]:
    """Time to the first delta (the stub sends its first word at once), and `streams` streams at once."""
    me = statistics.median(latencies(Client(port, data["token"]), "GET", "/api/v1/auth/me/", 100))
    students = data["students"]
    first = []
    for student in students[:20]:
        started = time.perf_counter()
        conn, response = open_stream(port, student["token"], student["chat"])
        buffer = b""
        while b"event: delta" not in buffer:
            buffer += response.read1(65536)
        first.append(time.perf_counter() - started)
        conn.close()  # the reply goes on without us
    time.sleep(15)  # let those replies finish
    idle = probed(port, IDLE_PROBE_SECONDS)
    probe = Probe(port)
    results: list[tuple[list[tuple[float, str]], str] | None] = [None] * streams
    barrier = threading.Barrier(streams + 1)

    def stream(i: int) -> None:
        student = students[i % len(students)]
        barrier.wait()
        try:
            conn, response = open_stream(port, student["token"], student["chat"])
            results[i] = read_stream(response)
            conn.close()
        except OSError:
            results[i] = None

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(streams)]
    for t in threads:
        t.start()
    barrier.wait()
    probe.start()
    started = time.perf_counter()
    peak_rss = peak_rss_while(threads, server_pid)
    wall = time.perf_counter() - started
    busy = probe.stop()
    whole = [r for r in results if r and r[1] and "".join(text for _, text in r[0]) == r[1]]
    # How late each word came, against the first word's arrival and the stub's pace.
    lateness = [
        max(0.0, arrival - (r[0][0][0] + index * CHUNK_DELAY))
        for r in whole
        for index, (arrival, _text) in enumerate(r[0])
    ] or [float("nan")]
    pieces = statistics.median(len(r[0]) for r in whole) if whole else 0
    ttfd = statistics.median(first)
    # When each stream's first word came, from the moment all of them were sent.
    first_words = [r[0][0][0] - started for r in whole if r[0]] or [float("nan")]
    return [
        ("6. time to the first delta (the stub's first word is immediate) vs GET /auth/me/",
         f"{ttfd * 1000:.1f} vs {me * 1000:.1f} ms", f"{ttfd / me:.2f}", "≤ 1.5"),
        (f"6. {streams} concurrent streams ({pieces:.0f} words, {CHUNK_DELAY} s apart), whole text",
         f"{len(whole)}/{streams} in {wall:.1f} s", "", f"all {streams}"),
        (f"6. {streams} concurrent streams: first word, median / p99 vs the time to the first delta alone",
         f"{statistics.median(first_words) * 1000:.0f} / {pct(first_words, 99) * 1000:.0f} ms "
         f"vs {ttfd * 1000:.1f} ms", f"{pct(first_words, 99) / ttfd:.1f}", ""),
        ("6. p99 lateness of a word (arrival vs the first word + the stub's pace)",
         f"{pct(lateness, 99):.2f} s", "", "≤ 0.5 s"),
        ("6. GET /tutors/ p99 during the streams vs idle",
         f"{pct(busy, 99) * 1000:.1f} vs {pct(idle, 99) * 1000:.1f} ms",
         f"{pct(busy, 99) / pct(idle, 99):.2f}", "≤ 5"),
        ("6. gunicorn RSS at the streams' peak", f"{peak_rss:.0f} MiB", "", ""),
    ]  # fmt: skip


def render(rows: list[tuple[str, str, str, str]], args) -> str:
    lines = [
        "| figure | measured (median / p95) | ratio | target |",
        "|---|---|---|---|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows if a),
        "",
        *(d for a, _b, _c, d in rows if not a),
        "gunicorn: "
        + (
            ", ".join(f"{name}={value}" for name, value in chosen_serving(args).items())
            or "the shipped defaults"
        )
        + " (gunicorn.conf.py: three services of workers = cores each, app 32, ai 128 and stream 32"
        + f" threads, behind nginx), {os.cpu_count()} cores.",
    ]
    return "\n".join(lines) + "\n"


def write_table(rows: list[tuple[str, str, str, str]], out: str) -> None:
    """Prints `rows` as a Markdown table and writes it to `out` (the other bench scripts' results)."""
    table = "\n".join(
        ["| figure | measured | ratio | target |", "|---|---|---|---|"]
        + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    )
    print(table)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(table + "\n")


if __name__ == "__main__":
    main()
