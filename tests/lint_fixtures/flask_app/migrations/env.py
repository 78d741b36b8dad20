"""Flask-Migrate's env.py needs the Flask app; this fixture stands in without Flask."""

raise RuntimeError("Working outside of application context.")
