"""The package list lives here because one package's files sit outside its parent: the pages of
``player-demo/`` (top level of the repository) install as ``broadcaster/player_demo/``, package data of
the node (``broadcaster/pages.py``).  Everything else is in ``pyproject.toml``."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["ingest*", "broadcaster*", "moderation*"]), "broadcaster.player_demo"],
    package_dir={"broadcaster.player_demo": "player-demo"},
)
