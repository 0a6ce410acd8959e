# -*- coding: utf-8 -*-
"""
@inproceedings{Yang2021SCNet,
title = {Self-Supervised Cryo-Electron Tomography Volumetric Image Restoration from Single Noisy Volume with Sparsity Constraint},
author = {Yang, Zhidong and Zhang, Fa and Han, Renmin},
booktitle = {Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV)},
pages = {4056--4065},
year = {2021},
doi = {10.1109/ICCV48922.2021.00402}
}

@article{Bepler2020Topaz,
title = {Topaz-Denoise: general deep denoising models for cryoEM and cryoET},
author = {Bepler, Tristan and Kelley, Kotaro and Noble, Alex J. and Berger, Bonnie},
journal = {Nature Communications},
volume = {11},
number = {1},
pages = {5208},
year = {2020},
doi = {10.1038/s41467-020-18952-1}
}

@article{Kremer1996IMOD,
title = {Computer visualization of three-dimensional image data using IMOD},
author = {Kremer, James R. and Mastronarde, David N. and McIntosh, J. Richard},
journal = {Journal of Structural Biology},
volume = {116},
number = {1},
pages = {71--76},
year = {1996},
doi = {10.1006/jsbi.1996.0013}
}

@article{vanAarle2016Astra,
title = {Fast and flexible X-ray tomography using the ASTRA toolbox},
author = {van Aarle, Wim and Palenstijn, Willem Jan and Cant, Jeroen and Janssens, Eline and Bleichrodt, Folkert and Dabravolski, Andrei and De Beenhouwer, Jan and Batenburg, K. Joost and Sijbers, Jan},
journal = {Optics Express},
volume = {24},
number = {22},
pages = {25129--25147},
year = {2016},
doi = {10.1364/OE.24.025129}
}
"""
