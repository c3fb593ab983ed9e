"""Polling for the Python tests that drive real processes and containers (tests/deploy,
tests/slurm)."""
import time


def wait_for(predicate, timeout, what, interval=0.5):
    """predicate()'s first truthy value, polled every `interval` s; AssertionError naming
    `what` after `timeout` s."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
