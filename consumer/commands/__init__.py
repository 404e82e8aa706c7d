"""The `sis-consumer` commands people run by hand or from cron: parsing, printing, exit codes.

The work itself is in the library (`consumer.submitting`, the stores, the daemon); these modules
only turn arguments into calls and results into lines and exit codes.
"""
