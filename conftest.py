"""pytest set-up shared by the unit tests and nbval's notebook runs."""

import hashlib
import os
import subprocess
import time

import pytest

# Notebook kernels inherit this environment: smoke mode (seconds, not hours) and quiet TensorFlow.
os.environ.setdefault("GAN_LIB_SMOKE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Under pytest-xdist each worker (and every process it starts) gets its share of the cores, not all of them: two
# workers each running TensorFlow, torch or XLA on every core oversubscribe the machine, and their spinning thread
# pools then crawl (torch's Inception: 0.6 s an image instead of 0.2 beside another busy worker).
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    _share = str(max(1, len(os.sched_getaffinity(0)) // _workers))  # the cores this process may use, shared
    for _name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ.setdefault(_name, _share)
    if _share == "1" and "xla_cpu_multi_thread_eigen" not in os.environ.get("XLA_FLAGS", ""):  # JAX's CPU client
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()

import gan_lib  # noqa: E402, F401  (before anything imports keras: gan_lib keeps TensorFlow's start-up notices quiet)

ROOT = os.path.dirname(os.path.abspath(__file__))


def pytest_collectstart(collector):
    """nbval: compare stdout and rich outputs, not stderr (TensorFlow writes notices there that
    depend on the machine and on how the kernel was started; nbval issue 88)."""
    if str(getattr(collector, "path", "")).endswith(".ipynb"):
        collector.skip_compare = collector.skip_compare + ("stderr",)


# ---------------------------------------------------------------- the checkout must be left as it was


def checkout_state(root=ROOT):
    """What `git status --porcelain --ignored` lists, as {path: status [digest]}; None outside a git checkout.

    Changed and untracked files carry a digest of their bytes, so a file that changes again is noticed;
    ignored folders (outputs/RUN/, .venv/) are listed as one entry each, so new run folders are noticed too.
    """
    try:
        out = subprocess.run(["git", "status", "--porcelain=v1", "-z", "--ignored"], cwd=root,
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode:
        return None
    state = {}
    entries = iter(out.stdout.split("\0"))
    for entry in entries:
        if not entry:
            continue
        code, path = entry[:2], entry[3:]
        if code[0] in "RC":  # a rename or copy: the old path follows
            next(entries, None)
        full = os.path.join(root, path)
        if os.path.isfile(full) and code != "!!":
            with open(full, "rb") as f:
                code += " " + hashlib.sha1(f.read()).hexdigest()[:12]
        state[path] = code
    return state


def checkout_changes(before, after):
    """Paths that appeared, disappeared or changed between two checkout_state snapshots, as sorted lines.

    Python's bytecode caches are not changes.
    """
    lines = []
    for path in sorted(set(before) | set(after)):
        if "__pycache__" in path.split("/") or path.endswith(".pyc"):
            continue
        if path not in before:
            lines.append(f"new:     {path}")
        elif path not in after:
            lines.append(f"gone:    {path}")
        elif before[path] != after[path]:
            lines.append(f"changed: {path}")
    return lines


def pytest_sessionstart(session):
    session.config._checkout_before = checkout_state()


def pytest_sessionfinish(session, exitstatus):
    """Fail the session when the tests (or the notebooks nbval ran) added, removed or changed files."""
    before = getattr(session.config, "_checkout_before", None)
    after = checkout_state() if before is not None else None
    if after is None:
        return  # not a git checkout (an sdist, a copy): nothing to compare
    changes = checkout_changes(before, after)
    if changes:
        report = session.config.pluginmanager.get_plugin("terminalreporter")
        write = report.write_line if report else print
        write("")
        write("The test session changed the checkout (tests and notebooks must write to temporary folders only):")
        for line in changes:
            write("  " + line)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# ---------------------------------------------------------------- where CI's minutes go

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """GAN_LIB_TIMELINE=FILE: one line per test, 'worker start end nodeid' (seconds since the epoch), for
    benchmarks/ci_timeline.py to say how busy each worker was and which scopes took the time."""
    path = os.environ.get("GAN_LIB_TIMELINE")
    start = time.time()
    yield
    if path:
        with open(path, "a") as f:
            f.write(f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')} {start:.3f} {time.time():.3f} {item.nodeid}\n")
