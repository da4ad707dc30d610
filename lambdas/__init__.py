"""Lambda handlers (thin: parse the event, call the core, format the answer)."""
