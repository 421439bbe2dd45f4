"""MaskCaptioner reference model (PyTorch + transformers): segment, detect, track and caption.

Needs the ``model`` extra (torch, transformers, tokenizers). See ``reference_model/README.md``.

Example:
    $ python -m reference_model train --config tiny --data synthetic:num_videos=64,seed=0 --out runs/tiny
"""
