"""Gallery lessons: the scenarios that teach, the command that shows each, and `masssim lessons check`."""
