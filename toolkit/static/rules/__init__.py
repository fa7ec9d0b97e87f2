"""Rule modules, one per area; importing this package registers every rule.

``python -m toolkit.static.rules [--format json]`` lists the catalogue (see ``__main__``).
"""

from toolkit.static.rules import (  # noqa: F401
    amp,
    checkpoint,
    data,
    device,
    evalmode,
    hf,
    losses,
    names,
    serving,
    training,
)
