"""CPU accounting from /proc (Linux): per process (all threads), the broker, the machine."""
import glob
import os
import re
import subprocess

_TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")


def cpu_ns(pid):
    """CPU time (ns) used so far by process ``pid``, threads that have ended included.

    From ``/proc/<pid>/stat`` (utime + stime), so in clock ticks (10 ms): measure over
    seconds, not single calls.  0 once the process is gone.
    """
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * _TICK_NS  # utime, stime
    except (OSError, ValueError, IndexError):
        return 0


def ctx_switches(pid):
    """Voluntary context switches so far of all threads of ``pid`` (each is a wake-up)."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            with open(path) as fh:
                for line in fh:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
    return total


def broker_pid(port=5672):
    """Pid of the process listening on TCP ``port`` (the broker), from ``ss``; else None."""
    try:
        out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True,
                             text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    pids = set(re.findall(r"pid=(\d+)", out))
    return int(pids.pop()) if len(pids) == 1 else None


def machine_busy_ns():
    """CPU time (ns) all CPUs spent running processes (user, nice, system) since boot.

    Interrupt and softirq time is left out: the loopback traffic of the benchmark itself
    is processed there, and would be counted as other processes' work.  None without
    /proc/stat.
    """
    try:
        with open("/proc/stat") as fh:
            user, nice, system = (int(x) for x in fh.readline().split()[1:4])
    except (OSError, ValueError):
        return None
    return (user + nice + system) * _TICK_NS
