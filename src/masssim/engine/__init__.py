"""The simulation engine. Importing it sets glibc's allocator to keep freed memory for reuse
(:mod:`masssim.engine.allocator`): at import, because a thread that has allocated before the setting keeps an
arena of its own, whose large arrays glibc maps afresh each time whatever the setting."""

from masssim.engine.allocator import keep_freed_memory

keep_freed_memory()
