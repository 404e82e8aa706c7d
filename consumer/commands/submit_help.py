"""What each flag of `sis-consumer submit` means: the SIS Imports API's create parameters, in
plain words (after Canvas's API documentation), and the command's exit codes."""

from __future__ import annotations

from dataclasses import fields
from typing import Final

from consumer.core.submission import ImportOptions
from consumer.submitting import EXIT_FAILED, EXIT_IMPORTED, EXIT_TIMED_OUT, EXIT_WITH_MESSAGES

OPTION_HELP: Final[dict[str, str]] = {
    "import_type": "the format of the data; Canvas knows only instructure_csv (the default)",
    "extension": "zip, csv or xml: how Canvas reads the file (default: from the file's bytes); "
    "a file whose bytes say otherwise is refused",
    "batch_mode": "make this file the whole truth for one term: what earlier SIS imports created in "
    "the term and this file leaves out is deleted. Needs --batch-mode-term-id; "
    "guard it with --change-threshold",
    "batch_mode_term_id": "the term batch mode deletes in: its Canvas id or sis_term_id:CODE",
    "multi_term_batch_mode": "batch mode over every term of the file's terms.csv "
    "(Canvas requires --change-threshold)",
    "batch_mode_enrollment_drop_status": "what batch mode does with enrollments left out of the file: "
    "deleted (the default), completed or inactive",
    "skip_deletes": "skip the rows that delete something (batch-mode cleanup still deletes)",
    "override_sis_stickiness": "let this import overwrite fields people changed in Canvas "
    "(those are normally kept)",
    "add_sis_stickiness": "with --override-sis-stickiness: treat this import's changes as made in "
    "Canvas, so later imports keep them",
    "clear_sis_stickiness": "with --override-sis-stickiness: clear the stickiness of every field "
    "this import touches (wins over --add-sis-stickiness)",
    "update_sis_id_if_login_claimed": "when a login in the file belongs to a user with another SIS id, "
    "give that user the file's SIS id instead of refusing the row",
    "diffing_data_set_identifier": "name a data set (e.g. users-nightly): Canvas compares this file "
    "with the previous import of the same name and applies only the difference (not with batch mode)",
    "diffing_remaster_data_set": "with diffing: import this file whole and make it the new base of "
    "the data set",
    "diffing_drop_status": "with diffing: what happens to enrollments missing from the file: "
    "deleted (the default), completed or inactive",
    "diffing_user_remove_status": "with diffing: what happens to users missing from the file: "
    "deleted (the default) or suspended",
    "change_threshold": "a percentage (1-100): in batch mode, skip the deletions when more than this "
    "share of a term's courses, sections or enrollments would go; with diffing, import the whole "
    "file when it differs in size from the previous one by more than this",
    "diff_row_count_threshold": "with diffing: import the whole file instead of the difference when "
    "the difference has more rows than this",
}
assert set(OPTION_HELP) == {f.name for f in fields(ImportOptions)}, "every Canvas option needs its help"

EXIT_CANVAS_REFUSED = 4
EXIT_USAGE = 64
"""sysexits.h's EX_USAGE, as the codes below are sysexits': none can be mistaken for an outcome."""
EXIT_BAD_FILE = 65
EXIT_NO_FILE = 66
EXIT_STORE = 75
EXIT_CONFIG = 78

EXIT_CODES: Final[tuple[tuple[int, str], ...]] = (
    (EXIT_IMPORTED, "imported (with --wait); created (without); --dry-run found nothing wrong"),
    (EXIT_FAILED, "failed, failed_with_messages or aborted"),
    (EXIT_WITH_MESSAGES, "imported_with_messages: imported, with warnings"),
    (EXIT_TIMED_OUT, "still running when --timeout ran out (the import goes on in Canvas)"),
    (EXIT_CANVAS_REFUSED, "Canvas refused a request or could not be reached"),
    (EXIT_USAGE, "usage: unknown flag, bad value, or options Canvas refuses; nothing sent"),
    (EXIT_BAD_FILE, "the file is not what its name or --extension says; nothing sent"),
    (EXIT_NO_FILE, "the file does not exist or cannot be read; nothing sent"),
    (EXIT_STORE, "the store could not be used; check Canvas before submitting again"),
    (EXIT_CONFIG, "configuration: a SIS_CONSUMER_* variable missing or invalid; nothing sent"),
)


def exit_code_table() -> str:
    return "exit codes:\n" + "\n".join(f"  {code:>2}  {meaning}" for code, meaning in EXIT_CODES)
