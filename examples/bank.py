"""A toy bank: transfers between accounts on several worker threads."""

import random
import threading


class Account:
    def __init__(self, name, balance):
        self.name = name
        self.balance = balance
        self.lock = threading.Lock()


class Bank:
    def __init__(self):
        self.accounts = {}
        self.audit_lock = threading.Lock()
        self.ledger_lock = threading.Lock()
        self.transfers = 0
        self.ledger = []

    def open(self, name, balance):
        self.accounts[name] = Account(name, balance)

    def transfer(self, src, dst, amount):
        a, b = self.accounts[src], self.accounts[dst]
        with a.lock:
            with b.lock:
                a.balance -= amount
                b.balance += amount
        self.transfers += 1
        with self.ledger_lock:
            with self.audit_lock:
                self.ledger.append((src, dst, amount))

    def audit(self):
        with self.audit_lock:
            with self.ledger_lock:
                return sum(amount for _, _, amount in self.ledger)

    def total(self):
        return sum(acc.balance for acc in self.accounts.values())


def teller(bank, names, rounds):
    for _ in range(rounds):
        src, dst = random.sample(names, 2)
        bank.transfer(src, dst, random.randint(1, 10))


def main():
    bank = Bank()
    names = [f"acct{i}" for i in range(5)]
    for name in names:
        bank.open(name, 1000)
    tellers = [threading.Thread(target=teller, args=(bank, names, 1000)) for _ in range(4)]
    for t in tellers:
        t.start()
    auditor = threading.Thread(target=bank.audit)
    auditor.run()
    for t in tellers:
        t.join()
    print("total", bank.total(), "transfers", bank.transfers)


if __name__ == "__main__":
    main()
