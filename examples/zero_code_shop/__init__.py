"""A tiny shop for ``zero_code_app.py``: plain Python, no otel_usage import anywhere."""
