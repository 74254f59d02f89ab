# The two commands of the README. Both set up on first run (idempotent).
.PHONY: demo test setup setup-test clean

demo: setup
	.venv/bin/mailbox-bot demo

test: setup-test
	.venv/bin/python -m pytest -n auto --dist loadfile

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test

clean:
	rm -rf .venv .setup-stamp* demo-out
