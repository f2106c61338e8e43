"""The backups' fixtures (an account with custom fields, a group) serve here too."""

from tests.backups.conftest import account, group  # noqa: F401
