"""labcoat toolkit: the measurements and checks a careful ML engineer trusts.

Every area is a package with a CLI: ``python -m toolkit.<area> <verb>``.
"""

__version__ = "0.1.0"
