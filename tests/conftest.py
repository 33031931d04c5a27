"""Fixtures shared by every test folder."""

import pytest


@pytest.fixture(scope="session")
def playwright_session():
    """One playwright driver for the whole run: its sync API refuses a second one while the first is open."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p
