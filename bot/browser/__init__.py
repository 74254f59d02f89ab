"""The Playwright side: launching Chromium and running scenario flows."""
