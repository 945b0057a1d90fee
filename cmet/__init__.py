"""cmet — Cross-Modal Emotion Transfer (C-MET, CVPR 2026) as a library.

Nothing happens at import time; import the submodules you need:

- ``cmet.data``      clip tables and feature sets (the data contract), simulator, readers, generated set
- ``cmet.audio``     speech encoders (one interface, chosen by config)
- ``cmet.face``      landmarks, action-unit expression space, renderer, FER judge
- ``cmet.model``     the connector, its losses, and the baselines
- ``cmet.train``     ``train(cfg) -> metrics``
- ``cmet.evaluate``  Acc_emo and friends in the expression space
- ``cmet.infer``     autoregressive editing of a code sequence (intensity, blends)
- ``cmet.cli``       the ``cmet`` command
"""

__version__ = "0.1.0"
