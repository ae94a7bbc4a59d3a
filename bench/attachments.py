"""Uploads (issue 28): the memory an upload costs a worker, and the CPU of a photo.

    .venv/bin/python bench/attachments.py            # ~1 minute; needs PostgreSQL and Redis

gunicorn with the production configuration and one worker, on a fresh
`tutor_bench` database. Memory: the worker's peak resident memory is reset
(`/proc/<pid>/clear_refs`) before each upload and read after it, so the
figure is what that upload added over the worker's resident size: a 10 MiB
text file (accepted, stored), an 11 MiB one refused by its Content-Length,
one sent chunked without a Content-Length (WSGI gives Django no body then;
nginx always sends one), and a 4000 x 3000 photo (decoded and re-encoded). CPU: the worker's CPU time per
photo upload, as a ratio to its CPU time per `/health/` in the same run.
"""

import io
import os
import statistics
import sys
import tempfile
from pathlib import Path

import requests
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import GUNICORN, _cpu_time, base_env, family, free_port, prepare_database, process

PHOTOS = 10
HEALTH = 300


def photo(size: tuple[int, int] = (4000, 3000)) -> bytes:
    """A 12-megapixel JPEG with a phone camera's texture (noise over a gradient)."""
    gradient = Image.linear_gradient("L").resize(size).convert("RGB")
    noise = Image.effect_noise(size, 40).convert("RGB")
    buffer = io.BytesIO()
    Image.blend(gradient, noise, 0.3).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def status_kib(pid: int, field: str) -> int:
    line = next(
        line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith(field)
    )
    return int(line.split()[1])


def added_memory(worker: int, send) -> tuple[int, float]:
    """(status, MiB the worker's peak resident memory rose above its resident size before)."""
    Path(f"/proc/{worker}/clear_refs").write_text("5")  # the peak becomes the current size
    before = status_kib(worker, "VmRSS")
    status = send()
    return status, (status_kib(worker, "VmHWM") - before) / 1024


def main() -> None:
    media = tempfile.mkdtemp(prefix="bench-media-")
    env = base_env(GUNICORN_WORKERS="1", MEDIA_ROOT=media, THROTTLE_UPLOAD_RATE="100000/hour")
    env["ATTACHMENT_STORAGE_PER_USER"] = str(10 * 2**30)
    with tempfile.NamedTemporaryFile(suffix=".json") as data_file:
        data = prepare_database(env, data_file.name)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {data['token']}"}
    session = requests.Session()

    def upload(content: bytes | None = None, name: str = "file", chunks=None) -> int:
        if chunks is not None:  # a chunked body: no Content-Length to refuse it by
            boundary = "benchboundary"
            head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n\r\n'
            body = (
                piece
                for part in ([head.encode()], chunks, [f"\r\n--{boundary}--\r\n".encode()])
                for piece in part
            )
            response = session.post(
                f"{url}/api/v1/attachments/", data=body,
                headers={**headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
            )  # fmt: skip
        else:
            response = session.post(
                f"{url}/api/v1/attachments/", files={"file": (name, content)}, headers=headers
            )
        return response.status_code

    gunicorn = [GUNICORN, "tutor_platform.wsgi", "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}"]
    the_photo = photo()
    with process(gunicorn, env, port, "/api/v1/health/") as server:
        [worker] = [pid for pid in family(server.pid) if pid != server.pid]
        for _ in range(3):  # warm up: imports, Pillow's codecs, the storage folder
            assert upload(the_photo, "warm.jpg") == 201
            assert upload(b"warm up\n" * 1000, "warm.txt") == 201
        text = ("Задача: решите уравнение x² − 5x + 6 = 0.\n" * 300_000).encode()[: 10 * 2**20]
        eleven = b"a" * (11 * 2**20)
        memory = [
            ("10 MiB text file, stored", *added_memory(worker, lambda: upload(text, "big.txt"))),
            ("11 MiB, refused by its Content-Length", *added_memory(worker, lambda: upload(eleven, "x.txt"))),
            (
                "11 MiB chunked, no Content-Length (Django reads such a body as empty)",
                *added_memory(worker, lambda: upload(name="x.txt", chunks=(b"a" * 2**20 for _ in range(11)))),
            ),
            (
                f"{len(the_photo) / 2**20:.1f} MiB 4000 x 3000 photo, re-encoded",
                *added_memory(worker, lambda: upload(the_photo, "p.jpg")),
            ),
        ]

        def cpu_per(requests_made, n: int) -> float:
            before = _cpu_time([worker])
            for _ in range(n):
                requests_made()
            return (_cpu_time([worker]) - before) / n

        health = [cpu_per(lambda: session.get(f"{url}/api/v1/health/"), HEALTH) for _ in range(3)]
        photos = [cpu_per(lambda: upload(the_photo, "p.jpg"), PHOTOS) for _ in range(3)]
        worker_rss = status_kib(worker, "VmRSS") / 1024

    print("| upload | status | worker memory added at its peak |")
    print("|---|---|---|")
    for what, status, mib in memory:
        print(f"| {what} | {status} | {mib:.1f} MiB |")
    health_ms, photo_ms = statistics.median(health) * 1000, statistics.median(photos) * 1000
    print(f"\nWorker resident size afterwards: {worker_rss:.0f} MiB.")
    print(
        f"Worker CPU per 4000 x 3000 photo upload: {photo_ms:.0f} ms (runs: "
        f"{', '.join(f'{p * 1000:.0f}' for p in photos)}); per /health/: {health_ms:.2f} ms; "
        f"ratio {photo_ms / health_ms:.0f}x."
    )
    for path in Path(media).rglob("*"):
        if path.is_file():
            path.unlink()


if __name__ == "__main__":
    os.chdir(Path(__file__).resolve().parent.parent)
    main()
