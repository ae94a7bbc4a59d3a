"""A thousand waiting students: the `ai` service's threads against memory.

    .venv/bin/python bench/ai_pool.py            # ~6 minutes on 2 cores

The shipped topology behind nginx (bench/run.py's `served`) on a 2 s
AI-Core, once per `--ai-threads` value (GUNICORN_AI_THREADS, each served
afresh): 1 000 and 2 000 concurrent sends (200 students × 5 and × 10),
their wall time against AI-Core's latency, the gunicorn processes' peak
RSS, and `/tutors/` p99 during them against idle (bench/run.py's
`measure_burst`). The result goes to docs/decisions.
"""

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ai-threads", nargs="+", type=int, default=[128, 256, 512])
    parser.add_argument("--per-student", nargs="+", type=int, default=[5, 10])
    parser.add_argument("--out", default=str(run.BASE_DIR / "bench" / "results" / "ai_pool.md"))
    args = parser.parse_args()
    slow = run.free_port()
    env = run.base_env()
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        print("Loading data...", flush=True)
        data = run.prepare_database(env, f"{tmp}/data.json")
        stub = [run.PYTHON, "manage.py", "aicore_stub", "--quiet", "--port", str(slow)]
        with run.process([*stub, "--delay", str(run.AI_LATENCY)], env, slow, "/api/v1/health"):
            for threads in args.ai_threads:
                print(f"GUNICORN_AI_THREADS={threads}...", flush=True)
                served_env = run.base_env(
                    AI_CORE_URL=f"http://127.0.0.1:{slow}", GUNICORN_AI_THREADS=str(threads)
                )
                serving = argparse.Namespace(workers=None, threads=None, ai_threads=threads)
                with run.served(served_env, Path(tmp) / str(threads)) as (port, pid):
                    rows.append((f"**GUNICORN_AI_THREADS={threads}**", "", "", ""))
                    rows.append(("gunicorn RSS idle", f"{run.rss_mb(pid):.0f} MiB", "", ""))
                    for per_student in args.per_student:
                        rows += run.measure_burst(port, data, pid, serving, per_student=per_student)
    run.write_table(rows, args.out)


if __name__ == "__main__":
    main()
