"""A sync runs the cyclic collector less often, and leaves the process as it found it."""

import gc
import threading

from crm_model.sync import GC_THRESHOLD0, fewer_collections


def test_threshold_raised_during_a_sync_and_restored_after_nested_and_concurrent_runs():
    before = gc.get_threshold()
    entered, release = threading.Event(), threading.Event()

    def other_sync():
        with fewer_collections():
            entered.set()
            release.wait(5)

    with fewer_collections():
        assert gc.get_threshold()[0] >= GC_THRESHOLD0
        worker = threading.Thread(target=other_sync)
        worker.start()
        assert entered.wait(5)
    assert gc.get_threshold()[0] >= GC_THRESHOLD0  # the other run is still going
    release.set()
    worker.join(5)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_threshold_restored_when_the_run_fails():
    before = gc.get_threshold()
    try:
        with fewer_collections():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert gc.get_threshold() == before
