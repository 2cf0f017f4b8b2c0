"""diracmq.broker.allocator: freed memory is reused, so large messages stop costing page faults.

Each case runs in a fresh interpreter: the setting is process-wide and set once.
"""

import os
import platform
import subprocess
import sys
import textwrap

import pytest
from diracmq.broker.config import Settings

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

# The buffers of a 1 MB call, as the codec and pika make them: encode, frame, join, decode.
FAULTS_PER_ROUND = textwrap.dedent("""
    import resource, sys
    from diracmq.broker import allocator, codec
    applied = allocator.keep_freed_memory(int(sys.argv[1]))
    value = {"OK": True, "Value": "x" * (1 << 20)}
    def one_round():
        body = codec.packb(value)
        frames = [body[i:i + 131064] for i in range(0, len(body), 131064)]
        return codec.unpackb(b"".join(frames))
    for _ in range(5):
        one_round()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(50):
        one_round()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    print(applied, (after - before) / 50)
""")


def faults_per_round(megabytes: int) -> tuple[bool, float]:
    out = subprocess.run([sys.executable, "-c", FAULTS_PER_ROUND, str(megabytes)],
                         capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    applied, faults = out.stdout.split()
    return applied == "True", float(faults)


@glibc
def test_kept_memory_takes_the_page_faults_out_of_large_messages():
    applied, tuned = faults_per_round(64)
    assert applied
    plain_applied, plain = faults_per_round(0)
    assert not plain_applied
    # glibc's defaults map and unmap each large buffer: hundreds of faults per MB
    assert plain > 200, plain
    assert tuned < 5, tuned


def test_set_once_per_process():
    code = ("from broker import allocator; "
            "print(allocator.keep_freed_memory(0), allocator.keep_freed_memory(64))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=os.path.dirname(os.path.dirname(
                             os.path.dirname(__file__))))
    assert out.stdout.split() == ["False", "False"]  # the first call decided


def test_the_setting(monkeypatch):
    assert Settings().malloc_keep_mb == 64
    monkeypatch.setenv("DIRAC_MALLOC_KEEP_MB", "0")
    assert Settings.load().malloc_keep_mb == 0
    with pytest.raises(ValueError, match="malloc_keep_mb must be 0 or more"):
        Settings(malloc_keep_mb=-1).validate()
    monkeypatch.setenv("DIRAC_MALLOC_KEEP_MB", "lots")
    with pytest.raises(ValueError, match="malloc_keep_mb"):
        Settings.load()
