"""Write leases against real MongoDB: a training cut never passes a write still in flight."""

from datetime import timedelta

from fraudstream.store.collections import WRITE_LEASES
from fraudstream.store.mongo import MongoStore
from fraudstream.store.stamps import STALE_LEASE, committed_until, stamped_write


def test_a_cut_stops_before_a_write_in_flight_and_passes_it_once_committed(
    store: MongoStore,
) -> None:
    before = store.server_time()
    assert committed_until(store) >= before  # nothing in flight: now

    with stamped_write(store, "labels") as stamp, stamped_write(store, "features") as later:
        assert stamp >= before and later >= stamp
        # Both writes are in flight: the cut stops before the first one's stamp.
        assert committed_until(store) < stamp
    assert committed_until(store) >= later
    assert store.collection(WRITE_LEASES).count_documents({}) == 0


def test_a_lease_left_by_a_dead_writer_stops_nothing_and_is_cleared(store: MongoStore) -> None:
    leases = store.collection(WRITE_LEASES)
    dead = store.server_time() - STALE_LEASE - timedelta(minutes=1)
    leases.insert_one({"at": dead, "writer": "features"})
    assert committed_until(store) > dead + STALE_LEASE

    with stamped_write(store, "labels"):
        assert leases.count_documents({"at": dead}) == 0  # the next writer cleared it
