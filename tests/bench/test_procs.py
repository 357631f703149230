"""The bench's CPU readings: a process in all, and its main thread alone."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import procs  # noqa: E402


def test_the_main_thread_reading_leaves_out_what_other_threads_spend():
    pid = os.getpid()
    whole0, main0 = procs.cpu_seconds(pid), procs.main_thread_cpu_seconds(pid)

    def burn() -> None:
        end = time.thread_time() + 0.3
        while time.thread_time() < end:
            pass

    worker = threading.Thread(target=burn)
    worker.start()
    worker.join()
    whole, main = procs.cpu_seconds(pid) - whole0, procs.main_thread_cpu_seconds(pid) - main0
    assert whole >= 0.25
    assert main < 0.1


def test_a_meter_keeps_a_gone_process_last_reading():
    readings = {1: 2.0, 2: 3.0}
    meter = procs.CpuMeter(lambda pid: readings.get(pid))
    assert meter.read([1, 2]) == 5.0
    del readings[1]  # killed: its CPU still counts
    readings[2] = 4.0
    assert meter.read([1, 2]) == 6.0
