"""pytest set-up shared by the unit tests and nbval's notebook runs."""

import os

# Notebook kernels inherit this environment: smoke mode (seconds, not hours) and quiet TensorFlow.
os.environ.setdefault("GAN_LIB_SMOKE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gan_lib  # noqa: E402, F401  (before anything imports keras: gan_lib keeps TensorFlow's start-up notices quiet)


def pytest_collectstart(collector):
    """nbval: compare stdout and rich outputs, not stderr (TensorFlow writes notices there that
    depend on the machine and on how the kernel was started; nbval issue 88)."""
    if str(getattr(collector, "path", "")).endswith(".ipynb"):
        collector.skip_compare = collector.skip_compare + ("stderr",)
