"""ig_core.runtime.fair_lock: waiters get the lock in the order they asked; an interrupted waiter leaves no trace."""
import threading

import pytest

from ig_core.runtime.fair_lock import FairLock


def wait_for_waiters(lock: FairLock, count: int) -> None:
    while len(lock._waiters) < count:
        threading.Event().wait(0.005)


def test_release_hands_the_lock_to_the_longest_waiter():
    lock, order = FairLock(), []
    lock.acquire()

    def take(name):
        with lock:
            order.append(name)

    threads = []
    for i, name in enumerate("abc"):
        threads.append(threading.Thread(target=take, args=(name,)))
        threads[-1].start()
        wait_for_waiters(lock, i + 1)
    lock.release()
    lock.acquire()  # queues behind a, b and c
    order.append("me")
    lock.release()
    for thread in threads:
        thread.join()
    assert order == ["a", "b", "c", "me"]


def test_the_releasing_thread_cannot_take_the_lock_back_before_a_waiter():
    lock, order = FairLock(), []
    lock.acquire()
    waiter = threading.Thread(target=lambda: (lock.acquire(), order.append("waiter"), lock.release()))
    waiter.start()
    wait_for_waiters(lock, 1)
    lock.release()
    with lock:
        order.append("releaser")
    waiter.join()
    assert order == ["waiter", "releaser"]


class Stop(BaseException):
    pass


def test_an_interrupted_waiter_leaves_the_queue_and_the_lock_usable(monkeypatch):
    lock = FairLock()
    lock.acquire()

    def interrupted_wait(self, timeout=None):
        raise Stop()

    monkeypatch.setattr(threading.Event, "wait", interrupted_wait)
    with pytest.raises(Stop):
        lock.acquire()
    monkeypatch.undo()
    assert not lock._waiters
    lock.release()
    with lock:
        pass
    with pytest.raises(RuntimeError, match="unlocked"):
        lock.release()
