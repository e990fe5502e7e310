class BylineError(Exception):
    """An error whose message is safe and useful to show a user as it is (one line, no traceback)."""
