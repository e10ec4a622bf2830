"""S2Mel (semantic → mel): the length regulator, the DiT estimator with its WaveNet head,
the flow-matching sampler, and :class:`~mlx_indextts_models.s2mel.model.S2Mel` holding
them with ``gpt_layer`` as ``s2mel.pth`` does.

Modules are imported from their own files (``mlx_indextts_models.s2mel.model``, ...).
"""
