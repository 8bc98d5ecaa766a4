from _build import ex, write

E = [
ex("thr007-01", '''
import threading

accounts_lock = threading.Lock()
audit_lock = threading.Lock()
balances = {}
audit_log = []


def transfer(src, dst, amount):
    with accounts_lock:
        balances[src] -= amount
        balances[dst] += amount
        with audit_lock:
            audit_log.append(("transfer", src, dst, amount))


def export_audit():
    with audit_lock:
        with accounts_lock:
            return list(audit_log), dict(balances)
''', """`transfer` takes `accounts_lock` then `audit_lock`, while `export_audit` takes them in the
opposite order. If one thread is inside `transfer` holding `accounts_lock` and another is inside
`export_audit` holding `audit_lock`, each waits for the other forever. Always acquire the two locks
in the same order.""",
fix=[("""    with audit_lock:
        with accounts_lock:
            return list(audit_log), dict(balances)""", """    with accounts_lock:
        with audit_lock:
            return list(audit_log), dict(balances)""")]),

ex("thr007-02", '''
import threading


class Inventory:
    def __init__(self):
        self.stock_lock = threading.Lock()
        self.orders_lock = threading.Lock()
        self.stock = {}
        self.orders = []

    def place_order(self, item):
        with self.orders_lock:
            with self.stock_lock:
                self.stock[item] -= 1
            self.orders.append(item)

    def restock(self, item, qty):
        with self.stock_lock:
            self.stock[item] = self.stock.get(item, 0) + qty
            with self.orders_lock:
                self.orders = [o for o in self.orders if o != item]
''', """`place_order` nests `stock_lock` inside `orders_lock`; `restock` nests `orders_lock` inside
`stock_lock`. An order and a restock running at the same time can each hold one lock and wait for
the other: a deadlock. Pick one order (say orders, then stock) and use it everywhere.""",
fix=[("""        with self.stock_lock:
            self.stock[item] = self.stock.get(item, 0) + qty
            with self.orders_lock:
                self.orders = [o for o in self.orders if o != item]""", """        with self.orders_lock:
            with self.stock_lock:
                self.stock[item] = self.stock.get(item, 0) + qty
            self.orders = [o for o in self.orders if o != item]""")]),

ex("thr007-03", '''
import threading

cache_lock = threading.Lock()
db_lock = threading.Lock()
cache = {}


def read_through(key, db):
    with cache_lock:
        if key in cache:
            return cache[key]
        with db_lock:
            value = db.get(key)
        cache[key] = value
        return value


def write_back(key, value, db):
    with db_lock:
        db.put(key, value)
        with cache_lock:
            cache[key] = value
''', """Readers take `cache_lock` then `db_lock`; writers take `db_lock` then `cache_lock`. A read miss
and a write at the same moment deadlock with each thread holding the lock the other needs. Make the
writer update the database and the cache in the same order as the reader.""",
fix=[("""    with db_lock:
        db.put(key, value)
        with cache_lock:
            cache[key] = value""", """    with cache_lock:
        with db_lock:
            db.put(key, value)
        cache[key] = value""")]),

ex("thr007-04", '''
import threading


class ChatRoom:
    def __init__(self):
        self.members_lock = threading.Lock()
        self.history_lock = threading.Lock()
        self.members = set()
        self.history = []

    def _record(self, line):
        with self.history_lock:
            self.history.append(line)

    def join(self, user):
        with self.members_lock:
            self.members.add(user)
            self._record(f"{user} joined")

    def replay(self, send):
        with self.history_lock:
            with self.members_lock:
                for user in self.members:
                    for line in self.history:
                        send(user, line)
''', """`join` holds `members_lock` and then takes `history_lock` through `_record`, while `replay` takes
`history_lock` first and then `members_lock`. A join during a replay deadlocks both threads. Replay
should take the locks in the same order (members, then history).""",
fix=[("""        with self.history_lock:
            with self.members_lock:
                for user""", """        with self.members_lock:
            with self.history_lock:
                for user""")]),

ex("thr007-05", '''
import threading

left = threading.Lock()
right = threading.Lock()


def philosopher_a(eat):
    while True:
        with left:
            with right:
                eat("a")


def philosopher_b(eat):
    while True:
        with right:
            with left:
                eat("b")


def dinner(eat):
    threading.Thread(target=philosopher_a, args=(eat,), daemon=True).start()
    threading.Thread(target=philosopher_b, args=(eat,), daemon=True).start()
''', """The two philosophers pick up the forks in opposite orders; sooner or later `a` holds `left` while
`b` holds `right`, and both wait forever. Give the locks a global order and have every thread take
`left` before `right`.""",
fix=[("""        with right:
            with left:
                eat("b")""", """        with left:
            with right:
                eat("b")""")]),

ex("thr007-06", '''
import threading


class Graph:
    def __init__(self):
        self.nodes_lock = threading.RLock()
        self.edges_lock = threading.RLock()
        self.nodes = set()
        self.edges = set()

    def add_edge(self, a, b):
        with self.edges_lock:
            with self.nodes_lock:
                self.nodes.update((a, b))
            self.edges.add((a, b))

    def remove_node(self, n):
        with self.nodes_lock:
            self.nodes.discard(n)
            with self.edges_lock:
                self.edges = {e for e in self.edges if n not in e}
''', """Reentrant locks do not help here: `add_edge` takes edges then nodes, `remove_node` takes nodes then
edges, so two threads doing one each can deadlock. Use one consistent order in both methods (or a
single lock for the whole graph).""",
fix=[("""        with self.nodes_lock:
            self.nodes.discard(n)
            with self.edges_lock:
                self.edges = {e for e in self.edges if n not in e}""", """        with self.edges_lock:
            with self.nodes_lock:
                self.nodes.discard(n)
            self.edges = {e for e in self.edges if n not in e}""")]),

ex("thr007-07", '''
import threading

sessions_lock = threading.Lock()
metrics_lock = threading.Lock()
sessions = {}
metrics = {"active": 0}


def open_session(sid, user):
    with sessions_lock:
        sessions[sid] = user
        with metrics_lock:
            metrics["active"] += 1


def report():
    with metrics_lock:
        active = metrics["active"]
        with sessions_lock:
            users = sorted(set(sessions.values()))
    return active, users
''', """`open_session` acquires `sessions_lock` then `metrics_lock`, and `report` acquires them the other
way round; a report running while a session opens can deadlock the server. Take `sessions_lock`
first in `report` as well.""",
fix=[("""    with metrics_lock:
        active = metrics["active"]
        with sessions_lock:
            users = sorted(set(sessions.values()))""", """    with sessions_lock:
        with metrics_lock:
            active = metrics["active"]
        users = sorted(set(sessions.values()))""")]),

ex("thr007-08", '''
import threading


class Player:
    def __init__(self):
        self.hp = 100
        self.lock = threading.Lock()


class Arena:
    def __init__(self):
        self.red = Player()
        self.blue = Player()

    def red_hits_blue(self, dmg):
        with self.red.lock:
            with self.blue.lock:
                self.blue.hp -= dmg

    def blue_hits_red(self, dmg):
        with self.blue.lock:
            with self.red.lock:
                self.red.hp -= dmg
''', """Each attack locks the attacker first and the target second, so simultaneous attacks in both
directions lock `red` then `blue` in one thread and `blue` then `red` in the other: deadlock. Lock
the two players in a fixed order regardless of who attacks.""",
fix=[("""        with self.blue.lock:
            with self.red.lock:
                self.red.hp -= dmg""", """        with self.red.lock:
            with self.blue.lock:
                self.red.hp -= dmg""")]),

ex("thr007-09", '''
import threading

queue_lock = threading.Lock()
stats_lock = threading.Lock()
pending = []
stats = {"enqueued": 0, "peak": 0}


def enqueue(job):
    with queue_lock:
        pending.append(job)
        with stats_lock:
            stats["enqueued"] += 1
            stats["peak"] = max(stats["peak"], len(pending))


def snapshot():
    with stats_lock:
        with queue_lock:
            return dict(stats), len(pending)
''', """`enqueue` takes `queue_lock` and then `stats_lock`; `snapshot` takes `stats_lock` and then
`queue_lock`. A monitoring thread calling `snapshot` while workers enqueue can deadlock. Acquire
`queue_lock` first in `snapshot` too.""",
fix=[("""    with stats_lock:
        with queue_lock:
            return dict(stats), len(pending)""", """    with queue_lock:
        with stats_lock:
            return dict(stats), len(pending)""")]),

ex("thr007-10", '''
import threading


class FileIndex:
    def __init__(self):
        self.files_lock = threading.Lock()
        self.tags_lock = threading.Lock()
        self.files = {}
        self.tags = {}

    def tag(self, path, tag):
        with self.tags_lock:
            self.tags.setdefault(tag, set()).add(path)
            self._touch(path)

    def _touch(self, path):
        with self.files_lock:
            self.files[path] = self.files.get(path, 0) + 1

    def delete(self, path):
        with self.files_lock:
            self.files.pop(path, None)
            with self.tags_lock:
                for paths in self.tags.values():
                    paths.discard(path)
''', """`tag` holds `tags_lock` and calls `_touch`, which takes `files_lock`; `delete` takes `files_lock`
and then `tags_lock`. The call hides the nesting, but the orders are still opposite and a tag plus a
delete can deadlock. Have `delete` take `tags_lock` first.""",
fix=[("""        with self.files_lock:
            self.files.pop(path, None)
            with self.tags_lock:
                for paths in self.tags.values():
                    paths.discard(path)""", """        with self.tags_lock:
            with self.files_lock:
                self.files.pop(path, None)
            for paths in self.tags.values():
                paths.discard(path)""")]),

ex("thr007-11", '''
import threading

config_lock = threading.Lock()
plugins_lock = threading.Lock()
config = {}
plugins = []


def reload_config(new):
    config_lock.acquire()
    try:
        config.update(new)
        with plugins_lock:
            for p in plugins:
                p.configure(config)
    finally:
        config_lock.release()


def register_plugin(plugin):
    with plugins_lock:
        plugins.append(plugin)
        with config_lock:
            plugin.configure(config)
''', """`reload_config` holds `config_lock` and then takes `plugins_lock`; `register_plugin` holds
`plugins_lock` and then takes `config_lock`. Registering a plugin during a reload deadlocks. Take
`config_lock` before `plugins_lock` in both functions.""",
fix=[("""    with plugins_lock:
        plugins.append(plugin)
        with config_lock:
            plugin.configure(config)""", """    with config_lock:
        with plugins_lock:
            plugins.append(plugin)
            plugin.configure(config)""")]),

ex("thr007-12", '''
import threading


class Warehouse:
    def __init__(self):
        self.a_lock = threading.Lock()
        self.b_lock = threading.Lock()
        self.a = {}
        self.b = {}

    def move_a_to_b(self, sku):
        with self.a_lock, self.b_lock:
            self.b[sku] = self.a.pop(sku)

    def move_b_to_a(self, sku):
        with self.b_lock, self.a_lock:
            self.a[sku] = self.b.pop(sku)
''', """`with x, y:` acquires left to right, so `move_a_to_b` takes `a_lock` then `b_lock` and
`move_b_to_a` takes `b_lock` then `a_lock`; two opposite moves can deadlock. List the locks in the
same order in both `with` statements.""",
fix=[("with self.b_lock, self.a_lock:", "with self.a_lock, self.b_lock:")]),

ex("thr007-13", '''
import threading

users_lock = threading.Lock()
groups_lock = threading.Lock()
users = {}
groups = {}


def add_user_to_group(user, group):
    with users_lock:
        users.setdefault(user, set()).add(group)
        with groups_lock:
            groups.setdefault(group, set()).add(user)


def delete_group(group):
    with groups_lock:
        members = groups.pop(group, set())
        with users_lock:
            for user in members:
                users[user].discard(group)
''', """Adding a user locks users then groups, deleting a group locks groups then users. Two admin
requests doing these at once each hold one lock and wait for the other. Lock `users_lock` first in
`delete_group` too.""",
fix=[("""    with groups_lock:
        members = groups.pop(group, set())
        with users_lock:
            for user in members:
                users[user].discard(group)""", """    with users_lock:
        with groups_lock:
            members = groups.pop(group, set())
        for user in members:
            users[user].discard(group)""")]),

ex("thr007-14", '''
import threading


class Pipeline:
    def __init__(self):
        self.input_lock = threading.Lock()
        self.output_lock = threading.Lock()
        self.inputs = []
        self.outputs = []

    def step(self):
        with self.input_lock:
            if not self.inputs:
                return
            item = self.inputs.pop(0)
            with self.output_lock:
                self.outputs.append(item * 2)

    def rewind(self):
        with self.output_lock:
            with self.input_lock:
                self.inputs = [x // 2 for x in self.outputs] + self.inputs
                self.outputs.clear()
''', """`step` holds `input_lock` and takes `output_lock`; `rewind` holds `output_lock` and takes
`input_lock`. A rewind while a worker is stepping can deadlock the pipeline. Acquire `input_lock`
first in `rewind`.""",
fix=[("""        with self.output_lock:
            with self.input_lock:
                self.inputs""", """        with self.input_lock:
            with self.output_lock:
                self.inputs""")]),

ex("thr007-15", '''
import threading

log_lock = threading.Lock()
state_lock = threading.Lock()
state = {"mode": "idle"}


def log(msg, sink):
    with log_lock:
        with state_lock:
            mode = state["mode"]
        sink.write(f"[{mode}] {msg}\\n")


def set_mode(mode, sink):
    with state_lock:
        state["mode"] = mode
        with log_lock:
            sink.write(f"mode -> {mode}\\n")
''', """`log` takes `log_lock` then `state_lock`, `set_mode` takes `state_lock` then `log_lock`; a thread
logging while another changes mode can deadlock. Read the mode without holding `log_lock`, or
always take `state_lock` first.""",
fix=[("""    with log_lock:
        with state_lock:
            mode = state["mode"]
        sink.write""", """    with state_lock:
        mode = state["mode"]
    with log_lock:
        sink.write""")]),
ex("thr007-16", """
import threading

scanner_lock = threading.Lock()
printer_lock = threading.Lock()


def copy_document(scanner, printer):
    with scanner_lock:
        image = scanner.scan()
        with printer_lock:
            printer.print(image)


def print_and_archive(printer, scanner, doc):
    printer_lock.acquire()
    try:
        printer.print(doc)
        with scanner_lock:
            scanner.archive(doc)
    finally:
        printer_lock.release()
""", """Copying takes the scanner then the printer; printing-and-archiving takes the printer then the
scanner. When both jobs run on different threads at once, each holds one device lock and waits for
the other forever. Acquire `scanner_lock` before `printer_lock` in both paths.""",
fix=[("""    printer_lock.acquire()
    try:
        printer.print(doc)
        with scanner_lock:
            scanner.archive(doc)
    finally:
        printer_lock.release()""", """    with scanner_lock:
        with printer_lock:
            printer.print(doc)
        scanner.archive(doc)""")]),
]

write("THR007", "lock-order-inversion", E)
