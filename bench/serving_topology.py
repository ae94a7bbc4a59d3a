"""The two-pool gunicorn worker against two plain gunicorn services behind nginx.

    .venv/bin/python bench/serving_topology.py            # ~8 minutes on 2 cores

Both behind deploy/nginx.conf as shipped, on the same machine, in one run:

- `two-pool`: one gunicorn with tutor_platform.serving.worker.TwoPoolWorker
  (gunicorn.conf.py as shipped), nginx proxying everything to it;
- `two-services`: two gunicorn services from the same code with the stock
  gthread worker, one for the requests that wait on AI-Core (sends,
  /reply/, /regenerate/, re-attached streams) and one for everything else,
  nginx routing by method and path (the same rule as serving.pool_for);
- `three-services`: the same with re-attached streams in a third service,
  as the two-pool worker keeps them apart from the sends.

Figures: the 200-send burst (wall time against AI-Core's 2 s), /tutors/
p99 during it against idle, 1 000 sends, 400 streams. The result goes to
docs/decisions (the serving note).
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# Quoted: nginx reads an unquoted `{` as the start of a block. The same rule as serving.pool_for.
ROUTES = {
    "ai": '"~^POST:/api/v1/chats/[0-9]+/(messages|reply|regenerate)/$"',
    "stream": '"~^GET:/api/v1/chats/[0-9]+/stream/$"',
}
# Per topology: the services behind nginx, each (name, threads); `app` gets
# every request no route names. GUNICORN_* as shipped: 32, 128 and 32.
TOPOLOGIES = {
    "two-pool": None,  # one gunicorn, the TwoPoolWorker: nginx sends it everything
    "two-services": (("app", 32), ("ai", 128 + 32)),  # followers share the sends' service
    "three-services": (("app", 32), ("ai", 128), ("stream", 32)),  # followers apart (issue 24, item 1)
}

MAIN_CONF = """
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


def site(nginx_port: int, ports: dict[str, int]) -> str:
    """deploy/nginx.conf as shipped, with an upstream per service (`app` is
    the shipped one) and a map from method and path to the service."""
    conf = (run.BASE_DIR / "deploy" / "nginx.conf").read_text()
    conf = conf.replace("listen 80;", f"listen 127.0.0.1:{nginx_port};")
    conf = conf.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{ports['app']};")
    if len(ports) == 1:
        return conf
    extra = "".join(
        f"upstream tutor_platform_{name} {{\n    server 127.0.0.1:{port};\n    keepalive 16;\n}}\n"
        for name, port in ports.items()
        if name != "app"
    )
    routes = "".join(f"    {ROUTES[name]} {name};\n" for name in ports if name != "app")
    extra += f'map "$request_method:$uri" $tutor_platform_pool {{\n{routes}    default app;\n}}\n'
    conf = conf.replace("upstream tutor_platform_app {", extra + "upstream tutor_platform_app {", 1)
    return conf.replace(
        "proxy_pass http://tutor_platform_app;", "proxy_pass http://tutor_platform_$tutor_platform_pool;"
    )


@contextmanager
def nginx(work: Path, conf: str, port: int):
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / name).mkdir(exist_ok=True)
    (work / "site.conf").write_text(conf)
    (work / "nginx.conf").write_text(MAIN_CONF.format(dir=work))
    proc = subprocess.Popen([NGINX, "-p", str(work), "-c", str(work / "nginx.conf"), "-g", "daemon off;"])
    try:
        run.wait_for(port, "/api/v1/health/")
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def gunicorn(port: int, *extra: str) -> str:
    args = [run.GUNICORN, "tutor_platform.wsgi", "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}", *extra]
    return " ".join(args)


def measure(topology: str, data: dict, stubs: dict[str, int], work: Path) -> list[tuple[str, str, str, str]]:
    services = TOPOLOGIES[topology] or (("app", 0),)
    ports = {name: run.free_port() for name, _threads in services}
    nginx_port = run.free_port()
    rows: list[tuple[str, str, str, str]] = []
    for stub, figures in (("slow", "burst"), ("words", "streams")):
        env = run.base_env(AI_CORE_URL=f"http://127.0.0.1:{stubs[stub]}")
        if TOPOLOGIES[topology] is None:
            command = gunicorn(ports["app"])
        else:
            # 2 processes per service (the cores); the database budget counts them all.
            env["GUNICORN_WORKERS"] = str(2 * len(services))
            command = (
                " & ".join(
                    gunicorn(ports[name], "-k", "gthread", "-w", "2", "--threads", str(threads))
                    for name, threads in services
                )
                + " & wait"
            )
        with (
            run.process(["sh", "-c", command], env, ports["app"], "/api/v1/health/") as server,
            nginx(work, site(nginx_port, ports), nginx_port),
        ):
            for port in ports.values():
                run.wait_for(port, "/api/v1/health/")
            time.sleep(1)
            if figures == "burst":
                rows += run.measure_burst(nginx_port, data, server.pid, ARGS)
                rows += run.measure_burst(nginx_port, data, server.pid, ARGS, per_student=5)
            else:
                rows += run.measure_streams(nginx_port, data, server.pid)
    return [(f"{topology}: {a}", b, c, d) for a, b, c, d in rows]


ARGS = argparse.Namespace(workers=None, threads=None, ai_threads=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(run.BASE_DIR / "bench" / "results" / "serving_topology.md"))
    parser.add_argument("--topologies", nargs="+", default=["two-pool", "two-services", "three-services"])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    stubs = {"slow": run.free_port(), "words": run.free_port()}
    env = run.base_env()
    with tempfile.TemporaryDirectory() as tmp:
        print("Loading data...", flush=True)
        data = run.prepare_database(env, f"{tmp}/data.json")
        stub = [run.PYTHON, "manage.py", "aicore_stub", "--quiet", "--port"]
        rows: list[tuple[str, str, str, str]] = []
        with (
            run.process([*stub, str(stubs["slow"]), "--delay", str(run.AI_LATENCY)], env, stubs["slow"],
                        "/api/v1/health"),
            run.process([*stub, str(stubs["words"]), "--chunk-delay", str(run.CHUNK_DELAY)], env,
                        stubs["words"], "/api/v1/health"),
        ):  # fmt: skip
            for topology in args.topologies * args.rounds:
                print(f"Measuring {topology}...", flush=True)
                work = Path(tmp) / f"nginx-{len(rows)}"
                work.mkdir()
                rows += measure(topology, data, stubs, work)
    table = "\n".join(
        ["| figure | measured | ratio | target |", "|---|---|---|---|"]
        + [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    )
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
