"""Speed and memory measurements against peer tools, side by side in one run (not tests)."""
