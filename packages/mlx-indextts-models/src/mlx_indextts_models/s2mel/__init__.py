"""S2Mel (semantic → mel): the length regulator now; the CFM DiT and its WaveNet head follow.

Modules are imported from their own files (``mlx_indextts_models.s2mel.regulator``); nothing
is re-exported here or from the package root yet.
"""
