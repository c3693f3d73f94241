"""A password hasher for the suite's users: Django's PBKDF2 with few iterations.

Every test user gets a password (tests/factories.py), and Django's default PBKDF2 runs over
a million iterations: about a second per user on a slow machine, most of the suite's time
in the tests that make many users. The algorithm's name is the same, so any process (a
served app, the browser tests' server) checks these hashes with Django's own hasher.
"""

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 1_000
