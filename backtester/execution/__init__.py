"""Where backtests are computed: one interface (base.py), two executors.

``threads`` (threads.py) is the shared thread pool of the web process, the
embedded default; ``celery`` (celery.py) splits a run into tasks for worker
processes (tasks.py), which call the same services (services.py) and publish
through the same channel layer, so the consumer cannot tell them apart.
``executors.get_executor`` returns the one BACKTEST_EXECUTOR names. This
__init__ imports nothing, so importing one module of the package runs no other.
"""
