import requests_that_are_not_installed  # noqa: F401
