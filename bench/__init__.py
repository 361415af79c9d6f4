"""Load benchmark: the real bot process against real Redis and the local Telegram/Yuanqi fakes.

Run it from the repository root with ``python -m bench`` (``--help`` for the options). It is a
measurement, not a test: only ``--quick`` runs in the test suite, to prove the script works.
"""
