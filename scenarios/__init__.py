"""The built-in platform templates (`platforms/*.toml`), installed as `bot.builtin_scenarios`.

A workspace's own `scenarios/platforms/<name>.toml` wins over the built-in one of that name
(bot.scenario.loader.find_platform). This file only makes the folder installable; the site files
next to it are sandbox practice sites and are not installed.
"""
