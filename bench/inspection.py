"""Section 8 of the benchmarks: ``inspect_video`` of a 15 s 720p clip, its time and its peak memory.

The clip is made here with PyAV (H.264, 1280x720, 24 fps, a moving pattern, x264's ``veryfast`` preset: B-frames
and CABAC like a real encode) in a temporary folder. Each run is a fresh process that does what the tool does
once it has the file: import PyAV, decode the samples and the contact sheet on a worker thread within the deadline
(``check_within_deadline``), and find the findings. The time is that call's wall clock (PyAV's import included);
the memory is the process's peak resident set (``VmHWM``), next to the same process's before the call.

    python bench/inspection.py     # this section on its own
"""

import json
import statistics
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECONDS, WIDTH, HEIGHT, FPS = 15, 1280, 720, 24
TIME_TARGET_SECONDS, RSS_TARGET_MIB = 5.0, 300.0

MEASURE = """
import json, sys, time
from pathlib import Path
import anyio

def status_kib(key):  # VmHWM is this process's peak; ru_maxrss would include the parent's, copied at fork
    line = next(line for line in open("/proc/self/status") if line.startswith(key + ":"))
    return int(line.split()[1])

before = status_kib("VmRSS")
started = time.perf_counter()
from sora_mcp.inspect_video import check_within_deadline, findings
report = anyio.run(check_within_deadline, Path(sys.argv[1]))
found = findings(report, None)
elapsed = time.perf_counter() - started
peak = status_kib("VmHWM")
print(json.dumps({"seconds": elapsed, "before_kib": before, "peak_kib": peak, "samples": len(report.samples),
                  "sheet_bytes": len(report.sheet.jpeg), "findings": len(found)}))
"""


def make_clip(path: Path) -> None:
    """A 15 s 1280x720 H.264 MP4 of a moving pattern."""
    import av

    pattern = bytes((16 + (x * 37 + (x // 7) * 11) % 220) for x in range(4 * (WIDTH + HEIGHT)))
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS, options={"preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for index in range(SECONDS * FPS):
            frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
            luma, *chroma = frame.planes
            padding = bytes(luma.line_size - WIDTH)
            rows = (pattern[(row * 3 + index * 5) % (2 * WIDTH) :][:WIDTH] + padding for row in range(HEIGHT))
            luma.update(b"".join(rows))
            for number, plane in enumerate(chroma):
                plane.update(bytes([(index * (3 + number)) % 256]) * plane.buffer_size)
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def measure(path: Path) -> dict[str, float]:
    """One inspection of ``path`` in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, check=True, timeout=120, cwd=ROOT
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def inspection_rows(quick: bool) -> list[str]:
    """The section's Markdown."""
    runs = 2 if quick else 5
    with tempfile.TemporaryDirectory() as directory:
        clip = Path(directory) / "clip.mp4"
        make_clip(clip)
        size = clip.stat().st_size
        results = [measure(clip) for _ in range(runs)]
    seconds = [r["seconds"] for r in results]
    peaks = [r["peak_kib"] / 1024 for r in results]
    peak = f"{statistics.median(peaks):.1f} MiB ({min(peaks):.1f}-{max(peaks):.1f})"
    before = statistics.median(r["before_kib"] / 1024 for r in results)
    first = results[0]
    return [
        f"## 8. `inspect_video` of a {SECONDS} s {WIDTH}x{HEIGHT} clip (H.264, {FPS} fps, {size / 1e6:.1f} MB)\n",
        "| measure | median (min-max) | target |\n|---|---|---|",
        f"| wall clock of the inspection (PyAV import included) | {statistics.median(seconds):.2f} s "
        f"({min(seconds):.2f}-{max(seconds):.2f}) | under {TIME_TARGET_SECONDS:g} s |",
        f"| peak resident memory of the process | {peak} | under {RSS_TARGET_MIB:g} MiB |",
        f"\nEach of the {runs} runs is a fresh process (its resident memory before the call: {before:.1f} MiB) that "
        "inspects the file as the tool does once it has it: one forward decoding pass on a worker thread, "
        f"{first['samples']:.0f} frames sampled at 64x36 grey levels, a contact sheet of 6 tiles "
        f"({first['sheet_bytes'] / 1024:.0f} KB JPEG). The clip is made with PyAV in a temporary folder "
        "(x264 `veryfast`); fetching it from the gateway is not included (that is `download_video`'s stream).\n",
    ]


if __name__ == "__main__":
    print("\n".join(inspection_rows(quick="--quick" in sys.argv)))
