"""Three gunicorn services behind nginx against one service serving everything.

    .venv/bin/python bench/serving_topology.py            # ~6 minutes on 2 cores

Both behind deploy/nginx.conf as shipped, on the same machine, in one run:

- `three-services`: the shipped topology (tutor_platform/serving): `app`,
  `ai` and `stream` services, nginx routing by method and path;
- `one-service`: GUNICORN_SERVICES=app, one gunicorn serving every request
  (a third of the processes, no isolation of the waiting sends).

Figures: the 200-send burst (wall time against AI-Core's 2 s), /tutors/
p99 during it against idle, 1 000 sends, 400 streams, and gunicorn's RSS.
The result goes to docs/decisions (the serving note). The two-pool worker
this topology replaced was measured by the version of this script at
commit d0363c2.
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run

TOPOLOGIES = {"three-services": run.SERVICES, "one-service": ("app",)}
ARGS = argparse.Namespace(workers=None, threads=None, ai_threads=None)


def measure(topology: str, data: dict, stubs: dict[str, int], work: Path) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    for stub, figures in (("slow", "burst"), ("words", "streams")):
        env = run.base_env(AI_CORE_URL=f"http://127.0.0.1:{stubs[stub]}")
        with run.served(env, work / stub, TOPOLOGIES[topology]) as (port, pid):
            if figures == "burst":
                rows += run.measure_burst(port, data, pid, ARGS)
                rows += run.measure_burst(port, data, pid, ARGS, per_student=5)
            else:
                rows += run.measure_streams(port, data, pid)
    return [(f"{topology}: {a}", b, c, d) for a, b, c, d in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(run.BASE_DIR / "bench" / "results" / "serving_topology.md"))
    parser.add_argument("--topologies", nargs="+", default=list(TOPOLOGIES), choices=list(TOPOLOGIES))
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
            for round_number, topology in enumerate(args.topologies * args.rounds):
                print(f"Measuring {topology}...", flush=True)
                rows += measure(topology, data, stubs, Path(tmp) / f"{topology}-{round_number}")
    run.write_table(rows, args.out)


if __name__ == "__main__":
    main()
