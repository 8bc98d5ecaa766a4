"""Transfers between accounts that never deadlock: both locks are always taken in the
same global order (by account id)."""

import threading


class Account:
    def __init__(self, ident, balance):
        self.id = ident
        self.balance = balance
        self.lock = threading.Lock()


def transfer(src, dst, amount):
    first, second = sorted((src, dst), key=lambda a: a.id)
    with first.lock:
        with second.lock:
            if src.balance < amount:
                return False
            src.balance -= amount
            dst.balance += amount
            return True


def main():
    a, b = Account(1, 100), Account(2, 100)
    threads = [threading.Thread(target=transfer, args=(a, b, 1)) for _ in range(50)]
    threads += [threading.Thread(target=transfer, args=(b, a, 1)) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert a.balance + b.balance == 200


if __name__ == "__main__":
    main()
