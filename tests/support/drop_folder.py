"""The drop-folder rules the intake tests upload under: nightly batch-mode imports of one term."""

TERM = "sis_term_id:2026FA"
"""A term of the simulated Canvas's first root account."""
MAX_BYTES = 2048
RULES = f"""
[[rules]]
prefix = "nightly/"
max_size = {MAX_BYTES}

[rules.options]
batch_mode = true
batch_mode_term_id = "{TERM}"
change_threshold = 10
"""
