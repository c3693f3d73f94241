"""What the served process sets up once, at import."""

import gc

import chatsite.asgi  # noqa: F401  (the application module daphne imports)


def test_startup_state_is_frozen_and_collections_come_in_large_batches():
    # bench/README.md: at 400-500 streams the default thresholds spent 4-6% of the
    # process's CPU in the collector; 7,000 about half of that.
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (7_000, 10, 10)
