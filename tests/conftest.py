"""The test-suite's plugins: each fixture is defined once, in a fixture module.

- ``tests.fix_db``: a real PostgreSQL server, a fresh database per test, the pg marker;
- ``tests.fix_cli``: ``cli``, the ``zdmigrate`` command run in-process.
"""

pytest_plugins = ("tests.fix_db", "tests.fix_cli")
