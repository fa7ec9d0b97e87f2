"""Git-managed research loops: autoresearch (one metric) and ml-iteration (criteria).

This package is the one place in labcoat that writes git. The agents do the creative work;
these modules do the bookkeeping: protocol validation (:mod:`.protocol`), compliance and safe
commit/rollback of only the round's paths (:mod:`.gitops`), running the fixed evaluation and
the round verdict (:mod:`.judge`), the append-only logs and run state (:mod:`.records`), the
round journal and crash recovery (:mod:`.recovery`) and ml-iteration criteria
(:mod:`.criteria`). CLI: ``python -m toolkit.loops``.
"""
