"""py-spy around a running deskpilot worker, and what its samples say (bench/gateway.py --profile).

py-spy is optional (``pip install py-spy`` into the venv); the benchmark runs without it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RATE = 200  # samples per second


def find_py_spy() -> str | None:
    """On PATH, or next to this interpreter (a venv's bin/ is often not on PATH)."""
    return shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))


@contextmanager
def recording(spy: str, pid: int, seconds: float, out: Path) -> Iterator[None]:
    """Sample ``pid`` for about ``seconds`` (the body's load) into collapsed stacks at ``out``."""
    command = [spy, "record", "--pid", str(pid), "--duration", str(int(seconds) + 1)]
    command += ["--format", "raw", "--rate", str(RATE), "--output", str(out), "--nonblocking"]
    spying = subprocess.Popen(  # noqa: S603  (py-spy found on PATH, fixed arguments)
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    time.sleep(0.5)  # attached before the load starts
    yield
    _, problems = spying.communicate(timeout=60)
    if spying.returncode != 0:
        sys.exit(f"py-spy failed ({spying.returncode}): {problems.decode(errors='replace')}")


def hot_spots(collapsed: Path, count: int = 15) -> dict[str, Any]:
    """From py-spy's collapsed stacks (``frame;frame;leaf N``, frames ``fn (file:line)``):
    the functions with the most self time, and deskpilot's own functions by inclusive time
    (line numbers dropped, so a function counts once however many lines were sampled)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        samples = int(count_text)
        total += samples
        functions = [frame.rsplit(":", 1)[0] + ")" for frame in stack.split(";")]
        own[functions[-1]] += samples
        for function in set(functions):
            if "deskpilot/" in function and "deskpilot/cli/" not in function:
                inclusive[function] += samples

    def shares(counter: Counter[str]) -> list[dict[str, Any]]:
        return [
            {"function": f, "share": round(n / total, 3)} for f, n in counter.most_common(count)
        ]

    return {
        "samples": total,
        "self_time_top": shares(own),
        "deskpilot_inclusive_top": shares(inclusive),
    }
