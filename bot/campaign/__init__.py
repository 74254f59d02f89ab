"""Campaigns: letters through their lifecycle, polls, and what is derived from them."""
