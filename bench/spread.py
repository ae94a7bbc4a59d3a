"""Whether a keep-alive load uses every core: each app worker's share of the CPU.

    .venv/bin/python bench/spread.py            # ~4 minutes on 2 cores

wrk (Debian's `wrk` package) keeps 16 connections alive to nginx, as many
as deploy/nginx.conf keeps to each upstream, for `--seconds` on the chat
list and on a 50-message page, `--rounds` times each. Per run: the rps and
each app-service worker's share of the app service's CPU (issue 32's
target: every worker between 35 % and 65 %). `--variants` compares
deploy/nginx.conf as shipped (`shipped`) with each upstream given other
connection-reuse directives (e.g. "keepalive_requests 100"), each variant
served afresh, in one run.
"""

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run

TARGET = (0.35, 0.65)


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def app_workers(shell_pid: int) -> list[int]:
    """The worker processes of the `app` service's gunicorn master."""
    for master in children(shell_pid):
        environ = Path(f"/proc/{master}/environ").read_bytes().split(b"\0")
        if b"GUNICORN_SERVICE=app" in environ:
            return children(master)
    raise RuntimeError("no app service under the served shell")


def upstream_reuse(directives: str):
    """deploy/nginx.conf's upstreams with `directives` ("keepalive_time 1s;
    keepalive_requests 20") in place of their own keepalive_requests and
    keepalive_time."""

    def edit(site: str) -> str:
        site = re.sub(r"\n\s*keepalive_(requests|time) \w+;", "", site)
        lines = "".join(f"\\n\\2{d.strip()};" for d in directives.split(";") if d.strip())
        return re.sub(r"(\n(\s*)keepalive \d+;)", rf"\1{lines}", site)

    return edit


def wrk(port: int, path: str, token: str, seconds: int) -> float:
    out = subprocess.run(
        ["wrk", "-t2", "-c16", f"-d{seconds}s", "-H", f"Authorization: Bearer {token}",
         f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors on {path}:\n{out}")
    return float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")))


def measure(variant: str, port: int, shell_pid: int, data: dict, args) -> list[tuple[str, str, str, str]]:
    workers, rows = app_workers(shell_pid), []
    paths = {"chat list": "/api/v1/chats/", "50-message page": f"/api/v1/chats/{data['page_chat']}/messages/"}
    for label, path in paths.items():
        wrk(port, path, data["token"], 1)  # warm up
        for n in range(args.rounds):
            before = [run._cpu_time([pid]) for pid in workers]
            rate = wrk(port, path, data["token"], args.seconds)
            used = [run._cpu_time([pid]) - b for pid, b in zip(workers, before, strict=True)]
            shares = [u / sum(used) for u in used] if sum(used) else [0.0] * len(used)
            inside = all(TARGET[0] <= share <= TARGET[1] for share in shares)
            rows.append((
                f"{variant}: {label}, run {n + 1}",
                " · ".join(f"{share:.0%}" for share in shares) + f" of {sum(used):.1f} s CPU",
                f"{rate:.0f} rps",
                "yes" if inside else "NO",
            ))  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument(
        "--variants", nargs="+", default=["shipped"],
        help='`shipped` and/or upstream directives, e.g. "keepalive_requests 100"',
    )  # fmt: skip
    parser.add_argument("--out", default=str(run.BASE_DIR / "bench" / "results" / "spread.md"))
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    env = run.base_env()
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        print("Loading data...", flush=True)
        data = run.prepare_database(env, f"{tmp}/data.json")
        for n, variant in enumerate(args.variants):
            edit = None if variant == "shipped" else upstream_reuse(variant)
            label = "as shipped" if edit is None else variant
            with run.served(env, Path(tmp) / str(n), site_edit=edit) as (port, pid):
                rows += measure(label, port, pid, data, args)
    table = "\n".join(
        ["| run | each app worker's share of its CPU | throughput | every share 35–65 % |",
         "|---|---|---|---|", *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)]
    )  # fmt: skip
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
