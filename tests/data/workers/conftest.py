"""The scripts here run as child processes of the tests, never as test modules."""

collect_ignore_glob = ["*.py"]
