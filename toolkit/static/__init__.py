"""L0 static analyzer: catches ML bugs that run but give wrong results, before any GPU hour.

``python -m toolkit.static.check PATH...`` runs the rule catalogue (``toolkit.static.rules``);
``python -m toolkit.static.rules`` lists it. Pure ``ast``: the analyzed code is never imported.
"""
