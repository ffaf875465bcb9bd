"""Memory of a process tree, sampled from ``/proc`` in a thread while the process runs."""

from __future__ import annotations

import os
import threading
import time


def children() -> dict[int, list[int]]:
    """Parent pid → child pids of every process on the machine."""
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def rollup_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process in KiB from ``/proc/PID/smaps_rollup``; (0, 0) once it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Rss:"):
                    rss = int(line.split()[1])
                elif line.startswith(b"Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


class TreeSampler(threading.Thread):
    """Samples a process and all its descendants until stopped: the peak RSS of the process
    itself, the peak summed PSS of the tree (shared pages counted once) and the PSS series."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_rss_kb = 0  # the root process (the crawler itself)
        self.peak_kb = 0  # summed PSS of the tree
        self.peak_child_rss_kb = 0  # the largest other process of the tree (a judging process, a browser)
        self.samples: list[tuple[float, int]] = []  # (monotonic time, tree PSS KiB)
        self.stop = threading.Event()

    def quarters_mb(self) -> list[float]:
        """Summed PSS at 25, 50, 75 and 95 % of the run (the end is shutdown): flat figures mean no leak."""
        if not self.samples:
            return []
        n = len(self.samples)
        return [self.samples[min(n - 1, max(0, round(n * q) - 1))][1] / 1024 for q in (0.25, 0.5, 0.75, 0.95)]

    def peak_after_mb(self, since: float) -> float:
        """Peak tree PSS from ``since`` (a ``time.monotonic()`` value) to the end of sampling."""
        return max((kb for t, kb in self.samples if t >= since), default=0) / 1024

    def run(self) -> None:
        while not self.stop.is_set():
            tree, pids, total = children(), [self.pid], 0
            while pids:
                pid = pids.pop()
                rss, pss = rollup_kb(pid)
                if pid == self.pid:
                    self.peak_rss_kb = max(self.peak_rss_kb, rss)
                else:
                    self.peak_child_rss_kb = max(self.peak_child_rss_kb, rss)
                total += pss
                pids.extend(tree.get(pid, []))
            self.peak_kb = max(self.peak_kb, total)
            if total:
                self.samples.append((time.monotonic(), total))
            self.stop.wait(self.interval)
