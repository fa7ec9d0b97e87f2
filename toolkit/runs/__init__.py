"""Run and sweep tracking: a SQLite registry (``db``), grid sweeps (``grid``), experiment plans
(``plans``), a local launcher (``local``) and a Slurm backend (``slurm``).

CLI: ``python -m toolkit.runs sweep|run|plan <verb>``.
"""
