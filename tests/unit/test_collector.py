"""The garbage collector is run less often inside an export or a listing, and restored after."""

from __future__ import annotations

import gc

import pytest

from evalport.domain.collector import YOUNG_THRESHOLD, fewer_collections


def test_the_collectors_thresholds_are_raised_inside_and_restored_after():
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold()[0] >= YOUNG_THRESHOLD
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_nested_block_leaves_the_outer_ones_setting_until_the_outer_one_ends():
    before = gc.get_threshold()
    with fewer_collections():
        with fewer_collections():
            pass
        assert gc.get_threshold()[0] >= YOUNG_THRESHOLD
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before


def test_an_error_inside_restores_the_collector_too():
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("boom")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_cycles_made_inside_are_still_collected():
    class Node:
        pass

    with fewer_collections():
        a, b = Node(), Node()
        a.other, b.other = b, a
        del a, b
    assert gc.collect() >= 2


def test_a_caller_that_turned_the_collector_off_keeps_it_off_and_untouched():
    gc.disable()
    try:
        before = gc.get_threshold()
        with fewer_collections():
            assert gc.get_threshold() == before
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_process_that_froze_objects_itself_keeps_them_frozen_after_the_block():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with fewer_collections():
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
