"""Upload sessions: start, status, resume, cancel; the finalizer, event worker and janitor."""
