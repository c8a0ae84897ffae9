"""Where the CPU went, from /proc (Linux): per process tree, the whole machine, and which
process holds which TCP connection. Elsewhere the readings are empty, never wrong."""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class CpuMeter:
    """CPU seconds of named groups of process trees (root pids and their descendants), and
    of the whole machine (other users of a shared machine included), read from /proc."""

    _TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self, groups: Mapping[str, list[int]]) -> None:
        self._groups = {name: pids for name, pids in groups.items() if pids}

    def snapshot(self) -> dict[str, float]:
        stats = proc_stats()
        if not stats:
            return {}
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in stats.items():
            children.setdefault(ppid, []).append(pid)
        roots = {pid for pids in self._groups.values() for pid in pids}
        result = {"machine": _machine_busy_ticks() / self._TICKS}
        for name, pids in self._groups.items():
            todo, total = [p for p in pids if p in stats], 0
            while todo:
                pid = todo.pop()
                total += stats[pid][1]
                # another group's root below this one (the embedded database) is not ours
                todo += [c for c in children.get(pid, []) if c not in roots]
            result[name] = total / self._TICKS
        return result

    @staticmethod
    def spent(before: Mapping[str, float], after: Mapping[str, float]) -> Counter[str]:
        return Counter({k: after[k] - before[k] for k in after if k in before})

    @staticmethod
    def usage(spent: Mapping[str, float], wall: float, requests: int) -> dict[str, Any]:
        """Cores used per group over ``wall`` seconds (``other``: the rest of the machine,
        Redis and whatever else shares it), and each group's CPU milliseconds per request."""
        spent = dict(spent)
        if "machine" not in spent:
            return {}
        mine = {k: v for k, v in spent.items() if k != "machine"}
        spent["other"] = max(0.0, spent["machine"] - sum(mine.values()))
        cores = {k: round(v / wall, 2) for k, v in spent.items()}
        per_request = {k: round(v * 1000 / requests, 3) for k, v in mine.items() if requests}
        return {"cpu_cores": cores, "cpu_ms_per_request": per_request}


def established_inodes(port: int) -> set[str]:
    """``socket:[inode]`` of the established TCP connections whose local port is ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01":  # 01: ESTABLISHED
                    found.add(f"socket:[{fields[9]}]")
    return found


def _machine_busy_ticks() -> int:
    with open("/proc/stat") as stat:
        fields = [int(f) for f in stat.readline().split()[1:9]]
    return sum(fields) - fields[3] - fields[4]  # all but idle and iowait


def proc_stats() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, CPU clock ticks) of every process; {} without /proc."""
    stats: dict[int, tuple[int, int]] = {}
    if not Path("/proc/stat").exists():
        return stats
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        fields = text[text.rindex(")") + 2 :].split()  # the name may contain spaces
        # utime + stime, plus cutime + cstime: the reaped children (pooled database backends,
        # restarted workers) whose time would otherwise vanish from the tree mid-measurement
        stats[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
    return stats
