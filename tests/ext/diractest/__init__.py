"""diractest: a DIRAC extension used by the integration tests.

Laid out as DIRAC extensions are (``<ext>/<System>System/Service/<Service>Handler.py``),
so ``dirac-worker Test --extension diractest`` serves ``Test/Dispatch`` and ``Test/Work``.
The tests usually serve these handlers under a fresh System name per test (see
``WorkerPool.new_system`` in ``tests/diracmq_testing.py``) so that no two tests share a queue.
"""
