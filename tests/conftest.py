"""The test-suite's plugins: each fixture is defined once, in a fixture module.

- ``tests.fix_db``: a real PostgreSQL server, a fresh database per test, the pg marker;
- ``tests.fix_cli``: ``cli``, the ``zdmigrate`` command run in-process;
- ``tests.fix_replica``: ``streaming_replica``, a real streaming replica of the test server.
"""

pytest_plugins = ("tests.fix_db", "tests.fix_cli", "tests.fix_replica")
