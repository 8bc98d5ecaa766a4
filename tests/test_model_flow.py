"""What the model learns from simple data flow: callables stored in attributes, types
carried by assignment and by return annotations."""

import libcst as cst

from advisor.analysis.extract import build_model


def model_of(source: str):
    return build_model(cst.parse_module(source))


def callees(model, function: str, attr: str) -> set[str]:
    return {c for call in model.functions[function].calls if call.attr == attr for c in call.callees}


def test_attribute_bound_to_a_default_function_is_called_through() -> None:
    model = model_of(
        "def fetch(url):\n"
        "    return url\n"
        "class Crawler:\n"
        "    def __init__(self, fetch=fetch):\n"
        "        self.fetch = fetch\n"
        "    def work(self, url):\n"
        "        return self.fetch(url)\n"
    )
    assert callees(model, "Crawler.work", "fetch") == {"fetch"}


def test_callable_passed_to_a_constructor_that_stores_it() -> None:
    model = model_of(
        "class World:\n"
        "    def __init__(self, emit):\n"
        "        self._emit = emit\n"
        "    def join(self, pid):\n"
        "        self._emit(pid)\n"
        "class Console:\n"
        "    def post(self, evt):\n"
        "        print(evt)\n"
        "def main():\n"
        "    console = Console()\n"
        "    world = World(emit=console.post)\n"
        "    other = World(print)\n"
    )
    assert callees(model, "World.join", "_emit") == {"Console.post"}


def test_unrelated_attribute_call_stays_unresolved() -> None:
    model = model_of(
        "class Client:\n"
        "    def __init__(self, transport):\n"
        "        self.transport = transport\n"
        "    def go(self):\n"
        "        self.transport.send(1)\n"
        "def send(x):\n"
        "    return x\n"
    )
    assert callees(model, "Client.go", "send") == set()


def test_types_follow_assignment_and_return_annotations() -> None:
    model = model_of(
        "from typing import Optional\n"
        "import threading\n"
        "class Topic:\n"
        "    def __init__(self):\n"
        "        self.lock = threading.Lock()\n"
        "class Transport:\n"
        "    pass\n"
        "class Broker:\n"
        "    def __init__(self, transport: Transport):\n"
        "        self._transport = transport\n"
        "        self._topics = {}\n"
        "    def _lookup(self, name) -> Optional[Topic]:\n"
        "        return self._topics.get(name)\n"
        "    def drop(self, name):\n"
        "        topic = self._lookup(name)\n"
        "        with topic.lock:\n"
        "            pass\n"
        "def find(b) -> 'Topic | None':\n"
        "    return None\n"
        "def use(b):\n"
        "    t = find(b)\n"
    )
    assert model.types["a:Broker._transport"] == "Transport"
    assert model.types["l:Broker.drop.topic"] == "Topic"
    assert [a.ref for a in model.functions["Broker.drop"].acquires] == ["a:Topic.lock"]
    assert "l:use.t" not in model.types  # a string annotation with `|` is not evaluated


def test_elements_of_annotated_containers_have_the_element_class() -> None:
    model = model_of(
        "from typing import Dict, List\n"
        "import threading\n"
        "class Account:\n"
        "    def __init__(self):\n"
        "        self.lock = threading.Lock()\n"
        "class Engine:\n"
        "    def __init__(self, accounts: Dict[str, Account], queue: list[Account]):\n"
        "        self.accounts = accounts\n"
        "        self.backlog: List[Account] = []\n"
        "    def one(self, name):\n"
        "        acct = self.accounts[name]\n"
        "        with acct.lock:\n"
        "            pass\n"
        "    def each(self):\n"
        "        for a in self.accounts.values():\n"
        "            pass\n"
        "        for b in self.backlog:\n"
        "            pass\n"
        "        for key in self.accounts:\n"
        "            pass\n"
    )
    assert model.types["l:Engine.one.acct"] == "Account"
    assert [a.ref for a in model.functions["Engine.one"].acquires] == ["a:Account.lock"]
    assert model.types["l:Engine.each.a"] == model.types["l:Engine.each.b"] == "Account"
    assert "l:Engine.each.key" not in model.types  # iterating a mapping gives its keys


FRESH = (
    "import threading\n"
    "class Parser:\n"
    "    def __init__(self, text):\n"
    "        self.pos = 0\n"
    "    def step(self):\n"
    "        self.pos += 1\n"
    "    def run(self):\n"
    "        self.step()\n"
    "shared = Parser('')\n"
    "def task(text):\n"
    "    parser = Parser(text)\n"
    "    parser.run()\n"
    "def fill(p):\n"
    "    p.run()\n"
    "def task_filled(text):\n"
    "    parser = Parser(text)\n"
    "    fill(parser)\n"
    "def fill_inline(p):\n"
    "    p.run()\n"
    "def task_inline(text):\n"
    "    fill_inline(Parser(text))\n"
    "def task_on_shared():\n"
    "    shared.run()\n"
    "def handed(text):\n"
    "    parser = Parser(text)\n"
    "    threading.Thread(target=parser.run).start()\n"
    "    parser.step()\n"
    "def start(texts):\n"
    "    for t in texts:\n"
    "        threading.Thread(target=task, args=(t,)).start()\n"
    "        threading.Thread(target=task_filled, args=(t,)).start()\n"
    "        threading.Thread(target=task_on_shared).start()\n"
    "        threading.Thread(target=handed, args=(t,)).start()\n"
)


def test_an_object_built_by_the_task_itself_is_its_own() -> None:
    model = model_of(FRESH)
    assert model.fresh_locals == {"l:task.parser", "l:task_filled.parser", "l:fill.p", "l:fill_inline.p"}
    assert {"task", "task_on_shared", "handed", "Parser.run"} <= model.contexts["Parser.step"]
    seen_by_self = model.contexts_for("Parser.step", "a:Parser.pos")
    assert not {"task", "task_filled"} & seen_by_self
    assert {"task_on_shared", "handed", "Parser.run"} <= seen_by_self
    assert "task" in model.contexts_for("Parser.step", "g:other")


def test_threading_server_runs_its_handler_on_threads() -> None:
    source = (
        "import socketserver\n"
        "from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer\n"
        "class H(socketserver.BaseRequestHandler):\n"
        "    def handle(self):\n"
        "        pass\n"
        "class Web(BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        pass\n"
        "class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):\n"
        "    pass\n"
        "def main():\n"
        "    Server(('', 0), H)\n"
        "    ThreadingHTTPServer(('', 0), Web)\n"
        "    socketserver.TCPServer(('', 0), H)\n"
    )
    model = model_of(source)
    assert set(model.thread_entries) == {"H.handle", "Web.do_GET"}
    assert all(s.kind == "handler" and s.in_loop for spawns in model.thread_entries.values() for s in spawns)
    assert len(model.thread_entries["H.handle"]) == 1


def test_calls_through_a_dispatch_table_reach_every_entry() -> None:
    model = model_of(
        "def a():\n    pass\n"
        "def b():\n    pass\n"
        "TABLE = {'a': a, 'b': b}\n"
        "def run(name):\n"
        "    TABLE[name]()\n"
        "    TABLE.get(name)()\n"
    )
    assert [call.callees for call in model.functions["run"].calls if call.callees] == [("a", "b"), ("a", "b")]


def test_a_release_in_a_block_that_leaves_does_not_end_the_lock_after_it() -> None:
    model = model_of(
        "import threading\n"
        "lock = threading.Lock()\n"
        "table = {}\n"
        "def apply(key, version):\n"
        "    lock.acquire()\n"
        "    if table.get(key, 0) >= version:\n"
        "        lock.release()\n"
        "        return False\n"
        "    table[key] = version\n"
        "    lock.release()\n"
        "    table.clear()\n"
    )
    held = {
        (type(a.node).__name__, a.kind): [h.ref for h in a.held]
        for a in model.functions["apply"].accesses if a.ref == "g:table"
    }
    assert held[("Subscript", "item-write")] == ["g:lock"]
    assert held[("Call", "mutate")] == []


def test_a_primitive_returned_by_a_function_is_that_primitive_where_it_is_bound() -> None:
    model = model_of(
        "import threading\n"
        "_slots = {}\n"
        "def slot_for(host):\n"
        "    sem = _slots.get(host)\n"
        "    if sem is None:\n"
        "        sem = _slots[host] = threading.Semaphore(2)\n"
        "    return sem\n"
        "def name_for(host):\n"
        "    if host:\n"
        "        return host\n"
        "    return threading.Lock()\n"
        "def fetch(host):\n"
        "    sem = slot_for(host)\n"
        "    name = name_for(host)\n"
    )
    assert model.primitive_kind("l:fetch.sem") == "Semaphore"
    assert model.primitives["l:fetch.sem"].function == "slot_for"
    assert model.primitive_kind("l:fetch.name") is None


def test_an_attribute_set_from_a_constructor_parameter_has_the_class_every_caller_passes() -> None:
    model = model_of(
        "class Feed:\n"
        "    def publish(self, x):\n"
        "        return x\n"
        "class Engine:\n"
        "    def __init__(self, symbols, sink, log=None):\n"
        "        self.sink = sink\n"
        "        self.log = log\n"
        "    def fill(self, x):\n"
        "        self.sink.publish(x)\n"
        "def main():\n"
        "    quotes = Feed()\n"
        "    Engine([], quotes, log=print)\n"
        "    Engine([], sink=Feed())\n"
    )
    assert model.types.get("a:Engine.sink") == "Feed"
    assert "a:Engine.log" not in model.types
    assert callees(model, "Engine.fill", "publish") == {"Feed.publish"}


def test_an_attribute_is_left_untyped_when_callers_pass_different_classes() -> None:
    model = model_of(
        "class A:\n"
        "    pass\n"
        "class B:\n"
        "    pass\n"
        "class Holder:\n"
        "    def __init__(self, thing):\n"
        "        self.thing = thing\n"
        "Holder(A())\n"
        "Holder(B())\n"
    )
    assert "a:Holder.thing" not in model.types


def test_a_method_called_through_a_typed_attribute_gives_its_annotated_return_class() -> None:
    model = model_of(
        "from typing import Optional\n"
        "class Book:\n"
        "    pass\n"
        "class Catalog:\n"
        "    def get(self, isbn) -> Optional[Book]:\n"
        "        return None\n"
        "class Desk:\n"
        "    def __init__(self, shelf: Catalog):\n"
        "        self.shelf = shelf\n"
        "    def checkout(self, isbn):\n"
        "        book = self.shelf.get(isbn)\n"
    )
    assert model.types.get("l:Desk.checkout.book") == "Book"


def test_a_function_parameter_has_the_class_every_call_and_thread_passes() -> None:
    model = model_of(
        "import threading\n"
        "class OrderBook:\n"
        "    def settle(self, x):\n"
        "        return x\n"
        "class Tape:\n"
        "    pass\n"
        "def worker(book, order, reel):\n"
        "    book.settle(order)\n"
        "def callback(ledger):\n"
        "    ledger.settle(1)\n"
        "def main(orders):\n"
        "    book = OrderBook()\n"
        "    for o in orders:\n"
        "        threading.Thread(target=worker, args=(book, o, Tape())).start()\n"
        "    worker(OrderBook(), 2, None)\n"
        "    callback(book)\n"
        "    hooks = [callback]\n"
    )
    assert model.types.get("l:worker.book") == "OrderBook"
    assert "l:worker.order" not in model.types and "l:worker.reel" not in model.types
    assert callees(model, "worker", "settle") == {"OrderBook.settle"}
    assert "l:callback.ledger" not in model.types  # also handed on: its other callers are unknown


def test_a_callback_made_by_a_factory_runs_where_its_stored_attribute_is_called() -> None:
    model = model_of(
        "import threading\n"
        "class Collector:\n"
        "    def __init__(self, on_report):\n"
        "        self.on_report = on_report\n"
        "    def serve(self):\n"
        "        self.on_report(1)\n"
        "def make_hook(log):\n"
        "    def hook(report):\n"
        "        log.append(report)\n"
        "    return hook\n"
        "def make_value(log):\n"
        "    def unused():\n"
        "        pass\n"
        "    return len(log)\n"
        "def main():\n"
        "    c = Collector(make_hook([]))\n"
        "    Collector(make_value([]))\n"
        "    threading.Thread(target=c.serve).start()\n"
    )
    assert callees(model, "Collector.serve", "on_report") == {"make_hook.<locals>.hook"}
    assert "Collector.serve" in model.contexts["make_hook.<locals>.hook"]


def test_an_argument_read_from_a_typed_attribute_types_the_parameter() -> None:
    model = model_of(
        "import threading\n"
        "class Tracker:\n"
        "    def mark(self, tag):\n"
        "        return tag\n"
        "class Sorter:\n"
        "    def __init__(self):\n"
        "        self.tracker = Tracker()\n"
        "    def start(self):\n"
        "        threading.Thread(target=staff, args=(self.tracker,)).start()\n"
        "def staff(radio):\n"
        "    radio.mark(1)\n"
        "def main():\n"
        "    sorter = Sorter()\n"
        "    staff(sorter.tracker)\n"
    )
    assert model.types.get("l:staff.radio") == "Tracker"
    assert callees(model, "staff", "mark") == {"Tracker.mark"}


def test_self_handed_to_a_constructor_types_the_attribute_it_is_stored_in() -> None:
    model = model_of(
        "class Segment:\n"
        "    def __init__(self, owner):\n"
        "        self.owner = owner\n"
        "    def run(self):\n"
        "        self.owner.deliver(1)\n"
        "class Sorter:\n"
        "    def __init__(self):\n"
        "        self.segments = [Segment(self) for _ in range(3)]\n"
        "    def deliver(self, bag):\n"
        "        return bag\n"
    )
    assert model.types.get("a:Segment.owner") == "Sorter"
    assert callees(model, "Segment.run", "deliver") == {"Sorter.deliver"}
