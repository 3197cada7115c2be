"""The shared TaskFlow runner: every long operation runs through it."""
