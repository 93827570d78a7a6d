"""Flags the vision tests share."""

FAST = ["--disable_tqdm", "true", "--report_to", "none", "--image_size", "32", "--save_total_limit", "1"]
