"""Results and how they read: run summaries and files, readings in words, lesson readings, HTML reports."""
